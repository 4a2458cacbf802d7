"""Recommendation tests use the shop's fixtures: the page cache's misses read the test's
session, and settings with their own page-cache and rate-limit namespaces."""

from tests.platform.shop.conftest import app, settings  # noqa: F401 - fixtures
