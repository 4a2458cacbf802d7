"""Notification tests get settings with their own rate-limit namespace (OTPs are limited)."""

from tests.platform.factories import isolated_settings  # noqa: F401
