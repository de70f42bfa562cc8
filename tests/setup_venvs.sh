#!/usr/bin/env bash
# Creates the two test environments (idempotent): .venv with OpenCV 5.x, .venv4 with the newest OpenCV 4.x.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
setup() {  # setup DIR OPENCV_REQUIREMENT
    if [ ! -x "$1/bin/python" ]; then
        "$PYTHON" -m venv "$1"
    fi
    "$1/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt -r tests/requirements.txt "$2"
    # the project itself, editable, so the console commands of README exist in the venv too; with the
    # training extra (PyTorch, CPU build), whose tests compare the training tool with the runtime
    "$1/bin/python" -m pip install -q --disable-pip-version-check -e '.[train]' "$2"
    "$1/bin/python" -c 'import cv2; print("'"$1"': OpenCV", cv2.__version__)'
}
setup .venv 'opencv-python==5.0.0.93'
setup .venv4 'opencv-python==4.14.0.94'
