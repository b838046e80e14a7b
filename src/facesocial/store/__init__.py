"""Persistence: SQL tables per service schema, repositories, migrations, vector indexes."""
