"""Fulfilment API tests sign pickup QRs with a throwaway key instead of one under var/."""

from __future__ import annotations

import pytest

from edge.protocol.token import generate_keypair, private_key_to_b64
from tests.conftest import make_settings
from tuanbox.settings import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url=database_url, pickup_signing_key=private_key_to_b64(generate_keypair()[0])
    )
