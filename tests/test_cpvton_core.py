"""The non-network parts of CP-VTON against independent references: a float64 TPS solved per call,
scipy's map_coordinates for grid_sample, PIL's ImageDraw for the pose map, Pillow for the blur, and an
einsum of FeatureCorrelation for the rewritten Correlation node."""
import numpy as np
import onnx
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

import cv2 as cv
import gmm_rewrite
import registry
from cp_vton import CpVton, crop_to_ratio, grid_sample, pose_map, sigmoid, tanh, tps_grid
from gmm_rewrite import load_gmm, replace_correlation

RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------------------- crop
@pytest.mark.parametrize('size, expected', [
    ((256, 192), (0, 0, 192, 256)),       # already 256:192: untouched
    ((1000, 1000), (125, 0, 750, 1000)),  # (h, w) -> keep height, width 1000 * 0.75
    ((200, 100), (0, 33, 100, 133)),      # too tall: keep width, height round(133.33)
    ((513, 385), (0, 0, 385, 513)),       # 385 * 4 / 3 = 513.33 -> whole image
    ((3, 1), (0, 1, 1, 1)),          # centred: rows 1..1
])
def test_crop_to_ratio(size, expected):
    image = np.zeros(size + (3,), np.uint8)
    crop, box = crop_to_ratio(image)
    assert box == expected
    assert crop.shape[:2] == (expected[3], expected[2])


def test_crop_to_ratio_closest_integer_size():
    for height in range(1, 300, 7):
        for width in range(1, 300, 11):
            _, (x, y, w, h) = crop_to_ratio(np.zeros((height, width), np.uint8))
            assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
            best = min(abs(hh / ww - 256 / 192) for ww, hh in ((w, h), (w, h - 1), (w, h + 1), (w - 1, h), (w + 1, h))
                       if 0 < ww <= width and 0 < hh <= height and (ww == width or hh == height))
            assert abs(h / w - 256 / 192) <= best + 1e-12


# ---------------------------------------------------------------------------- TPS
def tps_reference(theta, height, width, grid_size=5):
    """Solve the TPS system for each theta in float64 and evaluate it point by point."""
    axis = np.linspace(-1, 1, grid_size)
    px, py = np.meshgrid(axis, axis, indexing='ij')
    px, py = px.ravel(), py.ravel()
    n = px.size
    d2 = (px[:, None] - px) ** 2 + (py[:, None] - py) ** 2
    with np.errstate(divide='ignore', invalid='ignore'):
        k = np.nan_to_num(d2 * np.log(d2))
    p = np.column_stack([np.ones(n), px, py])
    system = np.block([[k, p], [p.T, np.zeros((3, 3))]])
    gx, gy = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    grids = []
    for t in np.asarray(theta, np.float64):
        out = []
        for target in (px + t[:n], py + t[n:]):
            coef = np.linalg.solve(system, np.concatenate([target, np.zeros(3)]))
            value = coef[n] + coef[n + 1] * gx + coef[n + 2] * gy
            for i in range(n):
                r2 = (gx - px[i]) ** 2 + (gy - py[i]) ** 2
                with np.errstate(divide='ignore', invalid='ignore'):
                    value += coef[i] * np.nan_to_num(r2 * np.log(r2))
            out.append(value)
        grids.append(np.stack(out, -1))
    return np.stack(grids)


def test_tps_grid_matches_float64_solution():
    theta = RNG.uniform(-0.3, 0.3, (3, 50))
    grid = tps_grid(theta)
    assert grid.shape == (3, 256, 192, 2) and grid.dtype == np.float32
    assert np.abs(grid - tps_reference(theta, 256, 192)).max() <= 1e-4


def test_tps_grid_other_size_and_control_point_order():
    theta = np.zeros((1, 50))
    theta[0, 7] = 0.25   # control point 7 = (x = a[1], y = a[2]) moves right
    grid = tps_grid(theta, 9, 9)
    ref = tps_reference(theta, 9, 9)
    assert np.abs(grid - ref).max() <= 1e-4
    # a 9x9 output grid holds the control points at rows/cols 0, 2, 4, 6, 8: x of (row 4, col 2) moves
    assert grid[0, 4, 2, 0] == pytest.approx(-0.5 + 0.25, abs=1e-5)
    assert grid[0, 4, 2, 1] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize('height, width', [(1, 1), (1, 6), (5, 1), (2, 3), (7, 10), (255, 191)])
def test_tps_grid_quadrants_of_odd_even_and_one_pixel_sides(height, width):
    # tps_grid computes one quadrant and mirrors it: every side length, odd (a middle line shared by
    # two quadrants), even and a single pixel (at -1, off the axis of symmetry), against the float64 maths
    theta = RNG.uniform(-0.3, 0.3, (2, 50))
    assert np.abs(tps_grid(theta, height, width) - tps_reference(theta, height, width)).max() <= 2e-6


def test_tps_grid_zero_and_affine_theta_are_exact():
    identity = tps_grid(np.zeros((1, 50)))
    gx, gy = np.meshgrid(np.linspace(-1, 1, 192), np.linspace(-1, 1, 256))
    assert np.abs(identity[0, ..., 0] - gx).max() < 1e-5
    assert np.abs(identity[0, ..., 1] - gy).max() < 1e-5
    shift = np.concatenate([np.full(25, 0.1), np.full(25, -0.2)])[None]
    moved = tps_grid(shift)
    assert np.abs(moved[0, ..., 0] - (gx + 0.1)).max() < 1e-5
    assert np.abs(moved[0, ..., 1] - (gy - 0.2)).max() < 1e-5


# ---------------------------------------------------------------------------- grid_sample
def test_grid_sample_hand_case():
    image = np.array([[[[0, 10], [20, 30]]]], np.float32)       # 1x1x2x2
    grid = np.array([[[[-1, -1], [1, -1], [0, 0], [1, 1], [3, 0], [0, -5], [-0.5, 0]]]], np.float32)
    out = grid_sample(image, grid)
    # corners are pixel centres (align_corners); outside clamps to the border; (-0.5, 0) -> x = 0.25, y = 0.5
    assert np.allclose(out[0, 0, 0], [0, 10, 15, 30, 20, 5, 12.5])


def test_grid_sample_matches_map_coordinates():
    image = RNG.standard_normal((2, 3, 37, 23)).astype(np.float32)
    grid = RNG.uniform(-1.3, 1.3, (2, 41, 29, 2)).astype(np.float32)
    grid[0, :3] = np.linspace(-1, 1, 29)[None, :, None]         # exact pixel centres too
    out = grid_sample(image, grid)
    for b in range(2):
        x = (grid[b, ..., 0].astype(np.float64) + 1) / 2 * (23 - 1)
        y = (grid[b, ..., 1].astype(np.float64) + 1) / 2 * (37 - 1)
        for c in range(3):
            # mode='nearest' replicates the edge pixel: the same as clamping the coordinate (border)
            ref = ndimage.map_coordinates(image[b, c].astype(np.float64), [y, x], order=1, mode='nearest')
            assert np.abs(out[b, c] - ref).max() <= 1e-4


def test_grid_sample_identity_tps_returns_the_image():
    image = RNG.uniform(-1, 1, (1, 3, 256, 192)).astype(np.float32)
    assert np.abs(grid_sample(image, tps_grid(np.zeros((1, 50)))) - image).max() < 1e-4


# ---------------------------------------------------------------------------- pose map
def pil_pose_map(keypoints, height=256, width=192, r=5):
    maps = []
    for x, y, c in keypoints:
        one = Image.new('L', (width, height))
        if c > 0 and x > 1 and y > 1:
            ImageDraw.Draw(one).rectangle((x - r, y - r, x + r, y + r), 'white', 'white')
        maps.append(np.asarray(one, np.float32) / 255 * 2 - 1)
    return np.stack(maps)


def test_pose_map_matches_pil_rectangles():
    keypoints = np.column_stack([RNG.uniform(-10, 200, 18), RNG.uniform(-10, 270, 18), np.ones(18)])
    keypoints[:4] = [[1.0, 50, 1], [96.4, 1.5, 1], [0.5, 0.5, 1], [190.7, 254.2, 1]]  # x <= 1, borders
    keypoints[4] = [100, 100, 0]                                                     # not found
    keypoints[5:7] = [[3.3, 4.9, 0.2], [120.5, 7.5, 0.9]]                             # fractional
    ours = pose_map(keypoints)
    assert ours.dtype == np.float32 and ours.shape == (18, 256, 192)
    assert np.array_equal(ours, pil_pose_map(keypoints))
    assert np.all(ours[[0, 2, 4]] == -1)
    assert (ours[6] == 1).sum() == 11 * 11


# ---------------------------------------------------------------------------- agnostic and composition
def test_prepare_agnostic_against_pillow(synthetic_dir):
    model = CpVton(synthetic_dir + '/cp_vton_gmm.onnx', synthetic_dir + '/cp_vton_tom.onnx')
    labels = np.zeros((256, 192), np.uint8)
    labels[40:230, 50:140] = 5
    labels[10:40, 70:120] = 13
    labels[20:30, 60:70] = 2
    labels[150:250, 60:90] = 9
    labels[100:160, 30:50] = 14
    person = RNG.integers(0, 256, (256, 192, 3), dtype=np.uint8)
    pose = pose_map(np.zeros((18, 3)))
    agnostic = model.prepare_agnostic(labels, person, pose)
    assert agnostic.shape == (1, 22, 256, 192) and agnostic.dtype == np.float32
    blurred = Image.fromarray(((labels > 0) * 255).astype(np.uint8)).resize((12, 16), Image.BILINEAR)
    blurred = np.asarray(blurred.resize((192, 256), Image.BILINEAR), np.float64)
    assert np.abs(agnostic[0, 0] - (blurred / 127.5 - 1)).max() < 1e-6
    kept = np.isin(labels, [1, 2, 4, 13, 9, 12])
    rgb = person[..., ::-1].transpose(2, 0, 1) / 127.5 - 1
    assert np.abs(agnostic[0, 1:4] - np.where(kept, rgb, -1)).max() < 1e-6
    assert np.all(agnostic[0, 1:4][:, labels == 14] == -1)    # arms are not kept
    assert np.array_equal(agnostic[0, 4:], pose)


def test_agnostic_from_keypoints_equals_agnostic_from_pose_maps(synthetic_dir):
    """The try-on passes keypoints and the squares are drawn straight into the agnostic: the same tensor."""
    model = CpVton(synthetic_dir + '/cp_vton_gmm.onnx', synthetic_dir + '/cp_vton_tom.onnx')
    labels = RNG.integers(0, 20, (256, 192), dtype=np.uint8)
    person = RNG.integers(0, 256, (256, 192, 3), dtype=np.uint8)
    keypoints = np.column_stack([RNG.uniform(-10, 200, 18), RNG.uniform(-10, 270, 18), RNG.integers(0, 2, 18)])
    from_maps = model.prepare_agnostic(labels, person, pil_pose_map(keypoints))
    assert np.array_equal(model.prepare_agnostic(labels, person, keypoints), from_maps)


def test_tanh_and_sigmoid_against_float64():
    x = np.concatenate([np.linspace(-100, 100, 20001), [0, 1e-30, -1e-7, 88.7, -88.7, 1e4, -1e4]]).astype(np.float32)
    exact = x.astype(np.float64)
    assert np.abs(tanh(x) - np.tanh(exact)).max() <= 3e-7
    assert np.abs(sigmoid(x) - 1 / (1 + np.exp(-exact))).max() <= 3e-7
    assert tanh(x).dtype == sigmoid(x).dtype == np.float32
    assert tanh(x[:20000].reshape(8, 50, 50)).shape == (8, 50, 50)


def test_compose_hand_case():
    warped = np.zeros((1, 3, 2, 2), np.float32)
    warped[0, 0] = 1.0                   # red channel of the cloth at +1
    tom = np.zeros((1, 4, 2, 2), np.float32)
    tom[0, 3, 0, 0] = 50                 # mask ~1 at (0, 0): the cloth
    tom[0, 3, 1, 1] = -50                # mask ~0 at (1, 1): the rendering, tanh(0) = 0
    tom[0, :3, 1, 1] = np.arctanh(0.5)   # rendered = 0.5 there
    out = CpVton.compose(tom, warped)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert list(out[0, 0]) == [127, 127, 255]              # BGR of RGB (1, 0, 0) -> (255, 127, 127)
    assert list(out[1, 1]) == [191, 191, 191]              # (0.5 + 1) / 2 * 255 = 191.25
    assert list(out[0, 1]) == [127, 127, 191]              # mask 0.5: (1 * .5 + 0) -> 0.5 red


# ---------------------------------------------------------------------------- Correlation rewrite
def correlation_reference(a, b):
    """CP-VTON FeatureCorrelation: out[n, k * h + l, i, j] = sum_c B[n, c, i, j] * A[n, c, l, k]."""
    n, c, h, w = a.shape
    return np.einsum('ncij,nclk->nklij', b, a).reshape(n, w * h, h, w)


def correlation_model(c, h, w):
    from onnx import TensorProto, helper
    node = helper.make_node('Correlation', ['A', 'B'], ['C'], name='corr')
    graph = helper.make_graph([node], 'corr', [
        helper.make_tensor_value_info('A', TensorProto.FLOAT, [1, c, h, w]),
        helper.make_tensor_value_info('B', TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info('C', TensorProto.FLOAT, [1, h * w, h, w])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)])
    model.ir_version = 6
    return model


def _engines():
    return [None] if not hasattr(cv.dnn, 'ENGINE_CLASSIC') else [cv.dnn.ENGINE_CLASSIC, cv.dnn.ENGINE_NEW]


@pytest.mark.parametrize('engine', _engines())
@pytest.mark.parametrize('c, h, w', [(8, 4, 3), (16, 16, 12), (5, 3, 7)])
def test_rewritten_correlation_matches_feature_correlation(engine, c, h, w):
    model = correlation_model(c, h, w)
    assert replace_correlation(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert all(node.op_type in ('Transpose', 'Reshape', 'MatMul') for node in model.graph.node)
    a = RNG.standard_normal((1, c, h, w)).astype(np.float32)
    b = RNG.standard_normal((1, c, h, w)).astype(np.float32)
    net = gmm_rewrite.read_onnx_buffer(model.SerializeToString(), engine)
    net.setInput(a, 'A')
    net.setInput(b, 'B')
    out = net.forward()
    assert out.shape == (1, h * w, h, w)
    assert np.abs(out - correlation_reference(a, b)).max() <= 1e-4


def test_rewritten_gmm_is_standard_and_engines_agree(synthetic_dir):
    model = onnx.load(synthetic_dir + '/cp_vton_gmm.onnx')
    assert [n.op_type for n in model.graph.node].count('Correlation') == 1
    assert replace_correlation(model) == 1
    onnx.checker.check_model(model, full_check=True)
    schemas = {s.name for s in onnx.defs.get_all_schemas()}
    assert {n.op_type for n in model.graph.node} <= schemas
    assert all(n.domain in ('', 'ai.onnx') for n in model.graph.node)
    agnostic = RNG.uniform(-1, 1, (1, 22, 256, 192)).astype(np.float32)
    cloth = RNG.uniform(-1, 1, (1, 3, 256, 192)).astype(np.float32)
    thetas = []
    for engine in _engines():
        net = gmm_rewrite.read_onnx_buffer(model.SerializeToString(), engine)
        net.setInput(agnostic, 'input.1')
        net.setInput(cloth, 'input.18')
        thetas.append(net.forward().copy())
    assert thetas[0].shape == (1, 50)
    assert np.all(np.abs(thetas[0]) < 1) and np.abs(thetas[0]).max() > 1e-4  # tanh output, not constant
    for theta in thetas[1:]:
        assert np.abs(theta - thetas[0]).max() <= 1e-5


def test_convert_gmm_command_writes_a_standard_file(synthetic_dir, tmp_path):
    import subprocess
    import sys
    out = str(tmp_path / 'gmm_std.onnx')
    result = subprocess.run([sys.executable, registry.REPO_DIR + '/tools/convert_gmm.py',
                             synthetic_dir + '/cp_vton_gmm.onnx', out], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert 'Correlation' not in {n.op_type for n in model.graph.node}
    agnostic = RNG.uniform(-1, 1, (1, 22, 256, 192)).astype(np.float32)
    cloth = RNG.uniform(-1, 1, (1, 3, 256, 192)).astype(np.float32)
    from_file = cv.dnn.readNetFromONNX(out)
    from_file.setInput(agnostic, 'input.1')
    from_file.setInput(cloth, 'input.18')
    in_memory, _, _ = load_gmm(synthetic_dir + '/cp_vton_gmm.onnx')
    in_memory.setInput(agnostic, 'input.1')
    in_memory.setInput(cloth, 'input.18')
    assert np.abs(from_file.forward() - in_memory.forward()).max() <= 1e-5
