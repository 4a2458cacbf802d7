"""The ops dashboard (/ops): fleet, lockers, temperatures, alerts and holds, live via SSE."""
