"""Fixtures of the flashsale tests."""

from tests.platform.groupbuy.factories import engines

__all__ = ["engines"]
