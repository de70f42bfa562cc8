"""MediaPipe's BlazePose (full) as MediaPipe runs it on a still image, giving OpenPose's 18 COCO parts.

The person detector (pose_detection.tflite, converted to ONNX in memory by tflite_onnx.py: OpenCV's
TFLite importer lacks two of its operators), the rotated square ROI from its keypoints, the landmark
model (pose_landmark_full.tflite) on that crop with heatmap refinement, projection back to the photo;
its 33 landmarks are mapped to the 18 COCO parts with a correction fitted to OpenPose COCO on VITON
train (models/blazepose_coco_calibration.json, tools/fit_pose_calibration.py). openpose.py chooses
between OpenPose and BlazePose.
"""
import json
import os

import cv2 as cv
import numpy as np

import dnn_backends
import dnn_engines
import errors
import image_io
import registry
import tflite_onnx
from coco_parts import COCO_PARTS, PART_INDEX
from mediapipe_landmarks import BODY_LANDMARK_COUNT, PoseLandmark

BLAZEPOSE_TFLITE = 'pose_landmark_full.tflite'
BLAZEPOSE_DETECTOR_TFLITE = 'pose_detection.tflite'
# MediaPipe pose landmark of each COCO part, in COCO order (both name the PERSON's left/right);
# Neck (-1) is the midpoint of the shoulders.
BLAZEPOSE_TO_COCO = tuple(int(landmark) for landmark in (
    PoseLandmark.NOSE, -1, PoseLandmark.RIGHT_SHOULDER, PoseLandmark.RIGHT_ELBOW, PoseLandmark.RIGHT_WRIST,
    PoseLandmark.LEFT_SHOULDER, PoseLandmark.LEFT_ELBOW, PoseLandmark.LEFT_WRIST, PoseLandmark.RIGHT_HIP,
    PoseLandmark.RIGHT_KNEE, PoseLandmark.RIGHT_ANKLE, PoseLandmark.LEFT_HIP, PoseLandmark.LEFT_KNEE,
    PoseLandmark.LEFT_ANKLE, PoseLandmark.RIGHT_EYE, PoseLandmark.LEFT_EYE, PoseLandmark.RIGHT_EAR,
    PoseLandmark.LEFT_EAR))

# MediaPipe's pose pipeline (mediapipe 0.10.21, modules/pose_detection and modules/pose_landmark
# graphs and their calculator options), as data.
# the networks' input facts (size, mean, scale, RGB) are in models.yml
DETECTOR_INPUT = registry.model_registry()[BLAZEPOSE_DETECTOR_TFLITE]['input']
LANDMARK_INPUT = registry.model_registry()[BLAZEPOSE_TFLITE]['input']
POSE_DETECTOR = {
    'input_size': DETECTOR_INPUT['width'],  # ImageToTensor: letterboxed square, RGB in [-1, 1], zero border
    'anchor_strides': (8, 16, 32, 32, 32),  # SsdAnchors: fixed-size anchors, offset 0.5, 2 per layer
    'anchor_offset': 0.5,
    'num_keypoints': 4,                     # TensorsToDetections: box (cx, cy, w, h) then 4 keypoints
    'coord_scale': 224.0,
    'score_clip': 100.0,
    'min_score': 0.5,
    'nms_iou': 0.3,                         # NonMaxSuppression: weighted, IoU
}
POSE_ROI = {                                # PoseDetectionToRoi / PoseLandmarksToRoi
    'start_keypoint': 0,                    # hip centre
    'end_keypoint': 1,                      # full-body scale and rotation point
    'target_angle': np.pi / 2,
    'scale': 1.25,
}
POSE_LANDMARKS = {
    'input_size': LANDMARK_INPUT['width'],  # ImageToTensor: RGB in [0, 1], replicated border
    'count': 39,                            # 33 landmarks + 6 auxiliary (ROI_CENTRE, ROI_SCALE first)
    'heatmap_kernel': 7,                    # RefineLandmarksFromHeatmap
    'heatmap_min_confidence': 0.5,
    'presence_threshold': 0.5,
}
BLAZEPOSE_CALIBRATION = os.path.join(registry.REPO_DIR, 'models', 'blazepose_coco_calibration.json')


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -80, 80)))


def ssd_anchor_centres(input_size, strides, offset):
    """(N, 2) anchor centres (x, y) in [0, 1] as MediaPipe's SsdAnchorsCalculator orders them for
    fixed-size anchors: consecutive layers with one stride share a grid, 2 anchors per layer
    (aspect 1 and the interpolated scale) at each cell, rows then columns then anchors."""
    centres = []
    layer = 0
    while layer < len(strides):
        same = 1
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        size = int(np.ceil(input_size / strides[layer]))
        ys, xs = np.mgrid[0:size, 0:size]
        grid = np.stack([(xs + offset) / size, (ys + offset) / size], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, 2 * same, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(centres).astype(np.float64)


def _rect_corners_transform(centre, size, rotation, out_size):
    """3x3 perspective matrix from image pixels to the out_size square, as MediaPipe's OpenCV
    image-to-tensor converter builds it from cv::RotatedRect's corners."""
    corners = cv.boxPoints(((float(centre[0]), float(centre[1])), (float(size[0]), float(size[1])),
                            float(np.degrees(rotation))))
    dst = np.float32([[0, out_size], [0, 0], [out_size, 0], [out_size, out_size]])
    return cv.getPerspectiveTransform(corners.astype(np.float32), dst)


def _normalize_radians(angle):
    return angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi))


def alignment_roi(start, end):
    """MediaPipe's square rotated ROI (centre (x, y), side, rotation; image pixels) from the two
    alignment points (start: centre, end: scale/rotation point; image pixels): side 2 |end - start|,
    rotated so start->end points up, enlarged by POSE_ROI['scale']."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    side = 2.0 * np.hypot(dx, dy) * POSE_ROI['scale']
    rotation = _normalize_radians(POSE_ROI['target_angle'] - np.arctan2(-dy, dx))
    return (float(start[0]), float(start[1])), float(side), float(rotation)


class BlazePose:
    """MediaPipe BlazePose (full) run as MediaPipe runs it on a still image: the person detector
    (pose_detection.tflite, converted to ONNX in memory: OpenCV's TFLite importer lacks two of its
    operators), the rotated square ROI from its keypoints, the landmark model on that crop with
    heatmap refinement, projection back to the photo. infer() gives COCO-18 keypoints calibrated to
    OpenPose COCO on VITON (tools/fit_pose_calibration.py); segment() the person mask;
    keypoints_and_mask() both from one run."""
    gives_person_mask = True

    def __init__(self, model, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU,
                 threshold=None, detector=None, calibration=BLAZEPOSE_CALIBRATION, refine_passes=0):
        if not os.path.isfile(model):
            raise errors.UsageError('pose model file not found: %s' % model)
        self.model_path = model
        self.detector_path = detector or os.path.join(os.path.dirname(model) or '.', BLAZEPOSE_DETECTOR_TFLITE)
        if not os.path.isfile(self.detector_path):
            raise errors.UsageError('BlazePose person detector not found: %s (get it with: tryon-models %s)'
                                    % (self.detector_path, BLAZEPOSE_DETECTOR_TFLITE))
        self.threshold = None if threshold is None else float(threshold)
        self.refine_passes = int(refine_passes)
        self.calibration = load_pose_calibration(calibration) if calibration else None
        # OpenCV 5's new engine returns only one of the five outputs: use the classic one
        self.engine = dnn_engines.CLASSIC_ENGINE
        self.net = dnn_engines.load_net(cv.dnn.readNetFromTFLite, model, self.engine)
        names = list(self.net.getUnconnectedOutLayersNames())
        if not {'Identity', 'Identity_1', 'Identity_2', 'Identity_3'} <= set(names):
            raise errors.ModelLoadError('%s is not a BlazePose landmark model (outputs %s)' % (model, names))
        self.output_names = ['Identity', 'Identity_1', 'Identity_2', 'Identity_3']
        try:
            with open(self.detector_path, 'rb') as f:
                detector_onnx = tflite_onnx.tflite_to_onnx(f.read())
        except OSError as err:
            raise errors.ModelLoadError('cannot read %s: %s' % (self.detector_path, err))
        self.detector_bytes = np.frombuffer(detector_onnx.SerializeToString(), np.uint8)
        self.detector_engine = None
        self.anchors = ssd_anchor_centres(POSE_DETECTOR['input_size'], POSE_DETECTOR['anchor_strides'],
                                          POSE_DETECTOR['anchor_offset'])
        self.setBackendAndTarget(backend_id, target_id)

    def setBackendAndTarget(self, backend_id, target_id):
        dnn_backends.set_backend_target(self.net, backend_id, target_id, self.engine)
        engine = dnn_engines.dnn_engine(backend_id, target_id)
        if self.detector_engine is None or engine != self.detector_engine:
            self.detector = dnn_engines.load_net(cv.dnn.readNetFromONNX, self.detector_bytes, engine)
            self.detector_engine = engine
        dnn_backends.set_backend_target(self.detector, backend_id, target_id, engine)
        self.backend_id, self.target_id = backend_id, target_id

    # ------------------------------------------------------------------ detector
    def detect(self, image_bgr):
        """The best person detection after weighted NMS: (score, (4, 2) keypoints in image pixels),
        or None."""
        image_h, image_w = image_bgr.shape[:2]
        size = POSE_DETECTOR['input_size']
        side = max(image_w, image_h)        # letterbox: the whole photo padded to a square
        to_input = _rect_corners_transform((0.5 * image_w, 0.5 * image_h), (side, side), 0.0, size)
        square = cv.warpPerspective(image_bgr, to_input, (size, size), flags=cv.INTER_LINEAR,
                                    borderMode=cv.BORDER_CONSTANT, borderValue=(0, 0, 0))
        blob = cv.dnn.blobFromImage(square, DETECTOR_INPUT['scale'], (size, size), DETECTOR_INPUT['mean'],
                                    swapRB=bool(DETECTOR_INPUT['rgb']))
        self.detector.setInput(blob)
        boxes, scores = self.detector.forward(['Identity', 'Identity_1'])
        boxes = np.asarray(boxes, np.float64).reshape(len(self.anchors), -1)
        clip = POSE_DETECTOR['score_clip']
        scores = sigmoid(np.clip(np.asarray(scores, np.float64).ravel(), -clip, clip))
        keep = np.flatnonzero(scores >= POSE_DETECTOR['min_score'])
        if keep.size == 0:
            return None
        scale = POSE_DETECTOR['coord_scale']
        anchors = self.anchors[keep]
        raw = boxes[keep] / scale
        centre = raw[:, 0:2] + anchors
        half = 0.5 * raw[:, 2:4]
        rects = np.concatenate([centre - half, centre + half], axis=1)   # xmin, ymin, xmax, ymax
        count = POSE_DETECTOR['num_keypoints']
        points = raw[:, 4:4 + 2 * count].reshape(-1, count, 2) + anchors[:, None, :]
        scores = scores[keep]
        best = int(np.argmax(scores))
        # weighted NMS, first cluster only (MediaPipe keeps the first detection)
        inter_wh = np.clip(np.minimum(rects[:, 2:], rects[best, 2:]) - np.maximum(rects[:, :2], rects[best, :2]), 0, None)
        inter = inter_wh[:, 0] * inter_wh[:, 1]
        areas = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
        union = areas + areas[best] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        cluster = iou > POSE_DETECTOR['nms_iou']
        cluster[best] = True
        weights = scores[cluster]
        keypoints = (points[cluster] * weights[:, None, None]).sum(axis=0) / weights.sum()
        # letterbox removal, then normalised -> image pixels
        pad_x, pad_y = (1 - image_w / side) / 2, (1 - image_h / side) / 2
        keypoints[:, 0] = (keypoints[:, 0] - pad_x) / (1 - 2 * pad_x) * image_w
        keypoints[:, 1] = (keypoints[:, 1] - pad_y) / (1 - 2 * pad_y) * image_h
        return float(scores[best]), keypoints

    # ------------------------------------------------------------------ landmark model
    def run_region(self, image_bgr, centre, side, rotation):
        """Landmark model on the square ROI: ((39, 5) landmarks with x, y in image pixels, z,
        visibility and presence in [0, 1]), the pose presence score, the (256, 256) person mask
        in [0, 1] of the crop and the 3x3 image -> crop matrix."""
        size = POSE_LANDMARKS['input_size']
        to_crop = _rect_corners_transform(centre, (side, side), rotation, size)
        crop = cv.warpPerspective(image_bgr, to_crop, (size, size), flags=cv.INTER_LINEAR,
                                  borderMode=cv.BORDER_REPLICATE)
        blob = cv.dnn.blobFromImage(crop, LANDMARK_INPUT['scale'], (size, size), LANDMARK_INPUT['mean'],
                                    swapRB=bool(LANDMARK_INPUT['rgb']))
        self.net.setInput(blob)
        raw, flag, mask, heatmap = self.net.forward(self.output_names)
        raw = np.asarray(raw, np.float64).reshape(POSE_LANDMARKS['count'], 5)
        landmarks = raw.copy()
        landmarks[:, :2] /= size
        landmarks[:, 3:5] = sigmoid(raw[:, 3:5])
        landmarks[:, :2] = refine_from_heatmap(landmarks[:, :2], np.asarray(heatmap)[0])
        # projection: crop [0, 1] -> image pixels (rotation about the ROI centre)
        cos, sin = np.cos(rotation), np.sin(rotation)
        u, v = landmarks[:, 0] - 0.5, landmarks[:, 1] - 0.5
        landmarks[:, 0] = (cos * u - sin * v) * side + centre[0]
        landmarks[:, 1] = (sin * u + cos * v) * side + centre[1]
        landmarks[:, 2] *= side / size
        mask = sigmoid(np.asarray(mask).reshape(size, size)).astype(np.float32)
        return landmarks, float(np.asarray(flag).ravel()[0]), mask, to_crop

    def estimate(self, image_bgr):
        """Everything one photo gives: dict with 'landmarks' (39, 5) (x, y in image pixels where a
        pixel's centre is at +0.5, z, visibility, presence) or None, 'presence', 'mask' (H, W)
        float32 in [0, 1]."""
        image_bgr = image_io.check_image(image_bgr, 'pose estimation')
        image_h, image_w = image_bgr.shape[:2]
        result = {'landmarks': None, 'presence': 0.0, 'mask': None}
        detection = self.detect(image_bgr)
        if detection is not None:
            keypoints = detection[1]
            centre, side, rotation = alignment_roi(keypoints[POSE_ROI['start_keypoint']],
                                                   keypoints[POSE_ROI['end_keypoint']])
            for attempt in range(1 + self.refine_passes):
                if side < 1 or not np.isfinite(side):
                    break
                landmarks, presence, mask, to_crop = self.run_region(image_bgr, centre, side, rotation)
                if presence < POSE_LANDMARKS['presence_threshold']:
                    break
                result = {'landmarks': landmarks, 'presence': presence, 'crop_mask': mask, 'to_crop': to_crop}
                # optional second pass on the landmark-derived ROI (MediaPipe's tracking ROI)
                centre, side, rotation = alignment_roi(landmarks[PoseLandmark.ROI_CENTRE, :2],
                                                         landmarks[PoseLandmark.ROI_SCALE, :2])
        if result.get('crop_mask') is not None:
            result['mask'] = cv.warpPerspective(result.pop('crop_mask'), result['to_crop'], (image_w, image_h),
                                                flags=cv.INTER_LINEAR | cv.WARP_INVERSE_MAP,
                                                borderMode=cv.BORDER_CONSTANT, borderValue=0)
        else:
            result['mask'] = np.zeros((image_h, image_w), np.float32)
        return result

    def landmarks(self, image_bgr):
        """(39, 5) landmarks (see estimate()) and the presence score; zeros when no person."""
        result = self.estimate(image_bgr)
        if result['landmarks'] is None:
            return np.zeros((POSE_LANDMARKS['count'], 5)), result['presence']
        return result['landmarks'].copy(), result['presence']

    def segment(self, image_bgr):
        """(H, W) float32 person mask in [0, 1] at the photo's size (all 0 when no person)."""
        return self.estimate(image_bgr)['mask'].copy()

    def infer(self, image_bgr):
        """(18, 3) float32 keypoints (x, y, confidence) in image pixels, COCO order, calibrated to
        OpenPose COCO; a part OpenPose would not report (hidden, outside the photo) is (0, 0, 0)."""
        return self._coco_keypoints(self.estimate(image_bgr), image_bgr.shape)

    def keypoints_and_mask(self, image_bgr):
        """(infer(image_bgr), segment(image_bgr)) from one run of the networks."""
        result = self.estimate(image_bgr)
        return self._coco_keypoints(result, image_bgr.shape), result['mask'].copy()

    def _coco_keypoints(self, result, image_shape):
        if result['landmarks'] is None:
            return np.zeros((len(COCO_PARTS), 3), np.float32)
        image_h, image_w = image_shape[:2]
        return landmarks_to_coco(result['landmarks'], (image_w, image_h), self.calibration,
                                 self.threshold).astype(np.float32)


def landmarks_to_coco(landmarks, image_size, calibration=None, threshold=None):
    """(18, 3) COCO parts (x, y, confidence) of BlazePose's landmarks as BlazePose.infer reports them:
    calibrated when a table is given, and (0, 0, 0) for a part below its threshold (the table's per-part
    ones, else 0.5; `threshold` overrides) or outside the image_size = (width, height) photo."""
    if calibration is None:
        keypoints = blazepose_to_coco(landmarks)
        thresholds = np.full(len(COCO_PARTS), 0.5 if threshold is None else threshold)
    else:
        keypoints = apply_pose_calibration(landmarks, calibration)
        thresholds = np.asarray(calibration['show_threshold'], np.float64)
        if threshold is not None:
            thresholds = np.full(len(COCO_PARTS), threshold)
    width, height = image_size
    inside = ((keypoints[:, 0] >= 0) & (keypoints[:, 0] <= width - 1)
              & (keypoints[:, 1] >= 0) & (keypoints[:, 1] <= height - 1))
    keypoints[(keypoints[:, 2] < thresholds) | ~inside] = 0
    return keypoints


def refine_from_heatmap(points, heatmap):
    """MediaPipe's RefineLandmarksFromHeatmap: each point (normalised, (N, 2)) moves to the
    sigmoid-weighted mean cell of its heatmap (N, h, w) in a kernel x kernel window (clipped at the
    edges) when the window's highest confidence reaches the threshold; cell index / size, as there."""
    count, hm_h, hm_w = heatmap.shape
    col = np.trunc(points[:, 0] * hm_w).astype(np.int64)
    row = np.trunc(points[:, 1] * hm_h).astype(np.int64)
    half = (POSE_LANDMARKS['heatmap_kernel'] - 1) // 2
    offsets = np.arange(-half, half + 1)
    cols = col[:, None] + offsets                         # (N, k)
    rows = row[:, None] + offsets
    col_ok = (cols >= 0) & (cols < hm_w)
    row_ok = (rows >= 0) & (rows < hm_h)
    window = heatmap[np.arange(count)[:, None, None], np.clip(rows, 0, hm_h - 1)[:, :, None],
                     np.clip(cols, 0, hm_w - 1)[:, None, :]]
    confidence = sigmoid(window) * (row_ok[:, :, None] & col_ok[:, None, :])
    total = confidence.sum(axis=(1, 2))
    refine = ((col >= 0) & (col < hm_w) & (row >= 0) & (row < hm_h)
              & (confidence.max(axis=(1, 2)) >= POSE_LANDMARKS['heatmap_min_confidence']) & (total > 0))
    out = points.copy()
    with np.errstate(invalid='ignore', divide='ignore'):
        mean_col = (confidence * cols[:, None, :]).sum(axis=(1, 2)) / total
        mean_row = (confidence * rows[:, :, None]).sum(axis=(1, 2)) / total
    out[refine, 0] = mean_col[refine] / hm_w
    out[refine, 1] = mean_row[refine] / hm_h
    return out


def blazepose_to_coco(landmarks):
    """(18, 3) COCO parts straight from BlazePose's landmarks (x, y, visibility), the
    neck being the shoulders' midpoint; no calibration."""
    landmarks = np.asarray(landmarks, np.float64)
    index = np.array(BLAZEPOSE_TO_COCO)
    keypoints = landmarks[np.where(index >= 0, index, 0)][:, [0, 1, 3]].copy()
    neck = PART_INDEX['Neck']
    left, right = landmarks[PoseLandmark.LEFT_SHOULDER], landmarks[PoseLandmark.RIGHT_SHOULDER]
    keypoints[neck, :2] = 0.5 * (left[:2] + right[:2])
    keypoints[neck, 2] = min(left[3], right[3])
    return keypoints


def pose_calibration_features(landmarks):
    """(features, origin, scale) of one photo's landmarks in the body frame: origin the mean of
    the shoulders and hips, unit the mid-shoulder to mid-hip length. Features: the frame
    coordinates (x, y) and depth z of the 33 landmarks, their visibility, and a constant 1."""
    landmarks = np.asarray(landmarks, np.float64)
    shoulders = 0.5 * (landmarks[PoseLandmark.LEFT_SHOULDER, :2] + landmarks[PoseLandmark.RIGHT_SHOULDER, :2])
    hips = 0.5 * (landmarks[PoseLandmark.LEFT_HIP, :2] + landmarks[PoseLandmark.RIGHT_HIP, :2])
    origin = 0.5 * (shoulders + hips)
    scale = max(float(np.hypot(*(hips - shoulders))), 1e-6)
    body = landmarks[:BODY_LANDMARK_COUNT]
    features = np.concatenate([((body[:, :2] - origin) / scale).ravel(), body[:, 2] / scale, body[:, 3], [1.0]])
    return features, origin, scale


POSE_CALIBRATION_FEATURES = BODY_LANDMARK_COUNT * 4 + 1


def apply_pose_calibration(landmarks, calibration):
    """(18, 3) COCO parts: BlazePose's mapped part moved by the fitted linear correction
    (body-frame units); confidence is the fitted logistic probability, from the same features,
    that OpenPose reports the part within 10 px of it."""
    keypoints = blazepose_to_coco(landmarks)
    features, _, scale = pose_calibration_features(landmarks)
    weights = np.asarray(calibration['weights'], np.float64)       # (18, 2, F)
    keypoints[:, :2] += scale * (weights @ features)
    keypoints[:, 2] = sigmoid(np.asarray(calibration['show_weights'], np.float64) @ features)
    return keypoints


def load_pose_calibration(path):
    """The fitted BlazePose -> OpenPose COCO table (JSON written by tools/fit_pose_calibration.py)."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            table = json.load(f)
        weights = np.asarray(table['weights'], np.float64)
        show_weights = np.asarray(table['show_weights'], np.float64)
        features = POSE_CALIBRATION_FEATURES
        if weights.shape != (len(COCO_PARTS), 2, features) or show_weights.shape != (len(COCO_PARTS), features):
            raise ValueError('weights %s and show_weights %s, expected %s and %s' % (
                weights.shape, show_weights.shape, (len(COCO_PARTS), 2, features), (len(COCO_PARTS), features)))
        if len(table['show_threshold']) != len(COCO_PARTS):
            raise ValueError('%d show thresholds, expected %d' % (len(table['show_threshold']), len(COCO_PARTS)))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise errors.UsageError('BlazePose calibration %s is not usable: %s' % (path, err))
    return table
