"""The photo-kept person representation (photo_kept.py), the framing crop (framing.py) and half-body photos,
against hand-computed cases and against the photo itself: what the try-on must not change stays the photo's
own pixels."""
import os
import sys

import cv2 as cv
import numpy as np
import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

import framing  # noqa: E402
import human_parsing  # noqa: E402
import openpose  # noqa: E402
import photo_kept  # noqa: E402
from coco_parts import PART_INDEX  # noqa: E402
from cp_vton import HEIGHT, WIDTH, CpVton, crop_to_ratio  # noqa: E402
from tryon_pipeline import VirtualTryOn, has_torso  # noqa: E402

SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
VITON_TEST = os.path.join(SHARED, 'viton', 'test')


def keypoints_of(**points):
    keypoints = np.zeros((18, 3), np.float32)
    for name, (x, y) in points.items():
        keypoints[PART_INDEX[name]] = (x, y, 1)
    return keypoints


# a person drawn by hand in the 256x192 frame: face, upper garment, arms, pants
LABELS = np.zeros((HEIGHT, WIDTH), np.uint8)
LABELS[20:70, 75:115] = 13       # face (chin: row 70)
LABELS[10:20, 70:120] = 2        # hair
LABELS[75:190, 60:132] = 5       # upper clothes
LABELS[80:180, 40:60] = 14       # left arm (image left), down to the wrist
LABELS[80:180, 132:152] = 15     # right arm
LABELS[190:256, 62:130] = 9      # pants
KEYPOINTS = keypoints_of(Neck=(96, 75), RShoulder=(60, 80), LShoulder=(132, 80), RElbow=(50, 130),
                         LElbow=(142, 130), RWrist=(50, 175), LWrist=(142, 175), RHip=(75, 190), LHip=(117, 190))


def test_hole_covers_garment_and_arms_keeps_head_hands_and_everything_above_the_chin():
    hole = photo_kept.hole(LABELS, KEYPOINTS)
    assert hole[100:180, 62:130].all()                       # the garment
    assert hole[90:160, 42:58].all() and hole[90:160, 134:150].all()  # the arms, away from the wrists
    assert not hole[:70].any()                               # the face's last row is 69: nothing above the chin
    assert not hole[np.isin(LABELS, photo_kept.HEAD_LABELS)].any()
    # a hand: arm pixels within HAND_RADIUS * shoulder width (72 px -> 11 px) of a wrist stay
    assert not hole[175, 50] and not hole[178, 142]
    # dilated by HOLE_DILATION beyond the garment and arms, but not far into the pants or background
    assert hole[192, 96] and not hole[230, 96] and not hole[120, 5]


def test_hole_without_hips_reaches_a_torso_length_below_the_neck():
    half = KEYPOINTS.copy()
    half[[PART_INDEX[n] for n in ('RHip', 'LHip', 'RKnee', 'LKnee', 'RAnkle', 'LAnkle')]] = 0
    labels = LABELS.copy()
    labels[120:] = 0  # the photo ends at the waist: no garment below row 120 either
    hole = photo_kept.hole(labels, half)
    # shoulders 72 px apart: the torso polygon reaches neck + 1.5 * 72 = row 183
    assert hole[180, 96] and not hole[190, 96]


def test_person_tensor_holds_agnostic_photo_outside_the_hole_and_the_hole():
    rng = np.random.default_rng(0)
    agnostic = rng.uniform(-1, 1, (1, 22, HEIGHT, WIDTH)).astype(np.float32)
    person = rng.uniform(-1, 1, (3, HEIGHT, WIDTH)).astype(np.float32)
    hole = photo_kept.hole(LABELS, KEYPOINTS)
    tensor = photo_kept.person_tensor(agnostic, person, hole)
    assert tensor.shape == (1, photo_kept.PERSON_CHANNELS, HEIGHT, WIDTH)
    assert np.array_equal(tensor[0, :22], agnostic[0])
    assert np.array_equal(tensor[0, 22:25][:, ~hole], person[:, ~hole])
    assert not tensor[0, 22:25][:, hole].any()
    assert np.array_equal(tensor[0, 25], hole.astype(np.float32))


def test_paint_mask_is_old_garment_or_new_coverage_inside_the_hole():
    hole = photo_kept.hole(LABELS, KEYPOINTS)
    coverage = np.zeros((HEIGHT, WIDTH), np.float32)
    coverage[90:170, 40:60] = 0.9       # long sleeves over the left arm
    coverage[200:240, 60:130] = 0.9     # a long garment over the pants, outside the hole
    paint = photo_kept.paint_mask(LABELS, hole, coverage)
    assert paint[100:180, 62:130].all()                 # the old garment goes
    assert paint[100:160, 42:58].all()                  # the covered arm
    assert not paint[100:160, 134:150].any()            # the bare arm stays
    assert not paint[200:240].any()                     # outside the hole nothing changes


def test_framing_of_vitons_median_person_is_the_frame_and_scales_with_the_person():
    (neck_x, neck_y), shoulders, torso = framing.viton_framing()
    median = keypoints_of(Neck=(neck_x, neck_y), RShoulder=(neck_x - shoulders / 2, neck_y),
                          LShoulder=(neck_x + shoulders / 2, neck_y), RHip=(neck_x - 20, neck_y + torso),
                          LHip=(neck_x + 20, neck_y + torso))
    box = framing.person_box(median, (WIDTH, HEIGHT))
    assert np.allclose(box, (0, 0, WIDTH, HEIGHT), atol=1e-4)
    # the same person three times smaller, at (500, 100) in a wide shot: a box three times smaller there
    small = median.copy()
    small[:, :2] = small[:, :2] / 3 + (500, 100)
    small[:, 2] = median[:, 2]
    small[median[:, 2] == 0] = 0
    assert np.allclose(framing.person_box(small, (WIDTH, HEIGHT)), (500, 100, WIDTH / 3, HEIGHT / 3), atol=1e-4)
    # hips out of frame: the shoulders alone give the scale
    half = median.copy()
    half[[PART_INDEX['RHip'], PART_INDEX['LHip']]] = 0
    assert np.allclose(framing.person_box(half, (WIDTH, HEIGHT)), (0, 0, WIDTH, HEIGHT), atol=1e-4)
    assert framing.person_box(keypoints_of(Neck=(5, 5)), (WIDTH, HEIGHT)) is None


def test_crop_padded_repeats_the_edge_outside_the_image():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    crop = framing.crop_padded(image, (-2, 1, 4, 5))
    assert crop.shape == (5, 4, 3)
    assert np.array_equal(crop[0, 2:], image[1, :2])
    assert np.array_equal(crop[0, 0], image[1, 0]) and np.array_equal(crop[4, 3], image[3, 1])


def test_half_body_needs_neck_and_a_shoulder_only():
    assert has_torso(keypoints_of(Neck=(96, 80), RShoulder=(60, 80)))
    assert not has_torso(keypoints_of(Neck=(96, 80), RHip=(70, 200), LHip=(120, 200)))
    assert not has_torso(keypoints_of(RShoulder=(60, 80), LShoulder=(130, 80)))


@pytest.fixture(scope='module')
def photo_kept_pair(tmp_path_factory):
    from tools import synthetic
    directory = tmp_path_factory.mktemp('photo_kept')
    gmm = synthetic.build_gmm(str(directory / 'cp_vton_gmm.onnx'))
    tom = str(directory / 'photo_kept_tom.onnx')
    synthetic.build_photo_kept_tom(tom)
    return gmm, tom


@pytest.mark.skipif(not os.path.isdir(VITON_TEST), reason='shared VITON test data not found')
def test_photo_kept_result_keeps_the_photo_outside_the_paint_mask(photo_kept_pair):
    """256x192 and full resolution: every pixel outside the region the try-on may change is the photo's own,
    and no pixel above the chin changes, with VITON's own parsing and keypoints as the reference."""
    model = CpVton(*photo_kept_pair)
    assert model.representation == photo_kept.PHOTO_KEPT
    tryon = VirtualTryOn(model)
    stem = '000010_0'
    photo = cv.imread(os.path.join(VITON_TEST, 'image', stem + '.jpg'))
    labels = human_parsing.read_parsing(os.path.join(VITON_TEST, 'image-parse', stem + '.png'))
    keypoints = openpose.read_keypoints_json(os.path.join(VITON_TEST, 'pose', stem + '_keypoints.json'))
    cloth = cv.imread(os.path.join(VITON_TEST, 'cloth', '000048_1.jpg'))
    analysis = tryon.analyse(photo, keypoints, labels)
    small = tryon.infer(analysis, cloth, full_resolution=False)
    hole = photo_kept.hole(labels, keypoints)
    changed = np.any(small != photo, axis=2)
    assert changed.any()
    assert not changed[~hole].any()
    assert not changed[:photo_kept.chin_row(labels, keypoints)].any()
    assert not changed[np.isin(labels, photo_kept.HEAD_LABELS)].any()
    # full resolution: the photo enlarged 4x in a wider white frame (a box inside the photo)
    big = cv.copyMakeBorder(cv.resize(photo, None, fx=4, fy=4, interpolation=cv.INTER_LANCZOS4), 0, 0, 200, 200,
                            cv.BORDER_CONSTANT, value=(255, 255, 255))
    keypoints_big = keypoints.copy()
    keypoints_big[:, :2] = keypoints[:, :2] * 4 + (200, 0)
    labels_big = cv.copyMakeBorder(cv.resize(labels, None, fx=4, fy=4, interpolation=cv.INTER_NEAREST), 0, 0, 200, 200,
                                   cv.BORDER_CONSTANT, value=0)
    result = tryon.infer(big, cloth, keypoints_big, labels_big)
    assert result.shape == big.shape
    changed = np.any(result != big, axis=2)
    _, box = crop_to_ratio(big)
    chin = box[1] + photo_kept.chin_row(labels, keypoints) * box[3] // HEIGHT
    assert changed.any() and not changed[:chin].any()
    # the soft edge reaches at most FEATHER + 1 model pixel (4 photo pixels each) beyond the hole
    reach = cv.dilate(cv.resize(hole.astype(np.uint8), (box[2], box[3]), interpolation=cv.INTER_NEAREST),
                      np.ones((2 * 8 + 1, 2 * 8 + 1), np.uint8))
    allowed = np.zeros(big.shape[:2], bool)
    allowed[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = reach > 0
    assert not changed[~allowed].any()
