#!/usr/bin/env python3
"""Virtual try-on with OpenCV's dnn module: CP-VTON (Wang et al., ECCV 2018).

A person photo and a garment photo go in; an image of the person wearing the garment comes out.
Four networks are chained: pose (OpenPose COCO, or BlazePose), human parsing (LIP JPPNet), the
geometric matching module GMM (a thin-plate-spline warp of the cloth) and the try-on module TOM.

    python3 virtual_try_on.py -i person.jpg -c cloth.jpg [-o result.png]

Everything between the networks reproduces CP-VTON's training-time preprocessing exactly: the body
shape is blurred by Pillow's BILINEAR resize (pil_bilinear.py), the pose map is PIL's rectangle
drawing, the warp is PyTorch 0.4's grid_sample (bilinear, border padding, align_corners=True).
"""
import argparse
import os
import sys

import cv2 as cv
import numpy as np

import common
import pil_bilinear
from common import RuntimeFailure, UsageError

GMM_FILE, TOM_FILE = 'cp_vton_gmm.onnx', 'cp_vton_tom.onnx'
# CP-VTON's fine_height, fine_width: the input of both networks (models.yml)
HEIGHT, WIDTH = common.model_input(GMM_FILE, 'height'), common.model_input(GMM_FILE, 'width')
GRID_SIZE = 5
# LIP classes kept from the person photo in the agnostic "head" channels: Hat, Hair, Sunglasses, Face,
# and (as OpenCV's trained GMM/TOM expect) Pants and Skirt
KEPT_LABELS = (1, 2, 4, 13, 9, 12)
GMM_INPUTS = ('input.1', 'input.18')  # agnostic (1, 22, 256, 192), cloth (1, 3, 256, 192)
ANALYSIS_HEIGHT = 512  # the person crop is shrunk to at most this height for pose and parsing
MIN_SIZE = (HEIGHT // 4, WIDTH // 4)  # smallest (h, w) of the person crop and of the cloth photo


# ---------------------------------------------------------------------------- geometry
def crop_to_ratio(image, ratio=HEIGHT / WIDTH):
    """Centre crop to height / width = ratio. Returns (crop, (x, y, w, h)) with the box in `image`.

    The kept side is whole; the other is the integer closest to side * ratio (or / ratio), so that
    a 256x192 photo is returned untouched and no off-by-one creeps in."""
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise UsageError('empty image')
    if height > width * ratio:
        w, h = width, min(height, int(np.floor(width * ratio + 0.5)))
    else:
        w, h = min(width, int(np.floor(height / ratio + 0.5))), height
    if w < 1 or h < 1:
        raise UsageError('image of %dx%d is too small to crop to %.4g:1' % (width, height, ratio))
    x, y = (width - w) // 2, (height - h) // 2
    return image[y:y + h, x:x + w], (x, y, w, h)


def _tps_basis(height, width, grid_size):
    """Matrix M (H*W, K) such that the TPS of CpVton's TpsGridGen maps control points Q (K,) to
    the warped x (or y) of every output pixel: x' = M @ Q. K = grid_size**2."""
    axis = np.linspace(-1.0, 1.0, grid_size)
    control_x = np.repeat(axis, grid_size)   # point k at x = axis[k // grid_size]
    control_y = np.tile(axis, grid_size)     # and y = axis[k % grid_size]
    n = grid_size * grid_size

    def kernel(d2):
        # U(r^2) = r^2 log r^2, with U(0) = 0
        return np.where(d2 == 0, 0.0, d2 * np.log(np.where(d2 == 0, 1.0, d2)))

    d2 = (control_x[:, None] - control_x[None]) ** 2 + (control_y[:, None] - control_y[None]) ** 2
    p = np.stack([np.ones(n), control_x, control_y], axis=1)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n], system[:n, n:], system[n:, :n] = kernel(d2), p, p.T
    system_inv = np.linalg.inv(system)[:, :n]  # only the columns that multiply Q (the rest see zeros)

    grid_x, grid_y = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    gx, gy = grid_x.reshape(-1, 1), grid_y.reshape(-1, 1)
    u = kernel((gx - control_x) ** 2 + (gy - control_y) ** 2)            # (H*W, K)
    affine = np.concatenate([np.ones_like(gx), gx, gy], axis=1)           # (H*W, 3)
    basis = u @ system_inv[:n] + affine @ system_inv[n:]
    return basis, np.stack([control_x, control_y])


_TPS_CACHE = {}


def tps_grid(theta, height=HEIGHT, width=WIDTH, grid_size=GRID_SIZE):
    """CP-VTON's TpsGridGen: theta (N, 2*K) -> sampling grid (N, H, W, 2) of (x, y) in [-1, 1].

    theta[:, :K] offsets the x of the control points, theta[:, K:] their y. The grid is linear in
    theta, so the basis is computed once per size and a call is a single matrix product."""
    key = (height, width, grid_size)
    if key not in _TPS_CACHE:
        basis, control = _tps_basis(height, width, grid_size)
        _TPS_CACHE[key] = (basis.astype(np.float32), control.astype(np.float32))
    basis, control = _TPS_CACHE[key]
    theta = np.asarray(theta, np.float32).reshape(-1, 2, grid_size * grid_size)
    points = theta + control                                  # (N, 2, K)
    grid = basis @ points.transpose(2, 0, 1).reshape(basis.shape[1], -1)  # (H*W, N*2)
    return np.ascontiguousarray(grid.reshape(height, width, -1, 2).transpose(2, 0, 1, 3))


def grid_sample(image, grid):
    """torch.nn.functional.grid_sample(image, grid, mode='bilinear', padding_mode='border',
    align_corners=True), the behaviour of the PyTorch 0.4 that CP-VTON was trained with.

    image (N, C, H, W) float32, grid (N, Ho, Wo, 2) of (x, y) in [-1, 1] -> (N, C, Ho, Wo)."""
    image = np.asarray(image, np.float32)
    n, c, h, w = image.shape
    grid = np.asarray(grid, np.float32)
    out_h, out_w = grid.shape[1:3]
    out = np.empty((n, c, out_h, out_w), np.float32)
    step_x, step_y = (1 if w > 1 else 0), (w if h > 1 else 0)
    for b in range(n):  # batch loop only; everything per pixel is vectorised
        # align_corners=True: -1 and 1 are the centres of the corner pixels; border padding: clamp
        x = np.clip((grid[b, ..., 0].ravel() + np.float32(1)) * np.float32(0.5 * (w - 1)), 0, w - 1)
        y = np.clip((grid[b, ..., 1].ravel() + np.float32(1)) * np.float32(0.5 * (h - 1)), 0, h - 1)
        # the left/top neighbour, kept one short of the last pixel so the right/bottom one exists
        # (at the last pixel its weight is then exactly 1)
        x0 = np.minimum(x.astype(np.intp), max(w - 2, 0))
        y0 = np.minimum(y.astype(np.intp), max(h - 2, 0))
        fx, fy = x - x0, y - y0
        top_left = y0 * w + x0
        flat = image[b].reshape(c, -1)
        a, b_ = np.take(flat, top_left, axis=1), np.take(flat, top_left + step_x, axis=1)
        top = a + (b_ - a) * fx
        a, b_ = np.take(flat, top_left + step_y, axis=1), np.take(flat, top_left + step_y + step_x, axis=1)
        bottom = a + (b_ - a) * fx
        out[b] = (top + (bottom - top) * fy).reshape(c, out_h, out_w)
    return out


def pose_map(keypoints, height=HEIGHT, width=WIDTH, radius=5):
    """CP-VTON's pose channels: keypoints (18, 3) of (x, y, confidence) in pixels -> (18, H, W) float32,
    +1 on the square [int(x - r), int(x + r)] x [int(y - r), int(y + r)] (PIL's rectangle: truncated,
    inclusive, clipped), -1 elsewhere. A missing point (confidence 0, or x <= 1 or y <= 1) stays -1."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 3)
    maps = np.full((len(keypoints), height, width), -1.0, np.float32)
    found = (keypoints[:, 2] > 0) & (keypoints[:, 0] > 1) & (keypoints[:, 1] > 1)
    lo = np.trunc(keypoints[:, :2] - radius).astype(np.int64)
    hi = np.trunc(keypoints[:, :2] + radius).astype(np.int64)
    x0, y0 = np.maximum(lo[:, 0], 0), np.maximum(lo[:, 1], 0)
    x1, y1 = np.minimum(hi[:, 0], width - 1), np.minimum(hi[:, 1], height - 1)
    for k in np.flatnonzero(found & (x0 <= x1) & (y0 <= y1)):  # one slice per keypoint
        maps[k, y0[k]:y1[k] + 1, x0[k]:x1[k] + 1] = 1.0
    return maps


# ToTensor + Normalize(0.5, 0.5) of each 8-bit value, computed once in the same float32 steps
_UNIT_RANGE = (np.arange(256, dtype=np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)


def to_unit_range(image_bgr):
    """BGR uint8 (H, W, 3) -> RGB float32 (3, H, W) in [-1, 1], as ToTensor + Normalize(0.5, 0.5)."""
    return np.take(_UNIT_RANGE, image_bgr[..., ::-1].transpose(2, 0, 1))


def to_image(tensor_rgb):
    """(3, H, W) in [-1, 1] -> BGR uint8, as CP-VTON saves results: (x + 1) / 2 * 255, clamped, truncated."""
    scaled = np.clip((tensor_rgb + 1) * 0.5 * 255, 0, 255).astype(np.uint8)
    return cv.merge([scaled[2], scaled[1], scaled[0]])


def resize_to_model(image, interpolation=None):
    """Resize a BGR image to 192x256 (area when shrinking, linear when enlarging); no-op at that size."""
    if image.shape[:2] == (HEIGHT, WIDTH):
        return image
    if interpolation is None:
        interpolation = cv.INTER_AREA if image.shape[0] > HEIGHT else cv.INTER_LINEAR
    return cv.resize(image, (WIDTH, HEIGHT), interpolation=interpolation)


# ---------------------------------------------------------------------------- GMM graph rewrite
def replace_correlation(model):
    """Rewrite CP-VTON's custom `Correlation` node(s) of an onnx.ModelProto into standard ONNX ops, in place.

    FeatureCorrelation(A, B), A and B (b, c, h, w): A transposed over (h, w) and flattened to (b, c, w*h),
    B flattened to (b, c, h*w) and transposed, batched product B^T A (b, h*w, w*h), reshaped to
    (b, h, w, w*h) and permuted to (b, w*h, h, w). Returns the number of nodes replaced."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    positions = [i for i, node in enumerate(graph.node) if node.op_type == 'Correlation']
    if not positions:
        return 0
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = [d.dim_value if d.HasField('dim_value') else 0 for d in value.type.tensor_type.shape.dim]
        shapes[value.name] = dims
    for i in reversed(positions):
        node = graph.node[i]
        feature_a, feature_b = node.input[0], node.input[1]
        dims = shapes.get(feature_a, [])
        if len(dims) != 4 or not dims[2] or not dims[3]:
            raise RuntimeFailure('cannot rewrite Correlation node %r: the spatial size of its input is unknown'
                                 % node.name)
        h, w = dims[2], dims[3]
        prefix = (node.name or node.output[0]) + '/corr_'
        shape_flat = numpy_helper.from_array(np.array([0, 0, -1], np.int64), prefix + 'flat_shape')
        shape_out = numpy_helper.from_array(np.array([0, h, w, h * w], np.int64), prefix + 'out_shape')
        graph.initializer.extend([shape_flat, shape_out])
        new_nodes = [
            helper.make_node('Transpose', [feature_a], [prefix + 'a_t'], perm=[0, 1, 3, 2], name=prefix + 'a_t'),
            helper.make_node('Reshape', [prefix + 'a_t', shape_flat.name], [prefix + 'a_flat'], name=prefix + 'a_flat'),
            helper.make_node('Reshape', [feature_b, shape_flat.name], [prefix + 'b_flat'], name=prefix + 'b_flat'),
            helper.make_node('Transpose', [prefix + 'b_flat'], [prefix + 'b_t'], perm=[0, 2, 1], name=prefix + 'b_t'),
            helper.make_node('MatMul', [prefix + 'b_t', prefix + 'a_flat'], [prefix + 'mul'], name=prefix + 'mul'),
            helper.make_node('Reshape', [prefix + 'mul', shape_out.name], [prefix + 'mul4'], name=prefix + 'mul4'),
            helper.make_node('Transpose', [prefix + 'mul4'], [node.output[0]], perm=[0, 3, 1, 2], name=prefix + 'out'),
        ]
        del graph.node[i]
        for offset, new in enumerate(new_nodes):
            graph.node.insert(i + offset, new)
    # Reshape with a shape input needs opset >= 5; MatMul >= 1: any exported CP-VTON graph qualifies
    return len(positions)


def _onnx_inputs(model):
    initializers = {t.name for t in model.graph.initializer}
    result = {}
    for value in model.graph.input:
        if value.name not in initializers:
            result[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    return result


def _load_onnx(path, what):
    """onnx.load with clear errors (missing, truncated, not ONNX)."""
    import onnx
    if not os.path.isfile(path):
        raise UsageError('%s model file not found: %s' % (what, path))
    try:
        model = onnx.load(path)
    except Exception as err:  # protobuf DecodeError and friends: the file is damaged
        raise RuntimeFailure('%s model %s is not a valid ONNX file (truncated or damaged?): %s'
                             % (what, path, str(err).splitlines()[0] if str(err) else type(err).__name__))
    if not model.graph.node:
        raise RuntimeFailure('%s model %s holds no graph (truncated or damaged?)' % (what, path))
    return model


def load_gmm(path, engine=None):
    """Read the GMM ONNX, rewrite its Correlation node to standard ops, return (cv.dnn.Net, is_synthetic)."""
    model = _load_onnx(path, 'GMM')
    inputs = _onnx_inputs(model)
    if sorted(inputs) != sorted(GMM_INPUTS):
        raise RuntimeFailure('GMM model %s has inputs %s; expected %s (agnostic, cloth)'
                             % (path, ', '.join(sorted(inputs)), ', '.join(GMM_INPUTS)))
    replace_correlation(model)
    net = _read_onnx_buffer(model.SerializeToString(), engine)
    return net, common.onnx_is_synthetic(model)


def _read_onnx_buffer(buffer, engine=None):
    data = np.frombuffer(buffer, np.uint8)
    if engine is None:
        return cv.dnn.readNetFromONNX(data)
    return cv.dnn.readNetFromONNX(data, engine)


# ---------------------------------------------------------------------------- the try-on networks
class CpVton:
    """GMM + TOM of CP-VTON, on the cloth-agnostic person representation.

    gmm_path, tom_path: the published cp_vton_gmm.onnx / cp_vton_tom.onnx (or the synthetic stand-ins)."""

    def __init__(self, gmm_path, tom_path, backend=cv.dnn.DNN_BACKEND_OPENCV, target=cv.dnn.DNN_TARGET_CPU,
                 kept_labels=KEPT_LABELS):
        self.gmm_path, self.tom_path = gmm_path, tom_path
        self.kept_labels = np.asarray(kept_labels)
        self._load(common.dnn_engine(backend, target))
        self.setBackendAndTarget(backend, target)
        self.head_lut = np.zeros(256, bool)
        self.head_lut[self.kept_labels] = True

    def _load(self, engine):
        self.gmm, gmm_synthetic = load_gmm(self.gmm_path, engine)
        tom_model = _load_onnx(self.tom_path, 'TOM')
        tom_inputs = _onnx_inputs(tom_model)
        if len(tom_inputs) != 1 or list(tom_inputs.values())[0][1:2] not in ([25], [0]):
            raise RuntimeFailure('TOM model %s has inputs %s; expected one input of 25 channels'
                                 % (self.tom_path, tom_inputs))
        self.tom_input = next(iter(tom_inputs))
        self.tom = _read_onnx_buffer(tom_model.SerializeToString(), engine)
        self.synthetic = gmm_synthetic or common.onnx_is_synthetic(tom_model)
        if gmm_synthetic:
            common.warn_synthetic(self.gmm_path, 'cloth warp')
        if common.onnx_is_synthetic(tom_model):
            common.warn_synthetic(self.tom_path, 'try-on')
        self.engine = engine

    def setBackendAndTarget(self, backend, target):
        engine = common.dnn_engine(backend, target)
        if engine != self.engine:
            self._load(engine)  # OpenCV 5: a non-CPU backend or target needs the classic engine
        self.backend, self.target = backend, target
        for net in (self.gmm, self.tom):
            common.set_backend_target(net, backend, target, engine)

    def prepare_agnostic(self, labels, person, pose):
        """labels (256, 192) LIP classes, person BGR uint8 256x192, pose (18, 256, 192) from pose_map
        -> agnostic (1, 22, 256, 192) float32: blurred body shape, kept regions of the person, pose."""
        labels = np.asarray(labels)
        if labels.shape != (HEIGHT, WIDTH) or person.shape[:2] != (HEIGHT, WIDTH):
            raise ValueError('labels and person must be %dx%d' % (WIDTH, HEIGHT))
        shape = np.where(labels > 0, np.uint8(255), np.uint8(0))
        shape = pil_bilinear.resize(pil_bilinear.resize(shape, (WIDTH // 16, HEIGHT // 16)), (WIDTH, HEIGHT))
        shape = (shape.astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
        head = self.head_lut[labels.astype(np.uint8)]
        head = np.where(head, to_unit_range(person), np.float32(-1))
        agnostic = np.concatenate([shape[None], head, np.asarray(pose, np.float32)], axis=0)
        return agnostic[None]

    def predict_theta(self, cloth_tensor, agnostic):
        self.gmm.setInput(agnostic, GMM_INPUTS[0])
        self.gmm.setInput(cloth_tensor, GMM_INPUTS[1])
        return self.gmm.forward().reshape(1, -1)

    def warp_cloth(self, cloth, agnostic):
        """cloth BGR uint8 -> warped cloth (1, 3, 256, 192) in [-1, 1] RGB, by the GMM's TPS."""
        cloth_tensor = to_unit_range(resize_to_model(cloth))[None]
        theta = self.predict_theta(cloth_tensor, agnostic)
        return grid_sample(cloth_tensor, tps_grid(theta))

    def try_on(self, agnostic, warped):
        """TOM on concat(agnostic, warped) -> BGR uint8 256x192 result."""
        self.tom.setInput(np.concatenate([agnostic, warped], axis=1), self.tom_input)
        return self.compose(self.tom.forward(), warped)

    @staticmethod
    def compose(tom_output, warped):
        """rendered = tanh, mask = sigmoid; result = warped * mask + rendered * (1 - mask), as BGR uint8."""
        rendered = np.tanh(tom_output[0, :3])
        mask = 1 / (1 + np.exp(-tom_output[0, 3:4]))
        return to_image(warped[0] * mask + rendered * (1 - mask))

    def infer(self, labels, person, pose, cloth):
        agnostic = self.prepare_agnostic(labels, person, pose)
        return self.try_on(agnostic, self.warp_cloth(cloth, agnostic))


# ---------------------------------------------------------------------------- person analysis
def has_torso(keypoints):
    """A person needs the neck, a shoulder and a hip for the agnostic representation to make sense."""
    found = np.asarray(keypoints)[:, 2] > 0
    return bool(found[1] and (found[2] or found[5]) and (found[8] or found[11]))


def keypoints_to_model(keypoints, box):
    """Keypoints in the original photo's pixels -> the 192x256 model frame of the crop `box`."""
    x, y, w, h = box
    result = np.array(keypoints, np.float32).reshape(-1, 3)
    found = result[:, 2] > 0
    result[:, 0] = np.where(found, (result[:, 0] - x) * (WIDTH / w), 0)
    result[:, 1] = np.where(found, (result[:, 1] - y) * (HEIGHT / h), 0)
    return result


def labels_to_model(labels, box, photo_shape):
    """LIP labels of the whole photo (at the photo's size, or any size with the same framing) -> the
    256x192 model frame of the crop `box`, nearest neighbour (labels are classes, not intensities)."""
    x, y, w, h = box
    scale_y, scale_x = labels.shape[0] / photo_shape[0], labels.shape[1] / photo_shape[1]
    top, left = int(round(y * scale_y)), int(round(x * scale_x))
    bottom = max(top + 1, int(round((y + h) * scale_y)))
    right = max(left + 1, int(round((x + w) * scale_x)))
    return cv.resize(np.ascontiguousarray(labels[top:bottom, left:right]), (WIDTH, HEIGHT),
                     interpolation=cv.INTER_NEAREST)


class VirtualTryOn:
    """The whole chain: crop -> pose -> parsing -> agnostic -> GMM warp -> TOM.

    pose, parsing: objects with infer(image_bgr) returning (18, 3) keypoints / (H, W) LIP labels
    (openpose.OpenPose or openpose.BlazePose, human_parsing.JppNet); either may be None when the
    caller passes keypoints / labels to infer()."""

    def __init__(self, cp_vton, pose=None, parsing=None):
        self.cp_vton, self.pose, self.parsing = cp_vton, pose, parsing

    def setBackendAndTarget(self, backend, target):
        for model in (self.cp_vton, self.pose, self.parsing):
            if model is not None:
                model.setBackendAndTarget(backend, target)

    def infer(self, person, cloth, keypoints=None, labels=None):
        """person, cloth BGR uint8 of any size; keypoints (18, 3) and labels (H, W) of the whole person
        photo, estimated when None. Returns the 256x192 BGR try-on."""
        crop, box = crop_to_ratio(person)
        # the analysis networks see the crop at a bounded size: a 40 MP photo costs no more than a small one
        analysis = crop
        if crop.shape[0] > ANALYSIS_HEIGHT:
            analysis = cv.resize(crop, (max(1, round(crop.shape[1] * ANALYSIS_HEIGHT / crop.shape[0])),
                                        ANALYSIS_HEIGHT), interpolation=cv.INTER_AREA)
        if keypoints is None:
            keypoints = keypoints_to_model(self.pose.infer(analysis), (0, 0, analysis.shape[1], analysis.shape[0]))
        else:
            keypoints = keypoints_to_model(keypoints, box)
        if not has_torso(keypoints):
            raise RuntimeFailure('no person found: pose found no torso (neck, shoulder and hip) in the photo')
        if labels is None:
            labels = cv.resize(self.parsing.infer(analysis), (WIDTH, HEIGHT), interpolation=cv.INTER_NEAREST)
        else:
            labels = labels_to_model(labels, box, person.shape)
        return self.cp_vton.infer(labels, resize_to_model(crop), pose_map(keypoints), cloth)


# ---------------------------------------------------------------------------- command line
def check_size(image, what, part):
    """Refuse images with too few pixels to hold a person or a garment (a 1x1 photo, a thin strip)."""
    h, w = image.shape[:2]
    if h < MIN_SIZE[0] or w < MIN_SIZE[1]:
        raise UsageError('%s is too small: %s is %dx%d, at least %dx%d is needed'
                         % (what, part, w, h, MIN_SIZE[1], MIN_SIZE[0]))


def default_output_name(person_path, cloth_path):
    stem = lambda p: os.path.splitext(os.path.basename(p))[0]  # noqa: E731
    return '%s_%s_tryon.png' % (stem(person_path), stem(cloth_path))


def build_parser():
    parser = argparse.ArgumentParser(
        description='Virtual try-on (CP-VTON) with OpenCV dnn: dresses the person of --input in the garment '
                    'of --cloth. Exit status: 0 done, 1 runtime failure, 2 bad usage or input.')
    parser.add_argument('-i', '--input', required=True, help='person photo')
    parser.add_argument('-c', '--cloth', required=True, help='garment photo: on white, or a cut-out with alpha (laid over white)')
    parser.add_argument('-o', '--output', help='result image (default: <person>_<cloth>_tryon.png, printed)')
    parser.add_argument('--show', action='store_true', help='also show the result in a window')
    parser.add_argument('--gmm', help='GMM model (default: cp_vton_gmm.onnx in the models directory)')
    parser.add_argument('--tom', help='TOM model (default: cp_vton_tom.onnx in the models directory)')
    parser.add_argument('--pose-model', help='pose model: OpenPose .onnx/.caffemodel or BlazePose .tflite '
                                             '(default: OpenPose if present, else BlazePose)')
    parser.add_argument('--pose-config', help='OpenPose .prototxt, for a .caffemodel (OpenCV 4.x)')
    parser.add_argument('--parsing-model', help='LIP JPPNet model (default: lip_jppnet_384.pb)')
    parser.add_argument('--keypoints', help='OpenPose-style JSON of the person photo, instead of the pose network')
    parser.add_argument('--labels', help='LIP parsing of the person photo (grey label, palette or colour PNG), '
                                         'instead of the parsing network')
    parser.add_argument('--synthetic', action='store_true',
                        help='use the synthetic seeded-random GMM and TOM models (built on first use) to '
                             'see the pipeline run without the published files; the output is NOT a try-on')
    common.add_backend_arguments(parser)
    common.add_verbosity_arguments(parser)
    return parser


def _synthetic_dir():
    return os.path.join(common.models_dir(), 'synthetic')


def main(argv=None):
    args, status = common.parse_cli(build_parser(), argv)
    if args is None:
        return status
    backend, target = common.backend_target(args.backend, args.target)
    person = common.read_image(args.input, 'person photo')
    cloth = common.read_image(args.cloth, 'cloth photo')
    output = args.output or default_output_name(args.input, args.cloth)
    common.check_output_path(output)
    check_size(crop_to_ratio(person)[0], 'person photo %s' % args.input, 'its 256:192 centre crop')
    check_size(cloth, 'cloth photo %s' % args.cloth, 'it')

    keypoints = labels = None
    if args.keypoints:
        import openpose
        keypoints = openpose.read_keypoints_json(args.keypoints)
    if args.labels:
        import human_parsing
        labels = human_parsing.read_parsing(args.labels)

    model_dir = _synthetic_dir() if args.synthetic else None
    if args.synthetic:
        from models import synthetic
        synthetic.build_all(model_dir, openpose=False)
    verify = not args.synthetic  # the synthetic files share the published names, not their bytes
    with common.SyntheticWarnings('try-on'):  # one warning naming every synthetic model
        gmm = args.gmm or common.find_model(GMM_FILE, model_dir, verify=verify)
        tom = args.tom or common.find_model(TOM_FILE, model_dir, verify=verify)
        cp_vton = CpVton(gmm, tom, backend, target)
        pose = parsing = None
        if keypoints is None:
            import openpose
            pose = openpose.create_pose_estimator(args.pose_model, backend_id=backend, target_id=target,
                                                  config=args.pose_config)
        if labels is None:
            import human_parsing
            # JPPNet when its file is there, else MediaPipe's models (real, from the wheel), also with --synthetic
            parsing = human_parsing.create_parser(args.parsing_model, backend, target, pose=pose)
    result = VirtualTryOn(cp_vton, pose, parsing).infer(person, cloth, keypoints, labels)
    common.write_image(output, result)
    print(output)
    if args.show:
        cv.imshow('Virtual try-on', np.hstack([resize_to_model(crop_to_ratio(person)[0]),
                                                resize_to_model(cloth), result]))
        cv.waitKey()
    return 0


def cli():
    """Console command `virtual-try-on`."""
    sys.exit(common.run_main(main))


if __name__ == '__main__':
    cli()
