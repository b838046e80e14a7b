"""Drop-in APIs for clients written against other face services (Rekognition, CompreFace).

Each layer translates its protocol onto the platform's own services, so routing, audit,
tenancy and model versions apply exactly as on ``/api/v1``.
"""
