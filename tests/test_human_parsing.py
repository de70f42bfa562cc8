"""human_parsing.py and tools/synthetic_parsing.py against independent references: hand-computed
merges, cv.resize in LIP's own merge order, a NumPy forward of the synthetic graph with TensorFlow's
op semantics, round(255 * colormap) from LIP's .mat, and Pillow-written palette PNGs."""
import os
import subprocess
import sys

import cv2 as cv
import numpy as np
import pytest
import scipy.io
from PIL import Image

from conftest import REPO_DIR, SHARED_DATA, VITON_PERSONS

import errors
import human_parsing as hp
import registry
import synthetic_models
from tools import synthetic_parsing

COLORMAP_MAT = os.path.join(SHARED_DATA, 'models', 'human_colormap.mat')
LIP_MEAN_BGR = np.array([104.00698793, 116.66876762, 122.67891434])


needs_tensorflow_importer = pytest.mark.skipif(not hp.TENSORFLOW_IMPORTER, reason='OpenCV %s has no TensorFlow '
                                               'importer (removed in 5.1): JPPNet reads on 4.x and 5.0' % cv.__version__)


@pytest.fixture(scope='module')
def synthetic_model(tmp_path_factory):
    if not hp.TENSORFLOW_IMPORTER:
        pytest.skip('OpenCV %s has no TensorFlow importer (removed in 5.1)' % cv.__version__)
    directory = tmp_path_factory.mktemp('parsing')
    return synthetic_parsing.build_synthetic_parsing(str(directory / 'lip_jppnet_384.pb'))


@pytest.fixture(scope='module')
def net(synthetic_model):
    return hp.JppNet(synthetic_model)


# ---------------------------------------------------------------------------- independent references
def lip_merge_reference(scores, scores_mirrored, width, height):
    """LIP evaluation order: resize each item to the image, swap left/right of the mirrored one,
    flip it back, average; returns the merged scores (H, W, 20) in float64."""
    def resize(item):
        return cv.resize(np.ascontiguousarray(item.transpose(1, 2, 0)), (width, height),
                         interpolation=cv.INTER_LINEAR).astype(np.float64)
    head = resize(scores)
    tail = resize(scores_mirrored)
    order = list(range(14)) + [15, 14, 17, 16, 19, 18]
    tail = np.flip(np.stack([tail[:, :, k] for k in order], axis=2), axis=1)
    return (head + tail) / 2


def top_two_margin(merged):
    ordered = np.sort(merged, axis=2)
    return ordered[:, :, -1] - ordered[:, :, -2]


def tf_resize_bilinear_legacy(x, out_height, out_width):
    """TensorFlow ResizeBilinear, align_corners=False, half_pixel_centers=False: src = dst * in / out."""
    def taps(n_in, n_out):
        position = np.arange(n_out) * (n_in / n_out)
        first = np.floor(position).astype(int)
        return first, np.minimum(first + 1, n_in - 1), position - first
    y0, y1, dy = taps(x.shape[1], out_height)
    x0, x1, dx = taps(x.shape[2], out_width)
    rows = x[:, y0] + (x[:, y1] - x[:, y0]) * dy[None, :, None, None]
    return rows[:, :, x0] + (rows[:, :, x1] - rows[:, :, x0]) * dx[None, None, :, None]


def tf_conv2d_same(x, kernel, stride):
    """TensorFlow Conv2D, NHWC, HWIO filter, padding SAME (the extra pad row/column goes last)."""
    k = kernel.shape[0]
    _, height, width, _ = x.shape
    out_h, out_w = -(-height // stride), -(-width // stride)
    pad_h = max((out_h - 1) * stride + k - height, 0)
    pad_w = max((out_w - 1) * stride + k - width, 0)
    padded = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for i in range(k):
        for j in range(k):
            window = padded[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            out += window @ kernel[i, j].astype(np.float64)
    return out


def numpy_forward(batch_nhwc, seed=0):
    """The synthetic graph evaluated with NumPy in float64; returns NHWC scores."""
    x = tf_resize_bilinear_legacy(batch_nhwc.astype(np.float64), 384, 384)
    for _, kernel, bias, stride, relu in synthetic_parsing.parsing_weights(seed):
        x = tf_conv2d_same(x, kernel, stride) + bias
        if relu:
            x = np.maximum(x, 0)
    return tf_resize_bilinear_legacy(x, 384, 384)


# ---------------------------------------------------------------------------- merge
def test_merge_flipped_hand_case():
    scores = np.zeros((20, 2, 3), np.float32)
    mirrored = np.zeros((20, 2, 3), np.float32)
    scores[5, 0, 0] = 4        # (0,0): UpperClothes 2 after averaging ...
    mirrored[18, 0, 2] = 10    # ... loses to the mirror's Left-shoe at column 2 = Right-shoe at column 0
    mirrored[13, 0, 1] = 8     # centre column stays put, Face is not swapped
    scores[2, 0, 1] = 6
    scores[9, 1, 0] = 2
    mirrored[17, 1, 1] = 4     # Right-leg in the mirror = Left-leg
    mirrored[14, 1, 0] = 10    # Left-arm at column 0 of the mirror = Right-arm at column 2 (5) ...
    scores[14, 1, 2] = 6       # ... beats the image's own Left-arm there (3); unswapped it would be 14
    expected = np.array([[19, 13, 0],
                         [9, 16, 15]], np.uint8)
    labels = hp.merge_flipped(scores, mirrored, (3, 2))
    assert labels.dtype == np.uint8 and labels.shape == (2, 3)
    np.testing.assert_array_equal(labels, expected)
    # resizing to twice the size: every label block keeps its value at block centres
    big = hp.merge_flipped(scores, mirrored, (6, 4))
    np.testing.assert_array_equal(big[[0, 3]][:, [0, 5]], expected[:, [0, 2]])


@pytest.mark.parametrize('size', [(7, 5), (17, 23), (40, 10), (3000, 130)])
def test_merge_flipped_matches_lip_order_with_resize(size):
    rng = np.random.default_rng(sum(size))
    scores = rng.standard_normal((20, 12, 10)).astype(np.float32)
    mirrored = rng.standard_normal((20, 12, 10)).astype(np.float32)
    width, height = size
    labels = hp.merge_flipped(scores, mirrored, size)
    assert labels.shape == (height, width)
    merged = lip_merge_reference(scores, mirrored, width, height)
    clear = top_two_margin(merged) > 1e-4
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(labels[clear], merged.argmax(axis=2)[clear])


def test_merge_flipped_rejects_bad_shapes():
    with pytest.raises(ValueError):
        hp.merge_flipped(np.zeros((20, 4, 4)), np.zeros((20, 4, 5)), (4, 4))
    with pytest.raises(ValueError):
        hp.merge_flipped(np.zeros((19, 4, 4)), np.zeros((19, 4, 4)), (4, 4))


# ---------------------------------------------------------------------------- synthetic network
def test_synthetic_graph_is_deterministic_and_marked(synthetic_model):
    data = synthetic_parsing.graph_def_bytes(0)
    assert data == synthetic_parsing.graph_def_bytes(0) != synthetic_parsing.graph_def_bytes(1)
    with open(synthetic_model, 'rb') as f:
        assert f.read() == data
    assert hp.SYNTHETIC_MARKER == synthetic_parsing.SYNTHETIC_MARKER.encode('ascii')
    assert hp.is_synthetic_model(synthetic_model)
    assert synthetic_parsing.SYNTHETIC_NOTE.encode('ascii') in data


def test_output_is_fixed_384_whatever_the_input(synthetic_model):
    model = cv.dnn.readNetFromTensorflow(synthetic_model)
    for height, width in ((384, 384), (200, 150), (97, 411)):
        model.setInput(np.zeros((2, 3, height, width), np.float32))
        assert model.forward().shape == (2, 20, 384, 384)


@pytest.fixture(scope='module')
def viton_reference():
    """A VITON photo, its blob built independently, and the NumPy forward of the synthetic graph."""
    image = cv.imread(VITON_PERSONS[0])
    # enlarge to 384x384, mirror, subtract the BGR mean, NHWC
    resized = cv.resize(image, (384, 384), interpolation=cv.INTER_LINEAR).astype(np.float64)
    batch = np.stack([resized, resized[:, ::-1]]) - LIP_MEAN_BGR
    expected = numpy_forward(batch).transpose(0, 3, 1, 2)  # NCHW as cv.dnn gives it
    return image, batch, expected


def test_network_equals_numpy_forward_and_labels_equal_reference_merge(net, viton_reference):
    image, _, expected = viton_reference
    height, width = image.shape[:2]
    scores = net.forward_scores(image)
    assert scores.shape == (2, 20, 384, 384)
    assert np.abs(scores - expected).max() <= 1e-4

    labels = net.infer(image)
    assert labels.shape == (height, width) and labels.dtype == np.uint8
    merged = lip_merge_reference(expected[0], expected[1], width, height)
    clear = top_two_margin(merged) > 1e-4  # well above the 1e-5 float32 error of the scores
    assert clear.mean() > 0.995
    np.testing.assert_array_equal(labels[clear], merged.argmax(axis=2)[clear])
    # the test exercises something: several labels; the mirror, and its left/right swap, change some
    assert len(np.unique(labels)) >= 5
    image_only = cv.resize(np.ascontiguousarray(expected[0].transpose(1, 2, 0)), (width, height))
    assert (image_only.argmax(axis=2) != labels).sum() > 500
    unswapped = lip_merge_reference(expected[0], expected[1][hp.MIRROR_CHANNELS], width, height)
    assert (unswapped.argmax(axis=2) != labels).sum() > 20


ENGINES = [name for name in ('ENGINE_NEW', 'ENGINE_CLASSIC') if hasattr(cv.dnn, name)]


@pytest.mark.skipif(not ENGINES, reason='OpenCV 4 has a single dnn engine')
@pytest.mark.parametrize('engine', ENGINES)
def test_both_opencv5_engines_run_the_graph(synthetic_model, viton_reference, engine):
    _, batch, expected = viton_reference
    model = cv.dnn.readNetFromTensorflow(synthetic_model, '', getattr(cv.dnn, engine))
    model.setInput(batch.transpose(0, 3, 1, 2).astype(np.float32))
    assert np.abs(model.forward() - expected).max() <= 1e-4


@pytest.mark.skipif(not ENGINES, reason='OpenCV 4 has a single dnn engine')
def test_falls_back_to_classic_engine_when_the_new_one_fails(synthetic_model, viton_reference):
    class FailingNet:
        def setInput(self, blob):
            pass

        def forward(self):
            raise cv.error('unsupported layer')

    image, _, expected = viton_reference
    parser = hp.JppNet(synthetic_model)
    parser._net, parser._engine = FailingNet(), cv.dnn.ENGINE_NEW
    assert np.abs(parser.forward_scores(image) - expected).max() <= 1e-4
    assert parser._engine == cv.dnn.ENGINE_CLASSIC


def test_large_photo_costs_a_384_forward(net):
    image = cv.resize(cv.imread(VITON_PERSONS[1]), (1500, 2000), interpolation=cv.INTER_LINEAR)
    assert net.preprocess(image).shape == (2, 3, 384, 384)
    labels = net.infer(image)
    assert labels.shape == (2000, 1500)


def test_synthetic_warning_once(synthetic_model):
    with pytest.warns(synthetic_models.SyntheticModelWarning) as caught:
        hp.JppNet(synthetic_model)
    messages = [str(w.message) for w in caught if issubclass(w.category, synthetic_models.SyntheticModelWarning)]
    assert len(messages) == 1 and 'SYNTHETIC' in messages[0] and 'human parsing' in messages[0]


def test_bad_inputs(net, tmp_path):
    with pytest.raises(errors.UsageError):
        hp.JppNet(str(tmp_path / 'missing.pb'))
    junk = tmp_path / 'junk.pb'
    junk.write_bytes(b'\x00\x01not a graph' * 10)
    with pytest.raises(errors.RuntimeFailure):
        hp.JppNet(str(junk))
    assert not hp.is_synthetic_model(str(junk))
    with pytest.raises(errors.UsageError):
        net.infer(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(errors.UsageError):
        net.infer(np.zeros((10, 10, 2), np.uint8))


# ---------------------------------------------------------------------------- palette and files
def test_palette_is_round_255_of_lip_colormap(monkeypatch, tmp_path):
    colormap = scipy.io.loadmat(COLORMAP_MAT)['colormap']
    expected = np.floor(colormap * 255 + 0.5).astype(np.uint8)
    from_file = hp.palette(COLORMAP_MAT)
    assert from_file.shape == (20, 3) and from_file.dtype == np.uint8
    np.testing.assert_array_equal(from_file, expected)
    assert 254 in from_file and 255 not in from_file
    assert from_file[2].tolist() == [254, 0, 0] and from_file[4].tolist() == [169, 0, 51]
    assert from_file[7].tolist() == [0, 119, 220] and from_file[11].tolist() == [52, 86, 128]
    np.testing.assert_array_equal(hp.LIP_PALETTE_RGB, expected)  # the built-in fallback
    monkeypatch.setenv(registry.MODELS_ENV, str(tmp_path))
    np.testing.assert_array_equal(hp.palette(), expected)
    with pytest.raises(errors.UsageError):
        hp.palette(str(tmp_path / 'missing.mat'))


def test_colorize_hand_map():
    labels = np.array([[0, 2], [13, 19]], np.uint8)
    expected_bgr = np.array([[[0, 0, 0], [0, 0, 254]],
                             [[254, 0, 0], [0, 169, 254]]], np.uint8)
    np.testing.assert_array_equal(hp.colorize(labels), expected_bgr)
    with pytest.raises(errors.UsageError):
        hp.colorize(np.array([[20]]))


@pytest.fixture
def labels():
    rng = np.random.default_rng(7)
    return rng.integers(0, 20, size=(37, 29)).astype(np.uint8)


def test_read_grey_forms(labels, tmp_path):
    grey = str(tmp_path / 'grey.png')
    assert cv.imwrite(grey, labels)
    np.testing.assert_array_equal(hp.read_parsing(grey), labels)
    grey3 = str(tmp_path / 'grey3.png')  # a grey label map saved with three equal channels
    assert cv.imwrite(grey3, np.dstack([labels] * 3))
    np.testing.assert_array_equal(hp.read_parsing(grey3), labels)
    written = hp.write_parsing(str(tmp_path / 'written.png'), labels, 'grey')
    np.testing.assert_array_equal(cv.imread(written, cv.IMREAD_UNCHANGED), labels)


def test_read_palette_png_written_by_pillow(labels, tmp_path):
    path = str(tmp_path / 'cpvton.png')
    image = Image.new('P', (labels.shape[1], labels.shape[0]))
    image.putdata(labels.ravel().tolist())
    # a palette unlike LIP's: the indices are the labels, whatever the colours
    image.putpalette([(37 * i) % 256 for i in range(256 * 3)])
    image.save(path)
    np.testing.assert_array_equal(hp.read_parsing(path), labels)

    written = hp.write_parsing(str(tmp_path / 'ours.png'), labels, 'palette')
    with Image.open(written) as image:
        assert image.mode == 'P'
        np.testing.assert_array_equal(np.array(image), labels)
        assert image.getpalette()[:60] == hp.LIP_PALETTE_RGB.ravel().tolist()
    np.testing.assert_array_equal(hp.read_parsing(written), labels)


def test_read_colour_rendering_exact_and_noisy(labels, tmp_path):
    rendering = hp.colorize(labels)
    path = str(tmp_path / 'colour.png')
    assert cv.imwrite(path, rendering)
    np.testing.assert_array_equal(hp.read_parsing(path), labels)
    rng = np.random.default_rng(3)
    noisy = np.clip(rendering.astype(int) + rng.integers(-3, 4, rendering.shape), 0, 255).astype(np.uint8)
    assert (noisy != rendering).any()
    noisy_path = str(tmp_path / 'noisy.png')
    assert cv.imwrite(noisy_path, noisy)
    np.testing.assert_array_equal(hp.read_parsing(noisy_path), labels)
    written = hp.write_parsing(str(tmp_path / 'written_colour.png'), labels, 'colour')
    np.testing.assert_array_equal(cv.imread(written), rendering)


def test_nearest_label_equals_brute_force():
    rng = np.random.default_rng(11)
    colors = rng.integers(0, 256, (5000, 3))
    reference_bgr = hp.LIP_PALETTE_RGB[:, ::-1].astype(int)
    distance = ((colors[:, None, :] - reference_bgr[None, :, :]) ** 2).sum(axis=2)
    ordered = np.sort(distance, axis=1)
    unique = ordered[:, 0] < ordered[:, 1]
    labels = hp.nearest_label(colors.astype(np.uint8), chunk=777)
    np.testing.assert_array_equal(labels[unique], distance.argmin(axis=1)[unique])


def test_read_parsing_rejects(tmp_path):
    high = str(tmp_path / 'high.png')
    assert cv.imwrite(high, np.full((4, 4), 20, np.uint8))
    with pytest.raises(errors.UsageError, match='label 20'):
        hp.read_parsing(high)
    palette_high = str(tmp_path / 'palette_high.png')
    image = Image.new('P', (3, 3), 25)
    image.putpalette([0] * 768)
    image.save(palette_high)
    with pytest.raises(errors.UsageError):
        hp.read_parsing(palette_high)
    text = tmp_path / 'text.png'
    text.write_text('not an image')
    with pytest.raises(errors.UsageError):
        hp.read_parsing(str(text))
    with pytest.raises(errors.UsageError):
        hp.read_parsing(str(tmp_path / 'missing.png'))
    with pytest.raises(errors.UsageError):
        hp.write_parsing(str(tmp_path / 'lossy.jpg'), np.zeros((2, 2), np.uint8), 'grey')
    with pytest.raises(errors.UsageError):
        hp.write_parsing(str(tmp_path / 'bad.png'), np.full((2, 2), 21), 'palette')
    assert sorted(os.listdir(tmp_path)) == ['high.png', 'palette_high.png', 'text.png']


# ---------------------------------------------------------------------------- command line
def run_cli(args, models_dir):
    env = dict(os.environ, **{registry.MODELS_ENV: str(models_dir)})
    return subprocess.run([sys.executable, os.path.join(REPO_DIR, 'human_parsing.py')] + args,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(hp.TENSORFLOW_IMPORTER, reason='this OpenCV reads TensorFlow graphs')
def test_without_a_tensorflow_importer_jppnet_is_one_clear_error(tmp_path):
    """OpenCV 5.1+: JPPNet named by the user fails with one line saying why; the CLI's --synthetic (the
    synthetic JPPNet) too."""
    from tools import synthetic_parsing
    model = synthetic_parsing.build_synthetic_parsing(str(tmp_path / hp.MODEL_NAME))
    with pytest.raises(errors.RuntimeFailure, match='no TensorFlow importer'):
        hp.JppNet(model)
    result = run_cli(['-i', VITON_PERSONS[2], '--synthetic', '-o', str(tmp_path / 'p.png')], tmp_path / 'models')
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines[-1].startswith('error:') and 'TensorFlow importer' in lines[-1]
    assert 'Traceback' not in result.stderr and not os.path.exists(tmp_path / 'p.png')


@needs_tensorflow_importer
def test_cli_synthetic_writes_parsing(tmp_path):
    output, labels_out = tmp_path / 'parsing.png', tmp_path / 'labels.png'
    result = run_cli(['-i', VITON_PERSONS[2], '--synthetic', '-o', str(output),
                      '--labels-out', str(labels_out)], tmp_path / 'models')
    assert result.returncode == 0, result.stderr
    assert 'SYNTHETIC' in result.stderr
    colour = cv.imread(str(output))
    labels = hp.read_parsing(str(labels_out))
    assert colour.shape == (256, 192, 3) and labels.shape == (256, 192)
    np.testing.assert_array_equal(hp.colorize(labels), colour)


def test_cli_missing_image_is_one_error_line(tmp_path):
    result = run_cli(['-i', str(tmp_path / 'missing.jpg'), '--synthetic', '-o', str(tmp_path / 'p.png')],
                     tmp_path / 'models')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error:') and 'missing.jpg' in lines[0]
    assert not os.path.exists(tmp_path / 'p.png')


def test_cli_missing_model_is_one_error_line(tmp_path):
    # a named model must exist (without -m, a missing JPPNet means MediaPipe: test_mediapipe_parsing.py)
    result = run_cli(['-i', VITON_PERSONS[0], '-o', str(tmp_path / 'p.png'),
                      '-m', str(tmp_path / 'models' / 'lip_jppnet_384.pb')], tmp_path / 'models')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error:') and 'lip_jppnet_384.pb' in lines[0]
