"""Face presentation attack detection (liveness): passive from one image, active from challenges."""
