"""FaceSocial: an open, self-hostable face-AI platform."""

__version__ = "0.1.0"
