"""Use cases joining the vision core and the store. No HTTP here."""
