#!/usr/bin/env bash
# The whole test suite, under OpenCV 5.x (.venv) and OpenCV 4.x (.venv4); creates them if missing.
# The synthetic models and the C++ code (cpp/) are built once into temporary directories shared by both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || [ ! -x .venv4/bin/python ]; then
    bash tests/setup_venvs.sh
fi
TRYON_SYNTHETIC_CACHE=$(mktemp -d -t tryon-synthetic.XXXXXX)
TRYON_CPP_BUILD=$(mktemp -d -t tryon-cpp-build.XXXXXX)  # cpp/ is built once, tested under both
export TRYON_SYNTHETIC_CACHE TRYON_CPP_BUILD
trap 'rm -rf "$TRYON_SYNTHETIC_CACHE" "$TRYON_CPP_BUILD"' EXIT
status=0
for venv in .venv .venv4; do
    echo "=== $venv: $("$venv/bin/python" -c 'import cv2; print("OpenCV", cv2.__version__)')"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests || status=1
done
exit $status
