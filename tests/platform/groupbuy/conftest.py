"""Fixtures of the groupbuy tests."""

from tests.platform.groupbuy.factories import engines

__all__ = ["engines"]
