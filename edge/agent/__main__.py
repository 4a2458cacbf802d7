"""``python -m edge.agent`` is ``tuanbox-edge``."""

from edge.agent.cli import main

main()
