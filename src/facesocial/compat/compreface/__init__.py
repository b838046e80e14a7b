"""CompreFace-compatible endpoints: ``/api/v1/recognition``, ``/api/v1/detection``,
``/api/v1/verification`` (docs/compreface.md)."""
