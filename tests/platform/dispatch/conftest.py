"""Dispatch fixtures live in platformfx so the end-to-end tests can share them."""

from tests.platform.dispatch.platformfx import bridges, platform_for

__all__ = ["bridges", "platform_for"]
