"""Accounts: users and roles, phone OTP and password sign-in, JWT access and refresh tokens."""
