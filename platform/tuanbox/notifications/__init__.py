"""Notifications: texts and in-app notices, sent through a gateway or kept for the dev inbox."""
