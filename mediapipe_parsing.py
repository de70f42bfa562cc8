"""Human parsing without JPPNet: LIP labels from networks of the mediapipe==0.10.21 wheel.

BlazePose's person mask and keypoints (blazepose.py), selfie_segmentation.tflite's person mask
(SelfieSegmentation) and 26 per-pixel feature planes (parsing_feature_planes) go through a small fitted
classifier (ParsingClassifier: models/mediapipe_parsing_mlp.npz, fitted by tools/fit_mediapipe_parsing.py,
run in cv.dnn as 1x1 convolutions) that splits the person into hair, face, upper body, arms, pants/skirt,
legs and shoes; arms, legs and shoes then go to the nearer left or right limb (split_left_right).
human_parsing.create_parser picks MediaPipeParsing when JPPNet's graph is absent (or unreadable: OpenCV 5.1).
"""
import concurrent.futures
import functools
import logging
import os

import cv2 as cv
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import blazepose
import dnn_backends
import dnn_engines
import errors
import image_io
import label_argmax
import registry
from coco_parts import CocoPart
from lip_labels import LEFT_LIMBS, Lip
from models import download_models

log = logging.getLogger(__name__)

POSE_SEGMENTATION_MODEL = blazepose.BLAZEPOSE_TFLITE  # its person mask
SELFIE_MODEL = 'selfie_segmentation.tflite'
# the per-pixel classifier fitted by tools/fit_mediapipe_parsing.py on VITON's training parsings
MEDIAPIPE_TABLE = os.path.join(registry.REPO_DIR, 'models', 'mediapipe_parsing_mlp.npz')
MEDIAPIPE_WORK_SIZE = 256   # longest side the labels are worked out at (VITON's photos are 256x192)
# classes of the classifier: background, hair, face, upper body, arm, pants, skirt, leg, shoe; the LIP
# label each writes (arms, legs and shoes are split into left and right afterwards)
MEDIAPIPE_CLASS_LABELS = np.array([Lip.BACKGROUND, Lip.HAIR, Lip.FACE, Lip.UPPER_CLOTHES, Lip.LEFT_ARM, Lip.PANTS,
                                   Lip.SKIRT, Lip.LEFT_LEG, Lip.LEFT_SHOE], np.uint8)
# LIP label -> classifier class, for fitting: hat with hair, sunglasses with face, glove with arm,
# dress/coat/jumpsuit/scarf with the upper body, socks with legs
MEDIAPIPE_CLASS_OF_LABEL = np.array([0, 1, 1, 4, 2, 3, 3, 3, 7, 5, 3, 3, 6, 2, 4, 4, 7, 7, 8, 8], np.uint8)


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
    if found[CocoPart.R_SHOULDER] and found[CocoPart.L_SHOULDER]:
        shoulders = float(np.hypot(*(points[CocoPart.R_SHOULDER] - points[CocoPart.L_SHOULDER])))
    else:
        shoulders = 0.3 * width
    scale = max(shoulders, 0.15 * width, 8.0)

    def get(index, default):
        return points[index] if found[index] else np.asarray(default, np.float64)

    neck = get(CocoPart.NECK, (width / 2, 0.3 * height))
    hips = [points[i] for i in (CocoPart.R_HIP, CocoPart.L_HIP) if found[i]]
    hip = np.mean(hips, axis=0) if hips else neck + (0, 1.6 * scale)
    p = {'neck': neck, 'hip': hip, 'nose': get(CocoPart.NOSE, neck - (0, 0.6 * scale))}
    p['rsh'] = get(CocoPart.R_SHOULDER, neck - (scale / 2, 0))
    p['lsh'] = get(CocoPart.L_SHOULDER, neck + (scale / 2, 0))
    for side in 'rl':
        # elbow and wrist follow the shoulder in COCO order, knee and ankle the hip
        first = CocoPart.R_SHOULDER if side == 'r' else CocoPart.L_SHOULDER
        p[side + 'el'] = get(first + 1, p[side + 'sh'] + (0, 0.9 * scale))
        p[side + 'wr'] = get(first + 2, p[side + 'el'] + (0, 0.8 * scale))
        hip_index = CocoPart.R_HIP if side == 'r' else CocoPart.L_HIP
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
            raise errors.UsageError('cannot read the MediaPipe parsing table %s: %s' % (path, err))
        if p['W3'].shape[1] != len(MEDIAPIPE_CLASS_LABELS):
            raise errors.UsageError('%s: the table has %d classes, expected %d'
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
        engine = dnn_engines.dnn_engine(backend_id, target_id)  # OpenCV 5: a non-CPU pair needs the classic engine
        if self.net is None or engine != self._engine:
            self.net, self._engine = dnn_engines.read_net(cv.dnn.readNetFromONNX, self._graph, engine), engine
        dnn_backends.set_backend_target(self.net, backend_id, target_id, engine)

    def score_planes(self, planes):
        """(n_features, H, W) float32 feature planes -> (n_classes, H, W) float32 class scores (logits)."""
        self.net.setInput(np.ascontiguousarray(planes, np.float32)[None])
        return self.net.forward()[0]


class SelfieSegmentation:
    """MediaPipe's selfie_segmentation.tflite (general, 256x256): person probability per pixel."""

    INPUT = registry.model_registry()[SELFIE_MODEL]['input']   # square, RGB in [0, 1] (models.yml)
    SIZE = INPUT['width']

    def __init__(self, model, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU):
        # OpenCV 5's new engine returns only one output of these graphs: the classic one
        self.net = dnn_engines.load_net(cv.dnn.readNetFromTFLite, model, dnn_engines.CLASSIC_ENGINE,
                                        message='cannot load the selfie segmentation model %s' % model)
        self.setBackendAndTarget(backend_id, target_id)

    def setBackendAndTarget(self, backend_id, target_id):
        dnn_backends.set_backend_target(self.net, backend_id, target_id, dnn_engines.CLASSIC_ENGINE)

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
    (float32 [0, 1], image size) together, declared by gives_person_mask = True (blazepose.BlazePose); with
    None, or one without a mask (openpose.OpenPose), a blazepose.BlazePose of `pose_model` is made here."""

    def __init__(self, pose=None, pose_model=None, selfie_model=None, table=MEDIAPIPE_TABLE,
                 backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU):
        if pose is None or not pose.gives_person_mask:   # none given, or OpenPose: BlazePose's
            pose_model = pose_model or mediapipe_model_path(POSE_SEGMENTATION_MODEL)
            mediapipe_model_path(blazepose.BLAZEPOSE_DETECTOR_TFLITE, os.path.dirname(pose_model))  # beside it
            pose = blazepose.BlazePose(pose_model, backend_id, target_id)
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

    def infer(self, image_bgr, size=None, keypoints=None, person_mask=None):
        """uint8 LIP labels at size = (width, height) (default: the image's). keypoints (COCO-18, image
        pixels) and person_mask (float32 [0, 1], image size) replace what the pose model would give
        (model_roles.HumanParser)."""
        image_bgr = image_io.check_image(image_bgr, 'parsing')
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
        return label_argmax.resize_labels(labels, (width, height))


@functools.lru_cache(maxsize=None)
def _helper_thread():
    """One worker thread, made on first use, for a network that can run beside another."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix='parsing')


def split_left_right(labels, keypoints):
    """Arm, leg and shoe pixels (labelled LEFT_ARM, LEFT_LEG, LEFT_SHOE) go to the person's left or right
    limb, whichever skeleton chain (shoulder-elbow-wrist, hip-knee-ankle) is nearer: LIP's LEFT_ARM is the
    person's left, on the image's right in a frontal photo."""
    limbs = np.isin(labels, LEFT_LIMBS)
    if not limbs.any():
        return labels
    p, _ = body_skeleton(keypoints, labels.shape)
    ys, xs = np.nonzero(limbs)
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)

    def chain(names):
        return np.min([_segment_distance(xs, ys, p[a], p[b]) for a, b in zip(names, names[1:])], axis=0)

    is_arm = labels[limbs] == Lip.LEFT_ARM
    left = np.where(is_arm, chain(('lsh', 'lel', 'lwr')), chain(('lhip', 'lknee', 'lank')))
    right = np.where(is_arm, chain(('rsh', 'rel', 'rwr')), chain(('rhip', 'rknee', 'rank')))
    labels = labels.copy()
    labels[limbs] += (right < left).astype(np.uint8)  # each right limb's label is its left one's + 1
    return labels


def mediapipe_model_path(name, directory=None):
    """Path of a model from the mediapipe wheel in `directory` (default registry.models_dir()), fetched
    from the wheel with models/download_models.py when missing, and checked against its sha256."""
    directory = directory or registry.models_dir()
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        download_models.fetch([name], directory, progress=log.isEnabledFor(logging.DEBUG))
        if not os.path.isfile(path):
            raise errors.RuntimeFailure('could not fetch %s into %s' % (name, directory))
    registry.verify_published(path)
    return path
