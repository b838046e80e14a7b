"""Deepfake and AI-generated-image forensics: per-face methods and their ensemble."""
