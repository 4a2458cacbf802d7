"""End-to-end fixtures: the platform's fresh database and bridges (shared with dispatch tests)."""

from tests.platform.dispatch.platformfx import bridges, platform_for

__all__ = ["bridges", "platform_for"]
