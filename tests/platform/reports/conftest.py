"""Fixtures of the reports tests."""

from tests.platform.groupbuy.factories import engines

__all__ = ["engines"]
