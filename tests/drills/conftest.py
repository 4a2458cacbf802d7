"""Drill fixtures: the report; the dispatch and edge-agent fixtures the drills reuse."""

from tests.drills.support import drill
from tests.edge.agent.conftest import scanner_sim, signing_key
from tests.platform.dispatch.platformfx import bridges, platform_for

__all__ = ["bridges", "drill", "platform_for", "scanner_sim", "signing_key"]
