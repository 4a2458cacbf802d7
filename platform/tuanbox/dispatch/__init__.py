"""The transactional command outbox and `tuanbox bridge`, the platform's MQTT connection."""
