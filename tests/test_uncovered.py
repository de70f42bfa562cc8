"""The skin a try-on makes (uncovered.py), on a person drawn by hand: it takes the colour of the person's
visible skin (checked against the colour the face was painted with, converted by hand-written CIE Lab
formulas, not OpenCV's), only on the body, never under the new garment, and nothing else of the TOM's paint
changes; and through the whole chain on a VITON test person whose long-sleeved garment is replaced."""
import os
import sys

import cv2 as cv
import numpy as np
import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

import uncovered  # noqa: E402
from test_photo_kept import KEYPOINTS, LABELS  # noqa: E402

FACE_BGR = (120, 150, 200)   # a warm skin colour
GARMENT_BGR = (40, 40, 40)


def lab_of(bgr):
    """sRGB (8-bit BGR) -> CIE Lab (D65), by the textbook formulas."""
    rgb = np.array(bgr[::-1], np.float64) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= (0.95047, 1.0, 1.08883)
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def drawn_person():
    person = np.full(LABELS.shape + (3,), 230, np.uint8)
    person[LABELS == 13] = FACE_BGR
    person[np.isin(LABELS, (14, 15))] = FACE_BGR
    person[LABELS == 5] = GARMENT_BGR
    return person


def test_reference_tone_is_the_visible_skin_colour():
    region = np.zeros(LABELS.shape, bool)
    tone = uncovered.reference_tone(drawn_person(), LABELS, region)
    lab = lab_of(FACE_BGR)
    # OpenCV's 8-bit Lab: L * 255 / 100, a + 128, b + 128
    assert abs(tone[0] - lab[0] * 255 / 100) <= 1.5
    assert abs(tone[1] - (lab[1] + 128)) <= 1.5 and abs(tone[2] - (lab[2] + 128)) <= 1.5
    # no visible skin (all of it repainted): no tone
    assert uncovered.reference_tone(drawn_person(), LABELS, np.ones(LABELS.shape, bool)) is None


def test_made_skin_is_on_the_body_off_the_new_garment_in_the_persons_tone():
    person = drawn_person()
    region = np.isin(LABELS, (5, 14, 15))          # the old garment and the arms are repainted
    cover = np.zeros(LABELS.shape, bool)
    cover[90:170, 70:122] = True                   # the new garment: a smaller top
    rendered = np.full(LABELS.shape + (3,), 200, np.uint8)  # the TOM's pale paint
    zone = uncovered.body_zone(LABELS, KEYPOINTS, region, cover)
    assert not (zone & cover).any() and not (zone & ~region).any()
    assert zone[120, 50] and zone[120, 142]        # the arms along the elbows
    assert zone[80, 96]                            # between the old neckline and the new one
    # a loose flap of the old garment, off the body: not skin
    labels = LABELS.copy()
    labels[200:240, 0:25] = 5
    flap = uncovered.body_zone(labels, KEYPOINTS, np.isin(labels, (5, 14, 15)), cover)
    assert not flap[200:240, 0:25].any() and np.array_equal(flap[:200], zone[:200])
    # ... it takes the background's colour (230) from around it, not the TOM's grey (200)
    composition = np.ones(LABELS.shape, np.float32)  # the TOM composing the warped cloth everywhere
    painted, _ = uncovered.paint(rendered, composition, person, labels, KEYPOINTS, np.isin(labels, (5, 14, 15)),
                                 cover)
    assert np.abs(painted[205:235, 3:22].astype(int) - 230).max() <= 6
    result, made_composition = uncovered.paint(rendered, composition, person, LABELS, KEYPOINTS, region, cover)
    # no garment on the made skin; the new garment's composition untouched
    assert not made_composition[zone].any() and np.array_equal(made_composition[cover], composition[cover])
    # the TOM's paint stays on the new garment and outside the region
    assert np.array_equal(result[~region | cover], rendered[~region | cover])
    # deep inside the zone (no edge darkening, no soft edge): the face's a and b, lightness near it
    inner = cv.erode(zone.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert inner.any()
    lab = cv.cvtColor(result, cv.COLOR_BGR2Lab)[inner].astype(np.float64)
    tone = lab_of(FACE_BGR)
    assert np.abs(np.median(lab[:, 1]) - (tone[1] + 128)) <= 2 and np.abs(np.median(lab[:, 2]) - (tone[2] + 128)) <= 2
    assert np.abs(np.median(lab[:, 0]) - tone[0] * 255 / 100) <= 3
    # the outline is darker than the middle, as a rounded limb's
    edge = zone & ~(cv.erode(zone.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    assert np.median(cv.cvtColor(result, cv.COLOR_BGR2Lab)[edge][:, 0]) < np.median(lab[:, 0]) - 5


SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, 'realworld', 'person')), reason='no real photos')
def test_long_sleeves_under_a_short_sleeved_garment_become_the_persons_skin():
    """A real photo (the first of realworld/person: long black mesh sleeves) with a short-sleeved tee: the
    forearm pixels the sleeve covered are repainted in a colour near the face's, not the TOM's pale grey."""
    import image_io
    from tryon_pipeline import load_tryon
    folder = os.path.join(SHARED, 'realworld')
    person_path = os.path.join(folder, 'person', sorted(os.listdir(os.path.join(folder, 'person')))[0])
    garment_path = os.path.join(folder, 'garment', sorted(os.listdir(os.path.join(folder, 'garment')))[0])
    photo = image_io.read_image(person_path, 'person photo')
    tryon = load_tryon()
    analysis = tryon.analyse(photo)
    result = tryon.infer(analysis, image_io.read_image(garment_path, 'garment photo'))
    x, y, w, h = analysis.box
    face = cv.resize((analysis.labels == 13).astype(np.uint8), (w, h), interpolation=cv.INTER_NEAREST) > 0
    face_lab = np.median(cv.cvtColor(photo[y:y + h, x:x + w], cv.COLOR_BGR2Lab)[face].astype(np.float64), axis=0)
    # the upper arm: a third of the way from shoulder to elbow, in the photo
    from coco_parts import PART_INDEX
    shoulder, elbow = analysis.keypoints[PART_INDEX['LShoulder'], :2], analysis.keypoints[PART_INDEX['LElbow'], :2]
    px, py = shoulder + (elbow - shoulder) * 0.5
    col, row = int(x + px * w / 192), int(y + py * h / 256)
    patch = cv.cvtColor(result[row - 3:row + 4, col - 3:col + 4], cv.COLOR_BGR2Lab).reshape(-1, 3).astype(np.float64)
    before = cv.cvtColor(photo[row - 3:row + 4, col - 3:col + 4], cv.COLOR_BGR2Lab).reshape(-1, 3).astype(np.float64)
    assert np.median(before[:, 0]) < 80                           # the photo: a black sleeve
    chroma = np.median(patch[:, 1:], axis=0)
    assert np.all(np.abs(chroma - face_lab[1:]) < 8), (chroma, face_lab)


def test_garment_cover_takes_the_toms_coverage_only_where_it_paints_the_garments_colour():
    """A red garment warped into rows 60-150; the TOM's coverage reaches rows 40-200. Below the garment it
    paints red (the garment the warp missed by a little: covered); above it, pale grey (its guess of a
    garment where a shorter one lies: not covered)."""
    tryon = np.full((256, 192, 3), 200, np.uint8)
    warp_cover = np.zeros((256, 192), bool)
    warp_cover[60:150, 50:140] = True
    tryon[60:200, 50:140] = (40, 40, 200)          # BGR red: the garment and its continuation
    tryon[40:60, 50:140] = (225, 225, 225)         # pale paint above it
    coverage = np.zeros((256, 192), np.float32)
    coverage[40:200, 50:140] = 0.9
    cover = uncovered.garment_cover(tryon, warp_cover, coverage)
    assert cover[60:200, 50:140].all()
    assert not cover[40:60].any() and not cover[200:].any()
    # a print does not break it: every other column of the garment black, the continuation the blur the
    # TOM paints (the stripes' mean)
    striped = tryon.copy()
    striped[60:150, 50:140:2] = (20, 20, 20)
    striped[150:200, 50:140] = (30, 30, 110)
    assert uncovered.garment_cover(striped, warp_cover, coverage)[150:160, 60:130].mean() > 0.5


def test_garment_cover_takes_a_plain_garments_own_colour_past_a_print_at_its_edge():
    """A white garment whose warped part ends in a blue print band (the warp squeezed it); below, the TOM
    paints white: the garment's main colour, though not the print's next to it. Pale grey paint is not it."""
    tryon = np.full((256, 192, 3), 200, np.uint8)
    warp_cover = np.zeros((256, 192), bool)
    warp_cover[40:120, 50:140] = True
    tryon[40:105, 50:140] = 250                    # white
    tryon[105:120, 50:140] = (200, 60, 20)         # a blue print band at the warped part's lower edge
    tryon[120:200, 50:140] = 248                   # the TOM's white continuation
    tryon[200:230, 50:140] = 205                   # pale grey further down
    coverage = np.zeros((256, 192), np.float32)
    coverage[40:230, 50:140] = 0.9
    cover = uncovered.garment_cover(tryon, warp_cover, coverage)
    assert cover[120:200, 50:140].all() and not cover[200:230].any()
