"""The merchant console at /console: staff pages scoped to the signed-in staff's merchant."""
