"""The precision OpenVINO's CPU plugin computes in under cv.dnn: f32 unless bf16 is asked for by name.

On CPUs with bfloat16 units (AVX512-BF16 or AMX: Intel Sapphire Rapids and later, AMD Zen 4 and later) the
plugin's default INFERENCE_PRECISION_HINT is bf16, and OpenCV's dnn creates its own ov::Core, sets only the
thread count on it and passes no configuration when it compiles a net: `--backend openvino --target cpu`
inherits bf16 there (BlazePose keypoints ~25 px off). No OpenCV parameter reaches that hint. What reaches the
plugin from outside is OpenVINO's CPU ISA cap, read once per process when OpenVINO first queries the CPU:
capped below AVX512_CORE_BF16, the plugin sees no bf16 units and defaults to f32, with its AVX-512 f32
kernels unchanged (AMX only serves bf16 and int8). request() sets that cap before OpenVINO starts; some
OpenVINO builds honour OV_CPU_MAX_ISA only with debug capabilities, so measured_error() checks the
precision in effect with a one-convolution probe through cv.dnn, and mismatch() words what a user must know.
"""
import functools
import os

import cv2 as cv
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from dnn_engines import CLASSIC_ENGINE, read_net

F32, BF16 = 'f32', 'bf16'

# OpenVINO's own cap (x86 kernels) and oneDNN's; some OpenVINO releases stop at the first ISA query when
# they differ, so both are set, to the same value: the highest ISA below AVX512_CORE_BF16
ISA_CAP_VARIABLES = ('OV_CPU_MAX_ISA', 'ONEDNN_MAX_CPU_ISA')
F32_ISA_CAP = 'AVX512_CORE_VNNI'

# /proc/cpuinfo flags of the units that make the plugin default to bf16
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')

# a probe input needs 12 significant bits: bf16 keeps 8 (error ~3e-3 here), f16 11, f32 24 (~1e-7)
F32_PROBE_TOLERANCE = 1e-5

_requested = []   # the precision asked for first in this process: the one that counts


def isa_cap_environment(environ, precision):
    """The variables to set in `environ` so that OpenVINO computes in `precision` on the CPU: the ISA cap
    for f32, nothing for bf16 (the plugin's own default where the CPU has bf16 units), and nothing where
    the user has set either variable already (theirs wins)."""
    if precision not in (F32, BF16):
        raise ValueError('precision must be %r or %r, not %r' % (F32, BF16, precision))
    if precision == BF16 or any(name in environ for name in ISA_CAP_VARIABLES):
        return {}
    return {name: F32_ISA_CAP for name in ISA_CAP_VARIABLES}


def request(precision=F32):
    """Ask OpenVINO's CPU plugin for `precision` in this process. Takes effect only before OpenVINO's
    first CPU query (any cv.dnn call on the OpenVINO backend, getAvailableTargets included), and only the
    first request counts. Returns the precision requested first."""
    if not _requested:
        os.environ.update(isa_cap_environment(os.environ, precision))
        _requested.append(precision)
    return _requested[0]


def cpu_has_bf16(cpuinfo_text=None):
    """True where the CPU has bf16 units (Linux's /proc/cpuinfo flags), False where it has none, None where
    this cannot be read (another OS)."""
    if cpuinfo_text is None:
        try:
            with open('/proc/cpuinfo') as f:
                cpuinfo_text = f.read()
        except OSError:
            return None
    for line in cpuinfo_text.splitlines():
        if line.startswith('flags'):
            return any(flag in line.split() for flag in BF16_CPU_FLAGS)
    return None


@functools.lru_cache(maxsize=None)
def _probe():
    """A 1x1 convolution (ONNX bytes), its input, and its output computed in float64 by NumPy."""
    rng = np.random.default_rng(0)
    weights = (rng.standard_normal((8, 8, 1, 1)) / 8).astype(np.float32)
    probe_input = (1 + rng.integers(1, 64, (1, 8, 4, 4)) / 4096).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('Conv', ['x', 'w'], ['y'])], 'precision_probe',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, list(probe_input.shape))],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, list(probe_input.shape))],
        [numpy_helper.from_array(weights, 'w')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)])
    expected = np.einsum('oi,nihw->nohw', weights[:, :, 0, 0].astype(np.float64), probe_input)
    return model.SerializeToString(), probe_input, expected


@functools.lru_cache(maxsize=None)
def measured_error():
    """Max |difference| of the probe on cv.dnn's OpenVINO backend, CPU target, from float64: ~1e-7 where
    the plugin computes in f32, ~3e-3 in bf16. Runs the probe once per process."""
    model, probe_input, expected = _probe()
    # OpenCV 5.0: OpenVINO needs the classic engine (read_net reads the buffer from a file for it)
    net = read_net(cv.dnn.readNetFromONNX, np.frombuffer(model, np.uint8), CLASSIC_ENGINE)
    net.setPreferableBackend(cv.dnn.DNN_BACKEND_INFERENCE_ENGINE)
    net.setPreferableTarget(cv.dnn.DNN_TARGET_CPU)
    net.setInput(probe_input)
    return float(np.abs(net.forward().astype(np.float64) - expected).max())


def in_effect():
    """F32 or BF16: the precision the probe shows (anything coarser than f32 counts as BF16, the only
    reduced precision the x86 plugin picks by itself)."""
    return F32 if measured_error() <= F32_PROBE_TOLERANCE else BF16


def mismatch(precision):
    """None when OpenVINO's CPU plugin computes in `precision` here, else the one line a user must read."""
    effect = in_effect()
    if effect == precision:
        return None
    if precision == F32:
        return ('OpenVINO computes in bf16 on this CPU (probe error %.1e) and this OpenVINO build ignored the '
                'request for f32 (%s=%s, or OpenVINO was started before it): results are NOT fp32-level; '
                'see docs/openvino.md' % (measured_error(), ISA_CAP_VARIABLES[0],
                                          os.environ.get(ISA_CAP_VARIABLES[0], 'unset')))
    if cpu_has_bf16() is False:
        return 'target cpu_bf16: this CPU has no bf16 units, OpenVINO computes in f32'
    return ('target cpu_bf16: OpenVINO computes in f32 here (f32 was fixed earlier in this process, or %s is '
            'set)' % ' or '.join(ISA_CAP_VARIABLES))
