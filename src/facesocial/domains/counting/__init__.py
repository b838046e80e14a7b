"""People counting in uploaded videos: API, job, results, annotated preview (docs/api.md)."""
