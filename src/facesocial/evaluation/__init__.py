"""Evaluation and benchmark commands (JSON out); they call the same core as the API."""
