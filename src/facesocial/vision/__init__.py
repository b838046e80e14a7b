"""The pure vision core: bytes in, faces and their columns out. No HTTP, SQL or jobs here."""
