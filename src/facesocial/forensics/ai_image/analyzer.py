"""Run the active SkyGate methods on one image and assemble the report (document 003's metadata).

Each method is a pure function of the image (:mod:`.metadata`, :mod:`.ela`, :mod:`.noise`,
:mod:`.texture`, :mod:`.spectrum`, :mod:`.model`, :mod:`.faces`); this module only sequences them,
times them, and keeps the maps and images they return for the visual-anomaly step
(:mod:`.anomalies`). The weighting is not done here but in :mod:`.ensemble`, with the weights the
caller read from ``detection_methods``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facesocial.forensics.ai_image import report
from facesocial.forensics.ai_image.report import Anomaly, MethodResult
from facesocial.forensics.calibration import ReferenceTable
from facesocial.models.manifest import ModelRef

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]

SKYGATE = ModelRef("skygate", "1.0")


class ImageMethod(Protocol):
    """A learned method (the shipped model, a user's ONNX model): ``analyze(rgb) -> MethodResult``."""

    @property
    def version(self) -> str: ...

    def analyze(self, rgb: UInt8Array) -> MethodResult: ...


@dataclass(frozen=True, slots=True)
class FaceFindings:
    """The face method's result, the per-face details, and (box x, y, w, h; score) for the heatmap."""

    result: MethodResult
    faces: list[dict[str, Any]]
    boxes: list[tuple[tuple[int, int, int, int], float]]


@dataclass(slots=True)
class AiImageReport:
    """Everything one analysis found; ``methods`` in :data:`report.METHODS` order."""

    methods: list[MethodResult]
    file_info: dict[str, Any]
    exif_data: dict[str, Any]
    anomalies: list[Anomaly]
    faces: list[dict[str, Any]]
    ela_png: bytes | None
    heatmap_png: bytes | None
    algorithm_version: str
    timings_ms: dict[str, float] = field(default_factory=dict)

    def method(self, name: str) -> MethodResult | None:
        return next((m for m in self.methods if m.name == name), None)


class AiImageAnalyzer:
    """Sequences the methods. Thread-safe: it keeps no per-call state.

    ``model`` / ``extra`` / ``faces`` may be None (not installed, not configured): their methods
    are then absent from the report, as if inactive.
    """

    def __init__(
        self,
        table: ReferenceTable,
        model: ImageMethod | None,
        extra: ImageMethod | None,
        faces: Callable[[UInt8Array], FaceFindings] | None,
    ) -> None:
        self.table = table
        self.model = model
        self.extra = extra
        self.faces = faces

    @property
    def version(self) -> str:
        return SKYGATE.tag

    def available(self) -> list[str]:
        """The methods this installation can run."""
        missing = {
            report.MODEL: self.model is None,
            report.EXTRA_MODEL: self.extra is None,
            report.FACES: self.faces is None,
        }
        return [name for name in report.METHODS if not missing.get(name, False)]

    def analyze(self, data: bytes, rgb: UInt8Array, active: Collection[str]) -> AiImageReport:
        """Run every method in ``active`` that is available on ``rgb`` (H, W, 3 uint8, EXIF-upright)
        decoded from ``data`` (the file as uploaded, for its metadata and encoding)."""
        from facesocial.forensics.ai_image import anomalies, ela, metadata, noise, spectrum, texture

        height, width = rgb.shape[:2]
        results: list[MethodResult] = []
        maps: dict[str, FloatArray] = {}
        ela_png: bytes | None = None
        face_findings: FaceFindings | None = None
        timings: dict[str, float] = {}
        run = set(active) & set(self.available())

        def timed(name: str, fn: Callable[[], Any]) -> Any:
            started = time.perf_counter()
            value = fn()
            timings[name] = round((time.perf_counter() - started) * 1000.0, 1)
            return value

        meta = timed(report.METADATA, lambda: metadata.analyze(data))
        if report.METADATA in run:
            results.append(meta)
        if report.ELA in run:
            ela_result, maps["ela"], ela_png = timed(report.ELA, lambda: ela.analyze(rgb, self.table))
            results.append(ela_result)
        if report.NOISE in run:
            noise_result, maps["noise"] = timed(report.NOISE, lambda: noise.analyze(rgb, self.table))
            results.append(noise_result)
        if report.TEXTURE in run:
            texture_result, maps["texture"] = timed(report.TEXTURE, lambda: texture.analyze(rgb, self.table))
            results.append(texture_result)
        if report.FREQUENCY in run:
            results.append(timed(report.FREQUENCY, lambda: spectrum.analyze(rgb, self.table)))
        if report.MODEL in run and self.model is not None:
            model = self.model
            results.append(timed(report.MODEL, lambda: model.analyze(rgb)))
        if report.EXTRA_MODEL in run and self.extra is not None:
            extra = self.extra
            results.append(timed(report.EXTRA_MODEL, lambda: extra.analyze(rgb)))
        if report.FACES in run and self.faces is not None:
            faces = self.faces
            face_findings = timed(report.FACES, lambda: faces(rgb))
            results.append(face_findings.result)
        face_boxes = face_findings.boxes if face_findings else []
        found, heatmap = timed(
            "visual_anomalies",
            lambda: anomalies.find(maps, height, width, faces=face_boxes, background=rgb),
        )
        order = {name: i for i, name in enumerate(report.METHODS)}
        results.sort(key=lambda r: order.get(r.name, len(order)))
        return AiImageReport(
            methods=results,
            file_info=metadata.file_info(data, width, height),
            exif_data=dict(meta.details.get("exif_data", {"exists": False})),
            anomalies=found,
            faces=face_findings.faces if face_findings else [],
            ela_png=ela_png,
            heatmap_png=heatmap,
            algorithm_version=self.version,
            timings_ms=timings,
        )
