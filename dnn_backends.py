"""Backend and target names of the command lines, checked against the installed OpenCV, and set on a net.

With the openvino backend, the 'cpu' target asks OpenVINO's CPU plugin for f32 and 'cpu_bf16' for bf16
(openvino_precision)."""
import logging

import cv2 as cv

import openvino_precision
from dnn_engines import NEW_ENGINE_ONLY, is_cpu_default
from errors import UsageError

log = logging.getLogger(__name__)

BACKENDS = {
    'default': cv.dnn.DNN_BACKEND_DEFAULT,
    'opencv': cv.dnn.DNN_BACKEND_OPENCV,
    'cuda': cv.dnn.DNN_BACKEND_CUDA,
    'openvino': cv.dnn.DNN_BACKEND_INFERENCE_ENGINE,
}
if hasattr(cv.dnn, 'DNN_BACKEND_VKCOM'):
    BACKENDS['vkcom'] = cv.dnn.DNN_BACKEND_VKCOM

TARGETS = {name: getattr(cv.dnn, attr) for name, attr in (
    ('cpu', 'DNN_TARGET_CPU'), ('cpu_fp16', 'DNN_TARGET_CPU_FP16'),
    ('opencl', 'DNN_TARGET_OPENCL'), ('opencl_fp16', 'DNN_TARGET_OPENCL_FP16'),
    ('cuda', 'DNN_TARGET_CUDA'), ('cuda_fp16', 'DNN_TARGET_CUDA_FP16'),
    ('npu', 'DNN_TARGET_NPU'), ('vulkan', 'DNN_TARGET_VULKAN'), ('myriad', 'DNN_TARGET_MYRIAD'),
) if hasattr(cv.dnn, attr)}

# targets that are a precision of OpenVINO's CPU plugin (openvino_precision): OpenCV's DNN_TARGET_CPU, the
# plugin asked for that precision; bf16 only where named, f32 otherwise, whatever the CPU's bf16 units
OPENVINO_CPU_TARGETS = {'cpu': openvino_precision.F32, 'cpu_bf16': openvino_precision.BF16}

# the target a backend runs on when only the backend is named
NATURAL_TARGETS = {'default': 'cpu', 'opencv': 'cpu', 'cuda': 'cuda', 'openvino': 'cpu', 'vkcom': 'vulkan'}


def available_targets(backend_id):
    """Names of the targets the installed OpenCV offers for a backend id (none when it is not built in)."""
    try:
        offered = [int(t) for t in cv.dnn.getAvailableTargets(backend_id)]
    except cv.error:
        offered = []
    return [name for name, t in TARGETS.items() if int(t) in offered]


def available_pairs():
    """'backend/target' names of every pair the installed OpenCV offers."""
    return ['%s/%s' % (backend, target) for backend, backend_id in BACKENDS.items()
            for target in available_targets(backend_id)]


def backend_target(backend='default', target=None):
    """Map names to OpenCV ids and check that the installed OpenCV offers the pair. Without a
    target, the backend's natural one (cuda -> cuda, openvino -> cpu, ...). With the openvino backend,
    'cpu' asks OpenVINO's CPU plugin for f32 and 'cpu_bf16' for bf16 (openvino_precision), before OpenVINO
    starts, and logs one warning where the precision in effect differs.

    Raises UsageError instead of letting OpenCV fall back to the CPU silently.
    """
    if backend not in BACKENDS:
        raise UsageError('unknown backend %r; choose from %s' % (backend, ', '.join(BACKENDS)))
    target = target or NATURAL_TARGETS.get(backend, 'cpu')
    precision = None
    if backend == 'openvino' and target in OPENVINO_CPU_TARGETS:
        precision = OPENVINO_CPU_TARGETS[target]
        openvino_precision.request(precision)
        target = 'cpu'
    elif target in OPENVINO_CPU_TARGETS and target not in TARGETS:
        raise UsageError('target %s is a precision of OpenVINO\'s CPU plugin: use it with --backend openvino'
                         % target)
    if target not in TARGETS:
        raise UsageError('unknown target %r; choose from %s' % (target, ', '.join(TARGETS)))
    backend_id, target_id = BACKENDS[backend], TARGETS[target]
    offered = available_targets(backend_id)
    if target not in offered:
        if offered:
            hint = 'targets for this backend: %s; add --target %s' % (', '.join(offered), offered[0])
        else:
            hint = 'this backend is not built in; available: %s' % ', '.join(
                '--backend %s --target %s' % tuple(pair.split('/')) for pair in available_pairs()[:4])
        raise UsageError('backend %s with target %s is not available in this OpenCV %s build (%s)'
                         % (backend, target, cv.__version__, hint))
    if precision is not None:
        line = openvino_precision.mismatch(precision)
        if line:
            log.warning(line)
    return backend_id, target_id


def add_backend_arguments(parser):
    """--backend and --target, the same in every script."""
    parser.add_argument('--backend', default='default', choices=list(BACKENDS),
                        help="dnn backend (default: 'default', OpenCV's own choice on the CPU)")
    parser.add_argument('--target', default=None, choices=list(TARGETS) + ['cpu_bf16'],
                        help="dnn target device (default: the backend's own: cpu, cuda for cuda, "
                             "vulkan for vkcom); with --backend openvino, cpu computes in f32 on every "
                             "CPU and cpu_bf16 in bf16 where the CPU has bf16 units")


def set_backend_target(net, backend_id, target_id, engine):
    """net.setPreferableBackend/Target, only where it changes something. Skipped for the CPU default pair on
    a net of OpenCV 5's new engine (AUTO or NEW on 5.0; every net from 5.1 on), which runs on the CPU
    anyway and logs a warning ("Targets are not supported by the new graph engine") on every
    setPreferableTarget call. Nets of OpenCV 4 or of 5.0's classic engine always get the pair, so a switch
    back to the CPU is honoured; a non-CPU pair is always set, and what OpenCV says of it is shown."""
    new_engines = [getattr(cv.dnn, name) for name in ('ENGINE_AUTO', 'ENGINE_NEW') if hasattr(cv.dnn, name)]
    on_new_engine = NEW_ENGINE_ONLY or (engine is not None and engine in new_engines)
    if on_new_engine and is_cpu_default(backend_id, target_id):
        return
    if backend_id == cv.dnn.DNN_BACKEND_INFERENCE_ENGINE:
        openvino_precision.request()  # f32, unless bf16 was asked for first (backend_target)
    net.setPreferableBackend(backend_id)
    net.setPreferableTarget(target_id)
