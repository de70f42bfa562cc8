#!/usr/bin/env bash
# The whole test suite under each OpenCV of the matrix (tests/setup_venvs.sh): the newest 5.x (.venv), the
# newest 4.x (.venv4) and 5.0 (.venv50); then the web demo's tests in .venvweb; creates them if missing.
# The synthetic models and the C++ code (cpp/) are built once into temporary directories shared by all runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || [ ! -x .venv4/bin/python ] || [ ! -x .venv50/bin/python ] || [ ! -x .venvweb/bin/python ]; then
    bash tests/setup_venvs.sh
fi
TRYON_SYNTHETIC_CACHE=$(mktemp -d -t tryon-synthetic.XXXXXX)
TRYON_CPP_BUILD=$(mktemp -d -t tryon-cpp-build.XXXXXX)  # cpp/ is built once, tested under each
export TRYON_SYNTHETIC_CACHE TRYON_CPP_BUILD
trap 'rm -rf "$TRYON_SYNTHETIC_CACHE" "$TRYON_CPP_BUILD"' EXIT
status=0
for venv in .venv .venv4 .venv50; do
    echo "=== $venv: $("$venv/bin/python" -c 'import cv2; print("OpenCV", cv2.__version__)')"
    # the web tests skip here: the [web] extra is in .venvweb only (TRYON_REQUIRE_WEB holds there)
    TRYON_REQUIRE_WEB= "$venv/bin/python" -m pytest -q -p no:cacheprovider tests || status=1
done
echo "=== .venvweb: the web demo, $(.venvweb/bin/python -c 'import cv2, gradio; print("OpenCV", cv2.__version__, "Gradio", gradio.__version__)')"
.venvweb/bin/python -m pytest -q -p no:cacheprovider tests/test_web.py tests/test_web_browser.py || status=1
exit $status
