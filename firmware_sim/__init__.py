"""Simulators of the lock-controller board, sensors and QR scanner over real pseudo-terminals."""
