"""The model registry (models/models.yml) and the lookup of model files: where they are, what a model
expects as input, and whether a file is the published one (size and SHA-256, remembered in a stamp)."""
import functools
import hashlib
import os

import cv2 as cv

from errors import RuntimeFailure, UsageError

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
MODELS_ENV = 'OPENCV_TRYON_MODELS'
REGISTRY_FILE = os.path.join(REPO_DIR, 'models', 'models.yml')


def models_dir():
    """Directory searched for model files: $OPENCV_TRYON_MODELS, else models/ beside the scripts."""
    return os.environ.get(MODELS_ENV) or os.path.join(REPO_DIR, 'models')


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


def verify_file(path, entry, sha256=sha256_of):
    """None when `path` has the registry entry's size and SHA-256, else the reason it does not.
    sha256(path) computes the digest (stamped_sha256 to reuse a stamp)."""
    size = os.path.getsize(path)
    if entry.get('size') is not None and size != entry['size']:
        return 'size %d bytes, expected %d' % (size, entry['size'])
    if entry.get('sha256'):
        actual = sha256(path)
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
    problem = verify_file(path, entry, stamped_sha256)
    if problem:
        raise RuntimeFailure('model file %s is not the published %s (%s): truncated or replaced? '
                             'Fetch it again with: tryon-models %s (python3 models/download_models.py %s in a checkout)'
                             % (path, entry['name'], problem, entry['name'], entry['name']))
