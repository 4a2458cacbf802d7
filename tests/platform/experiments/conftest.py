"""Experiment tests get isolated settings (own rate-limit namespace)."""

from tests.platform.factories import isolated_settings  # noqa: F401
