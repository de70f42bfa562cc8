"""Small helpers shared by the try-on samples: model lookup, backend/target names,
image I/O with clear errors, and the synthetic-model warning.

Every script in this repository reports bad input as one line ``error: ...`` on
stderr and a non-zero exit status (2 for usage and input errors, 1 for runtime
failures); see ``run_main``. Messages go through ``logging`` (one logger per module);
only the command-line entry points install a handler (``setup_logging``), so an
application that imports the modules decides where they go.
"""
import functools
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import warnings

import cv2 as cv
import numpy as np

import openvino_precision

log = logging.getLogger(__name__)

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
MODELS_ENV = 'OPENCV_TRYON_MODELS'

# ONNX metadata key that marks the seeded random stand-ins built by tools/synthetic.py
SYNTHETIC_KEY = 'synthetic'


class UsageError(Exception):
    """Bad command line or bad input file: exit status 2."""


class RuntimeFailure(Exception):
    """The input was fine but the work failed (model, backend, no person): exit status 1."""


def models_dir():
    """Directory searched for model files: $OPENCV_TRYON_MODELS, else models/ beside the scripts."""
    return os.environ.get(MODELS_ENV) or os.path.join(REPO_DIR, 'models')


REGISTRY_FILE = os.path.join(REPO_DIR, 'models', 'models.yml')


def _node_value(node):
    """A cv.FileNode as plain Python: dict, list, int, float or str."""
    if node.isMap():
        return {key: _node_value(node.getNode(key)) for key in node.keys()}
    if node.isSeq():
        return [_node_value(node.at(i)) for i in range(node.size())]
    if node.isInt():
        return int(node.real())
    if node.isReal():
        return node.real()
    return node.string() if node.isString() else None


@functools.lru_cache(maxsize=None)
def model_registry(path=REGISTRY_FILE):
    """models/models.yml as {file name: entry}, in the file's order. Each entry is the YAML mapping
    plus 'id' (its key) and 'name' (its file). Read once; treat the result as read-only."""
    try:
        storage = cv.FileStorage(path, cv.FILE_STORAGE_READ)
    except cv.error:
        storage = None
    if storage is None or not storage.isOpened():
        raise RuntimeFailure('cannot read the model registry %s' % path)
    root = storage.root()
    registry = {}
    for key in root.keys():
        entry = _node_value(root.getNode(key))
        registry[entry['file']] = dict(entry, id=key, name=entry['file'])
    storage.release()
    return registry


def model_input(name, field, default=None):
    """A preprocessing fact of model file `name` from the registry ('width', 'height', 'mean', 'scale', 'rgb')."""
    return model_registry()[name].get('input', {}).get(field, default)


def find_model(name, directory=None, get_with=None, verify=True):
    """Path of model file `name` in `directory` (default models_dir()).

    A missing file is a UsageError naming the command that fetches it. With `verify`, a file that the
    registry (models/models.yml) pins is checked against its published size and sha256."""
    directory = directory or models_dir()
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        get_with = get_with or 'tryon-models %s (python3 models/download_models.py %s in a checkout)' % (name, name)
        raise UsageError('model file %s not found; get it with: %s (or pass its path, or --synthetic)'
                         % (path, get_with))
    if verify:
        verify_published(path)
    return path


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path, entry):
    """None when `path` has the registry entry's size and SHA-256, else the reason it does not."""
    size = os.path.getsize(path)
    if entry.get('size') is not None and size != entry['size']:
        return 'size %d bytes, expected %d' % (size, entry['size'])
    if entry.get('sha256'):
        actual = sha256_of(path)
        if actual != entry['sha256']:
            return 'sha256 %s, expected %s' % (actual, entry['sha256'])
    return None


def stamped_sha256(path):
    """The file's sha256, remembered in a '.NAME.verified' stamp beside it ("size mtime sha256"): hashing
    400 MB takes a second, so a file whose size and mtime match its stamp is not hashed again; a changed
    file is. A read-only directory keeps no stamp and only costs a re-hash next time."""
    stat = os.stat(path)
    stamp = os.path.join(os.path.dirname(path), '.%s.verified' % os.path.basename(path))
    prefix = '%d %d ' % (stat.st_size, stat.st_mtime_ns)
    try:
        with open(stamp) as f:
            recorded = f.read().strip()
        if recorded.startswith(prefix) and len(recorded) == len(prefix) + 64:
            return recorded[len(prefix):]
    except OSError:
        pass
    digest = sha256_of(path)
    try:
        with open(stamp, 'w') as f:
            f.write(prefix + digest + '\n')
    except OSError:
        pass
    return digest


def verify_published(path):
    """Check a file named like a published model against the registry's size and sha256 (stamped_sha256:
    a verified file is not hashed again until it changes). RuntimeFailure names the problem and the fix."""
    entry = model_registry().get(os.path.basename(path))
    if not entry or not entry.get('sha256'):
        return
    size, problem = os.path.getsize(path), None
    if entry.get('size') is not None and size != entry['size']:
        problem = 'size %d bytes, expected %d' % (size, entry['size'])
    else:
        actual = stamped_sha256(path)
        if actual != entry['sha256']:
            problem = 'sha256 %s, expected %s' % (actual, entry['sha256'])
    if problem:
        raise RuntimeFailure('model file %s is not the published %s (%s): truncated or replaced? '
                             'Fetch it again with: tryon-models %s (python3 models/download_models.py %s in a checkout)'
                             % (path, entry['name'], problem, entry['name'], entry['name']))


# ---------------------------------------------------------------------------- protobuf wire format
def protobuf_varint(data, pos):
    """(value, next position) of the varint at data[pos]; ValueError when it is cut short or too long."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError('truncated protobuf varint')
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError('malformed protobuf varint')


def protobuf_fields(data, start=0, end=None):
    """(field number, wire type, value) of each field of the protobuf message data[start:end], read
    without a schema (ONNX models, caffemodels): an int for varints, a (begin, end) span into `data` for
    length-delimited fields (so large blobs are never copied), the raw bytes of fixed-size ones.
    ValueError for a wire type protobuf does not use or a field that runs past the message."""
    pos, end = start, len(data) if end is None else end
    while pos < end:
        key, pos = protobuf_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = protobuf_varint(data, pos)
        elif wire_type == 2:
            length, pos = protobuf_varint(data, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, pos = bytes(data[pos:pos + size]), pos + size
        else:
            raise ValueError('unsupported protobuf wire type %d' % wire_type)
        if pos > end:
            raise ValueError('truncated protobuf message: field %d runs past its end' % field)
        yield field, wire_type, value


# ---------------------------------------------------------------------------- backends and targets
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


# OpenCV 5's classic engine (None on OpenCV 4, which has no engine choice): the one that returns every
# output of the multi-output TFLite graphs and reads every op of the older graphs
CLASSIC_ENGINE = getattr(cv.dnn, 'ENGINE_CLASSIC', None)


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


def load_net(reader, source, engine=None, failure=UsageError, message=None):
    """read_net, with OpenCV's failure to read turned into one line: `failure` (UsageError: exit status 2,
    RuntimeFailure: 1) with `message` (default 'OpenCV cannot load <source>') and OpenCV's last line."""
    try:
        return read_net(reader, source, engine)
    except cv.error as err:
        raise failure('%s: %s' % (message or 'OpenCV cannot load %s' % (source,), error_line(err)))


def error_line(err, empty='unknown error'):
    """One line for a failure: the last line of an OpenCV error's message, else str(err)."""
    if not isinstance(err, cv.error):
        return str(err)
    lines = (err.err or str(err)).strip().splitlines()
    return lines[-1] if lines else empty


def _is_cpu_default(backend_id, target_id):
    return (backend_id in (cv.dnn.DNN_BACKEND_DEFAULT, cv.dnn.DNN_BACKEND_OPENCV)
            and int(target_id) == int(cv.dnn.DNN_TARGET_CPU))


def dnn_engine(backend_id, target_id=cv.dnn.DNN_TARGET_CPU):
    """readNet* engine argument for OpenCV 5: the new engine is CPU-only, so any backend other than
    OpenCV/default, and any target other than the CPU, needs the classic one. None on OpenCV 4
    (no engine argument). A net must be read again when this changes for a new backend/target pair."""
    if not hasattr(cv.dnn, 'ENGINE_CLASSIC'):
        return None
    return cv.dnn.ENGINE_AUTO if _is_cpu_default(backend_id, target_id) else cv.dnn.ENGINE_CLASSIC


# OpenCV 5.1 and later: one graph engine (ENGINE_OPENCV; ENGINE_CLASSIC is gone), which takes no target
NEW_ENGINE_ONLY = hasattr(cv.dnn, 'ENGINE_AUTO') and not hasattr(cv.dnn, 'ENGINE_CLASSIC')


def set_backend_target(net, backend_id, target_id, engine):
    """net.setPreferableBackend/Target, only where it changes something. Skipped for the CPU default pair on
    a net of OpenCV 5's new engine (AUTO or NEW on 5.0; every net from 5.1 on), which runs on the CPU
    anyway and logs a warning ("Targets are not supported by the new graph engine") on every
    setPreferableTarget call. Nets of OpenCV 4 or of 5.0's classic engine always get the pair, so a switch
    back to the CPU is honoured; a non-CPU pair is always set, and what OpenCV says of it is shown."""
    new_engines = [getattr(cv.dnn, name) for name in ('ENGINE_AUTO', 'ENGINE_NEW') if hasattr(cv.dnn, name)]
    on_new_engine = NEW_ENGINE_ONLY or (engine is not None and engine in new_engines)
    if on_new_engine and _is_cpu_default(backend_id, target_id):
        return
    if backend_id == cv.dnn.DNN_BACKEND_INFERENCE_ENGINE:
        openvino_precision.request()  # f32, unless bf16 was asked for first (backend_target)
    net.setPreferableBackend(backend_id)
    net.setPreferableTarget(target_id)


# ---------------------------------------------------------------------------- synthetic models
def run_tool(script, args, failure):
    """Run tools/<script> as a program of its own (the runtime imports no tooling; --synthetic builds this way):
    its stdout, or one RuntimeFailure line, `failure` and the last line the tool wrote on stderr."""
    try:
        result = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'tools', script)] + list(args),
                                capture_output=True, text=True)
    except OSError as err:
        raise RuntimeFailure('%s: %s' % (failure, err))
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise RuntimeFailure('%s: %s' % (failure, lines[-1] if lines else 'exit status %d' % result.returncode))
    return result.stdout


class SyntheticModelWarning(UserWarning):
    """A model with seeded random weights (tools/synthetic.py) was loaded: its output means nothing.
    Filter it like any warning: warnings.filterwarnings('ignore', category=common.SyntheticModelWarning)."""


def warn_synthetic(path, output_kind):
    """Warn (Python warnings, so applications can filter it) that `path` is a synthetic stand-in.
    The command-line scripts collect these and print one line naming every such file."""
    warnings.warn('%s holds SYNTHETIC seeded random weights; its output is not a %s'
                  % (os.path.basename(path), output_kind), SyntheticModelWarning, stacklevel=3)


# ---------------------------------------------------------------------------- image I/O
def composite_on_white(image_bgra):
    """A BGRA uint8 image laid over white, as BGR: a cut-out garment on white, as VITON's garments are
    (whatever the transparent pixels hold: black, white or leftovers of the old background)."""
    alpha = image_bgra[..., 3:4].astype(np.uint16)
    colour = image_bgra[..., :3].astype(np.uint16)
    return ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def read_image(path, what='image'):
    """Read a photo as 3-channel BGR uint8.

    Greyscale is expanded, 16-bit scaled to 8-bit, and an image with alpha is laid over white
    (composite_on_white), so a cut-out garment looks as CP-VTON's training garments do. Raises UsageError for a
    missing, empty or undecodable file. Reads through np.fromfile so non-ASCII paths work too.
    """
    if not os.path.exists(path):
        raise UsageError('%s file not found: %s' % (what, path))
    if os.path.isdir(path):
        raise UsageError('%s path is a directory: %s' % (what, path))
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise UsageError('cannot read %s %s: %s' % (what, path, err.strerror or err))
    if data.size == 0:
        raise UsageError('%s file is empty: %s' % (what, path))
    image = cv.imdecode(data, cv.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise UsageError('%s file is not a readable image: %s' % (what, path))
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise UsageError('%s has unsupported pixel type %s: %s' % (what, image.dtype, path))
    if image.ndim == 2:
        image = cv.cvtColor(image, cv.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = composite_on_white(image)
    elif image.shape[2] == 1:
        image = cv.cvtColor(image, cv.COLOR_GRAY2BGR)
    return image


def check_image(image, what='the input'):
    """A photo given to a network as a BGR uint8 (H, W, 3) array: greyscale is expanded and BGRA's alpha
    dropped (as cv.imread gives them); anything else is a UsageError naming `what`."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise UsageError('%s needs a BGR uint8 image array, got %s'
                         % (what, getattr(image, 'dtype', type(image).__name__)))
    if image.size == 0 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise UsageError('%s needs an H x W x 3 BGR image, got shape %s' % (what, image.shape,))
    if image.ndim == 2:
        return cv.cvtColor(image, cv.COLOR_GRAY2BGR)
    return cv.cvtColor(image, cv.COLOR_BGRA2BGR) if image.shape[2] == 4 else image


def check_output_path(path):
    """UsageError unless `path` is in an existing directory and has an image extension OpenCV writes.
    Call it before the work starts, so that a typo costs nothing."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError('output directory does not exist: %s' % directory)
    if os.path.isdir(path):
        raise UsageError('output path is a directory: %s' % path)
    if not cv.haveImageWriter(path):
        raise UsageError('cannot write images of type %r: %s (use .png, .jpg, ...)'
                         % (os.path.splitext(path)[1] or 'no extension', path))


def write_image(path, image):
    """Write atomically: encode to a temporary file beside `path`, then rename, so that a failure
    never leaves a half-written file under the real name."""
    check_output_path(path)
    ext = os.path.splitext(path)[1]
    ok, encoded = cv.imencode(ext, image)
    if not ok:
        raise RuntimeFailure('cannot encode the image as %s: %s' % (ext, path))
    return write_bytes(path, encoded.tobytes())


def write_bytes(path, data):
    """Write `data` atomically: to a temporary file beside `path`, then renamed, so that a failure never
    leaves a half-written file under the real name. The directory must exist (UsageError)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError('output directory does not exist: %s' % directory)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.part', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


# ---------------------------------------------------------------------------- CLI entry
class _LevelPrefixFormatter(logging.Formatter):
    def format(self, record):
        return '%s: %s' % (record.levelname.lower(), record.getMessage())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a message comes (a test or an embedding app may swap it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def add_verbosity_arguments(parser):
    """-q/--quiet and -v/--verbose, the same in every script."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('-q', '--quiet', action='store_true', help='print warnings and errors only')
    group.add_argument('-v', '--verbose', action='store_true', help='print debugging details too')


def setup_logging(quiet=False, verbose=False):
    """The command-line scripts' handler: 'level: message' lines on stderr; info by default."""
    handler = _StderrHandler()
    handler.setFormatter(_LevelPrefixFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, '_tryon_cli', False)]:
        root.removeHandler(old)
    handler._tryon_cli = True
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


def parse_cli(parser, argv):
    """parse_args, then the logging set-up of -q/-v. Returns (args, None), or (None, status) when argparse
    exits (--help, a bad option: it printed the message itself)."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return None, exit_.code
    setup_logging(getattr(args, 'quiet', False), getattr(args, 'verbose', False))
    return args, None


def run_cli(build_parser, run, argv=None):
    """An entry script's main(argv): run(args), or argparse's exit status after --help or a bad option."""
    args, status = parse_cli(build_parser(), argv)
    return status if args is None else run(args)


class SyntheticWarnings:
    """Context of a command-line run: the SyntheticModelWarning of each loaded model is collected, and
    one warning naming every synthetic file is logged at the end of the block that loads them."""

    def __init__(self, output_kind='try-on'):
        self.output_kind = output_kind

    def __enter__(self):
        self._catcher = warnings.catch_warnings(record=True)
        self.caught = self._catcher.__enter__()
        warnings.simplefilter('always', SyntheticModelWarning)
        return self

    def __exit__(self, *exc):
        self._catcher.__exit__(*exc)
        files = []
        for item in self.caught:
            if issubclass(item.category, SyntheticModelWarning):
                name = str(item.message).split(' ', 1)[0]
                if name not in files:
                    files.append(name)
            else:
                warnings.showwarning(item.message, item.category, item.filename, item.lineno)
        if files:
            log.warning('%s %s SYNTHETIC seeded random weights: the output is NOT a %s',
                        ', '.join(files), 'holds' if len(files) == 1 else 'hold', self.output_kind)
        return False


def run_main(main, argv=None):
    """Run main(argv) and turn known failures into one line on stderr and an exit status."""
    try:
        status = main(argv)
    except UsageError as err:
        print('error: %s' % err, file=sys.stderr)
        return 2
    except RuntimeFailure as err:
        print('error: %s' % err, file=sys.stderr)
        return 1
    except cv.error as err:
        print('error: OpenCV: %s' % error_line(err, 'unknown failure'), file=sys.stderr)
        return 1
    except MemoryError:
        print('error: out of memory', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('error: interrupted', file=sys.stderr)
        return 130
    return status or 0
