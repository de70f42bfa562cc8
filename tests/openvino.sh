#!/usr/bin/env bash
# cv.dnn with OpenVINO, from the package index only: builds OpenCV from the opencv-python sdist against the
# openvino wheel's C++ runtime (headers, libraries, cmake config), into its own venv, then runs the OpenVINO tests
# (tests/test_openvino.py) with that venv and prints their figures.
#
#   bash tests/openvino.sh            # build (or reuse) and test
#   bash tests/openvino.sh --build    # build (or reuse) only
#
# Everything lives in $OPENVINO_OPENCV_DIR (default ~/.cache/tryon-opencv-openvino); a finished build is reused.
# Cost (docs/openvino.md): 0.7 GB before the compile; well over an hour of compiling on a shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

# OpenCV 5.0.0: the newest OpenCV; its dnn OpenVINO backend uses only the OpenVINO 2.0 API (ov::), which the
# 2026 wheel still ships (the pre-2022 InferenceEngine/ngraph APIs are gone from it).
OPENCV_PYTHON_VERSION=${OPENCV_PYTHON_VERSION:-5.0.0.93}
OPENVINO_VERSION=${OPENVINO_VERSION:-2026.4.1}
DIR=${OPENVINO_OPENCV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tryon-opencv-openvino}
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
VENV=$DIR/venv
BUILD=$DIR/build-$OPENCV_PYTHON_VERSION
mkdir -p "$DIR"
log() { echo "[openvino.sh $(date -u +%H:%M:%S)] $*"; }

# 1. The venv: the project's Python requirements except opencv-python (this build provides cv2), plus openvino.
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$VENV/.requirements-done" ]; then
    log "installing requirements and openvino==$OPENVINO_VERSION into $VENV"
    grep -v -i '^opencv' requirements.txt > "$DIR/requirements-no-opencv.txt"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$DIR/requirements-no-opencv.txt" -r tests/requirements.txt "openvino==$OPENVINO_VERSION"
    touch "$VENV/.requirements-done"
fi
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
OV_CMAKE=$SITE/openvino/cmake
OV_LIBS=$SITE/openvino/libs
PY_INCLUDE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_LIBRARY=$("$VENV/bin/python" -c 'import os, sysconfig as s; print(os.path.join(s.get_config_var("LIBDIR"), s.get_config_var("LDLIBRARY")))')

have_build() {
    "$VENV/bin/python" -c '
import cv2 as cv, sys
sys.exit(0 if cv.dnn.DNN_TARGET_CPU in cv.dnn.getAvailableTargets(cv.dnn.DNN_BACKEND_INFERENCE_ENGINE) else 1)' 2>/dev/null
}

if ! have_build; then
    start=$(date +%s)
    # 2. OpenCV's sources: the opencv-python sdist (its build dependencies come as wheels, hence --no-binary
    #    for opencv-python only).
    SRC=$DIR/opencv_python-$OPENCV_PYTHON_VERSION
    if [ ! -d "$SRC/opencv/modules/dnn" ]; then
        log "downloading the opencv-python==$OPENCV_PYTHON_VERSION sdist"
        "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
            --no-binary opencv-python "opencv-python==$OPENCV_PYTHON_VERSION" -d "$DIR/sdist"
        tar xzf "$DIR/sdist/opencv_python-$OPENCV_PYTHON_VERSION.tar.gz" -C "$DIR"
    fi
    # 3. Configure: only the modules the project uses; no download at configure time (IPP and the like are
    #    off), protobuf and flatbuffers bundled (dnn's ONNX/TensorFlow and TFLite importers), PNG/JPEG bundled.
    log "configuring OpenCV in $BUILD"
    cmake -G "Unix Makefiles" -S "$SRC/opencv" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_LIST=core,imgproc,imgcodecs,dnn,python3,python_bindings_generator \
        -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF \
        -DBUILD_opencv_apps=OFF -DBUILD_DOCS=OFF -DBUILD_JAVA=OFF -DBUILD_opencv_python2=OFF \
        -DWITH_OPENVINO=ON -DOpenVINO_DIR="$OV_CMAKE" \
        -DWITH_PROTOBUF=ON -DBUILD_PROTOBUF=ON -DWITH_FLATBUFFERS=ON \
        -DWITH_IPP=OFF -DWITH_ITT=OFF -DWITH_OPENCL=OFF -DWITH_CUDA=OFF -DWITH_VA=OFF -DWITH_EIGEN=OFF \
        -DWITH_LAPACK=OFF -DWITH_OPENBLAS=OFF -DWITH_GTK=OFF -DWITH_QT=OFF -DWITH_FFMPEG=OFF \
        -DWITH_GSTREAMER=OFF -DWITH_V4L=OFF -DWITH_1394=OFF -DWITH_TIFF=OFF -DWITH_WEBP=OFF \
        -DWITH_OPENJPEG=OFF -DWITH_JASPER=OFF -DWITH_OPENEXR=OFF -DWITH_AVIF=OFF -DWITH_JPEGXL=OFF \
        -DWITH_TBB=OFF -DWITH_VTK=OFF -DWITH_UNIFONT=OFF \
        -DBUILD_ZLIB=ON -DBUILD_PNG=ON -DBUILD_JPEG=ON \
        -DPYTHON3_EXECUTABLE="$VENV/bin/python" -DPYTHON3_INCLUDE_DIR="$PY_INCLUDE" \
        -DPYTHON3_LIBRARY="$PY_LIBRARY" -DOPENCV_PYTHON3_INSTALL_PATH="$SITE" \
        -DCMAKE_INSTALL_PREFIX="$DIR/install" -DCMAKE_INSTALL_RPATH="$OV_LIBS" \
        > "$DIR/cmake.log" 2>&1 || { tail -40 "$DIR/cmake.log"; exit 1; }
    grep -q 'OpenVINO FOUND' "$DIR/cmake.log" || { echo "OpenVINO not found by cmake, see $DIR/cmake.log"; exit 1; }
    grep -q 'To be built:.*python3' "$DIR/cmake.log" || { echo "cmake will not build cv2, see $DIR/cmake.log"; exit 1; }
    # 4. Build: the OpenVINO-backend sources first, so an API mismatch shows in minutes, not after an hour.
    log "building with $JOBS jobs (log: $DIR/build.log)"
    (cd "$BUILD/modules/dnn" && make -j"$JOBS" \
        src/op_inf_engine.cpp.o src/ie_ngraph.cpp.o src/net_openvino.cpp.o) > "$DIR/build.log" 2>&1 \
        || { tail -40 "$DIR/build.log"; exit 1; }
    cmake --build "$BUILD" -j "$JOBS" >> "$DIR/build.log" 2>&1 || { tail -40 "$DIR/build.log"; exit 1; }
    cmake --install "$BUILD" >> "$DIR/build.log" 2>&1 || { tail -40 "$DIR/build.log"; exit 1; }
    have_build || { echo "the built cv2 has no OpenVINO backend"; exit 1; }
    log "built in $(( ($(date +%s) - start) / 60 )) min; disk: $(du -sh "$DIR" | cut -f1) in $DIR"
fi
"$VENV/bin/python" -c 'import cv2 as cv, openvino as ov; print("OpenCV", cv.__version__, "with OpenVINO", ov.get_version())'
[ "${1:-}" = "--build" ] && exit 0

# 5. The OpenVINO tests with this venv, figures printed (-s): first with f32 asked of OpenVINO's CPU plugin
#    (the bounds asserted), then, where the CPU has bf16 units, with bf16 (--target cpu_bf16: measured only),
#    and the two compared. The precision each run asks for is checked by its first test.
cd "$REPO"
"$VENV/bin/python" -c '
import openvino as ov
core = ov.Core()
print("OpenVINO CPU plugin: capabilities", " ".join(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
      "| default precision hint", core.get_property("CPU", "INFERENCE_PRECISION_HINT"))'
FIGURES=$(mktemp -d)
TRYON_OPENVINO_REQUIRED=1 TRYON_OPENVINO_PRECISION=f32 TRYON_OPENVINO_FIGURES=$FIGURES/f32.json \
    "$VENV/bin/python" -m pytest -q -s -p no:cacheprovider tests/test_openvino.py
if "$VENV/bin/python" -c 'import sys, openvino_precision as p; sys.exit(0 if p.cpu_has_bf16() else 1)'; then
    TRYON_OPENVINO_REQUIRED=1 TRYON_OPENVINO_PRECISION=bf16 TRYON_OPENVINO_FIGURES=$FIGURES/bf16.json \
        "$VENV/bin/python" -m pytest -q -s -p no:cacheprovider tests/test_openvino.py
    "$VENV/bin/python" benchmarks/openvino_bf16_report.py "$FIGURES/f32.json" "$FIGURES/bf16.json"
else
    echo "this CPU has no bf16 units: OpenVINO computes in f32 with either target; no bf16 run"
fi
rm -rf "$FIGURES"
