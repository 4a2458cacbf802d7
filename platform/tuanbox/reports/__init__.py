"""Merchant reports: daily rollups kept current by Celery, batched page views, the dashboard."""
