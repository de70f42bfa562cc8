"""cv.dnn's graph engines across OpenCV 4, 5.0 and 5.1+, and reading a net with the right one.

OpenCV 4 has no engine choice; 5.0 has two (the new engine, CPU only, and the classic one, which every
other backend and target needs); 5.1 and later have the new engine alone, which takes no target."""
import os
import tempfile

import cv2 as cv
import numpy as np

from errors import ModelLoadError, error_line

# OpenCV 5's classic engine (None on OpenCV 4, which has no engine choice): the one that returns every
# output of the multi-output TFLite graphs and reads every op of the older graphs
CLASSIC_ENGINE = getattr(cv.dnn, 'ENGINE_CLASSIC', None)

# OpenCV 5.1 and later: one graph engine (ENGINE_OPENCV; ENGINE_CLASSIC is gone), which takes no target
NEW_ENGINE_ONLY = hasattr(cv.dnn, 'ENGINE_AUTO') and not hasattr(cv.dnn, 'ENGINE_CLASSIC')


def read_net(reader, source, engine=None):
    """A cv.dnn reader called with the engine argument only where OpenCV has one (OpenCV 5). `source` is a
    path or an in-memory model (bytes, or a uint8 array). An in-memory model asked of the classic engine is
    read from a temporary file: OpenCV 5.0 reads a buffer with its automatic engine choice whatever engine
    it is given (onnx_importer.cpp), and the new engine then ignores the OpenVINO or CUDA backend set on it."""
    if engine is None:
        return reader(source)
    if engine == CLASSIC_ENGINE and not isinstance(source, str):
        with tempfile.TemporaryDirectory(prefix='tryon-net-') as directory:
            path = os.path.join(directory, 'model')
            with open(path, 'wb') as f:
                f.write(bytes(source) if isinstance(source, (bytes, bytearray)) else np.asarray(source).tobytes())
            return reader(path, engine)
    return reader(source, engine)


def load_net(reader, source, engine=None, message=None):
    """read_net, with OpenCV's failure to read turned into one line: a ModelLoadError (exit status 1) with
    `message` (default 'OpenCV cannot load <source>') and OpenCV's last line."""
    try:
        return read_net(reader, source, engine)
    except cv.error as err:
        raise ModelLoadError('%s: %s' % (message or 'OpenCV cannot load %s' % (source,), error_line(err)))


def is_cpu_default(backend_id, target_id):
    """True for OpenCV's own backend (or the default one) on the CPU: the pair the new engine runs."""
    return (backend_id in (cv.dnn.DNN_BACKEND_DEFAULT, cv.dnn.DNN_BACKEND_OPENCV)
            and int(target_id) == int(cv.dnn.DNN_TARGET_CPU))


def dnn_engine(backend_id, target_id=cv.dnn.DNN_TARGET_CPU):
    """readNet* engine argument for OpenCV 5: the new engine is CPU-only, so any backend other than
    OpenCV/default, and any target other than the CPU, needs the classic one. None on OpenCV 4
    (no engine argument). A net must be read again when this changes for a new backend/target pair."""
    if not hasattr(cv.dnn, 'ENGINE_CLASSIC'):
        return None
    return cv.dnn.ENGINE_AUTO if is_cpu_default(backend_id, target_id) else cv.dnn.ENGINE_CLASSIC
