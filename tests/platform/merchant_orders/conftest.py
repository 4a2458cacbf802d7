"""Console order tests get settings with their own rate-limit namespace and media directory."""

from tests.platform.factories import isolated_settings  # noqa: F401
