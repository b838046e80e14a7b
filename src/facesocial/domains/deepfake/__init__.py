"""Deepfake detection (design documents 000 §2.5 and 001: ``/api/v1/deepfake-detection/``)."""
