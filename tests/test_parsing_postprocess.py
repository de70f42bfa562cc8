"""human_parsing's fast post-processing (scores -> labels) against the previous NumPy implementation,
kept here as the reference: the labels must be identical, pixel for pixel, on scores of the shared
VITON photos and on random scores, at the try-on's size and in the strips of a big photo."""
import cv2 as cv
import numpy as np
import pytest

from conftest import VITON_PERSONS

import human_parsing as hp
import label_argmax
from tools import synthetic_parsing

MIRROR = np.array(list(range(14)) + [15, 14, 17, 16, 19, 18])


# ---------------------------------------------------------------------------- the previous implementation
def reference_taps(source_size, target_size):
    position = np.clip((np.arange(target_size) + 0.5) * (source_size / target_size) - 0.5, 0, source_size - 1)
    first = np.floor(position).astype(np.intp)
    return first, np.minimum(first + 1, source_size - 1), (position - first).astype(np.float32)


def reference_labels(scores, scores_mirrored, size):
    """Average with the flipped, left/right-swapped mirror in float32, bilinear resize rows then columns
    in float32, first argmax: the maths of human_parsing before the fast version."""
    merged = (np.asarray(scores, np.float32) + np.asarray(scores_mirrored, np.float32)[MIRROR, :, ::-1]) \
        * np.float32(0.5)
    width, height = size
    row0, row1, row_weight = reference_taps(merged.shape[1], height)
    col0, col1, col_weight = reference_taps(merged.shape[2], width)
    labels = np.empty((height, width), np.uint8)
    for top in range(0, height, 64):
        rows = slice(top, min(top + 64, height))
        wy = row_weight[rows][None, :, None]
        vertical = merged[:, row0[rows], :] * (1 - wy) + merged[:, row1[rows], :] * wy
        wx = col_weight[None, None, :]
        labels[rows] = (vertical[:, :, col0] * (1 - wx) + vertical[:, :, col1] * wx).argmax(axis=0)
    return labels


# ---------------------------------------------------------------------------- scores of the shared photos
@pytest.fixture(scope='module')
def viton_scores(tmp_path_factory):
    """(2, 20, 384, 384) scores of the synthetic JPPNet for each shared VITON person, with the photo."""
    if not hp.TENSORFLOW_IMPORTER:
        pytest.skip('OpenCV %s has no TensorFlow importer (removed in 5.1)' % cv.__version__)
    model = synthetic_parsing.build_synthetic_parsing(str(tmp_path_factory.mktemp('parsing') / 'lip.pb'))
    net = hp.JppNet(model)
    return [(cv.imread(path), net.forward_scores(cv.imread(path))) for path in VITON_PERSONS]


def test_same_labels_as_before_on_viton_scores(viton_scores):
    for image, scores in viton_scores:
        height, width = image.shape[:2]
        for size in ((width, height), (384, 512), (97, 131)):
            np.testing.assert_array_equal(hp.merge_flipped(scores[0], scores[1], size),
                                          reference_labels(scores[0], scores[1], size))


def test_same_labels_as_before_on_near_ties(viton_scores):
    """Scores quantised to a coarse grid: many classes tie exactly after the merge and the resize,
    so the first-index rule and the exact recomputation are both exercised."""
    _, scores = viton_scores[0]
    coarse = np.round(scores * 4) / 4
    labels = hp.merge_flipped(coarse[0], coarse[1], (192, 256))
    np.testing.assert_array_equal(labels, reference_labels(coarse[0], coarse[1], (192, 256)))
    merged = hp.merge_flipped_scores(coarse[0], coarse[1])
    resized = cv.resize(np.ascontiguousarray(merged.transpose(1, 2, 0)), (192, 256))
    ordered = np.sort(resized, axis=2)
    assert (ordered[..., -1] - ordered[..., -2] < 1e-3).sum() > 100  # the case is really full of ties


@pytest.mark.parametrize('source, size', [((12, 10), (7, 5)), ((12, 10), (3000, 130)), ((384, 384), (192, 256)),
                                          ((384, 384), (1, 1)), ((384, 384), (1100, 1000)),
                                          ((30, 40), (40, 30)), ((1, 5), (9, 4)), ((1, 1), (2, 3)),
                                          ((2, 2), (1, 1))])
def test_same_labels_as_before_on_random_scores(source, size):
    rng = np.random.default_rng(sum(source) + sum(size))
    scale = rng.choice([1e-3, 1.0, 30.0])
    scores = (rng.standard_normal((2, 20) + source) * scale).astype(np.float32)
    labels = hp.merge_flipped(scores[0], scores[1], size)
    assert labels.shape == (size[1], size[0]) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, reference_labels(scores[0], scores[1], size))


def test_big_output_goes_in_strips_with_the_same_labels(monkeypatch):
    rng = np.random.default_rng(7)
    scores = rng.standard_normal((2, 20, 48, 40)).astype(np.float32)
    monkeypatch.setattr(label_argmax, 'STRIP_PIXELS', 997)  # strips of a few rows, not aligned with the source rows
    size = (150, 211)
    np.testing.assert_array_equal(hp.merge_flipped(scores[0], scores[1], size),
                                  reference_labels(scores[0], scores[1], size))


@pytest.mark.filterwarnings('ignore:invalid value:RuntimeWarning')  # the reference's inf * 0
def test_non_finite_scores_follow_numpy_argmax():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((2, 20, 16, 12)).astype(np.float32)
    scores[0, 3, 5, 5] = np.nan
    scores[1, 7, 2, 2] = np.inf
    scores[0, 9, 10, 1] = -np.inf
    np.testing.assert_array_equal(hp.merge_flipped(scores[0], scores[1], (30, 40)),
                                  reference_labels(scores[0], scores[1], (30, 40)))


def test_single_map_argmax_resized_matches_the_reference():
    rng = np.random.default_rng(11)
    scores = rng.standard_normal((20, 50, 30)).astype(np.float32)
    zeros = np.zeros_like(scores)
    # averaging with a zero mirror halves the scores: the same argmax, the same ties
    np.testing.assert_array_equal(label_argmax.argmax_resized(scores, (64, 77)), reference_labels(scores, zeros, (64, 77)))


def test_cv_resize_stays_within_the_assumed_error_bound():
    """The fast path trusts cv.resize to differ from exact bilinear maths by its weights, as
    _resize_weight_error measures them, plus a few roundings: check that on data, with a quarter of
    the slack the code allows."""
    rng = np.random.default_rng(5)
    for source, size in (((384, 384), (192, 256)), ((384, 384), (531, 707)), ((384, 384), (100, 77)),
                         ((48, 40), (150, 211)), ((7, 384), (192, 7))):
        plane = (rng.standard_normal(source) * 20).astype(np.float32)
        row0, row1, _ = reference_taps(source[0], size[1])
        col0, col1, _ = reference_taps(source[1], size[0])
        wy = np.clip((np.arange(size[1]) + 0.5) * source[0] / size[1] - 0.5, 0, source[0] - 1) - row0
        wx = np.clip((np.arange(size[0]) + 0.5) * source[1] / size[0] - 0.5, 0, source[1] - 1) - col0
        p = plane.astype(np.float64)
        vertical = p[row0] * (1 - wy)[:, None] + p[row1] * wy[:, None]
        exact = vertical[:, col0] * (1 - wx) + vertical[:, col1] * wx
        error = np.abs(cv.resize(plane, size, interpolation=cv.INTER_LINEAR) - exact).max()
        weight_error = sum(label_argmax._resize_weight_error(source, size))
        assert weight_error < 1e-6
        bound = (weight_error + 64 * 2.0 ** -24) * np.abs(plane).max()
        assert error <= bound, (source, size, error, bound)


def test_weight_error_sees_a_wrong_resize(monkeypatch):
    """The measurement is not blind: a resize with shifted weights is caught."""
    real_resize = cv.resize

    def shifted(image, size, interpolation=None):
        out = real_resize(image, size, interpolation=interpolation)
        return out * np.float32(0.999)
    monkeypatch.setattr(hp.cv, 'resize', shifted)
    label_argmax._resize_weight_error.cache_clear()
    try:
        assert min(label_argmax._resize_weight_error((384, 384), (192, 256))) > 1e-4
    finally:
        label_argmax._resize_weight_error.cache_clear()
