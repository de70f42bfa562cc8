"""pil_bilinear.resize against the installed Pillow, pixel for pixel.

The reference is always Pillow itself (Image.fromarray(...).resize(size, BILINEAR)); nothing here
compares the module with its own output.
"""
import subprocess
import sys

import cv2 as cv
import numpy as np
import pytest
from PIL import Image

import pil_bilinear
from conftest import REPO_DIR, VITON_PERSONS

BILINEAR = Image.Resampling.BILINEAR
LAYOUTS = ('HW', 'HW1', 'HW2', 'HW3', 'HW4')
KINDS = ('shrink', 'enlarge', 'mixed', 'one-axis')
CASES_PER_LAYOUT = 1000
SEED = 2018


def pillow_resize(image, size):
    """The reference: Pillow's own resize. (H, W, 1) has no Pillow mode, so it goes through "L"."""
    if image.ndim == 3 and image.shape[2] == 1:
        return np.asarray(Image.fromarray(image[:, :, 0]).resize(size, BILINEAR))[:, :, None]
    return np.asarray(Image.fromarray(image).resize(size, BILINEAR))


def mismatch(image, size):
    """Description of how resize differs from Pillow, or None when every pixel is equal."""
    expected = pillow_resize(image, size)
    got = pil_bilinear.resize(image, size)
    if got.dtype != np.uint8 or got.shape != expected.shape:
        return 'shape %s -> %s: got %s %s, Pillow %s' % (image.shape, size, got.shape, got.dtype,
                                                         expected.shape)
    wrong = int(np.count_nonzero(got != expected))
    if wrong:
        return 'shape %s -> %s: %d values differ' % (image.shape, size, wrong)
    return None


# ---------------------------------------------------------------------------- random cases
def _side(rng):
    """A side length in 1..400, biased towards small ones to keep the run fast."""
    r = rng.random()
    if r < 0.60:
        return int(rng.integers(1, 33))
    if r < 0.90:
        return int(rng.integers(33, 129))
    return int(rng.integers(129, 401))


def _target(rng, size, kind):
    if kind == 'shrink':
        return int(rng.integers(1, size)) if size > 1 else 1
    return min(400, size + _side(rng))  # enlarge


def _changed(rng, size):
    while True:
        new_size = _target(rng, size, 'shrink' if rng.random() < 0.5 else 'enlarge')
        if new_size != size:
            return new_size


def _random_case(rng, layout, kind):
    height, width = _side(rng), _side(rng)
    if kind in ('shrink', 'mixed'):  # the shrinking axes need room to shrink
        height, width = max(height, 2), max(width, 2)
    if kind == 'shrink':
        out_w, out_h = _target(rng, width, 'shrink'), _target(rng, height, 'shrink')
    elif kind == 'enlarge':
        out_w, out_h = _target(rng, width, 'enlarge'), _target(rng, height, 'enlarge')
        width, height = min(width, out_w - 1), min(height, out_h - 1)
    elif kind == 'mixed':
        if rng.random() < 0.5:
            out_w, out_h = _target(rng, width, 'shrink'), _target(rng, height, 'enlarge')
            height = min(height, out_h - 1)
        else:
            out_w, out_h = _target(rng, width, 'enlarge'), _target(rng, height, 'shrink')
            width = min(width, out_w - 1)
    elif rng.random() < 0.5:  # one axis keeps its size
        out_w, out_h = _changed(rng, width), height
    else:
        out_w, out_h = width, _changed(rng, height)
    shape = (height, width) + (() if layout == 'HW' else (int(layout[2]),))
    content = ('noise', 'mask', 'mask-alpha')[int(rng.integers(0, 3))]
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    if content == 'mask':
        image = np.where(image > 127, 255, 0).astype(np.uint8)
    elif content == 'mask-alpha' and image.ndim == 3:  # noisy colour, binary (or 0/255-heavy) alpha
        image[..., -1] = rng.choice(np.array([0, 255, 1, 254, 128], np.uint8), shape[:2],
                                    p=[0.4, 0.4, 0.05, 0.05, 0.1])
    return image, (out_w, out_h), kind, content


def random_cases(layout):
    rng = np.random.default_rng([SEED, LAYOUTS.index(layout)])
    return [_random_case(rng, layout, KINDS[i % len(KINDS)]) for i in range(CASES_PER_LAYOUT)]


def test_random_case_set_is_large_and_varied():
    cases = [case for layout in LAYOUTS for case in random_cases(layout)]
    assert len(cases) >= 2000
    seen = set()
    for image, (out_w, out_h), kind, content in cases:
        height, width = image.shape[:2]
        seen.add((image.ndim, image.shape[2:], kind, content))
        if kind == 'shrink':
            assert out_w <= width and out_h <= height and (out_w, out_h) != (width, height)
        elif kind == 'enlarge':
            assert out_w > width and out_h > height
        elif kind == 'mixed':
            assert (out_w - width) * (out_h - height) < 0
        else:
            assert (out_w == width) != (out_h == height)
    assert {kind for *_, kind, _ in seen} == set(KINDS)
    assert {shape for _, shape, _, _ in seen} == {(), (1,), (2,), (3,), (4,)}
    sides = [s for image, size, _, _ in cases for s in image.shape[:2] + size]
    assert min(sides) == 1 and max(sides) >= 300


@pytest.mark.parametrize('layout', LAYOUTS)
def test_random_cases_match_pillow(layout):
    failures = [m for image, size, _, _ in random_cases(layout)
                for m in [mismatch(image, size)] if m]
    assert not failures, '%d of %d cases differ from Pillow, e.g. %s' % (
        len(failures), CASES_PER_LAYOUT, failures[:3])


# ---------------------------------------------------------------------------- pass order
def test_pass_order_follows_installed_pillow():
    major = int(Image.__version__.split('.')[0])
    assert pil_bilinear.VERTICAL_FIRST_ON_TALL_SHRINK == (major >= 13)
    # a case where the order changes the result: height 26 -> 9 shrinks much more than 15 -> 36
    image = np.random.default_rng(1).integers(0, 256, (26, 15), dtype=np.uint8)
    horizontal_then_vertical = pillow_resize(pillow_resize(image, (36, 26)), (36, 9))
    vertical_then_horizontal = pillow_resize(pillow_resize(image, (15, 9)), (36, 9))
    assert np.count_nonzero(horizontal_then_vertical != vertical_then_horizontal) > 0
    expected = vertical_then_horizontal if major >= 13 else horizontal_then_vertical
    np.testing.assert_array_equal(pillow_resize(image, (36, 9)), expected)
    np.testing.assert_array_equal(pil_bilinear.resize(image, (36, 9)), expected)


@pytest.mark.parametrize('mode', ['L', 'RGB', 'RGBA'])
def test_pillow_12_pass_order_is_horizontal_then_vertical(monkeypatch, mode):
    """Pillow <= 12 always ran the horizontal pass first; that equals two one-axis Pillow resizes
    (RGBA composed in premultiplied "RGBa" so it is premultiplied only once)."""
    monkeypatch.setattr(pil_bilinear, 'VERTICAL_FIRST_ON_TALL_SHRINK', False)
    rng = np.random.default_rng(12)
    channels = {'L': (), 'RGB': (3,), 'RGBA': (4,)}[mode]
    for _ in range(40):
        height, width = int(rng.integers(20, 120)), int(rng.integers(2, 60))
        out_w, out_h = int(rng.integers(1, 90)), int(rng.integers(1, height // 2))
        image = rng.integers(0, 256, (height, width) + channels, dtype=np.uint8)
        work = Image.fromarray(image)
        if mode == 'RGBA':
            work = work.convert('RGBa')
        work = work.resize((out_w, height), BILINEAR).resize((out_w, out_h), BILINEAR)
        expected = np.asarray(work.convert(mode) if mode == 'RGBA' else work)
        np.testing.assert_array_equal(pil_bilinear.resize(image, (out_w, out_h)), expected)


# ---------------------------------------------------------------------------- CP-VTON's blur
def person_mask(path):
    """Rough body mask of a VITON photo: pixels far from the plain background colour."""
    photo = cv.imread(path).astype(np.int16)
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    background = np.median(border, axis=0)
    return np.where(np.abs(photo - background).max(axis=2) > 30, 255, 0).astype(np.uint8)


def blob_masks(count, seed=7):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        mask = np.zeros((256, 192), np.uint8)
        for _ in range(int(rng.integers(1, 6))):
            centre = (int(rng.integers(0, 192)), int(rng.integers(0, 256)))
            axes = (int(rng.integers(2, 60)), int(rng.integers(2, 90)))
            cv.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        yield mask


def cpvton_round_trip_matches(mask):
    small = pil_bilinear.resize(mask, (12, 16))
    np.testing.assert_array_equal(small, pillow_resize(mask, (12, 16)))
    blurred = pil_bilinear.resize(small, (192, 256))
    np.testing.assert_array_equal(blurred, pillow_resize(pillow_resize(mask, (12, 16)), (192, 256)))
    return blurred


@pytest.mark.parametrize('path', VITON_PERSONS, ids=lambda p: p.rsplit('/', 1)[-1])
def test_cpvton_body_shape_blur_on_viton_person(path):
    mask = person_mask(path)
    assert 0.1 < np.mean(mask > 0) < 0.9  # a real silhouette, not an empty or full frame
    blurred = cpvton_round_trip_matches(mask)
    assert len(np.unique(blurred)) > 10  # the round trip really blurs
    # the same mask as CP-VTON's (H, W, 1) tensor-like layout
    cpvton_round_trip_matches(mask[:, :, None])


def test_cpvton_body_shape_blur_on_random_blobs():
    for mask in blob_masks(40):
        cpvton_round_trip_matches(mask)


# ---------------------------------------------------------------------------- edge cases
EDGE_SIZES = [
    ((1, 1), (1, 1)), ((1, 1), (400, 1)), ((1, 1), (1, 400)), ((1, 1), (400, 400)),
    ((400, 1), (1, 1)), ((1, 400), (1, 1)), ((400, 400), (1, 1)), ((400, 3), (1, 400)),
    ((3, 400), (400, 1)), ((192, 256), (192, 1)), ((192, 256), (1, 256)), ((5, 7), (5, 1)),
    ((5, 7), (1, 7)), ((2, 2), (3, 3)), ((3, 3), (2, 2)), ((17, 13), (17, 13)),
]


@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('in_size,out_size', EDGE_SIZES)
def test_edge_sizes_match_pillow(layout, in_size, out_size):
    rng = np.random.default_rng(sum(in_size + out_size))
    shape = (in_size[1], in_size[0]) + (() if layout == 'HW' else (int(layout[2]),))
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    assert mismatch(image, out_size) is None


@pytest.mark.parametrize('layout', LAYOUTS)
def test_same_size_is_an_exact_copy(layout):
    """Pillow copies an unchanged size; in particular RGBA is not premultiplied there."""
    shape = (9, 11) + (() if layout == 'HW' else (int(layout[2]),))
    image = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    result = pil_bilinear.resize(image, (11, 9))
    np.testing.assert_array_equal(result, image)
    np.testing.assert_array_equal(result, pillow_resize(image, (11, 9)))
    result[...] = 0
    assert image.any()  # a copy, not a view


def test_input_is_untouched_and_strided_input_works():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (60, 80, 4), dtype=np.uint8)
    before = base.copy()
    for view in (base[::2, ::3], base[5:40, 7:70, :3], np.asfortranarray(base), base[:, :, 0].T):
        expected = pillow_resize(np.ascontiguousarray(view), (23, 17))
        np.testing.assert_array_equal(pil_bilinear.resize(view, (23, 17)), expected)
    np.testing.assert_array_equal(base, before)


def test_size_accepts_lists_and_numpy_integers():
    image = np.random.default_rng(6).integers(0, 256, (10, 12), dtype=np.uint8)
    expected = pillow_resize(image, (5, 4))
    np.testing.assert_array_equal(pil_bilinear.resize(image, [5, 4]), expected)
    np.testing.assert_array_equal(pil_bilinear.resize(image, np.array([5, 4])), expected)


# ---------------------------------------------------------------------------- bad input
GOOD = np.zeros((4, 5), np.uint8)


@pytest.mark.parametrize('image', [
    GOOD.astype(np.float32), GOOD.astype(np.float64), GOOD.astype(bool), GOOD.astype(np.uint16),
    GOOD.astype(np.int8), np.zeros((4, 5, 5), np.uint8), np.zeros((4, 5, 0), np.uint8),
    np.zeros((4, 5, 3, 1), np.uint8), np.zeros(5, np.uint8), np.zeros((0, 5), np.uint8),
    np.zeros((4, 0, 3), np.uint8), [[0, 1], [2, 3]], None,
], ids=['float32', 'float64', 'bool', 'uint16', 'int8', '5-channels', '0-channels', '4-d', '1-d',
        'no-rows', 'no-columns', 'list', 'none'])
def test_bad_image_raises_value_error(image):
    with pytest.raises(ValueError):
        pil_bilinear.resize(image, (3, 3))


@pytest.mark.parametrize('size', [(0, 5), (5, 0), (0, 0), (-1, 3), (2.5, 3), (3,), (1, 2, 3),
                                  'ab', None, (True, 3)])
def test_bad_size_raises_value_error(size):
    with pytest.raises(ValueError):
        pil_bilinear.resize(GOOD, size)


# ---------------------------------------------------------------------------- demo CLI
def test_cli_resizes_like_pillow(tmp_path):
    from command_line import run_main
    source, target = tmp_path / 'in.png', tmp_path / 'out.png'
    image = np.random.default_rng(8).integers(0, 256, (31, 23, 3), dtype=np.uint8)
    cv.imwrite(str(source), image)
    assert run_main(pil_bilinear.main, [str(source), '--width', '7', '--height', '40',
                                        '-o', str(target)]) == 0
    np.testing.assert_array_equal(cv.imread(str(target)), pillow_resize(image, (7, 40)))


def test_cli_bad_input_is_one_line_error(tmp_path):
    target = tmp_path / 'out.png'
    run = subprocess.run([sys.executable, 'pil_bilinear.py', str(tmp_path / 'missing.png'),
                          '--width', '3', '--height', '3', '-o', str(target)],
                         cwd=REPO_DIR, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith('error: ') and len(run.stderr.strip().splitlines()) == 1
    assert 'Traceback' not in run.stderr and not target.exists()
