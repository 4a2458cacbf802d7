"""Growth: who invited whom, invite leaderboards, invite tasks and new-user offers."""
