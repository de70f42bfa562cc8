"""Images in and out: a photo read as BGR uint8 with one-line errors (alpha laid over white), an array checked
before a network sees it, and atomic writes (a temporary file renamed), so no half file sits under a name."""
import os
import tempfile

import cv2 as cv
import numpy as np

from errors import RuntimeFailure, UsageError


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


def make_directory(path):
    """os.makedirs(path, exist_ok=True), a failure as a one-line UsageError."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError('cannot create output directory %s: %s' % (path, err.strerror or err))


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
