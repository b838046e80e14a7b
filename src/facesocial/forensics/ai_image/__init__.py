"""AI-generated image forensics (SkyGate, design document 003): per-method analyses and their ensemble."""
