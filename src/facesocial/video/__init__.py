"""The shared video room: upload intake, probing, frame sampling and face tracking.

Used by every video service (deepfake analysis today; liveness, attention and counting later),
so nothing here knows what the frames are analysed for:

* :mod:`.upload` — stream a multipart (or raw) upload to disk, hashed, within the byte limit;
* :mod:`.probe` — what the file holds (PyAV), checked against ``settings.video``;
* :mod:`.frames` — upright RGB frames sampled by presentation time;
* :mod:`.tracking` — one id per face across frames;
* :mod:`.container_sniff`, :mod:`.synthetic` — container structure checks; test videos.

docs/video.md describes the limits, error codes, sampling and tracking.
"""
