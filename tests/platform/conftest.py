"""Platform fixtures: an app whose requests share the test's rolled-back session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tuanbox.api.app import create_app
from tuanbox.api.deps import get_session, get_session_source
from tuanbox.api.reads import get_read_session, get_read_source
from tuanbox.settings import Settings


@pytest.fixture
def app(settings: Settings, engine: Engine, db_session: Session) -> FastAPI:
    application = create_app(settings, engine=engine)

    def _session() -> Iterator[Session]:
        yield db_session

    application.dependency_overrides[get_session] = _session
    application.dependency_overrides[get_session_source] = lambda: lambda: nullcontext(db_session)
    # Read sessions (the replica in production) see the test's rolled-back data too; the
    # routing itself is proven against the real replica in tests/platform/db.
    application.dependency_overrides[get_read_session] = _session
    application.dependency_overrides[get_read_source] = lambda: lambda: nullcontext(db_session)
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
