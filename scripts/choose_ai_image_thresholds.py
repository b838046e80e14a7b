"""Choose SkyGate's band thresholds on the TRAIN split of the development images.

    .venv/bin/python scripts/choose_ai_image_thresholds.py --data ../shared/data

(with ``FACESOCIAL_MODELS__MODEL_DIR`` naming the pulled models, for the face method)

Runs the whole analysis (every method, the default weights of
``facesocial.forensics.ai_image.report.DEFAULT_WEIGHTS``) on the train split of
``scripts/train/ai_image_data.py`` and prints, for the fused score: the threshold at which at most
5 % of the real train photos are called AI (``ai_threshold``) and the one below which at most 5 %
of the AI train images fall (``real_below``), and the per-method AUC on the same images. The
learned model (and the face method, which uses it) must not judge images it was trained on, so
each train image is judged by the cross-fitted model that did not see it (three models, one per
fold, written by ``scripts/train/ai_image_model.py`` into ``--folds-dir``): the scores are
out-of-fold, as on new images. The test split is left for ``facesocial eval ai-image``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
from ai_image_data import samples

from facesocial.container import Container
from facesocial.evaluation.metrics import roc_auc
from facesocial.forensics.ai_image.analyzer import AiImageAnalyzer
from facesocial.forensics.ai_image.ensemble import MethodWeight, fuse
from facesocial.forensics.ai_image.faces import FaceForensics
from facesocial.forensics.ai_image.model import AiImageModel
from facesocial.forensics.ai_image.report import DEFAULT_WEIGHTS
from facesocial.settings import Settings
from facesocial.vision.image import decode_image

MAX_FPR = 0.05
MAX_MISS = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--folds-dir", type=Path, default=Path.home() / ".cache" / "facesocial" / "ai_image_folds"
    )
    args = parser.parse_args()
    container = Container(Settings())
    base = container.ai_analyzer
    analyzers = []
    for k in range(3):
        model = AiImageModel(
            (args.folds_dir / f"fold{k}.onnx").read_bytes(),
            json.loads((args.folds_dir / f"fold{k}.manifest.json").read_text()),
        )
        faces = FaceForensics(lambda: container.deepfake_detector, model)
        analyzers.append(AiImageAnalyzer(base.table, model, None, faces))
    membership: dict[str, int] = json.loads((args.folds_dir / "folds.json").read_text())
    weights = {n: MethodWeight(w) for n, w in DEFAULT_WEIGHTS.items()}
    active = set(analyzers[0].available())
    fused: list[tuple[bool, float]] = []
    methods: dict[str, list[tuple[bool, float]]] = {}
    for sample in samples(args.data.resolve()):
        if sample.split != "train":
            continue
        analyzer = analyzers[membership[str(sample.path)]]
        data = sample.path.read_bytes()
        report = analyzer.analyze(data, decode_image(data).rgb, active)
        verdict = fuse(report.methods, weights, ai_threshold=1.0, real_below=0.0)
        fused.append((sample.label == "ai", verdict.score))
        for m in report.methods:
            if m.score is not None:
                methods.setdefault(m.name, []).append((sample.label == "ai", m.score))
    ai = np.array([s for a, s in fused if a])
    real = np.array([s for a, s in fused if not a])
    ai_threshold = float(np.quantile(real, 1.0 - MAX_FPR))
    real_below = min(float(np.quantile(ai, MAX_MISS)), ai_threshold)
    out = {
        "train_images": {"ai": len(ai), "real": len(real)},
        "fused_auc": round(roc_auc(ai, real), 4),
        "ai_threshold (real FPR <= 5 %)": round(ai_threshold, 3),
        "real_below (AI miss <= 5 %)": round(real_below, 3),
        # What a looser real band would cost and give: per AI miss rate, the threshold and the
        # share of real train photos it would call real.
        "real_below_options": {
            f"ai_miss<={miss:.0%}": {
                "real_below": round(float(np.quantile(ai, miss)), 3),
                "real_photos_called_real": round(float(np.mean(real < np.quantile(ai, miss))), 3),
            }
            for miss in (0.05, 0.10, 0.20)
        },
        "method_auc": {
            name: round(roc_auc(np.array([s for a, s in v if a]), np.array([s for a, s in v if not a])), 4)
            for name, v in methods.items()
            if any(a for a, _ in v) and any(not a for a, _ in v)
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
