"""Membership tests get settings with their own rate-limit namespace and media dir."""

from tests.platform.factories import isolated_settings  # noqa: F401
