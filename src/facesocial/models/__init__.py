"""Model registry: what each model is, where it came from, and how to load it verified."""
