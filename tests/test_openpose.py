"""openpose.py (OpenPose COCO + BlazePose) and openpose_caffe.py (Caffe -> ONNX).

The converter is checked against OpenCV's own Caffe importer (OpenCV 4), across OpenCV 5's
two engines, and, on both, against an independent NumPy forward pass of hand-made and
real-architecture layers. BlazePose runs for real on the six VITON photos.
"""
import json
import os
import subprocess
import sys
import tempfile

import cv2 as cv
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from conftest import REPO_DIR, SHARED_DATA, VITON_PERSONS

import blazepose
import coco_parts
import errors
import image_io
import onnx_facts
import openpose
import openpose_caffe
import synthetic_models
from tools import synthetic_openpose as openpose_builder

PROTOTXT = os.path.join(SHARED_DATA, 'models', 'openpose_pose_coco.prototxt')
HAS_CAFFE = hasattr(cv.dnn, 'readNetFromCaffe')
HAS_ENGINES = hasattr(cv.dnn, 'ENGINE_CLASSIC')


# ============================================================================ fixtures
@pytest.fixture(scope='module')
def synthetic_openpose(synthetic_dir):
    """The synthetic OpenPose set (prototxt, caffemodel, onnx) of the session's synthetic models."""
    return openpose_builder.build_synthetic_openpose(synthetic_dir, PROTOTXT)


@pytest.fixture(scope='module')
def blazepose_estimator(blazepose_model):
    return blazepose.BlazePose(blazepose_model)


# ============================================================================ NumPy reference
def np_conv(x, weight, bias, pad, stride=1, dilation=1, group=1):
    """Caffe convolution (cross-correlation) of x (C, H, W) in float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
    out_c, in_per_group, kh, kw = weight.shape
    span_h, span_w = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    windows = sliding_window_view(x, (span_h, span_w), axis=(1, 2))[:, ::stride, ::stride, ::dilation, ::dilation]
    outs = []
    per_group_out = out_c // group
    for g in range(group):
        part = windows[g * in_per_group:(g + 1) * in_per_group]
        w = weight[g * per_group_out:(g + 1) * per_group_out].astype(np.float64)
        outs.append(np.einsum('chwij,ocij->ohw', part, w))
    return np.concatenate(outs) + bias.astype(np.float64)[:, None, None]


def np_pool(x, kernel, stride, pad, method):
    """Caffe pooling with its ceil rounding: out = ceil((H + 2p - k) / s) + 1, minus one when
    the last window would start in the padding; AVE divides by the window clipped to H + p."""
    c, h, w = x.shape

    def out_len(n):
        o = int(np.ceil((n + 2 * pad - kernel) / stride)) + 1
        if pad and (o - 1) * stride >= n + pad:
            o -= 1
        return o

    oh, ow = out_len(h), out_len(w)
    out = np.zeros((c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * stride - pad, j * stride - pad
            y1, x1 = min(y0 + kernel, h + pad), min(x0 + kernel, w + pad)
            area = (y1 - y0) * (x1 - x0)
            window = x[:, max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
            out[:, i, j] = window.max(axis=(1, 2)) if method == 'MAX' else window.sum(axis=(1, 2)) / area
    return out


def relu(x, slope=0.0):
    return np.where(x > 0, x, slope * x)


def run_onnx(path, x, engine=None):
    net = cv.dnn.readNetFromONNX(path) if engine is None else cv.dnn.readNetFromONNX(path, engine)
    net.setInput(x)
    return net.forward()


# ============================================================================ converter
TINY_PROTOTXT = '''
name: "tiny"  # a comment
input: "data"
input_shape { dim: 1 dim: 3 dim: 9 dim: 11 }
layer { name: "conv_a" type: "Convolution" bottom: "data" top: "conv_a"
  convolution_param { num_output: 4 pad: 1 kernel_size: 3 } }
layer { name: "relu_a" type: "ReLU" bottom: "conv_a" top: "conv_a" relu_param { negative_slope: 0.1 } }
layer { name: "conv_b" type: "Convolution" bottom: "data" top: "conv_b"
  convolution_param { num_output: 2 pad: 2 kernel_size: 3 dilation: 2 bias_term: false } }
layer { name: "cat" type: "Concat" bottom: "conv_a" bottom: "conv_b" top: "cat" concat_param { axis: 1 } }
layer { name: "conv_g" type: "Convolution" bottom: "cat" top: "conv_g"
  convolution_param { num_output: 6 kernel_size: 1 group: 2 } }
layer { name: "relu_g" type: "ReLU" bottom: "conv_g" top: "conv_g" }
layer { name: "pool_max" type: "Pooling" bottom: "conv_g" top: "pool_max"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv_s" type: "Convolution" bottom: "pool_max" top: "conv_s"
  convolution_param { num_output: 3 pad: 1 kernel_size: 3 stride: 2 } }
layer { name: "pool_ave" type: "Pooling" bottom: "conv_g" top: "pool_ave"
  pooling_param { pool: AVE kernel_size: 3 stride: 3 } }
'''


def tiny_weights(rng):
    return {
        'conv_a': [rng.standard_normal((4, 3, 3, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)],
        'conv_b': [rng.standard_normal((2, 3, 3, 3)).astype(np.float32)],
        'conv_g': [rng.standard_normal((6, 3, 1, 1)).astype(np.float32), rng.standard_normal(6).astype(np.float32)],
        'conv_s': [rng.standard_normal((3, 6, 3, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)],
    }


def tiny_reference(x, w):
    a = relu(np_conv(x, *w['conv_a'], pad=1), 0.1)
    b = np_conv(x, w['conv_b'][0], np.zeros(2), pad=2, dilation=2)
    g = relu(np_conv(np.concatenate([a, b]), *w['conv_g'], pad=0, group=2))
    pooled = np_pool(g, 3, 2, 0, 'MAX')
    return {'conv_s': np_conv(pooled, *w['conv_s'], pad=1, stride=2),
            'pool_max': pooled, 'pool_ave': np_pool(g, 3, 3, 0, 'AVE')}


def write_tiny_net(directory, weights):
    """The tiny prototxt and a caffemodel of `weights`, written by the wire-format encoder."""
    prototxt = directory / 'tiny.prototxt'
    prototxt.write_text(TINY_PROTOTXT)
    caffemodel = directory / 'tiny.caffemodel'
    caffemodel.write_bytes(openpose_builder.encode_caffemodel(
        'tiny', [(name, 'Convolution', blobs) for name, blobs in weights.items()]))
    return prototxt, caffemodel


def test_converter_tiny_net_matches_numpy(tmp_path):
    """Conv (pad, stride, dilation, group, no bias), leaky and in-place ReLU, Concat, MAX pooling
    with Caffe's ceil rounding on odd sizes, against a NumPy forward on both OpenCV generations."""
    rng = np.random.default_rng(3)
    weights = tiny_weights(rng)
    prototxt, caffemodel = write_tiny_net(tmp_path, weights)
    onnx_path = str(tmp_path / 'tiny.onnx')
    openpose_caffe.convert(str(prototxt), str(caffemodel), onnx_path, outputs=['conv_s', 'pool_max', 'pool_ave'])
    for h, w in ((9, 11), (12, 12), (15, 10)):
        x = rng.standard_normal((1, 3, h, w)).astype(np.float32)
        expected = tiny_reference(x[0], weights)
        engines = [None] if not HAS_ENGINES else [cv.dnn.ENGINE_NEW, cv.dnn.ENGINE_CLASSIC]
        for engine in engines:
            net = cv.dnn.readNetFromONNX(onnx_path) if engine is None else cv.dnn.readNetFromONNX(onnx_path, engine)
            net.setInput(x)
            names = list(net.getUnconnectedOutLayersNames())
            assert sorted(names) == ['conv_s', 'pool_ave', 'pool_max']
            outs = dict(zip(names, net.forward(names)))
            for name in ('conv_s', 'pool_max'):
                assert outs[name].shape[1:] == expected[name].shape, (name, h, w, engine)
                np.testing.assert_allclose(outs[name][0], expected[name], rtol=1e-4, atol=1e-4)
            if h % 3 == 0 and w % 3 == 0:    # average pooling whose windows fit exactly
                np.testing.assert_allclose(outs['pool_ave'][0], expected['pool_ave'], rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not HAS_CAFFE, reason='this OpenCV has no Caffe importer')
def test_tiny_net_caffe_importer_agrees_with_numpy(tmp_path):
    """The NumPy reference (incl. ceil pooling) is itself what OpenCV's Caffe importer computes."""
    rng = np.random.default_rng(4)
    weights = tiny_weights(rng)
    prototxt, caffemodel = write_tiny_net(tmp_path, weights)
    net = cv.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    x = rng.standard_normal((1, 3, 9, 11)).astype(np.float32)
    net.setInput(x)
    got = net.forward('conv_s')
    np.testing.assert_allclose(got[0], tiny_reference(x[0], weights)['conv_s'], rtol=1e-4, atol=1e-4)


def test_real_architecture_first_block_matches_numpy(synthetic_openpose, tmp_path):
    """The real prototxt up to pool1 (conv1_1, relu, conv1_2, relu, 2x2 max pool) with the
    synthetic weights regenerated from the seed, on an odd size, against NumPy."""
    net = openpose_caffe.read_prototxt(synthetic_openpose['prototxt'])
    weights = dict((name, blobs) for name, _, blobs in openpose_builder.synthetic_weights(net, seed=0))
    onnx_path = str(tmp_path / 'block1.onnx')
    openpose_caffe.convert(synthetic_openpose['prototxt'], synthetic_openpose['caffemodel'], onnx_path,
                           outputs=['pool1_stage1'])
    x = np.random.default_rng(5).uniform(-0.5, 0.5, (1, 3, 23, 17)).astype(np.float32)
    y = relu(np_conv(x[0], *weights['conv1_1'], pad=1))
    y = relu(np_conv(y, *weights['conv1_2'], pad=1))
    expected = np_pool(y, 2, 2, 0, 'MAX')
    assert expected.shape == (64, 12, 9)
    got = run_onnx(onnx_path, x)
    assert got.shape == (1,) + expected.shape
    np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_synthetic_caffemodel_has_caffe_blob_shapes(synthetic_openpose):
    """Decoded blobs have the shapes Caffe would allocate: 85 convolutions, 19 heatmaps out."""
    name, blobs = openpose_caffe.read_caffemodel(synthetic_openpose['caffemodel'])
    assert name.startswith('SYNTHETIC')
    assert len(blobs) == 85
    assert blobs['conv1_1'][0].shape == (64, 3, 3, 3) and blobs['conv1_1'][1].shape == (64,)
    # stage 2 reads concat(38 PAF + 19 heatmap + 128 feature) = 185 channels through 7x7 kernels
    assert blobs['Mconv1_stage2_L2'][0].shape == (128, 185, 7, 7)
    assert blobs['Mconv7_stage6_L2'][0].shape == (19, 128, 1, 1)
    assert openpose_caffe.caffemodel_is_synthetic(synthetic_openpose['caffemodel'])
    assert onnx_facts.file_is_synthetic(synthetic_openpose['onnx'])


@pytest.mark.skipif(not HAS_CAFFE, reason='this OpenCV has no Caffe importer')
def test_converted_openpose_matches_caffe_importer(synthetic_openpose):
    caffe_net = cv.dnn.readNetFromCaffe(synthetic_openpose['prototxt'], synthetic_openpose['caffemodel'])
    onnx_net = cv.dnn.readNetFromONNX(synthetic_openpose['onnx'])
    rng = np.random.default_rng(6)
    for h, w in ((96, 96), (100, 76)):          # 100x76 exercises Caffe's ceil pooling
        x = rng.uniform(-0.5, 0.5, (1, 3, h, w)).astype(np.float32)
        caffe_net.setInput(x)
        onnx_net.setInput(x)
        expected, got = caffe_net.forward(), onnx_net.forward()
        assert expected.shape == got.shape == (1, 19, -(-h // 8), -(-w // 8))
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
        assert expected.std() > 0.05            # the synthetic heatmaps are not flat


@pytest.mark.skipif(not HAS_ENGINES, reason='OpenCV 4 has one engine')
def test_converted_openpose_new_and_classic_engines_agree(synthetic_openpose):
    rng = np.random.default_rng(7)
    for h, w in ((96, 96), (100, 76)):
        x = rng.uniform(-0.5, 0.5, (1, 3, h, w)).astype(np.float32)
        new = run_onnx(synthetic_openpose['onnx'], x, cv.dnn.ENGINE_NEW)
        classic = run_onnx(synthetic_openpose['onnx'], x, cv.dnn.ENGINE_CLASSIC)
        assert new.shape == classic.shape == (1, 19, -(-h // 8), -(-w // 8))
        assert np.abs(new - classic).max() <= 1e-4 * np.abs(classic).max()
        assert classic.std() > 0.05


def test_prototxt_parser():
    text = '''# header
    name: "net" input: 'x'  # trailing comment
    input_dim: 1 input_dim: 3
    layer { name: "a\\"b" type: "ReLU" relu_param < negative_slope: -1.5e-1 > bottom: "x" top: "y" }
    layer { name: "c"; include { phase: TEST } flag: true dims: [1, 2, 3] }
    '''
    net = openpose_caffe.parse_prototxt(text)
    assert net['name'] == ['net'] and net['input'] == ['x'] and net['input_dim'] == [1, 3]
    first, second = net['layer']
    assert first['name'] == ['a"b'] and first['relu_param'][0]['negative_slope'] == [-0.15]
    assert second['include'][0]['phase'] == ['TEST'] and second['flag'] == [True]
    assert second['dims'] == [1, 2, 3]
    with pytest.raises(errors.UsageError):
        openpose_caffe.parse_prototxt('layer { name: "x" ')
    with pytest.raises(errors.UsageError):
        openpose_caffe.parse_prototxt('name: "unterminated')


def test_legacy_v1_caffemodel_and_blob_forms():
    """V1 `layers` (field 2: name 4, blobs 6) with num/channels/height/width blobs decode too."""
    v = openpose_builder._varint
    values = np.arange(6, dtype='<f4')
    blob = (v(1 << 3) + v(1) + v(2 << 3) + v(2) + v(3 << 3) + v(1) + v(4 << 3) + v(3)
            + openpose_builder._field_bytes(5, values.tobytes()))
    layer = openpose_builder._field_bytes(4, b'old') + openpose_builder._field_bytes(6, blob)
    data = openpose_builder._field_bytes(1, b'legacy') + openpose_builder._field_bytes(2, layer)
    with tempfile.NamedTemporaryFile(suffix='.caffemodel', delete=False) as f:
        f.write(data)
    try:
        name, blobs = openpose_caffe.read_caffemodel(f.name)
        with open(f.name, 'wb') as g:
            g.write(data[:-3])                      # cut short: a clear error, no traceback
        with pytest.raises(errors.UsageError):
            openpose_caffe.read_caffemodel(f.name)
    finally:
        os.remove(f.name)
    assert name == 'legacy'
    assert blobs['old'][0].shape == (1, 2, 1, 3)
    np.testing.assert_array_equal(blobs['old'][0].ravel(), values)


def test_converter_cli_errors(tmp_path):
    script = os.path.join(REPO_DIR, 'openpose_caffe.py')
    result = subprocess.run([sys.executable, script, '--prototxt', str(tmp_path / 'missing.prototxt'),
                             '--caffemodel', str(tmp_path / 'x.caffemodel'), '-o', str(tmp_path / 'o.onnx')],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith('error:') and len(result.stderr.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / 'o.onnx')


# ============================================================================ peak location
def gaussian_heatmaps(points, input_size, sigma=7.0):
    """Heatmaps at 1/8 of input_size with a Gaussian at each (x, y) in network-input pixels;
    cell i is centred on input pixel 8 i + 3.5, as OpenPose's training labels place it."""
    in_w, in_h = input_size
    gx = 8 * np.arange(in_w // 8) + 3.5
    gy = 8 * np.arange(in_h // 8) + 3.5
    maps = np.zeros((19, in_h // 8, in_w // 8), np.float32)
    for c, (x, y) in enumerate(points):
        maps[c] = np.exp(-((gx[None, :] - x) ** 2 + (gy[:, None] - y) ** 2) / (2 * sigma ** 2))
    return maps


def test_heatmap_peak_is_located_below_the_cell_size():
    input_size, image_size = (96, 128), (192, 256)          # the image is twice the network input
    rng = np.random.default_rng(8)
    truth_net = np.column_stack([rng.uniform(12, 84, 18), rng.uniform(12, 116, 18)])
    maps = gaussian_heatmaps(truth_net, input_size)
    keypoints = openpose.heatmaps_to_keypoints(maps, image_size, input_size, threshold=0.1)
    truth = (truth_net + 0.5) * 2 - 0.5                     # pixel centres aligned
    error = np.hypot(*(keypoints[:, :2] - truth).T)
    # cubic upsampling of a Gaussian sampled every 8 px is good to about half a network
    # pixel, i.e. one pixel of this image at scale 2
    assert error.max() < 0.6 * 2, error
    assert np.all(keypoints[:, 2] > 0.9)
    # the coarse method of OpenCV's sample (x = width * cell // out_w) loses several pixels
    cells = maps[:18].reshape(18, -1).argmax(axis=1)
    cy, cx = np.divmod(cells, maps.shape[2])
    coarse = np.column_stack([image_size[0] * cx // maps.shape[2], image_size[1] * cy // maps.shape[1]])
    coarse_error = np.hypot(*(coarse - truth).T)
    assert coarse_error.mean() > 4 * error.mean() and coarse_error.max() > 5


def test_heatmap_threshold_and_content_size():
    input_size, content_size, image_size = (96, 64), (90, 60), (180, 120)
    maps = gaussian_heatmaps([(40.0, 30.0)] * 18, input_size)
    maps[3] *= 0.05                                         # below the threshold
    keypoints = openpose.heatmaps_to_keypoints(maps, image_size, input_size, 0.1, content_size)
    assert np.all(keypoints[3] == 0)
    # the image fills 90x60 of the 96x64 input: scale 2 from the content, not from the input
    assert abs(keypoints[0, 0] - 80.5) < 1.0 and abs(keypoints[0, 1] - 60.5) < 1.0


def test_openpose_input_geometry_is_bounded(synthetic_openpose):
    pose = openpose.OpenPose(synthetic_openpose['onnx'], input_height=368)
    assert pose.input_geometry((192, 256)) == ((280, 368), (276, 368))
    (w, h), _ = pose.input_geometry((7728, 5152))            # a 40 MP photo
    assert h == 368 and w % 8 == 0 and w <= 560
    (w, h), _ = pose.input_geometry((100000, 100))          # a strip: width capped
    assert w <= 4 * 368


# ============================================================================ OpenPose class
def test_openpose_synthetic_infer(synthetic_openpose):
    image = image_io.read_image(VITON_PERSONS[0])
    with pytest.warns(synthetic_models.SyntheticModelWarning, match='SYNTHETIC'):
        pose = openpose.create_pose_estimator(synthetic_openpose['onnx'])
    assert isinstance(pose, openpose.OpenPose)
    pose.input_height = 96
    keypoints = pose.infer(image)
    assert keypoints.shape == (18, 3) and keypoints.dtype == np.float32
    found = keypoints[:, 2] > 0
    assert found.any()
    assert np.all(keypoints[found, 0] >= -0.5) and np.all(keypoints[found, 0] <= image.shape[1] - 0.5)
    assert np.all(keypoints[found, 1] >= -0.5) and np.all(keypoints[found, 1] <= image.shape[0] - 0.5)
    # the keypoints are the heatmap peaks of the network's own output
    heatmaps, input_size, content_size = pose.heatmaps(image)
    expected = openpose.heatmaps_to_keypoints(heatmaps, image.shape[1::-1], input_size, pose.threshold, content_size)
    np.testing.assert_allclose(keypoints, expected, atol=1e-4)


def test_openpose_caffemodel_loading(synthetic_openpose):
    if HAS_CAFFE:
        with pytest.warns(synthetic_models.SyntheticModelWarning, match='SYNTHETIC'):
            pose = openpose.OpenPose(synthetic_openpose['caffemodel'], synthetic_openpose['prototxt'],
                                     input_height=96)
        assert pose.infer(image_io.read_image(VITON_PERSONS[1])).shape == (18, 3)
    else:
        with pytest.raises(errors.UsageError, match='openpose_caffe.py'):
            openpose.OpenPose(synthetic_openpose['caffemodel'], synthetic_openpose['prototxt'])


def test_default_pose_model_choice(synthetic_openpose, blazepose_model, tmp_path, caplog):
    caplog.set_level('INFO')
    chosen = openpose.default_pose_model(os.path.dirname(synthetic_openpose['onnx']))
    assert chosen == (synthetic_openpose['caffemodel'] if HAS_CAFFE else synthetic_openpose['onnx'])
    detector = os.path.join(os.path.dirname(blazepose_model), blazepose.BLAZEPOSE_DETECTOR_TFLITE)
    os.symlink(blazepose_model, tmp_path / blazepose.BLAZEPOSE_TFLITE)     # present and valid: no fetch
    os.symlink(detector, tmp_path / blazepose.BLAZEPOSE_DETECTOR_TFLITE)
    assert openpose.default_pose_model(str(tmp_path)) == str(tmp_path / blazepose.BLAZEPOSE_TFLITE)
    assert 'BlazePose' in caplog.text
    damaged = tmp_path / 'damaged'
    damaged.mkdir()
    (damaged / blazepose.BLAZEPOSE_TFLITE).write_bytes(b'placeholder')    # present but not the published file
    os.symlink(detector, damaged / blazepose.BLAZEPOSE_DETECTOR_TFLITE)
    with pytest.raises(errors.RuntimeFailure, match='not the published pose_landmark_full.tflite'):
        openpose.default_pose_model(str(damaged))
    with pytest.raises(errors.UsageError):
        openpose.create_pose_estimator(str(tmp_path / 'model.pb'))


# ============================================================================ BlazePose
def test_blazepose_on_viton_persons(blazepose_estimator):
    P = coco_parts.PART_INDEX
    for path in VITON_PERSONS:
        image = image_io.read_image(path)
        h, w = image.shape[:2]
        keypoints = blazepose_estimator.infer(image)
        name = os.path.basename(path)
        assert keypoints.shape == (18, 3) and keypoints.dtype == np.float32
        found = keypoints[:, 2] > 0
        # every found part lies inside the photo; absent parts are exactly zero
        assert np.all(keypoints[~found] == 0), name
        assert np.all((keypoints[found, 0] >= 0) & (keypoints[found, 0] <= w - 1)), name
        assert np.all((keypoints[found, 1] >= 0) & (keypoints[found, 1] <= h - 1)), name
        # these photos show head, torso and hips: those parts must be found
        for part in ('Nose', 'Neck', 'RShoulder', 'LShoulder', 'RHip', 'LHip', 'REye', 'LEye'):
            assert found[P[part]], (name, part)
        y = keypoints[:, 1]
        assert y[P['REye']] < y[P['Nose']] and y[P['LEye']] < y[P['Nose']], name
        assert y[P['Nose']] < y[P['Neck']] < min(y[P['RHip']], y[P['LHip']]), name
        for side in 'RL':
            chain = [P[side + p] for p in ('Hip', 'Knee', 'Ankle') if found[P[side + p]]]
            assert np.all(np.diff(y[chain]) > 0), (name, side)
            if found[P[side + 'Elbow']]:
                assert y[P[side + 'Shoulder']] < y[P[side + 'Elbow']], name
        # front-facing: the person's right side appears on the image's left
        x = keypoints[:, 0]
        for part in ('Shoulder', 'Hip', 'Eye', 'Ear'):
            if found[P['R' + part]] and found[P['L' + part]]:
                assert x[P['R' + part]] < x[P['L' + part]], (name, part)
        # the neck (calibrated to OpenPose's) sits near the shoulders' midpoint
        midpoint = (keypoints[P['RShoulder'], :2] + keypoints[P['LShoulder'], :2]) / 2
        assert np.hypot(*(keypoints[P['Neck'], :2] - midpoint)) < 8, name
        # head-to-thigh photos: the hips lie well down the torso (a single whole-image pass
        # squeezes the cut-off body and puts them near the waist, ~60 px below the neck)
        assert min(y[P['RHip']], y[P['LHip']]) - y[P['Neck']] > 0.3 * h, name
        # shoulder width is a plausible fraction of these 192-px-wide photos
        assert 0.25 * w < x[P['LShoulder']] - x[P['RShoulder']] < 0.6 * w, name


def test_blazepose_scale_and_padding_are_undone(blazepose_estimator):
    """The same person, enlarged 3x and placed off-centre on a wide canvas, is found at the
    same place in the new image's pixels."""
    image = image_io.read_image(VITON_PERSONS[2])
    reference = blazepose_estimator.infer(image)
    big = cv.resize(image, None, fx=3, fy=3, interpolation=cv.INTER_CUBIC)
    canvas = np.full((big.shape[0] + 60, big.shape[1] + 500, 3), 235, np.uint8)
    canvas[40:40 + big.shape[0], 100:100 + big.shape[1]] = big
    moved = blazepose_estimator.infer(canvas)
    both = (reference[:, 2] > 0) & (moved[:, 2] > 0)
    for part in ('Nose', 'Neck', 'RShoulder', 'LShoulder'):
        assert both[coco_parts.PART_INDEX[part]]
    expected = (reference[both, :2] + 0.5) * 3 - 0.5 + [100, 40]
    # the crop differs (more background), so allow a few percent of the 768-px body height
    assert np.median(np.hypot(*(moved[both, :2] - expected).T)) < 15


def test_blazepose_blank_image_has_no_person(blazepose_estimator):
    keypoints = blazepose_estimator.infer(np.full((240, 320, 3), 127, np.uint8))
    assert np.all(keypoints == 0)


# ============================================================================ JSON and CLI
def test_keypoints_json_round_trip(tmp_path):
    keypoints = np.random.default_rng(9).uniform(0, 200, (18, 3)).astype(np.float32)
    keypoints[5] = 0
    data = openpose.keypoints_to_json(keypoints)
    assert len(data['people'][0]['pose_keypoints']) == 54
    path = tmp_path / 'k.json'
    path.write_text(json.dumps(data))
    np.testing.assert_allclose(openpose.read_keypoints_json(str(path)), keypoints, atol=1e-3)
    # OpenPose >= 1.2 writes pose_keypoints_2d
    path.write_text(json.dumps({'people': [{'pose_keypoints_2d': data['people'][0]['pose_keypoints']}]}))
    np.testing.assert_allclose(openpose.read_keypoints_json(str(path)), keypoints, atol=1e-3)


@pytest.mark.parametrize('content', [
    'not json', '[]', '{"people": []}', '{"people": [{"face": []}]}',
    '{"people": [{"pose_keypoints": [1, 2, 3]}]}',             # BODY_25 or truncated
    '{"people": [{"pose_keypoints": ' + json.dumps(['a'] * 54) + '}]}',
])
def test_malformed_keypoints_json(tmp_path, content):
    path = tmp_path / 'bad.json'
    path.write_text(content)
    with pytest.raises(errors.UsageError):
        openpose.read_keypoints_json(str(path))
    with pytest.raises(errors.UsageError):
        openpose.read_keypoints_json(str(tmp_path / 'missing.json'))


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(REPO_DIR, 'openpose.py')] + list(args),
                          capture_output=True, text=True, cwd=cwd)


def test_cli_blazepose_writes_png_and_json(blazepose_model, tmp_path):
    out_png, out_json = tmp_path / 'pose.png', tmp_path / 'pose.json'
    result = run_cli('-i', VITON_PERSONS[0], '-m', blazepose_model, '-o', str(out_png), '--json', str(out_json))
    assert result.returncode == 0, result.stderr
    drawing = cv.imread(str(out_png))
    assert drawing is not None and drawing.shape == (256, 192, 3)
    assert np.any(drawing != image_io.read_image(VITON_PERSONS[0]))
    keypoints = openpose.read_keypoints_json(str(out_json))
    assert (keypoints[:, 2] > 0).sum() >= 8
    stdout = run_cli('-i', VITON_PERSONS[0], '-m', blazepose_model, '-o', str(out_png), '--json', '-')
    assert stdout.returncode == 0
    assert len(json.loads(stdout.stdout)['people'][0]['pose_keypoints']) == 54


def test_cli_missing_image(tmp_path):
    result = run_cli('-i', str(tmp_path / 'nobody.jpg'), '-o', str(tmp_path / 'x.png'))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error:')
    assert not os.path.exists(tmp_path / 'x.png')
