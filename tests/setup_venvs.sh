#!/usr/bin/env bash
# Creates the test environments (idempotent): .venv with the newest OpenCV 5.x (what `pip install` brings
# today), .venv4 with the newest OpenCV 4.x, and .venv50 with OpenCV 5.0, the one release with two graph
# engines (ENGINE_CLASSIC beside the new one), whose engine switch no other release exercises; and .venvweb, the
# newest OpenCV with the web demo's extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
setup() {  # setup DIR OPENCV_REQUIREMENT [EXTRAS]
    if [ ! -x "$1/bin/python" ]; then
        "$PYTHON" -m venv "$1"
    fi
    "$1/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt -r tests/requirements.txt "$2"
    # the project itself, editable, so the console commands of README exist in the venv too; [train] adds
    # PyTorch (CPU build) for the tests that compare the training tool with the runtime
    "$1/bin/python" -m pip install -q --disable-pip-version-check -e ".${3:-}" "$2"
    "$1/bin/python" -c 'import cv2; print("'"$1"': OpenCV", cv2.__version__)'
}
setup .venv 'opencv-python==5.1.0.95' '[train]'
setup .venv4 'opencv-python==4.14.0.94' '[train]'
setup .venv50 'opencv-python==5.0.0.93'
# the web demo (web_demo.py, the [web] extra) and its browser test ([web-test]) in a venv of their own, the newest
# OpenCV: gradio 6.31 pins Pillow below 13, which in .venv would move the whole suite to Pillow 12 (where
# tests/test_pil_bilinear.py finds a few degenerate resizes, 2-3 px to 1, that differ); tests/run.sh runs only
# the web tests here
setup .venvweb 'opencv-python==5.1.0.95' '[web,web-test]'
