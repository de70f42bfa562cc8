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
import inspect
import logging
import os
import sys
import time

import cv2 as cv
import numpy as np

import common
import pil_bilinear
from common import RuntimeFailure, UsageError

log = logging.getLogger(__name__)

GMM_FILE, TOM_FILE = 'cp_vton_gmm.onnx', 'cp_vton_tom.onnx'
# the GMM and TOM trained here on VITON (tools/train_cpvton.py), shipped in models/: the default when the
# published pair is not in the models directory
OWN_GMM_FILE, OWN_TOM_FILE = 'cp_vton_gmm_small.onnx', 'cp_vton_tom_small.onnx'
# ONNX metadata of a GMM whose correlation is already standard operators (no rewrite, no cache)
STANDARD_OPS_KEY = 'standard_ops'
# CP-VTON's fine_height, fine_width: the input of both networks (models.yml)
HEIGHT, WIDTH = common.model_input(GMM_FILE, 'height'), common.model_input(GMM_FILE, 'width')
GRID_SIZE = 5
# LIP classes kept from the person photo in the agnostic "head" channels: Hat, Hair, Sunglasses, Face,
# and (as OpenCV's trained GMM/TOM expect) Pants and Skirt
KEPT_LABELS = (1, 2, 4, 13, 9, 12)
GMM_INPUTS = ('input.1', 'input.18')  # agnostic (1, 22, 256, 192), cloth (1, 3, 256, 192)
ANALYSIS_HEIGHT = 512  # the person crop is shrunk to at most this height for pose and parsing
MIN_SIZE = (HEIGHT // 4, WIDTH // 4)  # smallest (h, w) of the person crop and of the cloth photo
# full-resolution compositing: LIP classes the try-on replaces (upper clothes, dress, coat, both arms) and
# the head classes it never touches (hat, hair, sunglasses, face)
EDIT_LABELS = (5, 6, 7, 14, 15)
HEAD_LABELS = (1, 2, 4, 13)
FACE_LABEL = 13
BODY_MARGIN = 4  # model pixels the new garment may reach beyond the parsed person
FEATHER = 3  # soft edge of the pasted region, in photo pixels


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


def _tps_quadrant(height, width, grid_size):
    """The top-left quadrant of the TPS basis, stored (K, h, w), the control points, and the orders of
    the control points that give the other quadrants. The output grid and the control grid are both
    symmetric about x = 0 and about y = 0, and a TPS commutes with mirroring: at pixel (row, W-1-col)
    the grid is the quadrant's maths on the control points mirrored in x. A call then reads a quarter
    of the basis (1.2 MB at 256x192, against 4.9 MB: it no longer stays in the cache between calls)."""
    key = (height, width, grid_size)
    if key not in _TPS_CACHE:
        basis, control = _tps_basis(height, width, grid_size)
        rows, cols = (height + 1) // 2, (width + 1) // 2
        quadrant = basis.reshape(height, width, -1)[:rows, :cols]
        k = np.arange(grid_size * grid_size)
        column, row = k // grid_size, k % grid_size       # point k at x = axis[k // n], y = axis[k % n]
        # a side of one pixel sits at -1, not on the axis of symmetry: no mirror there
        mirror_x = (grid_size - 1 - column) * grid_size + row if width > 1 else k
        mirror_y = column * grid_size + (grid_size - 1 - row) if height > 1 else k
        orders = np.stack([k, mirror_x, mirror_y, mirror_x[mirror_y]])
        _TPS_CACHE[key] = (np.ascontiguousarray(quadrant.transpose(2, 0, 1), np.float32),
                           control.astype(np.float32), orders)
    return _TPS_CACHE[key]


def tps_grid(theta, height=HEIGHT, width=WIDTH, grid_size=GRID_SIZE):
    """CP-VTON's TpsGridGen: theta (N, 2*K) -> sampling grid (N, H, W, 2) of (x, y) in [-1, 1].

    theta[:, :K] offsets the x of the control points, theta[:, K:] their y. The grid is linear in
    theta, so the basis is computed once per size and a call is a single matrix product: one quadrant
    of the basis times the control points in four mirrored orders, each result mirrored into place."""
    quadrant, control, orders = _tps_quadrant(height, width, grid_size)
    count, rows, cols = quadrant.shape
    theta = np.asarray(theta, np.float32).reshape(-1, 2, count)
    points = theta + control                                  # (N, 2, K)
    n = len(points)
    # (K, 4 * N * 2) in column order: einsum's loop then runs down contiguous columns (20x faster
    # than the row-ordered copy); without optimize, einsum stays on the calling thread: a thread pool
    # (BLAS's or cv.gemm's) only adds a wait for its threads, milliseconds when the cores are busy
    mirrored = np.asfortranarray(points[:, :, orders].transpose(3, 2, 0, 1).reshape(count, -1))
    planes = np.einsum('kp,kq->pq', quadrant.reshape(count, -1), mirrored, optimize=False).T  # rows contiguous
    planes = planes.reshape(4, n, 2, rows, cols)
    grid = np.empty((n, height, width, 2), np.float32)
    pairs = grid.view(np.complex64)[..., 0]  # an (x, y) pair as one 8-byte item: mirrored copies move pairs
    # each order's quadrant is the top-left corner of the grid seen mirrored the same way
    for part, view in enumerate((pairs, pairs[:, :, ::-1], pairs[:, ::-1], pairs[:, ::-1, ::-1])):
        for b in range(n):
            view[b, :rows, :cols] = cv.merge(list(planes[part, b])).view(np.complex64)[..., 0]
    return grid


def grid_sample(image, grid):
    """torch.nn.functional.grid_sample(image, grid, mode='bilinear', padding_mode='border',
    align_corners=True), the behaviour of the PyTorch 0.4 that CP-VTON was trained with, in float32
    as PyTorch computes it.

    image (N, C, H, W) float32, grid (N, Ho, Wo, 2) of (x, y) in [-1, 1] -> (N, C, Ho, Wo); sides below
    32767 pixels (cv.remap's limit)."""
    image = np.asarray(image, np.float32)
    n, c, h, w = image.shape
    grid = np.asarray(grid, np.float32)
    out_h, out_w = grid.shape[1:3]
    out = np.empty((n, c, out_h, out_w), np.float32)
    for b in range(n):  # batch loop only; everything per pixel is vectorised
        # align_corners=True: -1 and 1 are the centres of the corner pixels; border padding: clamp
        x = np.clip((grid[b, ..., 0] + np.float32(1)) * np.float32(0.5 * (w - 1)), 0, w - 1)
        y = np.clip((grid[b, ..., 1] + np.float32(1)) * np.float32(0.5 * (h - 1)), 0, h - 1)
        # the left/top neighbour, kept one short of the last pixel so the right/bottom one exists
        # (at the last pixel its weight is then exactly 1; a 1-pixel side reads its pixel twice)
        x0 = np.minimum(np.floor(x), np.float32(max(w - 2, 0)))
        y0 = np.minimum(np.floor(y), np.float32(max(h - 2, 0)))
        fx, fy = x - x0, y - y0
        x1, y1 = np.minimum(x0 + 1, np.float32(w - 1)), np.minimum(y0 + 1, np.float32(h - 1))
        for first in range(0, c, 4):  # cv.remap gathers up to 4 interleaved channels at once
            planes = list(image[b, first:first + 4])
            pixels, wx, wy = cv.merge(planes), cv.merge([fx] * len(planes)), cv.merge([fy] * len(planes))
            corner = lambda mx, my: cv.remap(pixels, mx, my, cv.INTER_NEAREST)  # noqa: E731 (integer maps)
            left, right = corner(x0, y0), corner(x1, y0)
            top = cv.add(left, cv.multiply(cv.subtract(right, left), wx))
            left, right = corner(x0, y1), corner(x1, y1)
            bottom = cv.add(left, cv.multiply(cv.subtract(right, left), wx))
            result = cv.add(top, cv.multiply(cv.subtract(bottom, top), wy))
            out[b, first:first + len(planes)] = np.moveaxis(result.reshape(out_h, out_w, -1), 2, 0)
    return out


def pose_map(keypoints, height=HEIGHT, width=WIDTH, radius=5, out=None):
    """CP-VTON's pose channels: keypoints (18, 3) of (x, y, confidence) in pixels -> (18, H, W) float32,
    +1 on the square [int(x - r), int(x + r)] x [int(y - r), int(y + r)] (PIL's rectangle: truncated,
    inclusive, clipped), -1 elsewhere. A missing point (confidence 0, or x <= 1 or y <= 1) stays -1.
    out: a (18, H, W) float32 array to draw into (the agnostic's pose channels), returned."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 3)
    maps = np.empty((len(keypoints), height, width), np.float32) if out is None else out
    maps.fill(-1)
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


def to_unit_range(image_bgr, out=None):
    """BGR uint8 (H, W, 3) -> RGB float32 (3, H, W) in [-1, 1], as ToTensor + Normalize(0.5, 0.5)."""
    return np.take(_UNIT_RANGE, image_bgr[..., ::-1].transpose(2, 0, 1), out=out)


def _exp(x):
    """e**x of a float32 array with cv.exp (vectorised; within 4e-7 relative of np.exp, at a fifth of its time)."""
    x = np.ascontiguousarray(x, np.float32)
    return cv.exp(x.reshape(-1, x.shape[-1] if x.ndim else 1)).reshape(x.shape)


def tanh(x):
    """tanh of a float32 array, as 1 - 2 / (e**2x + 1): within 2e-7 of np.tanh, three times faster."""
    return np.float32(1) - np.float32(2) / (_exp(np.multiply(x, np.float32(2), dtype=np.float32)) + np.float32(1))


def sigmoid(x):
    """1 / (1 + e**-x) of a float32 array (TOM's composition mask)."""
    return np.float32(1) / (np.float32(1) + _exp(np.negative(x, dtype=np.float32)))


def blend(warped, rendered, mask):
    """CP-VTON's composition: warped (3, H, W) * mask (H, W) + rendered (3, H, W) * (1 - mask)."""
    return warped * mask + rendered * (np.float32(1) - mask)


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


def cloth_agnostic(labels, person, pose, head_lut):
    """CP-VTON's cloth-agnostic person representation, as the GMM and TOM see it in training and in use.

    labels (256, 192) LIP classes, person BGR uint8 256x192, pose: the (18, 256, 192) maps of pose_map, or the
    (18, 3) keypoints in the model frame to draw them from; head_lut: (256,) bool, True for the labels kept
    from the photo -> (1, 22, 256, 192) float32: blurred body shape, kept regions of the person, pose."""
    labels = np.asarray(labels)
    if labels.shape != (HEIGHT, WIDTH) or person.shape[:2] != (HEIGHT, WIDTH):
        raise ValueError('labels and person must be %dx%d' % (WIDTH, HEIGHT))
    agnostic = np.empty((1, 22, HEIGHT, WIDTH), np.float32)
    shape = np.where(labels > 0, np.uint8(255), np.uint8(0))
    shape = pil_bilinear.resize(pil_bilinear.resize(shape, (WIDTH // 16, HEIGHT // 16)), (WIDTH, HEIGHT))
    np.take(_UNIT_RANGE, shape, out=agnostic[0, 0])  # the (v / 255 - 0.5) / 0.5 of every 8-bit v
    head = agnostic[0, 1:4]
    to_unit_range(person, out=head)
    np.copyto(head, np.float32(-1), where=~head_lut[labels.astype(np.uint8)])
    pose = np.asarray(pose)
    if pose.shape[-1] == 3 and pose.ndim == 2:
        pose_map(pose, out=agnostic[0, 4:])
    else:
        agnostic[0, 4:] = pose
    return agnostic


def head_lookup(kept_labels=KEPT_LABELS):
    """(256,) bool lookup table of the LIP labels the agnostic keeps from the photo."""
    lut = np.zeros(256, bool)
    lut[np.asarray(kept_labels)] = True
    return lut


# ---------------------------------------------------------------------------- GMM graph rewrite
def _without_weights(model):
    """A copy of the graph in which the large initializers keep their name, type and shape but not their
    data: all that shape inference needs (small ones, such as Reshape targets, are kept whole), without
    copying tens of MB of weights into and out of it."""
    import onnx
    light = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import)
    graph, source = light.graph, model.graph
    for name in ('node', 'input', 'output', 'value_info'):
        getattr(graph, name).extend(getattr(source, name))
    for tensor in source.initializer:
        if tensor.HasField('raw_data') and len(tensor.raw_data) > 1024:
            tensor = onnx.TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
        graph.initializer.append(tensor)
    return light


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
    inferred = onnx.shape_inference.infer_shapes(_without_weights(model))
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


# ---------------------------------------------------------------------------- ONNX files without onnx
# The protobuf wire format (common.protobuf_fields), read only as far as needed: the graph inputs and
# metadata of a 80 MB model are found by jumping over the weights, so checking a model costs no parse
# (and no `import onnx`).
def _fields(data, start=0, end=None):
    """(field number, value) of each field of a message: common.protobuf_fields without the wire type."""
    return ((field, value) for field, _, value in common.protobuf_fields(data, start, end))


def _protobuf_string(data, span):
    return bytes(data[span[0]:span[1]]).decode('utf-8', 'replace')


def _value_info_dims(data, span):
    """(name, dims) of an onnx ValueInfoProto: dims as dim_value, 0 where symbolic or unknown."""
    name, dims = '', []
    for field, value in _fields(data, *span):
        if field == 1:
            name = _protobuf_string(data, value)
        elif field == 2:                                        # TypeProto
            for f_type, tensor in _fields(data, *value):
                if f_type != 1:                                 # tensor_type
                    continue
                for f_tensor, shape in _fields(data, *tensor):
                    if f_tensor != 2:                           # shape
                        continue
                    for f_shape, dim in _fields(data, *shape):
                        if f_shape == 1:                        # dim
                            dims.append(next((v for f, v in _fields(data, *dim)
                                              if f == 1), 0))   # dim_value
    return name, dims


def onnx_summary(path, what):
    """(inputs {name: dims} that are not initializers, metadata {key: value}) of an ONNX file, read
    without parsing its weights. A missing file is a UsageError; a damaged one a RuntimeFailure."""
    import mmap
    if not os.path.isfile(path):
        raise UsageError('%s model file not found: %s' % (what, path))
    try:
        with open(path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            inputs, initializers, metadata, has_graph = {}, set(), {}, False
            for field, value in _fields(data):
                if field == 14:                                 # metadata_props
                    entry = dict(_fields(data, *value))
                    metadata[_protobuf_string(data, entry.get(1, (0, 0)))] = \
                        _protobuf_string(data, entry.get(2, (0, 0)))
                elif field == 7:                                # graph
                    for f_graph, item in _fields(data, *value):
                        if f_graph == 1:                        # node
                            has_graph = True
                        elif f_graph == 5:                      # initializer: TensorProto, name = 8
                            initializers.update(_protobuf_string(data, v)
                                                for f, v in _fields(data, *item) if f == 8)
                        elif f_graph == 11:                     # input
                            name, dims = _value_info_dims(data, item)
                            inputs[name] = dims
    except (ValueError, IndexError, TypeError, OSError) as err:  # mmap of an empty file: ValueError
        raise RuntimeFailure('%s model %s is not a valid ONNX file (truncated or damaged?): %s'
                             % (what, path, err))
    if not has_graph:
        raise RuntimeFailure('%s model %s holds no graph (truncated or damaged?)' % (what, path))
    return {k: v for k, v in inputs.items() if k not in initializers}, metadata


# ---------------------------------------------------------------------------- GMM rewrite cache
GMM_CACHE_FORMAT = 1  # part of every cache name: raise it when replace_correlation writes other graphs
CACHE_ENV = 'OPENCV_TRYON_CACHE'


def _sha256(path):
    import hashlib
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def gmm_cache_dirs(path):
    """Where the rewritten GMM of `path` is cached, in order: $OPENCV_TRYON_CACHE when set, else
    .cache/ beside the model, then the user's cache directory (for a read-only models directory)."""
    if os.environ.get(CACHE_ENV):
        return [os.environ[CACHE_ENV]]
    user = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return [os.path.join(os.path.dirname(os.path.abspath(path)), '.cache'),
            os.path.join(user, 'opencv_tryon')]


def _gmm_cache_name(path, size, digest):
    """(prefix shared by every rewrite of this file name, name of the rewrite of this content)."""
    prefix = os.path.splitext(os.path.basename(path))[0] + '.std'
    return prefix, '%s%d.%d.%s.onnx' % (prefix, GMM_CACHE_FORMAT, size, digest)


def _store_gmm_cache(path, prefix, name, data):
    """Write the rewritten graph atomically into the first cache directory that takes it; drop the
    older rewrites of the same file name there. Returns the cached path, or None (nothing writable)."""
    for directory in gmm_cache_dirs(path):
        try:
            os.makedirs(directory, exist_ok=True)
            cached = common.write_bytes(os.path.join(directory, name), data)
        except (OSError, UsageError):
            continue
        for old in os.listdir(directory):
            if old.startswith(prefix) and old.endswith('.onnx') and old != name:
                try:
                    os.remove(os.path.join(directory, old))
                except OSError:
                    pass
        return cached
    return None



def _is_synthetic(metadata):
    return metadata.get(common.SYNTHETIC_KEY, '').lower() == 'true'


def _check_gmm(path):
    """The GMM file's metadata, once its inputs are known to be the GMM's."""
    inputs, metadata = onnx_summary(path, 'GMM')
    if sorted(inputs) != sorted(GMM_INPUTS):
        raise RuntimeFailure('GMM model %s has inputs %s; expected %s (agnostic, cloth)'
                             % (path, ', '.join(sorted(inputs)), ', '.join(GMM_INPUTS)))
    return metadata


def load_gmm(path, engine=None, cache=True):
    """Read the GMM ONNX with its Correlation node rewritten to standard ops; return (cv.dnn.Net,
    is_synthetic).

    The rewrite (onnx parse, shape inference, serialisation: seconds) is cached as an ONNX file
    named by the source's size and sha256 (see gmm_cache_dirs), written atomically, so a changed
    source can never meet an old rewrite; a cache that OpenCV cannot read is rewritten."""
    metadata = _check_gmm(path)
    if metadata.get(STANDARD_OPS_KEY, '').lower() == 'true':  # nothing to rewrite (tools/train_cpvton.py)
        return _read_onnx_file(path, engine), _is_synthetic(metadata)
    if cache:
        prefix, name = _gmm_cache_name(path, os.path.getsize(path), _sha256(path))
        for directory in gmm_cache_dirs(path):
            cached = os.path.join(directory, name)
            if os.path.isfile(cached):
                try:
                    return _read_onnx_file(cached, engine), _is_synthetic(metadata)
                except cv.error:
                    pass  # damaged: rewritten below
    model = _load_onnx(path, 'GMM')
    replace_correlation(model)
    data = model.SerializeToString()
    cached = _store_gmm_cache(path, prefix, name, data) if cache else None
    net = _read_onnx_file(cached, engine) if cached else _read_onnx_buffer(data, engine)
    return net, _is_synthetic(metadata)


def _read_onnx_file(path, engine=None):
    return common.read_net(cv.dnn.readNetFromONNX, path, engine)


def _read_onnx_buffer(buffer, engine=None):
    return common.read_net(cv.dnn.readNetFromONNX, np.frombuffer(buffer, np.uint8), engine)


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
        self.head_lut = head_lookup(self.kept_labels)

    def _load(self, engine):
        from concurrent.futures import ThreadPoolExecutor
        _check_gmm(self.gmm_path)  # a missing, damaged or wrong GMM is reported first, as before
        tom_inputs, tom_metadata = onnx_summary(self.tom_path, 'TOM')
        if len(tom_inputs) != 1 or list(tom_inputs.values())[0][1:2] not in ([25], [0]):
            raise RuntimeFailure('TOM model %s has inputs %s; expected one input of 25 channels'
                                 % (self.tom_path, tom_inputs))
        self.tom_input = next(iter(tom_inputs))
        # OpenCV reads the TOM while the GMM is hashed (both release the GIL)
        with ThreadPoolExecutor(max_workers=1) as pool:
            tom = pool.submit(_read_onnx_file, self.tom_path, engine)
            self.gmm, gmm_synthetic = load_gmm(self.gmm_path, engine)
            try:
                self.tom = tom.result()
            except cv.error as err:
                raise RuntimeFailure('cannot load the TOM model %s: %s' % (self.tom_path, common.error_line(err)))
        tom_synthetic = _is_synthetic(tom_metadata)
        self.synthetic = gmm_synthetic or tom_synthetic
        if gmm_synthetic:
            common.warn_synthetic(self.gmm_path, 'cloth warp')
        if tom_synthetic:
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
        """cloth_agnostic with this model's kept labels: (1, 22, 256, 192) float32."""
        return cloth_agnostic(labels, person, pose, self.head_lut)

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
        return to_image(blend(warped[0], tanh(tom_output[0, :3]), sigmoid(tom_output[0, 3])))

    def infer(self, labels, person, pose, cloth):
        agnostic = self.prepare_agnostic(labels, person, pose)
        return self.try_on(agnostic, self.warp_cloth(cloth, agnostic))

    def render(self, agnostic, cloth):
        """GMM and TOM for one garment, keeping what full-resolution compositing needs. cloth BGR uint8 of any
        size -> (grid (1, 256, 192, 2), warped (1, 3, 256, 192), TOM's raw output (1, 4, 256, 192));
        compose(tom_output, warped) is the 256x192 result of try_on(agnostic, warp_cloth(cloth, agnostic))."""
        cloth_tensor = to_unit_range(resize_to_model(cloth))[None]
        grid = tps_grid(self.predict_theta(cloth_tensor, agnostic))
        warped = grid_sample(cloth_tensor, grid)
        self.tom.setInput(np.concatenate([agnostic, warped], axis=1), self.tom_input)
        return grid, warped, self.tom.forward()


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


class PersonAnalysis:
    """What the try-on needs of one person photo, computed once and reused for every garment.

    photo: the photo as given (BGR uint8); box: its 256:192 centre crop (x, y, w, h); person: that crop at
    256x192; labels: (256, 192) LIP classes; keypoints: (18, 3) in the 256x192 frame; agnostic:
    CP-VTON's cloth-agnostic representation (1, 22, 256, 192)."""

    def __init__(self, photo, box, person, labels, keypoints, agnostic):
        self.photo, self.box, self.person = photo, box, person
        self.labels, self.keypoints, self.agnostic = labels, keypoints, agnostic


def cloth_mask(cloth, tolerance=16):
    """(H, W) uint8 {0, 1} foreground of a garment photographed on a plain background: the pixels that differ
    from the border's median colour by more than `tolerance` in a channel, with enclosed holes (a white
    print on the garment) filled, since only background reachable from the border is background."""
    border = np.concatenate([cloth[0], cloth[-1], cloth[:, 0], cloth[:, -1]])
    background = np.median(border, axis=0).astype(np.int16)
    differs = np.abs(cloth.astype(np.int16) - background).max(axis=2) > tolerance
    outside = cv.copyMakeBorder((~differs).astype(np.uint8), 1, 1, 1, 1, cv.BORDER_CONSTANT, value=1)
    cv.floodFill(outside, None, (0, 0), 2)
    return (outside[1:-1, 1:-1] != 2).astype(np.uint8)


def neck_row(labels, keypoints=None):
    """First row (256x192 frame) of the body below the head: the row under the lowest face pixel (the chin),
    else the neck keypoint's row, else 0."""
    face_rows = np.flatnonzero((np.asarray(labels) == FACE_LABEL).any(axis=1))
    if len(face_rows):
        return int(face_rows[-1]) + 1
    if keypoints is not None and keypoints[1][2] > 0:
        return int(np.clip(np.floor(keypoints[1][1]), 0, HEIGHT))
    return 0


def edit_region(labels, warped_mask, composition_mask, keypoints=None):
    """(256, 192) bool: where the try-on may change the photo. The old upper garment and the arms (from the
    parsing) and the area the new garment covers (warped-cloth mask times TOM's composition mask), never the
    head; and whatever the networks output, only on the person: within BODY_MARGIN pixels of the parsed
    body and below the neck (neck_row)."""
    labels = np.asarray(labels)
    covered = warped_mask * composition_mask > 0.5
    region = (np.isin(labels, EDIT_LABELS) | covered) & ~np.isin(labels, HEAD_LABELS)
    margin = cv.getStructuringElement(cv.MORPH_ELLIPSE, (2 * BODY_MARGIN + 1, 2 * BODY_MARGIN + 1))
    region &= cv.dilate((labels > 0).astype(np.uint8), margin) > 0
    region[:neck_row(labels, keypoints)] = False
    return region


def _upsample_matrix(left, top, size, model_size):
    """warpAffine matrix (with WARP_INVERSE_MAP) from pixels of a crop of size (w, h), offset by (left, top),
    to the model frame that cv.resize made of the crop (half-pixel centres, as resize_to_model)."""
    (w, h), (model_w, model_h) = size, model_size
    scale_x, scale_y = model_w / w, model_h / h
    return np.array([[scale_x, 0, (left + 0.5) * scale_x - 0.5],
                     [0, scale_y, (top + 0.5) * scale_y - 0.5]], np.float64)


def _upsample(small, matrix, size):
    return cv.warpAffine(small, matrix, size, flags=cv.INTER_LINEAR | cv.WARP_INVERSE_MAP,
                         borderMode=cv.BORDER_REPLICATE)


def compose_full_resolution(photo, box, cloth, grid, tom_output, region, feather=FEATHER, strip_rows=512):
    """Paste the try-on into the photo at its own resolution.

    Inside `region` (256x192 bool, upsampled to the crop and given a soft edge of `feather` pixels), the
    original cloth photo is sampled with the TPS grid upsampled to the crop's size, TOM's rendered person
    and composition mask are upsampled, and the two are composed as CP-VTON composes them; elsewhere the
    photo's pixels are returned unchanged. Works on the region's bounding box in strips of rows, so memory
    stays bounded."""
    x, y, w, h = box
    result = photo.copy()
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if not len(rows):
        return result
    # the region's bounding box in the crop: its model pixels, one more on each side (linear upsampling
    # reaches that far), and the soft edge
    top = max(int(np.floor((rows[0] - 1) * h / HEIGHT)) - feather, 0)
    bottom = min(int(np.ceil((rows[-1] + 2) * h / HEIGHT)) + feather, h)
    left = max(int(np.floor((cols[0] - 1) * w / WIDTH)) - feather, 0)
    right = min(int(np.ceil((cols[-1] + 2) * w / WIDTH)) + feather, w)
    size = (right - left, bottom - top)
    # the region at full resolution: linear upsampling thresholded at one half (a smooth outline, no
    # model-pixel stairs), then a box blur: exactly 0 beyond `feather` pixels of it, so those stay untouched
    inside = _upsample(region.astype(np.uint8) * np.uint8(255), _upsample_matrix(left, top, (w, h), (WIDTH, HEIGHT)), size)
    inside = cv.threshold(inside, 127, 255, cv.THRESH_BINARY)[1]
    alpha = cv.blur(inside, (2 * feather + 1, 2 * feather + 1), borderType=cv.BORDER_REPLICATE)
    del inside

    rendered = to_image(tanh(tom_output[0, :3]))  # as CpVton.compose saves it: BGR uint8
    composition = sigmoid(tom_output[0, 3])
    # the cloth at the crop's scale at most (the model frame shows cloth and person at one scale), so that
    # sampling it does not alias
    cloth_h, cloth_w = cloth.shape[:2]
    if cloth_h > h or cloth_w > w:
        cloth = cv.resize(cloth, (min(cloth_w, w), min(cloth_h, h)), interpolation=cv.INTER_AREA)
        cloth_h, cloth_w = cloth.shape[:2]
    # grid value g in [-1, 1] -> model-cloth pixel (g + 1) / 2 * (W - 1) (align_corners=True) -> pixel of this
    # cloth image, whose 192x256 resize the GMM saw (half-pixel centres). Linear, so it commutes with the
    # upsampling: the map is made at 256x192 and upsampled as cv.remap's two-channel map.
    cloth_map = np.empty((HEIGHT, WIDTH, 2), np.float32)
    for axis, model_side, side in ((0, WIDTH, cloth_w), (1, HEIGHT, cloth_h)):
        model_pixel = (grid[0, ..., axis] + 1) * (0.5 * (model_side - 1))
        cloth_map[..., axis] = (model_pixel + 0.5) * (side / model_side) - 0.5

    for start in range(0, size[1], strip_rows):
        stop = min(start + strip_rows, size[1])
        # only the columns of this strip that the soft region reaches
        reached = np.flatnonzero(alpha[start:stop].any(axis=0))
        if not len(reached):
            continue
        first, last = int(reached[0]), int(reached[-1]) + 1
        matrix = _upsample_matrix(left + first, top + start, (w, h), (WIDTH, HEIGHT))
        strip = (last - first, stop - start)
        warped = cv.remap(cloth, _upsample(cloth_map, matrix, strip), None, cv.INTER_LINEAR,
                          borderMode=cv.BORDER_REPLICATE)
        mask = _upsample(composition, matrix, strip)
        tryon = cv.blendLinear(warped, _upsample(rendered, matrix, strip), mask, 1 - mask)
        weight = alpha[start:stop, first:last].astype(np.float32)
        target = result[y + top + start:y + top + stop, x + left + first:x + left + last]
        # (tryon * weight + photo * (255 - weight)) / (255 + 1e-5), rounded: where weight is 0, the photo's value
        target[...] = cv.blendLinear(tryon, target, weight, 255 - weight)
    return result


class VirtualTryOn:
    """The whole chain: crop -> pose -> parsing -> agnostic -> GMM warp -> TOM -> composite.

    pose, parsing: objects with infer(image_bgr) returning (18, 3) keypoints / (H, W) LIP labels
    (openpose.OpenPose or openpose.BlazePose, human_parsing.JppNet); either may be None when the
    caller passes keypoints / labels.

    For many garments on one person, analyse() once and pass the analysis to infer():
        analysis = tryon.analyse(person)
        results = [tryon.infer(analysis, cloth) for cloth in clothes]"""

    def __init__(self, cp_vton, pose=None, parsing=None):
        self.cp_vton, self.pose, self.parsing = cp_vton, pose, parsing

    def setBackendAndTarget(self, backend, target):
        for model in (self.cp_vton, self.pose, self.parsing):
            if model is not None:
                model.setBackendAndTarget(backend, target)

    def parse_at_model_size(self, image, evidence=None):
        """The parser's 256x192 labels of an image: from its scores resized to that size when the parser
        takes a size (JppNet, MediaPipeParsing), else its labels at the image's size, nearest-resized.
        evidence: the pose step's keypoints and person mask, for a parser that takes them (MediaPipeParsing)."""
        parameters = inspect.signature(self.parsing.infer).parameters
        given = {name: value for name, value in (evidence or {}).items() if name in parameters}
        if 'size' in parameters:
            return self.parsing.infer(image, size=(WIDTH, HEIGHT), **given)
        return cv.resize(self.parsing.infer(image, **given), (WIDTH, HEIGHT), interpolation=cv.INTER_NEAREST)

    def analyse(self, person, keypoints=None, labels=None):
        """person BGR uint8 of any size; keypoints (18, 3) and labels (H, W) of the whole person photo,
        estimated when None. Returns the PersonAnalysis: pose, parsing and agnostic, once per person."""
        crop, box = crop_to_ratio(person)
        # the analysis networks see the crop at a bounded size: a 40 MP photo costs no more than a small one
        analysis = crop
        if crop.shape[0] > ANALYSIS_HEIGHT:
            analysis = cv.resize(crop, (max(1, round(crop.shape[1] * ANALYSIS_HEIGHT / crop.shape[0])),
                                        ANALYSIS_HEIGHT), interpolation=cv.INTER_AREA)
        evidence = {}
        if keypoints is None:
            photo_keypoints = self.pose.infer(analysis)
            keypoints = keypoints_to_model(photo_keypoints, (0, 0, analysis.shape[1], analysis.shape[0]))
            if hasattr(self.pose, 'segment'):  # BlazePose: a parser that takes them needs no pose run of its own
                evidence = {'keypoints': photo_keypoints, 'person_mask': self.pose.segment(analysis)}
        else:
            keypoints = keypoints_to_model(keypoints, box)
        if not has_torso(keypoints):
            raise RuntimeFailure('no person found: pose found no torso (neck, shoulder and hip) in the photo')
        if labels is None:
            labels = self.parse_at_model_size(analysis, evidence)
        else:
            labels = labels_to_model(labels, box, person.shape)
        model_person = resize_to_model(crop)
        agnostic = self.cp_vton.prepare_agnostic(labels, model_person, keypoints)
        return PersonAnalysis(person, box, model_person, labels, keypoints, agnostic)

    def render(self, analysis, cloth):
        """GMM + TOM of one garment on an analysed person: (grid, warped, tom_output), see CpVton.render."""
        return self.cp_vton.render(analysis.agnostic, cloth)

    def infer(self, person, cloth, keypoints=None, labels=None, full_resolution=True):
        """person: a PersonAnalysis from analyse(), or a BGR photo (analysed here, with keypoints / labels
        as in analyse()); cloth BGR uint8 of any size. Returns the photo at its own size with the garment
        on, or with full_resolution=False CP-VTON's 256x192 result of the photo's centre crop."""
        analysis = person if isinstance(person, PersonAnalysis) else self.analyse(person, keypoints, labels)
        grid, warped, tom_output = self.render(analysis, cloth)
        if not full_resolution:
            return CpVton.compose(tom_output, warped)
        return self.composite(analysis, cloth, grid, tom_output)

    @staticmethod
    def composite(analysis, cloth, grid, tom_output, feather=FEATHER):
        """The full-resolution result from one garment's GMM grid and TOM output (compose_full_resolution)."""
        mask = cloth_mask(resize_to_model(cloth)).astype(np.float32)
        warped_mask = grid_sample(mask[None, None], grid)[0, 0]
        composition = sigmoid(tom_output[0, 3])
        region = edit_region(analysis.labels, warped_mask, composition, analysis.keypoints)
        return compose_full_resolution(analysis.photo, analysis.box, cloth, grid, tom_output, region, feather)


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


def warped_output_name(person_path, cloth_path):
    return default_output_name(person_path, cloth_path)[:-len('_tryon.png')] + '_warped.png'


def cloth_files(paths):
    """The garment photos named by -c: files as given, folders expanded to their images, sorted."""
    result = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, name) for name in os.listdir(path)
                           if not name.startswith('.') and os.path.isfile(os.path.join(path, name))
                           and cv.haveImageReader(os.path.join(path, name)))
            if not found:
                raise UsageError('cloth folder holds no images: %s' % path)
            result.extend(found)
        else:
            result.append(path)
    return result


class Progress:
    """A progress line on stderr for a batch: done/total, items per second, time left. Rewritten in place
    on a terminal, a new line every `interval_file` seconds otherwise; enabled=False silences it."""

    def __init__(self, total, what='pairs', enabled=True, stream=None, interval=0.5, interval_file=10.0, initial=0):
        self.total, self.what, self.enabled = total, what, enabled
        self.initial = initial  # done before this run (a resumed job): not counted in the rate
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, 'isatty') and self.stream.isatty()
        self.interval = interval if self.tty else interval_file
        self.start = self.last = time.monotonic()
        self.width = 0

    def update(self, done, force=False):
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.interval):
            return
        self.last = now
        rate = (done - self.initial) / max(now - self.start, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float('inf')
        line = '%d/%d %s, %.2f %s/s, %s left' % (done, self.total, self.what, rate, self.what,
                                                  '?' if left == float('inf') else '%d:%02d' % divmod(round(left), 60))
        if self.tty:
            self.stream.write('\r' + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + '\n')
        self.stream.flush()

    def close(self, done):
        self.update(done, force=True)
        if self.enabled and self.tty:
            self.stream.write('\n')
            self.stream.flush()


def read_pairs(path):
    """CP-VTON's pairs list: one '<person image> <cloth image>' per line -> [(person, cloth), ...]."""
    if not os.path.isfile(path):
        raise UsageError('pairs file not found: %s' % path)
    pairs = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise UsageError('pairs file %s, line %d: expected "<person> <cloth>", got %r'
                                 % (path, number, line.strip()))
            pairs.append(tuple(fields))
    if not pairs:
        raise UsageError('pairs file %s lists no pairs' % path)
    return pairs


def run_dataset(make_tryon, dataroot, pairs, out_dir, save_warped=False, overwrite=False, progress=True):
    """CP-VTON's test protocol over a dataset in its layout (DIR/image, cloth, image-parse, pose/<stem>_keypoints.json):
    the dataset's parsing and keypoints replace the networks; each pair's 256x192 result is written as
    out_dir/<person>_<cloth>_tryon.png (and with save_warped the warped cloth as ..._warped.png), exactly as
    the single-pair command with --model-size --labels --keypoints writes it. Existing results are skipped
    unless overwrite; a bad pair is logged on one line and skipped. make_tryon() gives the VirtualTryOn,
    called on the first pair that needs it (a rerun over finished results loads no model).
    Returns (written, skipped, failed) counts."""
    import human_parsing
    import openpose
    os.makedirs(out_dir, exist_ok=True)
    tryon = None
    written = skipped = failed = 0
    bar = Progress(len(pairs), 'pairs', enabled=progress)
    for number, (person_name, cloth_name) in enumerate(pairs, 1):
        output = os.path.join(out_dir, default_output_name(person_name, cloth_name))
        warped_output = os.path.join(out_dir, warped_output_name(person_name, cloth_name))
        if not overwrite and os.path.exists(output) and (not save_warped or os.path.exists(warped_output)):
            skipped += 1
            bar.update(number)
            continue
        stem = os.path.splitext(person_name)[0]
        try:
            person_path = os.path.join(dataroot, 'image', person_name)
            cloth_path = os.path.join(dataroot, 'cloth', cloth_name)
            person = common.read_image(person_path, 'person photo')
            cloth = common.read_image(cloth_path, 'cloth photo')
            check_size(crop_to_ratio(person)[0], 'person photo %s' % person_path, 'its 256:192 centre crop')
            check_size(cloth, 'cloth photo %s' % cloth_path, 'it')
            labels = human_parsing.read_parsing(os.path.join(dataroot, 'image-parse', stem + '.png'))
            keypoints = openpose.read_keypoints_json(os.path.join(dataroot, 'pose', stem + '_keypoints.json'))
            if tryon is None:
                tryon = make_tryon()
            grid, warped, tom_output = tryon.render(tryon.analyse(person, keypoints, labels), cloth)
            if save_warped:
                common.write_image(warped_output, to_image(warped[0]))
            common.write_image(output, CpVton.compose(tom_output, warped))
            written += 1
        except (UsageError, RuntimeFailure, cv.error) as err:
            failed += 1
            log.error('pair %d (%s %s) skipped: %s', number, person_name, cloth_name, common.error_line(err))
        bar.update(number)
    bar.close(len(pairs))
    return written, skipped, failed


def build_parser():
    parser = argparse.ArgumentParser(
        description='Virtual try-on (CP-VTON) with OpenCV dnn: dresses the person of --input in the garment(s) '
                    'of --cloth, at the photo\'s own resolution; or runs CP-VTON\'s test protocol over a '
                    'dataset (--dataroot, --pairs). Exit status: 0 done, 1 runtime failure (or a bad pair or '
                    'garment skipped), 2 bad usage or input.')
    parser.add_argument('-i', '--input', help='person photo')
    parser.add_argument('-c', '--cloth', nargs='+', help='garment photo(s): on white, or cut-outs with alpha (laid over white); or folder(s) of them')
    parser.add_argument('-o', '--output', help='result image (default: <person>_<cloth>_tryon.png, printed); a '
                                               'directory (created if missing) with several garments, a folder, '
                                               'a path ending in / or --dataroot')
    parser.add_argument('--model-size', action='store_true',
                        help='write CP-VTON\'s 256x192 network output of the centre crop instead of the '
                             'full-resolution photo')
    parser.add_argument('--dataroot', help='dataset in CP-VTON\'s layout (image/, cloth/, image-parse/, pose/): '
                                           'try on every pair of --pairs with the dataset\'s parsing and '
                                           'keypoints, 256x192 results into the -o directory')
    parser.add_argument('--pairs', help='CP-VTON pairs list for --dataroot ("<person> <cloth>" per line)')
    parser.add_argument('--save-warped', action='store_true',
                        help='with --dataroot: also write the warped cloth as <person>_<cloth>_warped.png')
    parser.add_argument('--overwrite', action='store_true',
                        help='with --dataroot: redo pairs whose results exist (default: skip them)')
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


def default_models(directory=None):
    """(GMM path, TOM path) when none is given: the published pair when both files are in the models
    directory (checked against models.yml), else the pair trained here on VITON and shipped in the
    package's models/ (OWN_GMM_FILE, OWN_TOM_FILE). The two always come as a pair: a TOM is trained on
    its own GMM's warps."""
    directory = directory or common.models_dir()
    if all(os.path.isfile(os.path.join(directory, name)) for name in (GMM_FILE, TOM_FILE)):
        return tuple(common.find_model(name, directory) for name in (GMM_FILE, TOM_FILE))
    shipped = os.path.join(common.REPO_DIR, 'models')
    found = [directory if os.path.isfile(os.path.join(directory, name)) else shipped
             for name in (OWN_GMM_FILE, OWN_TOM_FILE)]
    log.debug('published %s + %s not both in %s: using %s + %s', GMM_FILE, TOM_FILE, directory,
              OWN_GMM_FILE, OWN_TOM_FILE)
    return tuple(common.find_model(name, where) for name, where in zip((OWN_GMM_FILE, OWN_TOM_FILE), found))


def load_tryon(args, backend, target, need_pose=True, need_parsing=True):
    """The VirtualTryOn the command line asks for (models from the arguments, --synthetic, or
    default_models()); pose and parsing only when the caller has no keypoints / labels."""
    if args.synthetic:
        model_dir = _synthetic_dir()
        from tools import synthetic
        synthetic.build_all(model_dir, openpose=False)
        # the synthetic files share the published names, not their bytes
        defaults = tuple(common.find_model(name, model_dir, verify=False) for name in (GMM_FILE, TOM_FILE))
    else:
        defaults = (None, None) if args.gmm and args.tom else default_models()
    with common.SyntheticWarnings('try-on'):  # one warning naming every synthetic model
        cp_vton = CpVton(args.gmm or defaults[0], args.tom or defaults[1], backend, target)
        pose = parsing = None
        if need_pose:
            import openpose
            pose = openpose.create_pose_estimator(args.pose_model, backend_id=backend, target_id=target,
                                                  config=args.pose_config)
        if need_parsing:
            import human_parsing
            # JPPNet when its file is there, else MediaPipe's models (real, from the wheel), also with --synthetic
            parsing = human_parsing.create_parser(args.parsing_model, backend, target, pose=pose)
    return VirtualTryOn(cp_vton, pose, parsing)


def _make_directory(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError('cannot create output directory %s: %s' % (path, err.strerror or err))


def dataset_main(args, backend, target, progress=None):
    """--dataroot/--pairs: CP-VTON's test protocol (run_dataset). Exit status 1 when a pair was skipped.
    The progress line shows when this module's log shows info messages (not under -q), or as told."""
    if progress is None:
        progress = log.isEnabledFor(logging.INFO)
    if not (args.dataroot and args.pairs and args.output):
        raise UsageError('dataset mode needs --dataroot, --pairs and -o (the output directory)')
    if args.input or args.cloth:
        raise UsageError('-i/-c and --dataroot/--pairs are two different modes; give one of them')
    if not os.path.isdir(args.dataroot):
        raise UsageError('dataset directory not found: %s' % args.dataroot)
    pairs = read_pairs(args.pairs)
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UsageError('output path is not a directory: %s' % args.output)
    _make_directory(args.output)
    start = time.monotonic()
    written, skipped, failed = run_dataset(lambda: load_tryon(args, backend, target, False, False),
                                           args.dataroot, pairs, args.output, args.save_warped, args.overwrite,
                                           progress)
    seconds = time.monotonic() - start
    log.info('%d pairs: %d written, %d skipped as done, %d failed; %.1f s, %.2f pairs/s written',
             len(pairs), written, skipped, failed, seconds, written / seconds if seconds > 0 else 0.0)
    return 1 if failed else 0


def main(argv=None):
    args, status = common.parse_cli(build_parser(), argv)
    if args is None:
        return status
    backend, target = common.backend_target(args.backend, args.target)
    if args.dataroot or args.pairs:
        return dataset_main(args, backend, target)
    if not args.input or not args.cloth:
        raise UsageError('the person photo (-i) and a garment (-c) are needed (or --dataroot with --pairs)')
    person = common.read_image(args.input, 'person photo')
    clothes = cloth_files(args.cloth)
    batch = (len(clothes) > 1 or any(os.path.isdir(path) for path in args.cloth)
             or bool(args.output and (os.path.isdir(args.output) or args.output.endswith(('/', os.sep)))))
    if batch:  # -o is a directory; a bad garment is reported and skipped
        out_dir = args.output or '.'
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise UsageError('with several garments -o is a directory, and %s is a file' % out_dir)
    else:
        cloth = common.read_image(clothes[0], 'cloth photo')
        output = args.output or default_output_name(args.input, clothes[0])
        common.check_output_path(output)
        check_size(cloth, 'cloth photo %s' % clothes[0], 'it')
    check_size(crop_to_ratio(person)[0], 'person photo %s' % args.input, 'its 256:192 centre crop')

    keypoints = labels = None
    if args.keypoints:
        import openpose
        keypoints = openpose.read_keypoints_json(args.keypoints)
    if args.labels:
        import human_parsing
        labels = human_parsing.read_parsing(args.labels)

    tryon = load_tryon(args, backend, target, keypoints is None, labels is None)
    analysis = tryon.analyse(person, keypoints, labels)  # pose, parsing and agnostic: once per person
    full_resolution = not args.model_size
    if not batch:
        result = tryon.infer(analysis, cloth, full_resolution=full_resolution)
        common.write_image(output, result)
        print(output)
        if args.show:
            cv.imshow('Virtual try-on', result)
            cv.waitKey()
        return 0

    _make_directory(out_dir)
    failed = 0
    for cloth_path in clothes:
        output = os.path.join(out_dir, default_output_name(args.input, cloth_path))
        try:
            cloth = common.read_image(cloth_path, 'cloth photo')
            check_size(cloth, 'cloth photo %s' % cloth_path, 'it')
            common.write_image(output, tryon.infer(analysis, cloth, full_resolution=full_resolution))
            print(output)
        except (UsageError, RuntimeFailure, cv.error) as err:
            failed += 1
            log.error('garment %s skipped: %s', cloth_path, common.error_line(err))
    return 1 if failed else 0


def cli():
    """Console command `virtual-try-on`."""
    sys.exit(common.run_main(main))


if __name__ == '__main__':
    cli()
