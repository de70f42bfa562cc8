"""A warm try-on service for a server: the networks loaded once per worker, uploads checked before they are
decoded, each person analysed once (an LRU of analyses keyed by the upload's SHA-256), a bounded queue and
one inference at a time per worker. No web framework here: web_demo.py puts HTTP and a page on top.

    service = TryOnService(lambda: load_tryon(...), workers=1, queue_size=8)
    person = service.person(person_bytes)                   # checked; analysed on first use
    png = service.submit(person, service.garment(garment_bytes)).result()   # the CLI's PNG bytes
"""
import collections
import concurrent.futures
import hashlib
import io
import logging
import math
import os
import queue
import threading
import time
import warnings

import cv2 as cv
import numpy as np

import image_io
from cp_vton import crop_to_ratio
from dataset_mode import check_size
from errors import RuntimeFailure, UsageError, error_line
from garment_check import check_garment

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024    # one uploaded image
DEFAULT_MAX_PIXELS = 25_000_000         # a 6000x4000 camera photo is 24 MP
DEFAULT_QUEUE = 8
DEFAULT_CACHE = 8
# the image types a photo may come in, by their first bytes (never by name or the client's content type)
SIGNATURES = (('jpeg', (b'\xff\xd8\xff',)), ('png', (b'\x89PNG\r\n\x1a\n',)), ('bmp', (b'BM',)),
              ('webp', (b'RIFF',)))
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


class BadUpload(UsageError):
    """An upload the service refuses; `status` is the HTTP status that says why (400, 404, 413, 415)."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class Busy(RuntimeFailure):
    """The queue is full; `retry_after` is the seconds after which a try is likely to be taken."""

    def __init__(self, retry_after):
        super().__init__('the server is busy: %d try-ons are waiting; try again in %d s'
                         % (retry_after[1], retry_after[0]))
        self.retry_after = retry_after[0]


def image_kind(data):
    """'jpeg', 'png', 'bmp' or 'webp' from the first bytes of `data`, else None."""
    head = bytes(data[:16])
    for kind, magics in SIGNATURES:
        if any(head.startswith(magic) for magic in magics):
            if kind == 'webp' and head[8:12] != b'WEBP':
                return None
            return kind
    return None


def image_size(data, what, max_pixels):
    """(width, height) from the image's header, read by Pillow without decoding the pixels. A file whose
    header claims more than `max_pixels` is refused here, before anything decodes it (a decompression
    bomb: a few kB of PNG can claim 400 MP). Pillow's own limit (Image.MAX_IMAGE_PIXELS) is set by
    set_decoder_limits; its warning above that limit is an error here."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                kind = (image.format or '').lower()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadUpload('%s has more pixels than the %.1f MP this server takes (its header says so: it was not '
                        'decoded)' % (what, max_pixels / 1e6), 413)
    except Exception as err:  # Pillow raises many types for a broken header; none is a server error
        raise BadUpload('%s is not a readable image: %s' % (what, str(err).splitlines()[0] if str(err) else
                                                            type(err).__name__), 400)
    if kind not in ('jpeg', 'png', 'bmp', 'webp'):
        raise BadUpload('%s is a %s image; JPEG, PNG, WebP or BMP are taken' % (what, kind or 'unknown'), 415)
    if width * height > max_pixels:
        raise BadUpload('%s is %dx%d, %.1f MP: more than the %.1f MP this server takes'
                        % (what, width, height, width * height / 1e6, max_pixels / 1e6), 413)
    return width, height


def set_decoder_limits(max_pixels):
    """Pillow's decompression-bomb limit to `max_pixels` (it raises at twice that; image_size turns its
    warning at once that into a refusal). OpenCV's own limit, OPENCV_IO_MAX_IMAGE_PIXELS, is read when
    cv2 loads: web_demo.py sets it before importing cv2."""
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = max_pixels


def decode_image(data, what='image'):
    """An uploaded image's bytes as 3-channel BGR uint8, converted as image_io.read_image converts a file
    (grey expanded, 16-bit scaled to 8-bit, alpha laid over white): an upload gives the CLI's pixels.
    tests/test_web.py checks the two against each other. BadUpload when OpenCV cannot decode it."""
    try:
        image = cv.imdecode(np.frombuffer(data, np.uint8), cv.IMREAD_UNCHANGED)
    except cv.error as err:
        raise BadUpload('%s is not a readable image: %s' % (what, error_line(err)))
    if image is None or image.size == 0:
        raise BadUpload('%s is not a readable image (OpenCV cannot decode it)' % what)
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise BadUpload('%s has unsupported pixel type %s' % (what, image.dtype), 415)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv.cvtColor(image, cv.COLOR_GRAY2BGR)
    return image_io.composite_on_white(image) if image.shape[2] == 4 else image


def check_upload(data, what, max_bytes=DEFAULT_MAX_BYTES, max_pixels=DEFAULT_MAX_PIXELS):
    """Refuse an upload that is empty, too large, not an image of a taken type, or has too many pixels,
    from its bytes and header only (nothing is decoded). Returns its (width, height)."""
    if not data:
        raise BadUpload('%s is empty' % what)
    if len(data) > max_bytes:
        raise BadUpload('%s is %.1f MB: more than the %.1f MB this server takes'
                        % (what, len(data) / 1e6, max_bytes / 1e6), 413)
    if image_kind(data) is None:
        raise BadUpload('%s is not an image (JPEG, PNG, WebP or BMP are taken)' % what, 415)
    return image_size(data, what, max_pixels)


def list_garments(directory):
    """{id: path} of the images in `directory` (not its subfolders): the id is the file name. A file whose
    real path leaves the folder (a symbolic link out) is left out, so an id never reaches outside it."""
    if not directory or not os.path.isdir(directory):
        return {}
    root = os.path.realpath(directory)
    found = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if (name.startswith('.') or not name.lower().endswith(IMAGE_EXTENSIONS) or not os.path.isfile(path)
                or os.path.dirname(os.path.realpath(path)) != root):
            continue
        found[name] = path
    return found


class LRU:
    """A small thread-safe least-recently-used map (person analyses, decoded garments)."""

    def __init__(self, size):
        self.size, self.items, self.lock = size, collections.OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key not in self.items:
                return None
            self.items.move_to_end(key)
            return self.items[key]

    def put(self, key, value):
        if self.size <= 0:
            return
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def __len__(self):
        return len(self.items)


class Person:
    """A checked person upload: its SHA-256 (the cache key) and its bytes, decoded only when not cached."""

    def __init__(self, data, digest):
        self.data, self.digest = data, digest


class TryOnService:
    """`workers` threads, each with its own VirtualTryOn from make_tryon() (a cv.dnn Net is not shared between
    threads; cv.dnn releases the GIL in forward, so workers overlap), fed by one queue of at most
    `queue_size` waiting try-ons: submit() raises Busy beyond that. The person analyses (pose, parsing,
    agnostic) are shared by the workers in an LRU of `cache_size` entries keyed by the upload's SHA-256."""

    def __init__(self, make_tryon, workers=1, queue_size=DEFAULT_QUEUE, cache_size=DEFAULT_CACHE,
                 max_bytes=DEFAULT_MAX_BYTES, max_pixels=DEFAULT_MAX_PIXELS, garments=None):
        self.max_bytes, self.max_pixels = max_bytes, max_pixels
        self.garments = dict(garments or {})
        self.analyses, self.decoded_garments = LRU(cache_size), LRU(16)
        self.jobs = queue.Queue(max(1, queue_size))
        self.workers = max(1, workers)
        self.tryons = [make_tryon() for _ in range(self.workers)]   # every network loaded before serving
        self.seconds = 0.5     # a running mean of a try-on's time, for Retry-After
        self.counts = collections.Counter()
        self.threads = [threading.Thread(target=self._work, args=(tryon,), name='tryon-%d' % number, daemon=True)
                        for number, tryon in enumerate(self.tryons)]
        for thread in self.threads:
            thread.start()

    # ---------------------------------------------------------------- the inputs, checked before queueing
    def person(self, data, what='person photo'):
        check_upload(data, what, self.max_bytes, self.max_pixels)
        return Person(bytes(data), hashlib.sha256(data).hexdigest())

    def garment(self, data, what='garment photo'):
        """A garment upload decoded (BGR), checked as the CLI checks -c (size; a garment stands out from the
        background, else RuntimeFailure); decoded garments are kept (LRU)."""
        check_upload(data, what, self.max_bytes, self.max_pixels)
        digest = hashlib.sha256(data).hexdigest()
        image = self.decoded_garments.get(digest)
        if image is None:
            image = decode_image(data, what)
            check_size(image, what, 'it')
            check_garment(image, what)   # as the CLI checks -c: a plain picture is "no garment found"
            self.decoded_garments.put(digest, image)
        return image

    def garment_path(self, garment_id):
        """The file of a garment id: a name listed from the garments folder at start, nothing else."""
        if not isinstance(garment_id, str) or not garment_id or '/' in garment_id or '\\' in garment_id \
                or garment_id in ('.', '..') or '\0' in garment_id:
            raise BadUpload('garment id must be the file name of a garment in the garments folder, got %r'
                            % (garment_id,))
        if garment_id not in self.garments:
            raise BadUpload('no garment %r in the garments folder (%d garments)' % (garment_id, len(self.garments)),
                            404)
        return self.garments[garment_id]

    def garment_by_id(self, garment_id):
        with open(self.garment_path(garment_id), 'rb') as f:
            return self.garment(f.read(), 'garment %s' % garment_id)

    # ---------------------------------------------------------------- the queue
    def submit(self, person, cloth, full_resolution=True):
        """Queue one try-on; a Future of the result's PNG bytes (cv.imencode('.png'), as the CLI writes it), whose
        `seconds` is then the worker's time for it. Busy when `queue_size` try-ons are already waiting."""
        future = concurrent.futures.Future()
        try:
            self.jobs.put_nowait((future, person, cloth, full_resolution))
        except queue.Full:
            self.counts['busy'] += 1
            waiting = self.jobs.qsize()
            raise Busy((max(1, math.ceil((waiting + 1) * self.seconds / self.workers)), waiting))
        return future

    def queued(self):
        return self.jobs.qsize()

    def _work(self, tryon):
        while True:
            future, person, cloth, full_resolution = self.jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            start = time.monotonic()
            try:
                png = self._try_on(tryon, person, cloth, full_resolution)
                future.seconds = time.monotonic() - start   # the worker's time, without the wait in the queue
                future.set_result(png)
                self.counts['done'] += 1
            except BaseException as err:  # handed to the waiting request, which turns it into one line
                self.counts['failed'] += 1
                future.set_exception(err)
            self.seconds = 0.8 * self.seconds + 0.2 * (time.monotonic() - start)

    def analysis(self, tryon, person):
        """The PersonAnalysis of a person upload: from the cache, or decoded, checked as the CLI checks -i,
        and analysed (then cached). RuntimeFailure when no person is found (not cached: it is cheap to
        refuse again)."""
        found = self.analyses.get(person.digest)
        if found is None:
            photo = decode_image(person.data, 'person photo')
            check_size(crop_to_ratio(photo)[0], 'person photo', 'its 256:192 centre crop')
            found = tryon.analyse(photo)
            self.analyses.put(person.digest, found)
            self.counts['analysed'] += 1
        return found

    def _try_on(self, tryon, person, cloth, full_resolution):
        result = tryon.infer(self.analysis(tryon, person), cloth, full_resolution=full_resolution)
        ok, encoded = cv.imencode('.png', result)
        if not ok:
            raise RuntimeFailure('cannot encode the result as PNG')
        return encoded.tobytes()
