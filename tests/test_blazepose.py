"""BlazePose run as MediaPipe runs it (detector -> rotated ROI -> landmarks), calibrated to OpenPose COCO.

References: MediaPipe's own output for the VITON test photos (../shared/data/viton/test_mediapipe_pose.json,
mediapipe 0.10.21), VITON's OpenPose keypoints and LIP parsings, and hand-computed cases. The photo
tests use a fixed subset of the test split (every 8th photo) to keep the run short; the full-split
figures come from benchmarks/benchmark_blazepose.py.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA

import blazepose
import errors
import image_io
from tools import fit_pose_calibration as fpc
import tflite_onnx

TEST_SPLIT = os.path.join(SHARED_DATA, 'viton', 'test')
SUBSET = sorted(f for f in os.listdir(os.path.join(TEST_SPLIT, 'image')) if f.endswith('.jpg'))[::8]
NO_PERSON = '003621_0.jpg'      # MediaPipe finds nobody in this test photo


@pytest.fixture(scope='module')
def blazepose_estimator(blazepose_model):
    return blazepose.BlazePose(blazepose_model)


@pytest.fixture(scope='module')
def mediapipe_photos():
    with open(os.path.join(SHARED_DATA, 'viton', 'test_mediapipe_pose.json')) as f:
        return json.load(f)['photos']


@pytest.fixture(scope='module')
def subset_landmarks(blazepose_estimator):
    """(names, landmarks (N, 39, 5)) of the subset photos and of the no-person photo."""
    names = SUBSET + [NO_PERSON]
    landmarks = []
    for name in names:
        result = blazepose_estimator.estimate(image_io.read_image(os.path.join(TEST_SPLIT, 'image', name)))
        landmarks.append(result['landmarks'] if result['landmarks'] is not None else np.full((39, 5), np.nan))
    return names, np.stack(landmarks)


# ============================================================================ hand-computed pieces
def test_ssd_anchors_match_mediapipe_layout():
    anchors = blazepose.ssd_anchor_centres(224, (8, 16, 32, 32, 32), 0.5)
    # 28x28 cells x 2 + 14x14 x 2 + 7x7 x 6 (three stride-32 layers share one grid)
    assert anchors.shape == (2254, 2)
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(anchors[2], [1.5 / 28, 0.5 / 28])           # next column
    np.testing.assert_allclose(anchors[56], [0.5 / 28, 1.5 / 28])          # next row
    np.testing.assert_allclose(anchors[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(anchors[1960:1966], [[0.5 / 7, 0.5 / 7]] * 6)
    np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])


def test_alignment_roi_hand_case():
    # hip centre (100, 200), scale point straight above: upright, side 2 * 100 * 1.25
    centre, side, rotation = blazepose.alignment_roi((100, 200), (100, 100))
    assert centre == (100, 200) and side == pytest.approx(250) and rotation == pytest.approx(0)
    # scale point to the right: the body lies along +x, the ROI turns by -90 degrees... or +90
    _, side, rotation = blazepose.alignment_roi((0, 0), (30, 40))
    assert side == pytest.approx(125)
    assert rotation == pytest.approx(np.pi / 2 - np.arctan2(-40, 30))


def test_heatmap_refinement_hand_case():
    heatmap = np.full((2, 64, 64), -20.0)
    heatmap[0, 10, 20] = heatmap[0, 10, 22] = 20.0         # two equal peaks: the mean cell is (21, 10)
    points = np.array([[20.5 / 64, 10.5 / 64], [0.5, 0.5]])  # second: nothing confident -> unchanged
    refined = blazepose.refine_from_heatmap(points, heatmap)
    np.testing.assert_allclose(refined[0], [21 / 64, 10 / 64], atol=1e-6)
    np.testing.assert_allclose(refined[1], points[1])
    outside = np.array([[1.2, 0.5], [0.5, 0.5]])           # outside the heatmap: untouched
    np.testing.assert_allclose(blazepose.refine_from_heatmap(outside, heatmap)[0], outside[0])


def test_detector_converts_and_keeps_mediapipe_outputs(blazepose_model):
    path = os.path.join(os.path.dirname(blazepose_model), blazepose.BLAZEPOSE_DETECTOR_TFLITE)
    with open(path, 'rb') as f:
        model = tflite_onnx.tflite_to_onnx(f.read())
    assert [o.name for o in model.graph.output] == ['Identity', 'Identity_1']
    with pytest.raises(errors.UsageError):
        tflite_onnx.tflite_to_onnx(b'\x08\x00\x00\x00not a tflite')


def test_calibration_table_is_complete_and_bad_tables_fail(tmp_path):
    table = blazepose.load_pose_calibration(blazepose.BLAZEPOSE_CALIBRATION)
    assert np.asarray(table['weights']).shape == (18, 2, 33 * 4 + 1)
    assert np.asarray(table['show_weights']).shape == (18, 33 * 4 + 1)
    assert all(0 < t < 1 for t in table['show_threshold'])
    assert os.path.getsize(blazepose.BLAZEPOSE_CALIBRATION) < 100_000
    bad = tmp_path / 'bad.json'
    for broken in (dict(table, weights=[[0.0]]), dict(table, show_weights=[[0.0]]), dict(table, show_threshold=[0.5])):
        bad.write_text(json.dumps(broken))
        with pytest.raises(errors.UsageError, match='calibration'):
            blazepose.load_pose_calibration(str(bad))


def test_calibration_applies_hand_computed_case():
    # shoulders (120, 100) and (80, 100), hips (115, 200) and (85, 200): body frame origin (100, 150), unit 100 px
    landmarks = np.zeros((39, 5))
    landmarks[:, :2] = (100, 150)
    landmarks[:, 3] = 0.5
    landmarks[11, :2], landmarks[12, :2] = (120, 100), (80, 100)
    landmarks[23, :2], landmarks[24, :2] = (115, 200), (85, 200)
    landmarks[0, :2], landmarks[0, 3] = (100, 50), 0.9               # the nose, 1 unit above the origin
    weights = np.zeros((18, 2, 133))
    weights[0, 0, -1] = 0.05            # nose x: + 0.05 units (the constant) = + 5 px
    weights[0, 1, 1] = 0.1              # nose y: + 0.1 x its own frame y (-1) = - 10 px
    weights[1, 0, 2 * 11] = 1.0         # neck x: + the left shoulder's frame x (0.2) = + 20 px
    show = np.zeros((18, 133))
    show[0, -1] = 2.0                   # nose: sigmoid(2)
    show[1, 99] = -10.0                 # neck: sigmoid(-10 x the nose's visibility 0.9)
    table = {'weights': weights.tolist(), 'show_weights': show.tolist()}
    parts = blazepose.apply_pose_calibration(landmarks, table)
    np.testing.assert_allclose(parts[0], [105, 40, 1 / (1 + np.exp(-2))])
    np.testing.assert_allclose(parts[1], [120, 100, 1 / (1 + np.exp(9))])     # mid-shoulders moved by 20 px
    np.testing.assert_allclose(parts[2:, 2], 0.5)                                 # sigmoid(0)
    np.testing.assert_allclose(parts[5], [120, 100, 0.5])                      # LShoulder: landmark 11, unmoved


# ============================================================================ against MediaPipe
def test_faithful_to_mediapipe(subset_landmarks, mediapipe_photos):
    names, landmarks = subset_landmarks
    assert mediapipe_photos[NO_PERSON] is None and np.isnan(landmarks[-1, 0, 0])
    reference = np.array([mediapipe_photos[n]['landmarks33'] for n in names[:-1]])
    ours = landmarks[:-1, :33]
    assert not np.isnan(ours[:, 0, 0]).any()
    dist = np.hypot(*(ours[..., :2] - reference[..., :2]).transpose(2, 0, 1))
    assert np.median(dist) <= 0.5 and np.percentile(dist, 95) <= 3.0, (np.median(dist), np.percentile(dist, 95))
    # visibility as MediaPipe gives it (rounded to 4 digits in the file)
    assert np.median(np.abs(ours[..., 3] - reference[..., 2])) < 0.01


# ============================================================================ against VITON's OpenPose
def test_calibrated_parts_match_openpose(blazepose_estimator, subset_landmarks, mediapipe_photos):
    names, landmarks = subset_landmarks
    names, landmarks = names[:-1], landmarks[:-1]
    size = (192, 256)
    reference = fpc.openpose_split(TEST_SPLIT, names)
    ours = fpc.compare(fpc.coco_parts(landmarks, size, blazepose_estimator.calibration), reference)['all']
    mp_parts = np.zeros_like(reference)
    for i, name in enumerate(names):
        coco = np.array(mediapipe_photos[name]['coco18'])
        shown = (coco[:, 2] >= 0.5) & fpc._inside(coco, size)
        mp_parts[i, shown] = coco[shown]
    mediapipe = fpc.compare(mp_parts, reference)['all']
    # the whole test split gives 96.4 % within 10 px on OpenCV 5.0 (benchmarks/benchmark_blazepose.py); a subset varies
    assert ours['median'] <= 2.5 and ours['within10'] >= 0.95, ours
    assert ours['missed_count'] <= mediapipe['missed_count'], (ours, mediapipe)
    # infer() gives exactly these parts
    image = image_io.read_image(os.path.join(TEST_SPLIT, 'image', names[0]))
    np.testing.assert_allclose(blazepose_estimator.infer(image), fpc.coco_parts(landmarks[:1], size, blazepose_estimator.calibration)[0],
                               atol=1e-3)


# ============================================================================ segmentation
def test_segment_matches_viton_parsing(blazepose_estimator):
    ious = []
    for name in SUBSET[:6]:
        image = image_io.read_image(os.path.join(TEST_SPLIT, 'image', name))
        mask = blazepose_estimator.segment(image)
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0 and mask.max() <= 1
        # VITON's LIP parsing (palette PNG: the indices are the labels; 0 is background)
        parsing = np.array(Image.open(os.path.join(TEST_SPLIT, 'image-parse', name.replace('.jpg', '.png'))))
        person = parsing > 0
        ours = mask > 0.5
        ious.append(np.sum(person & ours) / np.sum(person | ours))
    assert np.median(ious) > 0.85, ious
    blank = blazepose_estimator.segment(np.full((240, 320, 3), 127, np.uint8))
    assert blank.shape == (240, 320) and not blank.any()


def test_missing_detector_is_a_usage_error(blazepose_model, tmp_path):
    with pytest.raises(errors.UsageError, match='pose_detection.tflite'):
        blazepose.BlazePose(blazepose_model, detector=str(tmp_path / 'pose_detection.tflite'))
