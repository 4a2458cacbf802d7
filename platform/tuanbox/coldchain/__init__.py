"""Cold chain on the platform: excursion scans over InfluxDB, quality holds, alerts, provenance."""
