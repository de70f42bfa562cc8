"""The SYNTHETIC OpenPose COCO stand-in: a caffemodel with seeded random weights for the published
prototxt, written without Caffe, and its ONNX conversion (openpose_caffe.convert), so the tests and
--synthetic run the OpenPose path without the 200 MB download."""
import os
import shutil
import sys

import numpy as np

if not __package__:  # run as a script: make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from openpose_caffe import _active_layers, _get, blob_shapes, convert, read_prototxt  # noqa: E402

SYNTHETIC_NAME = 'SYNTHETIC: seeded random weights, not a trained model'


# ============================================================================ wire format: encode
def _varint(value):
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def encode_blob(array):
    array = np.ascontiguousarray(array, dtype='<f4')
    shape = b''.join(_varint(int(d)) for d in array.shape)
    return _field_bytes(7, _field_bytes(1, shape)) + _field_bytes(5, array.tobytes())


def encode_caffemodel(net_name, layers):
    """Binary NetParameter: name, then one `layer` (field 100) per (name, type, [blobs])."""
    parts = [_field_bytes(1, net_name.encode('utf-8'))]
    for name, layer_type, blobs in layers:
        body = _field_bytes(1, name.encode('utf-8')) + _field_bytes(2, layer_type.encode('utf-8'))
        body += b''.join(_field_bytes(7, encode_blob(b)) for b in blobs)
        parts.append(_field_bytes(100, body))
    return b''.join(parts)


# ============================================================================ synthetic OpenPose
def synthetic_weights(net, seed=0):
    """Seeded He-scaled weights for every convolution: std sqrt(2 / fan_in) before a ReLU,
    sqrt(1 / fan_in) for the stage outputs, so activations keep their scale through all
    six stages; small random biases."""
    rng = np.random.default_rng(seed)
    layers = _active_layers(net)
    relu_after = {b for layer in layers if _get(layer, 'type') == 'ReLU' for b in layer.get('bottom', [])}
    shapes = blob_shapes(net)
    out = []
    for layer in layers:
        if _get(layer, 'type') != 'Convolution':
            continue
        name = _get(layer, 'name')
        weight_shape = shapes[name][0]
        fan_in = int(np.prod(weight_shape[1:]))
        gain = 2.0 if layer['top'][0] in relu_after else 1.0
        blobs = [rng.standard_normal(weight_shape, dtype=np.float32) * np.float32(np.sqrt(gain / fan_in))]
        if len(shapes[name]) > 1:
            blobs.append(rng.uniform(-0.05, 0.05, shapes[name][1]).astype(np.float32))
        out.append((name, 'Convolution', blobs))
    return out


def build_synthetic_openpose(directory, prototxt_path, seed=0):
    """Write openpose_pose_coco.prototxt (a copy), pose_iter_440000.caffemodel (seeded random
    weights, NetParameter name 'SYNTHETIC: ...') and openpose_pose_coco.onnx (converted,
    metadata synthetic=true) into `directory`; files already present are kept.
    Returns a dict of the three paths."""
    os.makedirs(directory, exist_ok=True)
    paths = {'prototxt': os.path.join(directory, 'openpose_pose_coco.prototxt'),
             'caffemodel': os.path.join(directory, 'pose_iter_440000.caffemodel'),
             'onnx': os.path.join(directory, 'openpose_pose_coco.onnx')}
    if not os.path.isfile(paths['prototxt']):
        shutil.copyfile(prototxt_path, paths['prototxt'] + '.part')
        os.replace(paths['prototxt'] + '.part', paths['prototxt'])
    if not os.path.isfile(paths['caffemodel']):
        net = read_prototxt(paths['prototxt'])
        data = encode_caffemodel(SYNTHETIC_NAME, synthetic_weights(net, seed))
        with open(paths['caffemodel'] + '.part', 'wb') as f:
            f.write(data)
        os.replace(paths['caffemodel'] + '.part', paths['caffemodel'])
    if not os.path.isfile(paths['onnx']):
        convert(paths['prototxt'], paths['caffemodel'], paths['onnx'])
    return paths
