"""SkyGate: AI-generated image detection with a per-method report (document 003, docs/ai-detection.md)."""
