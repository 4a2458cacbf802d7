"""Pure wire protocol shared by the platform, the edge agent and the simulators; no I/O here."""
