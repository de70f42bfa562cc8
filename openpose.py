"""Body keypoints for the try-on: 18 COCO parts from OpenPose (COCO body model) or BlazePose.

OpenPose is the model CP-VTON was trained with. OpenCV 4 reads its Caffe files directly;
OpenCV 5 has no Caffe importer and reads the ONNX made by `openpose_caffe.py`.
When the OpenPose files are absent, MediaPipe's BlazePose (blazepose.py) is used instead.

    python3 openpose.py -i person.jpg [-m MODEL] [-o pose.png] [--json keypoints.json|-]
"""
import argparse
import json
import logging
import os
import sys

import cv2 as cv
import numpy as np

import blazepose
import command_line
import dnn_backends
import dnn_engines
import errors
import image_io
import onnx_facts
import openpose_caffe
import registry
import synthetic_models
from models import download_models
from coco_parts import COCO_PAIRS, COCO_PARTS

log = logging.getLogger(__name__)

OPENPOSE_PROTOTXT = 'openpose_pose_coco.prototxt'
OPENPOSE_CAFFEMODEL = 'pose_iter_440000.caffemodel'
OPENPOSE_ONNX = 'openpose_pose_coco.onnx'
OPENPOSE_OUTPUT = 'Mconv7_stage6_L2'
NET_STRIDE = 8          # OpenPose heatmaps are 1/8 of the network input
MAX_ASPECT = 4          # widest network input, in multiples of its height: bounds the cost


def _has_caffe_importer():
    return hasattr(cv.dnn, 'readNetFromCaffe')


# ============================================================================ postprocessing
def heatmaps_to_keypoints(heatmaps, image_size, input_size, threshold=0.1, content_size=None):
    """Peaks of OpenPose part heatmaps as (18, 3) float32 (x, y, confidence) in image pixels.

    heatmaps: (C >= 18, h, w) network output at 1/8 of the network input.
    image_size: (width, height) of the original image. input_size: (width, height) of the
    network input. content_size: (width, height) of the resized image inside that input
    (the rest is padding; default: all of it).

    As OpenPose does, each heatmap is resized (cubic) to the network input and the peak is
    taken there, refined to sub-pixel by a parabola through its neighbours; the coarse
    1/8 grid would lose up to 8 network pixels. Parts below `threshold` are (0, 0, 0).
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 3 or heatmaps.shape[0] < len(COCO_PARTS):
        raise errors.RuntimeFailure('pose model output has shape %s; expected (>=18, h, w) heatmaps'
                                    % (heatmaps.shape,))
    in_w, in_h = int(input_size[0]), int(input_size[1])
    content_w, content_h = content_size if content_size is not None else (in_w, in_h)
    image_w, image_h = image_size
    parts = np.ascontiguousarray(heatmaps[:len(COCO_PARTS)].transpose(1, 2, 0))
    upsampled = cv.resize(parts, (in_w, in_h), interpolation=cv.INTER_CUBIC)
    upsampled = upsampled.reshape(in_h, in_w, -1)[:content_h, :content_w]
    flat = upsampled.reshape(-1, len(COCO_PARTS))
    best = flat.argmax(axis=0)
    parts_idx = np.arange(len(COCO_PARTS))
    peak = flat[best, parts_idx]
    py, px = np.divmod(best, content_w)

    def vertex(before, centre, after):
        # offset of the parabola's top from the centre sample, in [-0.5, 0.5]
        curvature = before - 2 * centre + after
        with np.errstate(divide='ignore', invalid='ignore'):
            offset = np.where(curvature < 0, 0.5 * (before - after) / curvature, 0.0)
        return np.clip(np.nan_to_num(offset), -0.5, 0.5)

    left = upsampled[py, np.maximum(px - 1, 0), parts_idx]
    right = upsampled[py, np.minimum(px + 1, content_w - 1), parts_idx]
    up = upsampled[np.maximum(py - 1, 0), px, parts_idx]
    down = upsampled[np.minimum(py + 1, content_h - 1), px, parts_idx]
    x_net = px + np.where((px > 0) & (px < content_w - 1), vertex(left, peak, right), 0.0)
    y_net = py + np.where((py > 0) & (py < content_h - 1), vertex(up, peak, down), 0.0)
    # network-input pixel -> image pixel (pixel centres aligned, as cv.resize maps them)
    x = (x_net + 0.5) * image_w / content_w - 0.5
    y = (y_net + 0.5) * image_h / content_h - 0.5
    keypoints = np.stack([x, y, peak], axis=1).astype(np.float32)
    keypoints[peak < threshold] = 0
    return keypoints


# ============================================================================ OpenPose
class OpenPose:
    """OpenPose COCO body model (18 parts): Caffe files on OpenCV 4, ONNX on 4 and 5."""
    INPUT = registry.model_registry()[OPENPOSE_ONNX]['input']
    gives_person_mask = False  # keypoints_and_mask() gives keypoints only

    def __init__(self, model, config=None, backend_id=cv.dnn.DNN_BACKEND_OPENCV,
                 target_id=cv.dnn.DNN_TARGET_CPU, threshold=0.1, input_height=None):
        input_height = input_height or registry.model_input(OPENPOSE_ONNX, 'height')
        if input_height < NET_STRIDE or input_height % NET_STRIDE:
            raise errors.UsageError('input height must be a positive multiple of %d, got %d'
                                    % (NET_STRIDE, input_height))
        if not os.path.isfile(model):
            raise errors.UsageError('pose model file not found: %s' % model)
        self.model_path = model
        self.threshold = float(threshold)
        self.input_height = int(input_height)
        self.backend_id, self.target_id = backend_id, target_id
        ext = os.path.splitext(model)[1].lower()
        if ext == '.caffemodel':
            if not _has_caffe_importer():
                raise errors.UsageError(
                    'OpenCV %s cannot read Caffe models; convert once with: python3 openpose_caffe.py '
                    '--prototxt %s --caffemodel %s -o %s' % (
                        cv.__version__, config or os.path.join(os.path.dirname(model) or '.', OPENPOSE_PROTOTXT),
                        model,
                        os.path.join(os.path.dirname(model) or '.', OPENPOSE_ONNX)))
            config = config or os.path.join(os.path.dirname(model), OPENPOSE_PROTOTXT)
            if not os.path.isfile(config):
                raise errors.UsageError('prototxt for %s not found: %s (pass --config)' % (model, config))
            synthetic = openpose_caffe.caffemodel_is_synthetic(model)
            self.engine = None  # OpenCV 4 only: no engine choice
            try:
                self.net = cv.dnn.readNetFromCaffe(config, model)
            except cv.error as err:
                raise errors.ModelLoadError('OpenCV cannot load %s with %s: %s'
                                            % (model, config, (err.err or str(err)).strip()))
        elif ext == '.onnx':
            synthetic = onnx_facts.file_is_synthetic(model)
            self.engine = dnn_engines.dnn_engine(backend_id, target_id)
            self.net = dnn_engines.load_net(cv.dnn.readNetFromONNX, model, self.engine)
        else:
            raise errors.UsageError('OpenPose model must be .onnx or .caffemodel, got %s' % model)
        if synthetic:
            synthetic_models.warn_synthetic(model, 'pose')
        names = list(self.net.getUnconnectedOutLayersNames())
        self.output_name = OPENPOSE_OUTPUT if OPENPOSE_OUTPUT in names else (names[-1] if names else None)
        self.setBackendAndTarget(backend_id, target_id)

    def setBackendAndTarget(self, backend_id, target_id):
        engine = dnn_engines.dnn_engine(backend_id, target_id)
        if self.engine is not None and engine != self.engine:  # OpenCV 5: the ONNX read again for the pair
            self.engine = engine
            self.net = dnn_engines.load_net(cv.dnn.readNetFromONNX, self.model_path, engine)
        dnn_backends.set_backend_target(self.net, backend_id, target_id, self.engine)
        self.backend_id, self.target_id = backend_id, target_id

    def input_geometry(self, image_size):
        """(input_size, content_size): the network input (width, height), a multiple of 8 with
        the requested height, and the resized image inside it keeping its aspect ratio."""
        image_w, image_h = image_size
        scale = min(self.input_height / image_h, MAX_ASPECT * self.input_height / image_w)
        content_w = max(1, int(round(image_w * scale)))
        content_h = max(1, int(round(image_h * scale)))
        input_w = -(-content_w // NET_STRIDE) * NET_STRIDE
        input_h = -(-content_h // NET_STRIDE) * NET_STRIDE
        return (input_w, input_h), (content_w, content_h)

    def preprocess(self, image_bgr):
        image_h, image_w = image_bgr.shape[:2]
        (input_w, input_h), (content_w, content_h) = self.input_geometry((image_w, image_h))
        shrinking = content_w < image_w
        resized = cv.resize(image_bgr, (content_w, content_h),
                            interpolation=cv.INTER_AREA if shrinking else cv.INTER_CUBIC)
        canvas = np.zeros((input_h, input_w, 3), np.uint8)     # OpenPose pads right/bottom with black
        canvas[:content_h, :content_w] = resized
        # OpenPose's VGG normalisation (models.yml): BGR, pixel / 256 - 0.5
        blob = cv.dnn.blobFromImage(canvas, self.INPUT['scale'], (input_w, input_h), self.INPUT['mean'],
                                    swapRB=bool(self.INPUT['rgb']), crop=False)
        return blob, (input_w, input_h), (content_w, content_h)

    def heatmaps(self, image_bgr):
        """Raw part heatmaps (19, h, w) of the network for `image_bgr`, plus the geometry."""
        blob, input_size, content_size = self.preprocess(image_bgr)
        self.net.setInput(blob)
        out = self.net.forward(self.output_name) if self.output_name else self.net.forward()
        out = np.asarray(out)
        if out.ndim != 4 or out.shape[1] < len(COCO_PARTS):
            raise errors.RuntimeFailure('pose model output has shape %s; expected (1, 19, H/8, W/8) '
                                        '(is %s an OpenPose COCO model?)' % (out.shape, self.model_path))
        return out[0], input_size, content_size

    def keypoints_and_mask(self, image_bgr):
        """(infer(image_bgr), None): OpenPose gives no person mask."""
        return self.infer(image_bgr), None

    def infer(self, image_bgr):
        """(18, 3) float32 keypoints (x, y, confidence) in image pixels, COCO order."""
        image_bgr = image_io.check_image(image_bgr, 'pose estimation')
        heatmaps, input_size, content_size = self.heatmaps(image_bgr)
        image_size = (image_bgr.shape[1], image_bgr.shape[0])
        return heatmaps_to_keypoints(heatmaps, image_size, input_size, self.threshold, content_size)



# ============================================================================ model choice
def default_pose_model(directory=None):
    """OpenPose if its files are in `directory` (default registry.models_dir()): the ONNX on
    OpenCV 5, the caffemodel + prototxt (or the ONNX) on OpenCV 4. Otherwise BlazePose,
    fetched with models/download_models.py when missing."""
    directory = directory or registry.models_dir()
    onnx_path = os.path.join(directory, OPENPOSE_ONNX)
    caffemodel = os.path.join(directory, OPENPOSE_CAFFEMODEL)
    prototxt = os.path.join(directory, OPENPOSE_PROTOTXT)
    if _has_caffe_importer() and os.path.isfile(caffemodel) and os.path.isfile(prototxt):
        # published files are checked against the registry's sha256; the flagged synthetic stand-in is not one
        if not openpose_caffe.caffemodel_is_synthetic(caffemodel):
            registry.verify_published(caffemodel)
            registry.verify_published(prototxt)
        return caffemodel
    if os.path.isfile(onnx_path):
        return onnx_path
    tflite = os.path.join(directory, blazepose.BLAZEPOSE_TFLITE)
    wanted = OPENPOSE_ONNX if not _has_caffe_importer() else '%s + %s' % (OPENPOSE_CAFFEMODEL, OPENPOSE_PROTOTXT)
    log.info('OpenPose files (%s) not found in %s; using BlazePose (%s)', wanted, directory,
             blazepose.BLAZEPOSE_TFLITE)
    detector = os.path.join(directory, blazepose.BLAZEPOSE_DETECTOR_TFLITE)
    missing = [os.path.basename(p) for p in (tflite, detector) if not os.path.isfile(p)]
    if missing:
        # pip's own output (index lines, its progress) only with -v: by default one line per model fetched
        download_models.fetch(missing, directory, progress=log.isEnabledFor(logging.DEBUG))
        if not os.path.isfile(tflite) or not os.path.isfile(detector):
            raise errors.RuntimeFailure('could not fetch %s into %s' % (' and '.join(missing), directory))
    registry.verify_published(tflite)
    registry.verify_published(detector)
    return tflite


def create_pose_estimator(model=None, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU,
                          config=None, threshold=None):
    """OpenPose or BlazePose by the model's extension (.onnx/.caffemodel or .tflite)."""
    model = model or default_pose_model()
    ext = os.path.splitext(model)[1].lower()
    extra = {} if threshold is None else {'threshold': threshold}
    if ext == '.tflite':
        return blazepose.BlazePose(model, backend_id, target_id, **extra)
    if ext in ('.onnx', '.caffemodel'):
        return OpenPose(model, config, backend_id, target_id, **extra)
    raise errors.UsageError('unknown pose model type %r: use .onnx or .caffemodel (OpenPose) '
                            'or .tflite (BlazePose)' % model)


# ============================================================================ JSON and drawing
def keypoints_to_json(keypoints):
    """OpenPose-style dict: {"version": 1.0, "people": [{"pose_keypoints": [x, y, c, ...]}]}."""
    keypoints = np.asarray(keypoints, np.float32).reshape(len(COCO_PARTS), 3)
    flat = [round(float(v), 3) for v in keypoints.ravel()]
    return {'version': 1.0, 'people': [{'pose_keypoints': flat}]}


def read_keypoints_json(path):
    """(18, 3) float32 keypoints of the first person in an OpenPose JSON file (keys
    `pose_keypoints` or `pose_keypoints_2d`); UsageError for anything else."""
    if not os.path.isfile(path):
        raise errors.UsageError('keypoints file not found: %s' % path)
    try:
        with open(path, 'r', encoding='utf-8') as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise errors.UsageError('keypoints file %s is not valid JSON: %s' % (path, err))
    people = data.get('people') if isinstance(data, dict) else None
    if not isinstance(people, list) or not people or not isinstance(people[0], dict):
        raise errors.UsageError('keypoints file %s has no "people" list with a person' % path)
    person = people[0]
    values = person.get('pose_keypoints', person.get('pose_keypoints_2d'))
    if not isinstance(values, list):
        raise errors.UsageError('keypoints file %s: the person has no "pose_keypoints" list' % path)
    if len(values) != 3 * len(COCO_PARTS):
        raise errors.UsageError('keypoints file %s: expected %d numbers (18 COCO parts x 3), got %d'
                                % (path, 3 * len(COCO_PARTS), len(values)))
    try:
        keypoints = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise errors.UsageError('keypoints file %s: pose_keypoints holds non-numbers' % path)
    if not np.all(np.isfinite(keypoints)):
        raise errors.UsageError('keypoints file %s: pose_keypoints holds NaN or infinity' % path)
    return keypoints.astype(np.float32).reshape(len(COCO_PARTS), 3)


def draw_skeleton(image, keypoints):
    """A copy of `image` with the limbs and parts that were found drawn on it."""
    canvas = image.copy()
    keypoints = np.asarray(keypoints, np.float32).reshape(len(COCO_PARTS), 3)
    found = keypoints[:, 2] > 0
    thickness = max(1, int(round(max(canvas.shape[:2]) / 200)))
    points = np.round(keypoints[:, :2]).astype(int)
    for k, (a, b) in enumerate(COCO_PAIRS):
        if found[a] and found[b]:
            hue = int(180 * k / len(COCO_PAIRS))
            color = cv.cvtColor(np.uint8([[[hue, 255, 230]]]), cv.COLOR_HSV2BGR)[0, 0].tolist()
            cv.line(canvas, tuple(points[a].tolist()), tuple(points[b].tolist()), color, thickness, cv.LINE_AA)
    for i in np.flatnonzero(found):
        cv.circle(canvas, tuple(points[i].tolist()), thickness + 2, (0, 0, 255), -1, cv.LINE_AA)
    return canvas


def _write_text(path, text):
    return image_io.write_bytes(path, text.encode('utf-8'))


def build_parser():
    parser = argparse.ArgumentParser(
        description='18 COCO body keypoints with OpenPose (Caffe or ONNX) or BlazePose (TFLite). '
                    'Exit status: 0 done, 1 runtime failure, 2 bad usage or input.')
    parser.add_argument('-i', '--input', required=True, help='person photo')
    parser.add_argument('-o', '--output', default=None,
                        help='skeleton drawing to write (default: none)')
    parser.add_argument('--json', default=None, help='write the keypoints as OpenPose JSON to PATH, or - for stdout '
                                                     '(default: - when no -o is given)')
    parser.add_argument('-m', '--model', default=None,
                        help='%s, %s or %s (default: OpenPose from the models directory if present, '
                             'else BlazePose)' % (OPENPOSE_ONNX, OPENPOSE_CAFFEMODEL, blazepose.BLAZEPOSE_TFLITE))
    parser.add_argument('--config', default=None, help='OpenPose prototxt for a .caffemodel (OpenCV 4)')
    parser.add_argument('--threshold', type=float, default=None,
                        help='lowest confidence kept (default: 0.1 OpenPose; BlazePose: the per-part '
                             'thresholds fitted on VITON train)')
    dnn_backends.add_backend_arguments(parser)
    command_line.add_verbosity_arguments(parser)
    return parser


def keypoints_of_photo(args):
    """The command: the keypoints of the photo the arguments name, drawn and written as asked."""
    backend_id, target_id = dnn_backends.backend_target(args.backend, args.target)
    image = image_io.read_image(args.input, 'person image')
    with synthetic_models.SyntheticWarnings('pose'):
        estimator = create_pose_estimator(args.model, backend_id, target_id, args.config, args.threshold)
    keypoints = estimator.infer(image)
    if not np.any(keypoints[:, 2] > 0):
        log.warning('no body part found in %s', args.input)

    if args.output:
        image_io.write_image(args.output, draw_skeleton(image, keypoints))
        log.info('wrote %s', args.output)
    json_output = args.json or (None if args.output else '-')  # nothing is written into the current directory
    if json_output:
        text = json.dumps(keypoints_to_json(keypoints))
        if json_output == '-':
            print(text)
        else:
            _write_text(json_output, text + '\n')
            log.info('wrote %s', json_output)
    return 0


def main(argv=None):
    return command_line.run_cli(build_parser, keypoints_of_photo, argv)


def cli():
    """Console command `openpose-keypoints`."""
    sys.exit(command_line.run_main(main))


if __name__ == '__main__':
    cli()
