#!/usr/bin/env python3
"""Human parsing with LIP JPPNet through OpenCV's dnn module: a 20-class LIP label map of a person.

Model: `lip_jppnet_384.pb`, the TensorFlow graph that OpenCV's samples/dnn/human_parsing.py uses
(converted from https://github.com/Engineering-Course/LIP_JPPNet, evaluate_parsing_JPPNet-s2.py).
How the published graph works, and what this script does about it:

* Input: a batch of two, the image and its horizontal mirror, BGR, minus the LIP mean
  (104.00698793, 116.66876762, 122.67891434), scale 1. Inside, the graph resizes the batch to
  exactly 384x384 (LIP's INPUT_SIZE, aspect ratio not kept, plus 0.75x and 1.25x copies), so the
  network never sees another size. We therefore resize the photo to 384x384 ourselves before the
  blob: the in-graph resize becomes an identity and a 12 MP photo costs a 384x384 forward pass,
  not a 12 MP blob. Shrinking uses INTER_AREA (no aliasing), enlarging INTER_LINEAR.
* Output: 20 class scores per batch item at a fixed 384x384 (the conversion hard-coded
  INPUT_SIZE into the final resizes), whatever the input size.
* Merge (as LIP's evaluation): the mirrored item is flipped back with its left/right channels
  swapped (arms 14/15, legs 16/17, shoes 18/19), the two are averaged, the scores are resized
  bilinearly to the photo's size and the argmax is the label.

Labels: 0 Background, 1 Hat, 2 Hair, 3 Glove, 4 Sunglasses, 5 UpperClothes, 6 Dress, 7 Coat,
8 Socks, 9 Pants, 10 Jumpsuits, 11 Scarf, 12 Skirt, 13 Face, 14 Left-arm, 15 Right-arm,
16 Left-leg, 17 Right-leg, 18 Left-shoe, 19 Right-shoe.

    python3 human_parsing.py -i person.jpg [-m lip_jppnet_384.pb] [-o parsing.png]
                             [--labels-out labels.png] [--backend NAME] [--target NAME] [--synthetic]
"""
import argparse
import concurrent.futures
import functools
import io
import logging
import os
import sys

import cv2 as cv
import numpy as np

import common

log = logging.getLogger(__name__)

MODEL_NAME = 'lip_jppnet_384.pb'
# OpenCV 5.1 dropped the TensorFlow importer: JPPNet's frozen graph reads on OpenCV 4.x and 5.0 only
TENSORFLOW_IMPORTER = hasattr(cv.dnn, 'readNetFromTensorflow')
N_CLASSES = 20
LABEL_NAMES = ('Background', 'Hat', 'Hair', 'Glove', 'Sunglasses', 'UpperClothes', 'Dress', 'Coat',
               'Socks', 'Pants', 'Jumpsuits', 'Scarf', 'Skirt', 'Face', 'Left-arm', 'Right-arm',
               'Left-leg', 'Right-leg', 'Left-shoe', 'Right-shoe')
# channel order of a mirrored image's scores seen unmirrored: left and right body parts trade places
MIRROR_CHANNELS = np.array(list(range(14)) + [15, 14, 17, 16, 19, 18])

COLORMAP_NAME = 'human_colormap.mat'
# LIP's human_colormap.mat holds k/256 fractions; MATLAB, which wrote the VITON/CP-VTON palette PNGs,
# turns them into bytes with round(v * 255), hence 254 rather than 255. Equal to the file (tested).
LIP_PALETTE_RGB = np.array([
    [0, 0, 0], [128, 0, 0], [254, 0, 0], [0, 85, 0], [169, 0, 51], [254, 85, 0], [0, 0, 85],
    [0, 119, 220], [85, 85, 0], [0, 85, 85], [85, 51, 0], [52, 86, 128], [0, 128, 0], [0, 0, 254],
    [51, 169, 220], [0, 254, 254], [85, 254, 169], [169, 254, 85], [254, 254, 0], [254, 169, 0],
], dtype=np.uint8)

# first node of tools/synthetic_parsing.py graphs (a Const), so a look at the file's head tells
SYNTHETIC_MARKER = b'SYNTHETIC_seeded_random_weights'
LOSSLESS_LABEL_FORMATS = ('.png', '.bmp', '.tif', '.tiff', '.pgm', '.ppm', '.pnm')


# ---------------------------------------------------------------------------- palette
def load_colormap(path):
    """round(255 * colormap) of a LIP human_colormap.mat, as (20, 3) uint8 RGB."""
    import scipy.io
    try:
        colormap = scipy.io.loadmat(path)['colormap']
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise common.UsageError('cannot read the LIP colormap %s: %s' % (path, err))
    colormap = np.asarray(colormap, dtype=np.float64)
    if colormap.shape != (N_CLASSES, 3) or colormap.min() < 0 or colormap.max() > 1:
        raise common.UsageError('%s: colormap is not 20x3 fractions in [0, 1]' % path)
    return np.floor(colormap * 255 + 0.5).astype(np.uint8)  # MATLAB round: half away from zero


def palette(path=None):
    """LIP palette as (20, 3) uint8 RGB: from `path`, else models_dir()/human_colormap.mat, else the
    built-in copy of that file."""
    if path is None:
        path = os.path.join(common.models_dir(), COLORMAP_NAME)
        if not os.path.isfile(path):
            return LIP_PALETTE_RGB.copy()
    return load_colormap(path)


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        raise common.UsageError('a label map must be a non-empty 2-D array, got shape %s' % (labels.shape,))
    if labels.dtype.kind not in 'ui' and labels.dtype != np.bool_:
        raise common.UsageError('a label map must hold integers, got %s' % labels.dtype)
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise common.UsageError('label %d out of range 0..%d' % (
            labels.max() if labels.max() >= N_CLASSES else labels.min(), N_CLASSES - 1))
    return labels.astype(np.uint8, copy=False)


def colorize(labels, palette_rgb=None):
    """BGR uint8 rendering of an (H, W) LIP label map."""
    labels = _check_labels(labels)
    colors_bgr = np.ascontiguousarray((LIP_PALETTE_RGB if palette_rgb is None else palette_rgb)[:, ::-1])
    return colors_bgr[labels]


def nearest_label(colors_bgr, palette_rgb=None, chunk=1 << 18):
    """Label of the nearest palette colour (Euclidean, exact integers) for every pixel of an
    (..., 3) BGR uint8 array."""
    colors_bgr = np.asarray(colors_bgr)
    flat = colors_bgr.reshape(-1, 3).astype(np.int32)
    reference = (LIP_PALETTE_RGB if palette_rgb is None else palette_rgb)[:, ::-1].astype(np.int32)
    # |c - p|^2 = |c|^2 - 2 c.p + |p|^2, and |c|^2 is the same for every p
    reference_norm = (reference ** 2).sum(axis=1)
    labels = np.empty(flat.shape[0], np.uint8)
    for start in range(0, flat.shape[0], chunk):  # bounded memory: chunk x 20 distances at a time
        block = flat[start:start + chunk]
        labels[start:start + chunk] = (reference_norm - 2 * (block @ reference.T)).argmin(axis=1)
    return labels.reshape(colors_bgr.shape[:-1])


# ---------------------------------------------------------------------------- label map files
def read_parsing(path, palette_rgb=None):
    """Read a LIP label map as (H, W) uint8 from any of the three usual forms: a grey PNG of labels
    0..19 (LIP), a palette ('P' mode) PNG whose indices are the labels (VITON / CP-VTON), or a colour
    rendering (each pixel mapped to its nearest palette colour)."""
    from PIL import Image, UnidentifiedImageError
    if not os.path.exists(path):
        raise common.UsageError('parsing file not found: %s' % path)
    if os.path.isdir(path):
        raise common.UsageError('parsing path is a directory: %s' % path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == 'P':
                labels = np.array(image)  # the palette indices, whatever colours the palette holds
            elif mode in ('LA', 'PA'):
                labels = np.array(image)[..., 0]  # grey value or palette index; alpha dropped
            elif mode in ('L', 'I', 'I;16', 'I;16B', 'I;16L'):
                labels = np.array(image.convert('I'))
            elif mode in ('RGB', 'RGBA', 'RGBX'):
                rgb = np.array(image.convert('RGB'))
                if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                    labels = rgb[..., 0]  # a grey label map stored with three equal channels
                else:
                    labels = nearest_label(rgb[..., ::-1], palette_rgb)
            else:
                raise common.UsageError('parsing file %s has unsupported image mode %s' % (path, mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise common.UsageError('parsing file is not a readable image: %s (%s)' % (path, err))
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        raise common.UsageError('parsing file %s is not a 2-D label map' % path)
    if labels.max() >= N_CLASSES or labels.min() < 0:
        raise common.UsageError('parsing file %s holds label %d; LIP labels are 0..%d'
                                % (path, labels.max(), N_CLASSES - 1))
    return labels.astype(np.uint8)


def write_parsing(path, labels, form='palette', palette_rgb=None):
    """Write an (H, W) label map as 'palette' (P-mode PNG, indices = labels, LIP colours),
    'grey' (pixel = label) or 'colour' (BGR rendering). Atomic: no half-written file on failure."""
    labels = _check_labels(labels)
    ext = os.path.splitext(path)[1].lower()
    if form in ('palette', 'grey') and ext not in LOSSLESS_LABEL_FORMATS:
        raise common.UsageError('a %s label map needs a lossless format such as .png, not %r: %s'
                                % (form, ext or 'no extension', path))
    if form == 'grey':
        return common.write_image(path, labels)
    if form == 'colour':
        return common.write_image(path, colorize(labels, palette_rgb))
    if form != 'palette':
        raise ValueError("form must be 'palette', 'grey' or 'colour', not %r" % (form,))
    from PIL import Image
    image = Image.frombytes('P', (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    image.putpalette((LIP_PALETTE_RGB if palette_rgb is None else palette_rgb).reshape(-1).tolist())
    if ext == '.png':
        pil_format = 'PNG'
    else:
        pil_format = {'.bmp': 'BMP', '.tif': 'TIFF', '.tiff': 'TIFF'}.get(ext)
        if pil_format is None:
            raise common.UsageError('a palette label map is written as .png, .bmp or .tif: %s' % path)
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format)
    return common.write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------- score merge
# Scores are resized with cv.resize (a fast approximation of the reference maths below) and every pixel
# whose two best classes are closer than the approximation's error bound is recomputed with the reference
# maths, so the labels are exactly those of the reference, at cv.resize speed.
_UNIT_ROUNDOFF = 2.0 ** -24            # float32
STRIP_PIXELS = 1 << 20                  # output pixels per strip: bounded memory on big photos
EXACT_CHUNK = 1 << 15                   # pixels per chunk of the exact recomputation


@functools.lru_cache(maxsize=32)
def _bilinear_taps(source_size, target_size):
    """Half-pixel-centred bilinear taps (as cv.resize INTER_LINEAR): first index, second index and
    weight of the second, for each target position; clamped at the borders."""
    scale = source_size / target_size
    position = (np.arange(target_size) + 0.5) * scale - 0.5
    position = np.clip(position, 0, source_size - 1)
    first = np.floor(position).astype(np.intp)
    second = np.minimum(first + 1, source_size - 1)
    weight = (position - first).astype(np.float32)
    for array in (first, second, weight):
        array.setflags(write=False)
    return first, second, weight


def _check_size(size):
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError('size must be positive (width, height), got %s' % (size,))
    return width, height


def _check_score_pair(scores, scores_mirrored):
    scores = np.ascontiguousarray(scores, np.float32)
    scores_mirrored = np.ascontiguousarray(scores_mirrored, np.float32)
    if scores.shape != scores_mirrored.shape or scores.ndim != 3 or scores.shape[0] != N_CLASSES:
        raise ValueError('expected two (20, h, w) score maps, got %s and %s'
                         % (scores.shape, scores_mirrored.shape))
    return scores, scores_mirrored


def merge_flipped_scores(scores, scores_mirrored):
    """Average (20, h, w) scores of an image with those of its mirror, flipped back with
    left/right channels swapped."""
    scores, scores_mirrored = _check_score_pair(scores, scores_mirrored)
    return (scores + scores_mirrored[MIRROR_CHANNELS, :, ::-1]) * np.float32(0.5)


@functools.lru_cache(maxsize=32)
def _resize_weight_error(source_size, size):
    """How far the weights of cv.resize (INTER_LINEAR, float32, (h, w) -> size = (width, height)) are
    from the exact bilinear weights: (rows, columns), each the largest sum over source lines of
    |cv.resize's weight - exact weight| for an output line. Measured, not assumed: cv.resize maps
    one-hot patterns onto its own weights, and patterns of period 4 keep apart the weights of sources
    less than 4 lines apart. Every output pixel is compared, so no row or tile can differ unseen."""
    height, width = source_size
    out_width, out_height = size
    errors = []
    for axis, n, m in ((0, height, out_height), (1, width, out_width)):
        position = np.clip((np.arange(m) + 0.5) * (n / m) - 0.5, 0, n - 1)
        first = np.floor(position).astype(np.intp)
        second = np.minimum(first + 1, n - 1)
        weight = position - first
        total = np.zeros(m if axis == 0 else (1, m))
        for k in range(4):
            exact = np.where(first % 4 == k, 1 - weight, 0) + np.where(second % 4 == k, weight, 0)
            pattern = (np.arange(n) % 4 == k).astype(np.float32)
            probe = np.ascontiguousarray(np.broadcast_to(pattern[:, None] if axis == 0 else pattern, source_size))
            measured = cv.resize(probe, size, interpolation=cv.INTER_LINEAR).astype(np.float64)
            difference = np.abs(measured - (exact[:, None] if axis == 0 else exact[None, :]))
            total = total + (difference.max(axis=1) if axis == 0 else difference.max(axis=0, keepdims=True))
        errors.append(float(np.max(total)))
    return tuple(errors)


def _exact_labels(corner_scores, rows, cols, source_size, size):
    """Reference maths at the output pixels (rows, cols): the scores' bilinear resize to size =
    (width, height), rows first then columns, in float32, and the first argmax over classes.
    corner_scores(r, c) gives the (C, n) scores at source pixels (r, c)."""
    row0, row1, row_weight = _bilinear_taps(source_size[0], size[1])
    col0, col1, col_weight = _bilinear_taps(source_size[1], size[0])
    r0, r1, wy = row0[rows], row1[rows], row_weight[rows]
    c0, c1, wx = col0[cols], col1[cols], col_weight[cols]
    with np.errstate(invalid='ignore', over='ignore'):  # inf * 0: NaN, which argmax takes
        left = corner_scores(r0, c0) * (1 - wy) + corner_scores(r1, c0) * wy
        right = corner_scores(r0, c1) * (1 - wy) + corner_scores(r1, c1) * wy
        return (left * (1 - wx) + right * wx).argmax(axis=0).astype(np.uint8)


def _resized_argmax(items, size, corner_scores):
    """argmax over classes of the sum of score items resized bilinearly to size = (width, height),
    in strips of at most STRIP_PIXELS output pixels. The items are added at the source's size (exact
    float32 sums, as the reference does), then resized with cv.resize.

    items: (scores (C, h, w) float32, channel order or None, mirrored) triples, at most one mirrored:
    class c of the sum is scores[order[c]] of each item, flipped left/right when mirrored.
    corner_scores(r, c) gives the (C, n) scores that the reference maths resize, at source pixels
    (r, c): the labels equal _exact_labels at every pixel.
    cv.resize differs from those maths by its weights (measured by _resize_weight_error) and a few
    float32 roundings per pass, so where the two best classes of the cv.resize result are further
    apart than twice a bound on that difference the argmax is the same; the other pixels (near ties,
    and all of them when a score is not finite) are recomputed with _exact_labels."""
    width, height = size
    channels, source_height, source_width = items[0][0].shape
    row0, row1, row_weight = _bilinear_taps(source_height, height)
    # |cv.resize - exact| <= (row + column weight error + 10 u) * max |sum of the items|; the reference
    # maths are within 12 u of exact: the bound below is more than twice the total, for safety
    slack = 256 * _UNIT_ROUNDOFF
    labels = np.empty((height, width), np.uint8)
    rows_per_strip = height if height * width <= STRIP_PIXELS else max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows_per_strip):
        bottom = min(top + rows_per_strip, height)
        whole = top == 0 and bottom == height
        lo, hi = (0, source_height) if whole else (int(row0[top]), int(row1[bottom - 1]) + 1)
        shape = (bottom - top, width)
        resized, best, smaller = (np.empty(shape, np.float32) for _ in range(3))
        runner_up = np.full(shape, -np.inf, np.float32)
        strip = np.zeros(shape, np.uint8)
        greater = np.empty(shape, bool)
        window, flipped = (np.empty((hi - lo, source_width), np.float32) for _ in range(2))
        if whole:
            weight_error = sum(_resize_weight_error((source_height, source_width), size))
        else:
            horizontal = np.empty((hi - lo, width), np.float32)
            first, second = row0[top:bottom] - lo, row1[top:bottom] - lo
            weight = row_weight[top:bottom, None]
            # the rows are NumPy's (the reference's float32 weights); the columns cv.resize's, whose
            # weights do not depend on the number of rows: measured on a few
            probe_rows = min(hi - lo, 16)
            weight_error = sum(_resize_weight_error((probe_rows, source_width), (width, probe_rows)))
        relative_error = 8 * weight_error + slack
        magnitude = 0.0
        for c in range(channels):
            merged = None  # the items' sum at the source's size: exact float32 additions
            for scores, order, mirrored in items:
                plane = scores[c if order is None else order[c], lo:hi]
                if mirrored:
                    plane = cv.flip(plane, 1, dst=flipped)
                # NumPy for the arithmetic: OpenCV takes an array of <= 4 numbers for a Scalar
                merged = plane if merged is None else np.add(merged, plane, out=window)
            magnitude = max(magnitude, cv.norm(merged, cv.NORM_INF))
            if whole:
                cv.resize(merged, (width, height), dst=resized, interpolation=cv.INTER_LINEAR)
            else:  # columns with cv.resize (rows kept as they are), rows with the strip's own taps
                cv.resize(merged, (width, hi - lo), dst=horizontal, interpolation=cv.INTER_LINEAR)
                np.multiply(horizontal[first], 1 - weight, out=resized)
                resized += horizontal[second] * weight
            if c == 0:
                best[...] = resized
                continue
            np.greater(resized, best, out=greater)
            np.copyto(strip, c, where=greater)
            np.minimum(best, resized, out=smaller)
            np.maximum(runner_up, smaller, out=runner_up)
            np.maximum(best, resized, out=best)
        if np.isfinite(magnitude) and magnitude < 1e30:
            tolerance = 2 * (relative_error * magnitude + 1e-30)
            near_tie = np.flatnonzero(~(best - runner_up > tolerance))
        else:
            near_tie = np.arange(strip.size)
        for start in range(0, near_tie.size, EXACT_CHUNK):
            index = near_tie[start:start + EXACT_CHUNK]
            strip.flat[index] = _exact_labels(corner_scores, top + index // width, index % width,
                                              (source_height, source_width), size)
        labels[top:bottom] = strip
    return labels


def argmax_resized(scores, size):
    """argmax over classes of (C, h, w) scores resized bilinearly (half-pixel centres, as cv.resize
    INTER_LINEAR) to size = (width, height); exactly the float32 maths of _exact_labels.

    Works in strips of rows so a 12 MP photo needs tens of MB, not C x 12 MP floats."""
    width, height = _check_size(size)
    scores = np.ascontiguousarray(scores, np.float32)
    return _resized_argmax([(scores, None, False)], (width, height), lambda r, c: scores[:, r, c])


def merge_flipped(scores, scores_mirrored, size):
    """LIP labels (height, width) uint8 from the (20, h, w) scores of an image and of its mirror;
    size = (width, height) of the output, as OpenCV orders it. Equal to
    argmax_resized(merge_flipped_scores(scores, scores_mirrored), size), without the full-size merge."""
    width, height = _check_size(size)
    scores, scores_mirrored = _check_score_pair(scores, scores_mirrored)
    source_width = scores.shape[2]

    def merged_corners(r, c):  # the float32 average, as merge_flipped_scores gives it
        return (scores[:, r, c] + scores_mirrored[MIRROR_CHANNELS[:, None], r, source_width - 1 - c]) \
            * np.float32(0.5)

    # the sum, not the average, is resized: halving is exact and changes no argmax, nor any near tie
    return _resized_argmax([(scores, None, False), (scores_mirrored, MIRROR_CHANNELS, True)],
                           (width, height), merged_corners)


# ---------------------------------------------------------------------------- network
def is_synthetic_model(path):
    """True for a graph from tools/synthetic_parsing.py (looks at the first 256 bytes only)."""
    try:
        with open(path, 'rb') as f:
            return SYNTHETIC_MARKER in f.read(256)
    except OSError:
        return False


class JppNet:
    """LIP JPPNet human parsing (lip_jppnet_384.pb) with OpenCV's dnn module."""

    # LIP's BGR mean, and the (width, height) the published graph resizes every input to (models.yml)
    MEAN_BGR = tuple(common.model_input(MODEL_NAME, 'mean'))
    INPUT_SIZE = (common.model_input(MODEL_NAME, 'width'), common.model_input(MODEL_NAME, 'height'))

    def __init__(self, model, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU):
        if not os.path.isfile(model):
            raise common.UsageError('parsing model file not found: %s' % model)
        if not TENSORFLOW_IMPORTER:
            raise common.RuntimeFailure('OpenCV %s has no TensorFlow importer (removed in 5.1): the JPPNet graph %s '
                                        'needs OpenCV 4.x or 5.0 (without a parsing model, MediaPipe\'s models parse)'
                                        % (cv.__version__, model))
        self.model_path = model
        self.synthetic = is_synthetic_model(model)
        if self.synthetic:
            common.warn_synthetic(model, 'human parsing')
        self._engine = self._requested_engine = None
        self._net = None
        self.setBackendAndTarget(backend_id, target_id)

    def _load(self, engine):
        try:
            if engine is None:
                return cv.dnn.readNetFromTensorflow(self.model_path)
            try:
                return cv.dnn.readNetFromTensorflow(self.model_path, '', engine)
            except cv.error:
                if engine == cv.dnn.ENGINE_CLASSIC:
                    raise
                self._engine = cv.dnn.ENGINE_CLASSIC  # an op the new engine lacks: the classic one has it
                return cv.dnn.readNetFromTensorflow(self.model_path, '', cv.dnn.ENGINE_CLASSIC)
        except cv.error as err:
            raise common.RuntimeFailure('cannot load the TensorFlow parsing model %s: %s'
                                        % (self.model_path, common.error_line(err)))

    def setBackendAndTarget(self, backend_id, target_id):
        engine = common.dnn_engine(backend_id, target_id)
        if self._net is None or engine != self._requested_engine:
            self._engine = self._requested_engine = engine
            self._net = self._load(engine)
        self._backend_id, self._target_id = backend_id, target_id
        common.set_backend_target(self._net, backend_id, target_id, self._engine)

    def preprocess(self, image_bgr):
        """Blob of the image resized to 384x384 and its mirror, LIP mean subtracted."""
        height, width = image_bgr.shape[:2]
        net_width, net_height = self.INPUT_SIZE
        shrinking = width >= net_width and height >= net_height
        resized = cv.resize(image_bgr, self.INPUT_SIZE,
                            interpolation=cv.INTER_AREA if shrinking else cv.INTER_LINEAR)
        return cv.dnn.blobFromImages([resized, cv.flip(resized, 1)], 1.0, self.INPUT_SIZE,
                                     self.MEAN_BGR, swapRB=False, crop=False)

    def forward_scores(self, image_bgr):
        """Raw network output for the image: (2, 20, h, w) float32 (the image, then its mirror)."""
        blob = self.preprocess(_check_image(image_bgr))
        try:
            self._net.setInput(blob)
            scores = self._net.forward()
        except cv.error:
            if self._engine is None or self._engine == cv.dnn.ENGINE_CLASSIC:
                raise
            # OpenCV 5's new engine could not run this graph: fall back to the classic engine once
            self._engine = cv.dnn.ENGINE_CLASSIC
            self._net = self._load(self._engine)
            common.set_backend_target(self._net, self._backend_id, self._target_id, self._engine)
            self._net.setInput(blob)
            scores = self._net.forward()
        if scores.ndim != 4 or scores.shape[0] != 2 or scores.shape[1] != N_CLASSES:
            raise common.RuntimeFailure('%s gave output of shape %s, not (2, 20, h, w): not a LIP '
                                        'JPPNet parsing graph?' % (self.model_path, scores.shape))
        return scores

    def infer(self, image_bgr, size=None, keypoints=None, person_mask=None):
        """uint8 LIP labels for a BGR uint8 image, at size = (width, height) (default: the image's),
        from the scores resized to that size. keypoints, person_mask: the parsers' common evidence
        arguments, which JPPNet does not use (it sees the photo alone)."""
        image_bgr = _check_image(image_bgr)
        scores = self.forward_scores(image_bgr)
        return merge_flipped(scores[0], scores[1], size or (image_bgr.shape[1], image_bgr.shape[0]))


def _check_image(image):
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise common.UsageError('the parsing input must be a uint8 image array')
    if image.ndim == 2:
        image = cv.cvtColor(image, cv.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv.cvtColor(image, cv.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise common.UsageError('the parsing input must be an H x W x 3 BGR image, got shape %s'
                                % (image.shape,))
    return image


def synthetic_model_path(directory=None):
    """Build (if missing or stale) the SYNTHETIC parsing graph in <models>/synthetic/ and return its path."""
    from tools import synthetic_parsing
    directory = directory or os.path.join(common.models_dir(), 'synthetic')
    path = os.path.join(directory, MODEL_NAME)
    expected = synthetic_parsing.graph_def_bytes()
    try:
        with open(path, 'rb') as f:
            current = f.read()
    except OSError:
        current = None
    if current != expected:
        try:
            os.makedirs(directory, exist_ok=True)
            synthetic_parsing.build_synthetic_parsing(path)
        except OSError as err:
            raise common.RuntimeFailure('cannot write the synthetic model to %s: %s' % (directory, err))
    return path


# ---------------------------------------------------------------------------- parsing from MediaPipe's models
POSE_SEGMENTATION_MODEL = 'pose_landmark_full.tflite'
SELFIE_MODEL = 'selfie_segmentation.tflite'
# the per-pixel classifier fitted by tools/fit_mediapipe_parsing.py on VITON's training parsings
MEDIAPIPE_TABLE = os.path.join(common.REPO_DIR, 'models', 'mediapipe_parsing_mlp.npz')
MEDIAPIPE_WORK_SIZE = 256   # longest side the labels are worked out at (VITON's photos are 256x192)
# classes of the classifier: background, hair, face, upper body, arm, pants, skirt, leg, shoe; the LIP
# label each writes (arms, legs and shoes are split into left and right afterwards)
MEDIAPIPE_CLASS_LABELS = np.array([0, 2, 13, 5, 14, 9, 12, 16, 18], np.uint8)
# LIP label -> classifier class, for fitting: hat with hair, sunglasses with face, glove with arm,
# dress/coat/jumpsuit/scarf with the upper body, socks with legs
MEDIAPIPE_CLASS_OF_LABEL = np.array([0, 1, 1, 4, 2, 3, 3, 3, 7, 5, 3, 3, 6, 2, 4, 4, 7, 7, 8, 8], np.uint8)
# COCO-18 keypoint indices the features use
_NOSE, _NECK, _RSH, _REL, _RWR, _LSH, _LEL, _LWR, _RHIP, _RKNEE, _RANK, _LHIP, _LKNEE, _LANK = range(14)


def _segment_distance(x, y, a, b):
    """Distance of points (x, y) (float32 arrays that broadcast together: for every pixel, x a (1, W)
    row and y an (H, 1) column, so the work is a handful of (H, W) operations) to the segment a-b."""
    d = np.asarray(b, np.float64) - a
    length2 = max(float(d @ d), 1e-6)
    u, v = x - np.float32(a[0]), y - np.float32(a[1])
    t = np.clip(u * np.float32(d[0] / length2) + v * np.float32(d[1] / length2), 0, 1)
    along_x, along_y = u - t * np.float32(d[0]), v - t * np.float32(d[1])
    # not cv.magnitude: its result changes in the last bit with the arrays' alignment in memory
    along_x *= along_x
    along_y *= along_y
    along_x += along_y
    return np.sqrt(along_x, out=along_x)


def body_skeleton(keypoints, shape):
    """Points the features need, from COCO-18 keypoints (x, y, confidence) in pixels; a missing one
    (confidence <= 0.1) is placed where a standing frontal body would have it. Returns (points, scale):
    scale is the shoulder width in pixels, the unit of every distance feature."""
    height, width = shape
    points = np.asarray(keypoints, np.float64)[:, :2]
    found = np.asarray(keypoints)[:, 2] > 0.1
    if found[_RSH] and found[_LSH]:
        shoulders = float(np.hypot(*(points[_RSH] - points[_LSH])))
    else:
        shoulders = 0.3 * width
    scale = max(shoulders, 0.15 * width, 8.0)

    def get(index, default):
        return points[index] if found[index] else np.asarray(default, np.float64)

    neck = get(_NECK, (width / 2, 0.3 * height))
    hips = [points[i] for i in (_RHIP, _LHIP) if found[i]]
    hip = np.mean(hips, axis=0) if hips else neck + (0, 1.6 * scale)
    p = {'neck': neck, 'hip': hip, 'nose': get(_NOSE, neck - (0, 0.6 * scale))}
    p['rsh'] = get(_RSH, neck - (scale / 2, 0))
    p['lsh'] = get(_LSH, neck + (scale / 2, 0))
    for side in 'rl':
        first = _RSH if side == 'r' else _LSH  # elbow, wrist, hip, knee, ankle follow in COCO order
        p[side + 'el'] = get(first + 1, p[side + 'sh'] + (0, 0.9 * scale))
        p[side + 'wr'] = get(first + 2, p[side + 'el'] + (0, 0.8 * scale))
        hip_index = _RHIP if side == 'r' else _LHIP
        p[side + 'hip'] = get(hip_index, hip + ((-0.3 if side == 'r' else 0.3) * scale, 0))
        p[side + 'knee'] = get(hip_index + 1, p[side + 'hip'] + (0, 1.3 * scale))
        p[side + 'ank'] = get(hip_index + 2, p[side + 'knee'] + (0, 1.3 * scale))
    return p, scale


def _median_colour(lab, mask, fallback):
    values = lab[mask]
    return np.median(values, axis=0) if len(values) >= 4 else np.asarray(fallback, np.float32)


N_PARSING_FEATURES = 26


def parsing_feature_planes(image_bgr, keypoints, pose_mask, selfie_mask):
    """(26, H, W) float32 per-pixel features for the MediaPipe parsing classifier, one plane each:
    position relative to the body (in shoulder widths), distance to the limbs, the two person masks
    (and blurred), the colour (Lab) and its distance to the face, torso, lower body and background
    colours. Positions and distances are built from a row and a column, not from full coordinate grids."""
    height, width = image_bgr.shape[:2]
    p, scale = body_skeleton(keypoints, (height, width))
    x = np.arange(width, dtype=np.float32)[None]
    y = np.arange(height, dtype=np.float32)[:, None]
    unit = np.float32(1 / scale)
    planes = np.empty((N_PARSING_FEATURES, height, width), np.float32)
    planes[0] = (x - np.float32(p['neck'][0])) * unit
    planes[1] = (y - np.float32(p['neck'][1])) * unit
    planes[2] = (y - np.float32(p['nose'][1])) * unit
    planes[3] = np.hypot(x - np.float32(p['nose'][0]), y - np.float32(p['nose'][1])) * unit
    planes[4] = (y - np.float32(p['hip'][1])) * unit
    planes[5] = (x - np.float32(p['hip'][0])) * unit
    for plane, limbs in ((6, (('rsh', 'rel'), ('lsh', 'lel'))), (7, (('rel', 'rwr'), ('lel', 'lwr'))),
                         (8, (('rhip', 'rknee'), ('lhip', 'lknee'))), (9, (('neck', 'hip'),))):
        distance = _segment_distance(x, y, p[limbs[0][0]], p[limbs[0][1]])
        for a, b in limbs[1:]:
            np.minimum(distance, _segment_distance(x, y, p[a], p[b]), out=distance)
        np.multiply(distance, unit, out=planes[plane])
    # the pose mask as a logit (what the network outputs), clipped: a probability of 0 or 1 is finite
    pose_mask = np.clip(np.asarray(pose_mask, np.float32), 4.5e-5, 1 - 4.5e-5)
    pose_logit = planes[10]
    np.divide(np.log(pose_mask / (1 - pose_mask)), np.float32(5), out=pose_logit)
    planes[11] = np.asarray(selfie_mask, np.float32)
    selfie_mask = planes[11]
    cv.blur(pose_logit, (9, 9), dst=planes[12])
    cv.blur(selfie_mask, (9, 9), dst=planes[13])
    lab = cv.cvtColor(image_bgr, cv.COLOR_BGR2Lab).astype(np.float32) / np.float32(255)
    planes[14:17] = lab.transpose(2, 0, 1)

    def disc(centre, radius):
        return (x - np.float32(centre[0])) ** 2 + (y - np.float32(centre[1])) ** 2 <= np.float32(radius * radius)

    person = (pose_logit > 0) | (selfie_mask > 0.5)
    face = _median_colour(lab, disc(p['nose'], 0.12 * scale), (0.6, 0.55, 0.55))
    torso_colour = _median_colour(lab, disc(p['neck'] + 0.45 * (p['hip'] - p['neck']), 0.22 * scale) & person, face)
    lower_region = disc(p['hip'] + (0, 0.35 * scale), 0.2 * scale) & person
    lower_colour = _median_colour(lab, lower_region, torso_colour)
    background = _median_colour(lab, (pose_logit < -0.8) & (selfie_mask < 0.1), (0.9, 0.5, 0.5))
    square = np.empty((height, width), np.float32)
    for plane, colour in zip((17, 19, 21, 23), (face, torso_colour, lower_colour, background)):
        distance = planes[plane]  # sqrt of the squared Lab differences added in L, a, b order, + 1e-6
        for channel in range(3):
            np.subtract(planes[14 + channel], np.float32(colour[channel]), out=square)
            np.multiply(square, square, out=square)
            if channel == 0:
                distance[...] = square
            else:
                distance += square
        distance += np.float32(1e-6)
        np.sqrt(distance, out=distance)
        cv.blur(distance, (5, 5), dst=planes[plane + 1])
    planes[25] = float(lower_region.sum() >= 4)
    return planes


def parsing_features(image_bgr, keypoints, pose_mask, selfie_mask):
    """The features of parsing_feature_planes per pixel: (H, W, 26) float32 (for fitting)."""
    return np.ascontiguousarray(parsing_feature_planes(image_bgr, keypoints, pose_mask, selfie_mask).transpose(1, 2, 0))


class ParsingClassifier:
    """The fitted per-pixel classifier: a two-hidden-layer perceptron (ReLU) over the parsing features,
    weights in a small .npz written by tools/fit_mediapipe_parsing.py. It runs in cv.dnn as 1x1
    convolutions over the (26, H, W) feature planes (an ONNX graph built in memory from the table)."""

    KEYS = ('mean', 'std', 'W1', 'b1', 'W2', 'b2', 'W3', 'b3')

    def __init__(self, path=MEDIAPIPE_TABLE, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU):
        try:
            with np.load(path) as table:
                p = {key: np.asarray(table[key], np.float32) for key in self.KEYS}
        except (OSError, KeyError, ValueError) as err:
            raise common.UsageError('cannot read the MediaPipe parsing table %s: %s' % (path, err))
        if p['W3'].shape[1] != len(MEDIAPIPE_CLASS_LABELS):
            raise common.UsageError('%s: the table has %d classes, expected %d'
                                    % (path, p['W3'].shape[1], len(MEDIAPIPE_CLASS_LABELS)))
        # fold the feature normalisation into the first layer: x W1' + b1' == ((x - mean) / std) W1 + b1
        layers = [(p['W1'] / p['std'][:, None], p['b1'] - (p['mean'] / p['std']) @ p['W1']),
                  (p['W2'], p['b2']), (p['W3'], p['b3'])]
        self._graph = np.frombuffer(self._onnx_graph(layers), np.uint8)  # kept: read again on an engine change
        self.net = self._engine = None
        self.setBackendAndTarget(backend_id, target_id)

    @staticmethod
    def _onnx_graph(layers):
        """Serialized ONNX model: (weight (n_in, n_out), bias) layers as 1x1 convolutions, ReLU between."""
        from onnx import TensorProto, helper, numpy_helper
        nodes, weights, previous = [], [], 'features'
        for i, (weight, bias) in enumerate(layers):
            weights += [numpy_helper.from_array(np.ascontiguousarray(weight.T[:, :, None, None]), 'w%d' % i),
                        numpy_helper.from_array(bias, 'b%d' % i)]
            nodes.append(helper.make_node('Conv', [previous, 'w%d' % i, 'b%d' % i], ['conv%d' % i], kernel_shape=[1, 1]))
            previous = 'conv%d' % i
            if i < len(layers) - 1:
                nodes.append(helper.make_node('Relu', [previous], ['relu%d' % i]))
                previous = 'relu%d' % i
        n_in, n_out = layers[0][0].shape[0], layers[-1][0].shape[1]
        graph = helper.make_graph(
            nodes, 'mediapipe_parsing_classifier',
            [helper.make_tensor_value_info('features', TensorProto.FLOAT, [1, n_in, 'height', 'width'])],
            [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [1, n_out, 'height', 'width'])],
            initializer=weights)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)]).SerializeToString()

    def setBackendAndTarget(self, backend_id, target_id):
        engine = common.dnn_engine(backend_id, target_id)  # OpenCV 5: a non-CPU pair needs the classic engine
        if self.net is None or engine != self._engine:
            self.net, self._engine = common.read_net(cv.dnn.readNetFromONNX, self._graph, engine), engine
        common.set_backend_target(self.net, backend_id, target_id, engine)

    def score_planes(self, planes):
        """(n_features, H, W) float32 feature planes -> (n_classes, H, W) float32 class scores (logits)."""
        self.net.setInput(np.ascontiguousarray(planes, np.float32)[None])
        return self.net.forward()[0]


def _read_tflite(path, what):
    # OpenCV 5's new engine returns only one output of these graphs: the classic one
    try:
        return common.read_net(cv.dnn.readNetFromTFLite, path, common.CLASSIC_ENGINE)
    except cv.error as err:
        raise common.RuntimeFailure('cannot load the %s model %s: %s' % (what, path, common.error_line(err)))


class SelfieSegmentation:
    """MediaPipe's selfie_segmentation.tflite (general, 256x256): person probability per pixel."""

    INPUT = common.model_registry()[SELFIE_MODEL]['input']   # square, RGB in [0, 1] (models.yml)
    SIZE = INPUT['width']

    def __init__(self, model, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU):
        self.net = _read_tflite(model, 'selfie segmentation')
        self.setBackendAndTarget(backend_id, target_id)

    def setBackendAndTarget(self, backend_id, target_id):
        common.set_backend_target(self.net, backend_id, target_id, common.CLASSIC_ENGINE)

    def infer(self, image_bgr):
        """float32 (H, W) in [0, 1]: the image letterboxed (centred) into the square input."""
        height, width = image_bgr.shape[:2]
        s = max(height, width) / self.SIZE
        # square pixel (u, v) <- image pixel (s u + ox, s v + oy): centres aligned, letterboxed
        to_image = np.array([[s, 0, (width - 1) / 2 - s * (self.SIZE - 1) / 2],
                             [0, s, (height - 1) / 2 - s * (self.SIZE - 1) / 2]])
        square = cv.warpAffine(image_bgr, to_image, (self.SIZE, self.SIZE),
                               flags=cv.INTER_LINEAR | cv.WARP_INVERSE_MAP, borderMode=cv.BORDER_CONSTANT)
        self.net.setInput(cv.dnn.blobFromImage(square, self.INPUT['scale'], (self.SIZE, self.SIZE),
                                               self.INPUT['mean'], swapRB=bool(self.INPUT['rgb'])))
        probability = self.net.forward().reshape(self.SIZE, self.SIZE)
        return cv.warpAffine(probability, to_image, (width, height), flags=cv.INTER_LINEAR,
                             borderMode=cv.BORDER_CONSTANT, borderValue=0.0)


class MediaPipeParsing:
    """LIP labels without JPPNet, from networks of the mediapipe==0.10.21 wheel: the person masks of
    BlazePose (pose_landmark_full.tflite) and of selfie_segmentation.tflite, the pose keypoints, and
    a small per-pixel classifier (ParsingClassifier) that splits the person into hair, face, upper
    body, arms, pants/skirt, legs and shoes.

    pose: a pose estimator whose keypoints_and_mask(image) gives COCO-18 keypoints and a person mask
    (float32 [0, 1], image size) together, declared by gives_person_mask = True (openpose.BlazePose); with
    None, or one without a mask (openpose.OpenPose), an openpose.BlazePose of `pose_model` is made here."""

    def __init__(self, pose=None, pose_model=None, selfie_model=None, table=MEDIAPIPE_TABLE,
                 backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU):
        if pose is None or not pose.gives_person_mask:   # none given, or OpenPose: BlazePose's
            import openpose
            pose_model = pose_model or mediapipe_model_path(POSE_SEGMENTATION_MODEL)
            mediapipe_model_path(openpose.BLAZEPOSE_DETECTOR_TFLITE, os.path.dirname(pose_model))  # beside it
            pose = openpose.BlazePose(pose_model, backend_id, target_id)
        self.pose = pose
        # None: evidence only (fitting)
        self.classifier = ParsingClassifier(table, backend_id, target_id) if table is not None else None
        self.selfie = SelfieSegmentation(selfie_model or mediapipe_model_path(SELFIE_MODEL), backend_id, target_id)
        self.setBackendAndTarget(backend_id, target_id)

    def setBackendAndTarget(self, backend_id, target_id):
        for network in (self.pose, self.selfie, self.classifier):
            if network is not None:
                network.setBackendAndTarget(backend_id, target_id)

    def person_evidence(self, image_bgr):
        """keypoints (18, 3), pose person mask and selfie person mask (float32 [0, 1], image size)."""
        keypoints, person_mask = self.pose.keypoints_and_mask(image_bgr)
        return keypoints, person_mask, self.selfie.infer(image_bgr)

    def work_image(self, image_bgr):
        """The photo shrunk so its longest side is at most MEDIAPIPE_WORK_SIZE, and the factor."""
        height, width = image_bgr.shape[:2]
        factor = min(1.0, MEDIAPIPE_WORK_SIZE / max(height, width))
        if factor == 1.0:
            return image_bgr, factor
        size = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))
        return cv.resize(image_bgr, size, interpolation=cv.INTER_AREA), factor

    def labels_at_work_size(self, image_bgr, keypoints, pose_mask, selfie_mask):
        """(h, w) uint8 LIP labels for a photo at work size and its evidence (same size)."""
        scores = self.classifier.score_planes(parsing_feature_planes(image_bgr, keypoints, pose_mask, selfie_mask))
        # a 5x5 mean of every class's score (smooth borders, no lone pixels), then the first best class
        best = cv.blur(scores[0], (5, 5))
        index = np.zeros(best.shape, np.uint8)
        for c in range(1, len(scores)):
            plane = cv.blur(scores[c], (5, 5))
            greater = plane > best
            index[greater] = c
            np.maximum(best, plane, out=best)
        return split_left_right(MEDIAPIPE_CLASS_LABELS[index], keypoints)

    def infer(self, image_bgr, keypoints=None, person_mask=None, size=None):
        """uint8 LIP labels at size = (width, height) (default: the image's). keypoints (COCO-18, image
        pixels) and person_mask (float32 [0, 1], image size) replace what the pose model would give."""
        image_bgr = _check_image(image_bgr)
        width, height = size or (image_bgr.shape[1], image_bgr.shape[0])
        work, factor = self.work_image(image_bgr)
        # the selfie network on a helper thread while the pose network runs here: neither keeps both
        # cores busy on its own (about 3 ms of 60 on two cores)
        selfie_mask = _helper_thread().submit(self.selfie.infer, work)
        try:
            if keypoints is None or person_mask is None:  # the pose model only for what was not given
                work_keypoints, pose_mask = self.pose.keypoints_and_mask(work)
        finally:
            selfie_mask = selfie_mask.result()
        if keypoints is not None:
            work_keypoints = np.array(keypoints, np.float64)
            work_keypoints[:, :2] = (work_keypoints[:, :2] + 0.5) * factor - 0.5
        if person_mask is not None:
            pose_mask = cv.resize(np.asarray(person_mask, np.float32), (work.shape[1], work.shape[0]),
                                  interpolation=cv.INTER_AREA)
        labels = self.labels_at_work_size(work, work_keypoints, pose_mask, selfie_mask)
        if labels.shape == (height, width):
            return labels
        return resize_labels(labels, (width, height))


@functools.lru_cache(maxsize=None)
def _helper_thread():
    """One worker thread, made on first use, for a network that can run beside another."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix='parsing')


def split_left_right(labels, keypoints):
    """Arm, leg and shoe pixels (labels 14, 16, 18) go to the person's left or right limb, whichever
    skeleton chain (shoulder-elbow-wrist, hip-knee-ankle) is nearer: LIP's 'Left-arm' (14) is the
    person's left, on the image's right in a frontal photo."""
    limbs = np.isin(labels, (14, 16, 18))
    if not limbs.any():
        return labels
    p, _ = body_skeleton(keypoints, labels.shape)
    ys, xs = np.nonzero(limbs)
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)

    def chain(names):
        return np.min([_segment_distance(xs, ys, p[a], p[b]) for a, b in zip(names, names[1:])], axis=0)

    is_arm = labels[limbs] == 14
    left = np.where(is_arm, chain(('lsh', 'lel', 'lwr')), chain(('lhip', 'lknee', 'lank')))
    right = np.where(is_arm, chain(('rsh', 'rel', 'rwr')), chain(('rhip', 'rknee', 'rank')))
    labels = labels.copy()
    labels[limbs] += (right < left).astype(np.uint8)  # 14 -> 15, 16 -> 17, 18 -> 19 on the right
    return labels


def resize_labels(labels, size):
    """A label map resized to size = (width, height) with smooth borders: the labels it holds, one-hot,
    resized bilinearly, argmax (strips of rows: bounded memory for a 12 MP photo)."""
    present = np.unique(labels)
    one_hot = (labels[None] == present[:, None, None]).astype(np.float32)
    return present[argmax_resized(one_hot, size)]


def mediapipe_model_path(name, directory=None):
    """Path of a model from the mediapipe wheel in `directory` (default common.models_dir()), fetched
    from the wheel with models/download_models.py when missing, and checked against its sha256."""
    directory = directory or common.models_dir()
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        from models import download_models
        download_models.fetch([name], directory, progress=log.isEnabledFor(logging.DEBUG))
        if not os.path.isfile(path):
            raise common.RuntimeFailure('could not fetch %s into %s' % (name, directory))
    common.verify_published(path)
    return path


def create_parser(model=None, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU,
                  pose=None, directory=None):
    """JppNet when `model` is given or lip_jppnet_384.pb is in the models directory, otherwise
    MediaPipeParsing (which needs only files from the mediapipe wheel), saying so on the log.
    pose: a pose estimator MediaPipeParsing may share (see its docstring)."""
    if model:
        return JppNet(model, backend_id, target_id)
    directory = directory or common.models_dir()
    jppnet = os.path.join(directory, MODEL_NAME)
    if os.path.isfile(jppnet) and TENSORFLOW_IMPORTER:
        if not is_synthetic_model(jppnet):  # the flagged stand-in shares the name, not the bytes
            common.verify_published(jppnet)
        return JppNet(jppnet, backend_id, target_id)
    if os.path.isfile(jppnet):
        log.info('%s is in %s, but OpenCV %s reads no TensorFlow graphs; parsing with MediaPipe models (%s, %s) '
                 'instead', MODEL_NAME, directory, cv.__version__, POSE_SEGMENTATION_MODEL, SELFIE_MODEL)
    else:
        log.info('%s not found in %s; parsing with MediaPipe models (%s, %s) instead',
                 MODEL_NAME, directory, POSE_SEGMENTATION_MODEL, SELFIE_MODEL)
    return MediaPipeParsing(pose, pose_model=None if pose is not None and pose.gives_person_mask else mediapipe_model_path(
        POSE_SEGMENTATION_MODEL, directory), selfie_model=mediapipe_model_path(SELFIE_MODEL, directory),
        backend_id=backend_id, target_id=target_id)


# ---------------------------------------------------------------------------- command line
class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one 'error:' line through common.run_main instead of usage + exit
        raise common.UsageError('%s (see --help)' % message)


def build_parser():
    parser = _ArgumentParser(
        description='Parse a person into the 20 LIP classes with LIP JPPNet (OpenCV dnn), or without its file '
                    'with MediaPipe models (MediaPipeParsing), and write the colour parsing. '
                    'Exit status: 0 done, 1 runtime failure, 2 bad usage or input.')
    parser.add_argument('-i', '--input', required=True, help='person photo')
    parser.add_argument('-o', '--output', default='parsing.png', help='colour parsing to write (default: parsing.png)')
    parser.add_argument('--labels-out', help='also write the grey label map (pixel = label 0..19), PNG')
    parser.add_argument('-m', '--model', help='TensorFlow graph (default: %s in the models directory; '
                                              'without it, MediaPipe models from the mediapipe wheel)' % MODEL_NAME)
    parser.add_argument('--colormap', help='LIP human_colormap.mat (default: the models directory, '
                                           'else the built-in copy)')
    parser.add_argument('--synthetic', action='store_true',
                        help='use the SYNTHETIC stand-in model (random weights: tests only, no real parsing)')
    common.add_backend_arguments(parser)
    common.add_verbosity_arguments(parser)
    return parser


def main(argv=None):
    args, status = common.parse_cli(build_parser(), argv)
    if args is None:
        return status
    if args.synthetic and args.model:
        raise common.UsageError('give either --model or --synthetic, not both')
    if args.labels_out and os.path.splitext(args.labels_out)[1].lower() not in LOSSLESS_LABEL_FORMATS:
        raise common.UsageError('--labels-out needs a lossless format such as .png: %s' % args.labels_out)
    for out in (args.output, args.labels_out):
        directory = os.path.dirname(os.path.abspath(out)) if out else None
        if directory and not os.path.isdir(directory):
            raise common.UsageError('output directory does not exist: %s' % directory)

    backend_id, target_id = common.backend_target(args.backend, args.target)
    image = common.read_image(args.input, 'input')
    colors = palette(args.colormap)
    with common.SyntheticWarnings('parsing'):
        if args.synthetic:
            net = JppNet(synthetic_model_path(), backend_id, target_id)
        else:
            net = create_parser(args.model, backend_id, target_id)  # MediaPipe's models when JPPNet is absent
    labels = net.infer(image)

    common.write_image(args.output, colorize(labels, colors))
    if args.labels_out:
        write_parsing(args.labels_out, labels, 'grey')
    found = ', '.join('%s %.1f%%' % (LABEL_NAMES[k], 100.0 * n / labels.size)
                      for k, n in enumerate(np.bincount(labels.ravel(), minlength=N_CLASSES)) if n)
    print('%s: %dx%d, %s' % (args.output, labels.shape[1], labels.shape[0], found))
    return 0


def cli():
    """Console command `human-parsing`."""
    sys.exit(common.run_main(main))


if __name__ == '__main__':
    cli()
