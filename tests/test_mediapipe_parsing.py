"""mediapipe_parsing.MediaPipeParsing (LIP labels from the mediapipe wheel's models) against VITON's own
LIP parsings of the shared test photos, plus hand-made cases for its pieces and the scorer.

The full 395-photo figures come from `python3 tests/score_parsing.py`; here a spread subset pins them."""
import logging
import os
import subprocess
import sys
import tracemalloc

import cv2 as cv
import numpy as np
import pytest
from PIL import Image

import human_parsing as hp
import label_argmax
import mediapipe_parsing
import score_parsing
from conftest import REPO_DIR, SHARED_DATA, VITON_CLOTHES, VITON_PERSONS

TEST_DATA = os.path.join(SHARED_DATA, 'viton', 'test')
SUBSET = 40   # photos spread over the 395 test photos


@pytest.fixture(scope='session')
def selfie_model(blazepose_model):
    from models import download_models
    return download_models.fetch([mediapipe_parsing.SELFIE_MODEL], os.path.dirname(blazepose_model), progress=False)[0]


@pytest.fixture(scope='session')
def mediapipe_parser(blazepose_model, selfie_model):
    return mediapipe_parsing.MediaPipeParsing(pose_model=blazepose_model, selfie_model=selfie_model)


@pytest.fixture(scope='session')
def subset_figures(mediapipe_parser):
    rows = []
    for stem in score_parsing.stems(TEST_DATA, SUBSET):
        image = cv.imread(os.path.join(TEST_DATA, 'image', stem + '.jpg'))
        truth = hp.read_parsing(os.path.join(TEST_DATA, 'image-parse', stem + '.png'))
        rows.append(score_parsing.score_photo(mediapipe_parser.infer(image), truth))
    return score_parsing.summarise(rows)


# ---------------------------------------------------------------------------- against VITON's parsings
def test_body_shape_matches_viton_parsings(subset_figures):
    assert subset_figures['photos'] == SUBSET
    assert subset_figures['body_iou_median'] >= 0.94
    assert subset_figures['body_iou_p10'] >= 0.90


def test_head_and_lower_body_match_viton_parsings(subset_figures):
    assert subset_figures['head_iou_median'] >= 0.85
    assert subset_figures['lower_photos'] >= 30
    assert subset_figures['lower_iou_median'] >= 0.80


def test_blurred_shape_channel_close_to_viton(subset_figures):
    assert subset_figures['shape_mad_median'] <= 6.0


def test_arms_and_legs_sides_follow_lip(mediapipe_parser):
    """LIP's Left-arm (14) is the person's left: on the image's right in VITON's frontal photos."""
    right_of_centre = {14: [], 15: []}
    for stem in score_parsing.stems(TEST_DATA, 10):
        labels = mediapipe_parser.infer(cv.imread(os.path.join(TEST_DATA, 'image', stem + '.jpg')))
        for label, found in right_of_centre.items():
            xs = np.nonzero(labels == label)[1]
            if len(xs) > 50:
                found.append(xs.mean() > labels.shape[1] / 2)
    assert len(right_of_centre[14]) >= 5 and np.mean(right_of_centre[14]) >= 0.8
    assert len(right_of_centre[15]) >= 5 and np.mean(right_of_centre[15]) <= 0.2


def test_12_megapixel_photo_in_bounded_memory(mediapipe_parser):
    """A 4000x3000 photo: labels at its size, like those of the small photo, with a bounded peak of
    NumPy memory (the work is done at 256 px; the labels are resized in strips)."""
    small = cv.imread(os.path.join(TEST_DATA, 'image', '000001_0.jpg'))
    large = cv.resize(small, (3000, 4000), interpolation=cv.INTER_CUBIC)
    tracemalloc.start()
    labels = mediapipe_parser.infer(large)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert labels.shape == (4000, 3000) and labels.dtype == np.uint8
    assert peak < 160e6, peak   # the photo itself is 36 MB, its labels 12 MB
    expected = mediapipe_parser.infer(small)
    shrunk = cv.resize(labels, (192, 256), interpolation=cv.INTER_NEAREST)
    assert score_parsing.iou(shrunk > 0, expected > 0) > 0.95


def test_given_keypoints_and_mask_are_used(mediapipe_parser):
    """infer(image, keypoints, person_mask): its own evidence given back gives the same labels; an
    empty pose mask or keypoints moved down change them."""
    image = cv.imread(VITON_PERSONS[0])
    labels = mediapipe_parser.infer(image)
    assert (labels > 0).mean() > 0.2
    keypoints, mask, _ = mediapipe_parser.person_evidence(image)
    assert np.array_equal(mediapipe_parser.infer(image, keypoints=keypoints, person_mask=mask), labels)
    no_mask = mediapipe_parser.infer(image, keypoints=keypoints, person_mask=np.zeros(image.shape[:2], np.float32))
    assert (no_mask != labels).mean() > 0.01
    moved = keypoints.copy()
    moved[:, 1] += 60
    assert (mediapipe_parser.infer(image, keypoints=moved, person_mask=mask) != labels).mean() > 0.05


def test_pose_with_segment_is_used_instead_of_its_own_blazepose(blazepose_model, selfie_model):
    class FixedPose:
        """A pose estimator with segment(): its answers must be the parser's evidence."""
        def __init__(self):
            self.calls = []

        def setBackendAndTarget(self, backend_id, target_id):
            pass

        def infer(self, image):
            self.calls.append('infer')
            return np.zeros((18, 3), np.float32)

        def segment(self, image):
            self.calls.append('segment')
            return np.zeros(image.shape[:2], np.float32)

        gives_person_mask = True

        def keypoints_and_mask(self, image):
            return self.infer(image), self.segment(image)

    pose = FixedPose()
    parser = mediapipe_parsing.MediaPipeParsing(pose, selfie_model=selfie_model)
    assert parser.pose is pose
    keypoints, mask, selfie = parser.person_evidence(cv.imread(VITON_PERSONS[1]))
    assert pose.calls == ['infer', 'segment'] and not mask.any() and selfie.shape == mask.shape


# ---------------------------------------------------------------------------- pieces, by hand
def test_split_left_right_by_nearest_limb():
    keypoints = np.zeros((18, 3), np.float32)
    for index, xy in {1: (50, 20), 2: (30, 20), 3: (25, 45), 4: (22, 70), 5: (70, 20), 6: (75, 45), 7: (78, 70),
                      8: (40, 60), 9: (40, 85), 10: (40, 99), 11: (60, 60), 12: (60, 85), 13: (60, 99)}.items():
        keypoints[index] = (*xy, 1.0)
    labels = np.zeros((100, 100), np.uint8)
    labels[40:50, 20:30] = 14    # beside the right elbow (image left)
    labels[40:50, 72:80] = 14    # beside the left elbow
    labels[80:90, 36:44] = 16    # right knee
    labels[80:90, 56:64] = 16    # left knee
    labels[95:99, 56:64] = 18    # left ankle
    split = mediapipe_parsing.split_left_right(labels, keypoints)
    assert (split[40:50, 20:30] == 15).all() and (split[40:50, 72:80] == 14).all()
    assert (split[80:90, 36:44] == 17).all() and (split[80:90, 56:64] == 16).all()
    assert (split[95:99, 56:64] == 18).all() and (split[labels == 0] == 0).all()


def test_feature_planes_against_full_grid_float64():
    """The row/column-built planes against the features written out per pixel in float64."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    keypoints = np.column_stack([rng.uniform(5, 43, 18), rng.uniform(5, 59, 18), rng.uniform(0, 1, 18)])
    pose_mask, selfie_mask = rng.uniform(0, 1, (2, 64, 48)).astype(np.float32)
    planes = mediapipe_parsing.parsing_feature_planes(image, keypoints, pose_mask, selfie_mask)
    assert planes.shape == (26, 64, 48) and planes.dtype == np.float32
    p, scale = mediapipe_parsing.body_skeleton(keypoints, (64, 48))
    ys, xs = np.mgrid[0:64, 0:48].astype(np.float64)

    def segment(a, b):
        d = b - a
        t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / max(d @ d, 1e-6), 0, 1)
        return np.hypot(xs - a[0] - t * d[0], ys - a[1] - t * d[1])
    expected = [(xs - p['neck'][0]) / scale, (ys - p['neck'][1]) / scale, (ys - p['nose'][1]) / scale,
                np.hypot(xs - p['nose'][0], ys - p['nose'][1]) / scale, (ys - p['hip'][1]) / scale,
                (xs - p['hip'][0]) / scale,
                np.minimum(segment(p['rsh'], p['rel']), segment(p['lsh'], p['lel'])) / scale,
                np.minimum(segment(p['rel'], p['rwr']), segment(p['lel'], p['lwr'])) / scale,
                np.minimum(segment(p['rhip'], p['rknee']), segment(p['lhip'], p['lknee'])) / scale,
                segment(p['neck'], p['hip']) / scale]
    for i, plane in enumerate(expected):
        assert np.abs(planes[i] - plane).max() <= 1e-5 * max(1, np.abs(plane).max()), i
    clipped = np.clip(pose_mask.astype(np.float64), 4.5e-5, 1 - 4.5e-5)
    assert np.abs(planes[10] - np.log(clipped / (1 - clipped)) / 5).max() <= 1e-5
    assert np.array_equal(planes[11], selfie_mask)
    lab = cv.cvtColor(image, cv.COLOR_BGR2Lab).transpose(2, 0, 1) / 255
    assert np.abs(planes[14:17] - lab).max() <= 1e-6
    # every colour-distance plane is the Lab distance to one colour: recover it from three pixels' planes
    for plane in (17, 19, 21, 23):
        d2 = planes[plane].astype(np.float64) ** 2 - 1e-6
        colour = np.linalg.lstsq(np.column_stack([-2 * lab.reshape(3, -1).T[:4], np.ones(4)]),
                                 d2.ravel()[:4] - (lab.reshape(3, -1).T[:4] ** 2).sum(axis=1), rcond=None)[0][:3]
        assert np.abs(d2 - ((lab - colour[:, None, None]) ** 2).sum(axis=0)).max() <= 1e-5
    again = mediapipe_parsing.parsing_features(image, keypoints, pose_mask, selfie_mask)
    assert np.array_equal(again, planes.transpose(1, 2, 0)), np.argwhere(again != planes.transpose(1, 2, 0))[:3]


def test_classifier_network_equals_the_table_maths():
    """The cv.dnn 1x1-convolution graph against the perceptron written out from the .npz table."""
    classifier = mediapipe_parsing.ParsingClassifier()
    rng = np.random.default_rng(6)
    planes = rng.normal(0, 1, (mediapipe_parsing.N_PARSING_FEATURES, 37, 29)).astype(np.float32)
    with np.load(mediapipe_parsing.MEDIAPIPE_TABLE) as table:
        t = {k: table[k].astype(np.float64) for k in table.files}
    x = (planes.reshape(mediapipe_parsing.N_PARSING_FEATURES, -1).T - t['mean']) / t['std']
    hidden = np.maximum(x @ t['W1'] + t['b1'], 0)
    hidden = np.maximum(hidden @ t['W2'] + t['b2'], 0)
    expected = (hidden @ t['W3'] + t['b3']).T.reshape(-1, 37, 29)
    assert np.abs(classifier.score_planes(planes) - expected).max() <= 1e-3


def test_resize_labels_keeps_labels_and_bounds():
    labels = np.zeros((8, 6), np.uint8)
    labels[2:6, 1:5] = 5
    labels[0:2, 2:4] = 13
    big = label_argmax.resize_labels(labels, (60, 80))
    assert big.shape == (80, 60) and set(np.unique(big)) == {0, 5, 13}
    assert (cv.resize(big, (6, 8), interpolation=cv.INTER_NEAREST) == labels).mean() > 0.9


def test_scorer_against_pillow_and_hand_counts():
    rng = np.random.default_rng(3)
    truth = np.zeros((256, 192), np.uint8)
    truth[40:230, 50:150] = 5
    truth[10:40, 80:120] = 13
    predicted = np.roll(truth, 3, axis=1)
    predicted[200:230, 60:140] = 9
    # shape channel: Pillow itself, BILINEAR down to 12x16 and back
    pillow = Image.fromarray(np.where(predicted > 0, 255, 0).astype(np.uint8))
    pillow = np.array(pillow.resize((12, 16), Image.BILINEAR).resize((192, 256), Image.BILINEAR))
    assert np.array_equal(score_parsing.shape_channel(predicted), pillow)
    row = score_parsing.score_photo(predicted, truth)
    body = (190 * 100 + 30 * 40 - 3 * 190 - 3 * 30) / (190 * 100 + 30 * 40 + 3 * 190 + 3 * 30)
    assert row['body'] == pytest.approx(body)
    assert row['head'] == pytest.approx((37 * 30) / (43 * 30))
    assert np.isnan(row['lower'])   # the truth has no pants
    noisy = np.where(rng.random(truth.shape) < 0.01, 0, truth).astype(np.uint8)
    assert score_parsing.score_photo(noisy, noisy)['shape_mad'] == 0.0


# ---------------------------------------------------------------------------- model choice and CLIs
def test_create_parser_without_jppnet_says_so(tmp_path, blazepose_model, selfie_model, caplog):
    for path in (blazepose_model, selfie_model):
        os.symlink(path, tmp_path / os.path.basename(path))
    with caplog.at_level(logging.INFO, logger='human_parsing'):
        parser = hp.create_parser(directory=str(tmp_path))
    assert isinstance(parser, mediapipe_parsing.MediaPipeParsing)
    assert hp.MODEL_NAME in caplog.text and 'MediaPipe' in caplog.text


def test_create_parser_prefers_jppnet(tmp_path):
    from tools import synthetic_parsing
    synthetic_parsing.build_synthetic_parsing(str(tmp_path / hp.MODEL_NAME))
    # OpenCV 5.1+ reads no TensorFlow graph: the file is passed over for MediaPipe's models
    assert isinstance(hp.create_parser(directory=str(tmp_path)),
                      hp.JppNet if hp.TENSORFLOW_IMPORTER else mediapipe_parsing.MediaPipeParsing)


def test_human_parsing_cli_defaults_to_mediapipe(synthetic_models_home, tmp_path):
    out, labels_out = tmp_path / 'parsing.png', tmp_path / 'labels.png'
    result = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'human_parsing.py'), '-i', VITON_PERSONS[2],
                             '-o', out, '--labels-out', labels_out], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OPENCV_TRYON_MODELS=synthetic_models_home))
    assert result.returncode == 0, result.stderr
    assert 'MediaPipe' in result.stderr
    labels = cv.imread(str(labels_out), cv.IMREAD_UNCHANGED)
    assert labels.shape == (256, 192) and {0, 5, 13}.issubset(set(np.unique(labels)))


def test_synthetic_try_on_uses_real_pose_and_parsing(synthetic_models_home, tmp_path):
    out = tmp_path / 'out.png'
    result = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'virtual_try_on.py'), '--synthetic',
                             '-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', out],
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, OPENCV_TRYON_MODELS=synthetic_models_home))
    assert result.returncode == 0, result.stderr
    assert 'BlazePose' in result.stderr and 'MediaPipe' in result.stderr
    assert 'lip_jppnet_384.pb not found' in result.stderr
    synthetic = [line for line in result.stderr.splitlines() if 'SYNTHETIC' in line]
    assert synthetic and not any('lip_jppnet_384.pb' in line for line in synthetic)  # no synthetic parsing
    assert cv.imread(str(out)).shape == (256, 192, 3)
