"""The SkyGate methods as ``detection_methods`` rows: default weights and descriptions.

Both live beside the methods (:mod:`facesocial.forensics.ai_image.report`, which says how the
weights were chosen); this module is what the table is seeded from. Weights are 0..9.99
(DECIMAL(3,2) of document 003); the operator changes them with ``PUT /api/v1/ai-detection/methods``.
"""

from __future__ import annotations

from facesocial.forensics.ai_image.report import DEFAULT_WEIGHTS, DESCRIPTIONS

__all__ = ["DEFAULT_WEIGHTS", "DESCRIPTIONS", "WEIGHT_MAX"]

WEIGHT_MAX = 9.99
