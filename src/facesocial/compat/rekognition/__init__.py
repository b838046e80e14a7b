"""An AWS Rekognition-compatible endpoint (``POST /rekognition``, JSON protocol 1.1, SigV4).

See docs/rekognition.md for the supported actions, the mapping onto face groups, and the
similarity scale.
"""
