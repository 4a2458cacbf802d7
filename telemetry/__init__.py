"""Cold-chain telemetry: InfluxDB schema, writers, queries and excursion rules."""
