"""Asynchronous jobs: port, SQL store, runner, in-process and Celery adapters (docs/jobs.md)."""
