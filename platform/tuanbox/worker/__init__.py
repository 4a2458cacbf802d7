"""Celery worker and beat: the platform's background jobs."""
