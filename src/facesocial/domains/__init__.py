"""One folder per service: its router, schemas, use cases, repository and job handlers."""
