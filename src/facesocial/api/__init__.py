"""HTTP layer: FastAPI app factory, auth, audit middleware, one router per service."""
