"""Notifications: SMS and in-app notice ports, with development adapters that record messages."""
