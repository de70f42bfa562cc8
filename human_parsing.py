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
import io
import logging
import os
import sys

import cv2 as cv
import numpy as np
from PIL import Image, UnidentifiedImageError

import command_line
import dnn_backends
import dnn_engines
import errors
import image_io
import label_argmax
import mediapipe_parsing
import registry
import synthetic_models
from lip_labels import LABEL_NAMES, LIP_CLASS_COUNT, Lip, mirrored

log = logging.getLogger(__name__)

MODEL_NAME = 'lip_jppnet_384.pb'
# OpenCV 5.1 dropped the TensorFlow importer: JPPNet's frozen graph reads on OpenCV 4.x and 5.0 only
TENSORFLOW_IMPORTER = hasattr(cv.dnn, 'readNetFromTensorflow')
N_CLASSES = LIP_CLASS_COUNT
# channel order of a mirrored image's scores seen unmirrored: left and right body parts trade places
MIRROR_CHANNELS = np.array([mirrored(label) for label in Lip])

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
    import scipy.io  # heavy (about 0.3 s) and only for a .mat colour map: imported when one is read
    try:
        colormap = scipy.io.loadmat(path)['colormap']
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise errors.UsageError('cannot read the LIP colormap %s: %s' % (path, err))
    colormap = np.asarray(colormap, dtype=np.float64)
    if colormap.shape != (N_CLASSES, 3) or colormap.min() < 0 or colormap.max() > 1:
        raise errors.UsageError('%s: colormap is not 20x3 fractions in [0, 1]' % path)
    return np.floor(colormap * 255 + 0.5).astype(np.uint8)  # MATLAB round: half away from zero


def palette(path=None):
    """LIP palette as (20, 3) uint8 RGB: from `path`, else models_dir()/human_colormap.mat, else the
    built-in copy of that file."""
    if path is None:
        path = os.path.join(registry.models_dir(), COLORMAP_NAME)
        if not os.path.isfile(path):
            return LIP_PALETTE_RGB.copy()
    return load_colormap(path)


def _check_labels(labels):
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        raise errors.UsageError('a label map must be a non-empty 2-D array, got shape %s' % (labels.shape,))
    if labels.dtype.kind not in 'ui' and labels.dtype != np.bool_:
        raise errors.UsageError('a label map must hold integers, got %s' % labels.dtype)
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise errors.UsageError('label %d out of range 0..%d' % (
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
    if not os.path.exists(path):
        raise errors.UsageError('parsing file not found: %s' % path)
    if os.path.isdir(path):
        raise errors.UsageError('parsing path is a directory: %s' % path)
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
                raise errors.UsageError('parsing file %s has unsupported image mode %s' % (path, mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise errors.UsageError('parsing file is not a readable image: %s (%s)' % (path, err))
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        raise errors.UsageError('parsing file %s is not a 2-D label map' % path)
    if labels.max() >= N_CLASSES or labels.min() < 0:
        raise errors.UsageError('parsing file %s holds label %d; LIP labels are 0..%d'
                                % (path, labels.max(), N_CLASSES - 1))
    return labels.astype(np.uint8)


def write_parsing(path, labels, form='palette', palette_rgb=None):
    """Write an (H, W) label map as 'palette' (P-mode PNG, indices = labels, LIP colours),
    'grey' (pixel = label) or 'colour' (BGR rendering). Atomic: no half-written file on failure."""
    labels = _check_labels(labels)
    ext = os.path.splitext(path)[1].lower()
    if form in ('palette', 'grey') and ext not in LOSSLESS_LABEL_FORMATS:
        raise errors.UsageError('a %s label map needs a lossless format such as .png, not %r: %s'
                                % (form, ext or 'no extension', path))
    if form == 'grey':
        return image_io.write_image(path, labels)
    if form == 'colour':
        return image_io.write_image(path, colorize(labels, palette_rgb))
    if form != 'palette':
        raise ValueError("form must be 'palette', 'grey' or 'colour', not %r" % (form,))
    image = Image.frombytes('P', (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    image.putpalette((LIP_PALETTE_RGB if palette_rgb is None else palette_rgb).reshape(-1).tolist())
    if ext == '.png':
        pil_format = 'PNG'
    else:
        pil_format = {'.bmp': 'BMP', '.tif': 'TIFF', '.tiff': 'TIFF'}.get(ext)
        if pil_format is None:
            raise errors.UsageError('a palette label map is written as .png, .bmp or .tif: %s' % path)
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format)
    return image_io.write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------- score merge
# JPPNet scores an image and its mirror; label_argmax resizes their average exactly.
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


def merge_flipped(scores, scores_mirrored, size):
    """LIP labels (height, width) uint8 from the (20, h, w) scores of an image and of its mirror;
    size = (width, height) of the output, as OpenCV orders it. Equal to
    argmax_resized(merge_flipped_scores(scores, scores_mirrored), size), without the full-size merge."""
    width, height = label_argmax.check_size(size)
    scores, scores_mirrored = _check_score_pair(scores, scores_mirrored)
    source_width = scores.shape[2]

    def merged_corners(r, c):  # the float32 average, as merge_flipped_scores gives it
        return (scores[:, r, c] + scores_mirrored[MIRROR_CHANNELS[:, None], r, source_width - 1 - c]) \
            * np.float32(0.5)

    # the sum, not the average, is resized: halving is exact and changes no argmax, nor any near tie
    return label_argmax.resized_argmax([(scores, None, False), (scores_mirrored, MIRROR_CHANNELS, True)],
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
    MEAN_BGR = tuple(registry.model_input(MODEL_NAME, 'mean'))
    INPUT_SIZE = (registry.model_input(MODEL_NAME, 'width'), registry.model_input(MODEL_NAME, 'height'))

    def __init__(self, model, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU):
        if not os.path.isfile(model):
            raise errors.UsageError('parsing model file not found: %s' % model)
        if not TENSORFLOW_IMPORTER:
            raise errors.ModelLoadError('OpenCV %s has no TensorFlow importer (removed in 5.1): the JPPNet graph %s '
                                        'needs OpenCV 4.x or 5.0 (without a parsing model, MediaPipe\'s models parse)'
                                        % (cv.__version__, model))
        self.model_path = model
        self.synthetic = is_synthetic_model(model)
        if self.synthetic:
            synthetic_models.warn_synthetic(model, 'human parsing')
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
            raise errors.ModelLoadError('cannot load the TensorFlow parsing model %s: %s'
                                        % (self.model_path, errors.error_line(err)))

    def setBackendAndTarget(self, backend_id, target_id):
        engine = dnn_engines.dnn_engine(backend_id, target_id)
        if self._net is None or engine != self._requested_engine:
            self._engine = self._requested_engine = engine
            self._net = self._load(engine)
        self.backend_id, self.target_id = backend_id, target_id
        dnn_backends.set_backend_target(self._net, backend_id, target_id, self._engine)

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
        blob = self.preprocess(image_io.check_image(image_bgr, 'parsing'))
        try:
            self._net.setInput(blob)
            scores = self._net.forward()
        except cv.error:
            if self._engine is None or self._engine == cv.dnn.ENGINE_CLASSIC:
                raise
            # OpenCV 5's new engine could not run this graph: fall back to the classic engine once
            self._engine = cv.dnn.ENGINE_CLASSIC
            self._net = self._load(self._engine)
            dnn_backends.set_backend_target(self._net, self.backend_id, self.target_id, self._engine)
            self._net.setInput(blob)
            scores = self._net.forward()
        if scores.ndim != 4 or scores.shape[0] != 2 or scores.shape[1] != N_CLASSES:
            raise errors.RuntimeFailure('%s gave output of shape %s, not (2, 20, h, w): not a LIP '
                                        'JPPNet parsing graph?' % (self.model_path, scores.shape))
        return scores

    def infer(self, image_bgr, size=None, keypoints=None, person_mask=None):
        """uint8 LIP labels for a BGR uint8 image, at size = (width, height) (default: the image's),
        from the scores resized to that size. keypoints, person_mask: the parsers' common evidence
        arguments, which JPPNet does not use (it sees the photo alone)."""
        image_bgr = image_io.check_image(image_bgr, 'parsing')
        scores = self.forward_scores(image_bgr)
        return merge_flipped(scores[0], scores[1], size or (image_bgr.shape[1], image_bgr.shape[0]))


def synthetic_model_path(directory=None):
    """Build (if missing or stale) the SYNTHETIC parsing graph in <models>/synthetic/ and return its path:
    tools/synthetic_parsing.py, run as a program of its own, writes it."""
    directory = directory or os.path.join(registry.models_dir(), 'synthetic')
    path = os.path.join(directory, MODEL_NAME)
    synthetic_models.run_tool('synthetic_parsing.py', [path], 'cannot write the synthetic model to %s' % directory)
    return path


def create_parser(model=None, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU,
                  pose=None, directory=None):
    """JppNet when `model` is given or lip_jppnet_384.pb is in the models directory, otherwise
    MediaPipeParsing (which needs only files from the mediapipe wheel), saying so on the log.
    pose: a pose estimator MediaPipeParsing may share (see its docstring)."""
    if model:
        return JppNet(model, backend_id, target_id)
    directory = directory or registry.models_dir()
    jppnet = os.path.join(directory, MODEL_NAME)
    if os.path.isfile(jppnet) and TENSORFLOW_IMPORTER:
        if not is_synthetic_model(jppnet):  # the flagged stand-in shares the name, not the bytes
            registry.verify_published(jppnet)
        return JppNet(jppnet, backend_id, target_id)
    mediapipe_models = (mediapipe_parsing.POSE_SEGMENTATION_MODEL, mediapipe_parsing.SELFIE_MODEL)
    if os.path.isfile(jppnet):
        log.info('%s is in %s, but OpenCV %s reads no TensorFlow graphs; parsing with MediaPipe models (%s, %s) '
                 'instead', MODEL_NAME, directory, cv.__version__, *mediapipe_models)
    else:
        log.info('%s not found in %s; parsing with MediaPipe models (%s, %s) instead',
                 MODEL_NAME, directory, *mediapipe_models)
    pose_model = None if pose is not None and pose.gives_person_mask else mediapipe_parsing.mediapipe_model_path(
        mediapipe_parsing.POSE_SEGMENTATION_MODEL, directory)
    return mediapipe_parsing.MediaPipeParsing(
        pose, pose_model=pose_model,
        selfie_model=mediapipe_parsing.mediapipe_model_path(mediapipe_parsing.SELFIE_MODEL, directory),
        backend_id=backend_id, target_id=target_id)


# ---------------------------------------------------------------------------- command line
class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one 'error:' line through command_line.run_main instead of usage + exit
        raise errors.UsageError('%s (see --help)' % message)


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
    dnn_backends.add_backend_arguments(parser)
    command_line.add_verbosity_arguments(parser)
    return parser


def parse_photo(args):
    """The command: the parsing of the photo the arguments name, written as asked."""
    if args.synthetic and args.model:
        raise errors.UsageError('give either --model or --synthetic, not both')
    if args.labels_out and os.path.splitext(args.labels_out)[1].lower() not in LOSSLESS_LABEL_FORMATS:
        raise errors.UsageError('--labels-out needs a lossless format such as .png: %s' % args.labels_out)
    for out in (args.output, args.labels_out):
        directory = os.path.dirname(os.path.abspath(out)) if out else None
        if directory and not os.path.isdir(directory):
            raise errors.UsageError('output directory does not exist: %s' % directory)

    backend_id, target_id = dnn_backends.backend_target(args.backend, args.target)
    image = image_io.read_image(args.input, 'input')
    colors = palette(args.colormap)
    with synthetic_models.SyntheticWarnings('parsing'):
        if args.synthetic:
            net = JppNet(synthetic_model_path(), backend_id, target_id)
        else:
            net = create_parser(args.model, backend_id, target_id)  # MediaPipe's models when JPPNet is absent
    labels = net.infer(image)

    image_io.write_image(args.output, colorize(labels, colors))
    if args.labels_out:
        write_parsing(args.labels_out, labels, 'grey')
    found = ', '.join('%s %.1f%%' % (LABEL_NAMES[k], 100.0 * n / labels.size)
                      for k, n in enumerate(np.bincount(labels.ravel(), minlength=N_CLASSES)) if n)
    print('%s: %dx%d, %s' % (args.output, labels.shape[1], labels.shape[0], found))
    return 0


def main(argv=None):
    return command_line.run_cli(build_parser, parse_photo, argv)


def cli():
    """Console command `human-parsing`."""
    sys.exit(command_line.run_main(main))


if __name__ == '__main__':
    cli()
