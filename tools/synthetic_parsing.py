"""Synthetic stand-in for LIP JPPNet (`lip_jppnet_384.pb`): a TensorFlow GraphDef with seeded random
weights and the published graph's input/output contract, written without TensorFlow.

Contract shared with the published graph (see human_parsing.py):
  input   Placeholder 'input', NHWC float, batch 2 (the image and its mirror), any height and width,
          BGR with the LIP mean already subtracted;
  inside  the batch is resized to 384x384 (as LIP's evaluation does before the network);
  output  20 LIP class scores per batch item at a fixed 384x384, whatever the input size.

Architecture (lite, SYNTHETIC): ResizeBilinear 384x384 -> conv 3x3/2 (16) -> conv 3x3/2 (32) ->
conv 3x3/1 (32) -> conv 1x1 (20) -> ResizeBilinear back to 384x384. Every conv is Conv2D + BiasAdd and,
but for the last, Relu; padding SAME, NHWC, filters HWIO as TensorFlow stores them.

The GraphDef protobuf is encoded by hand (field numbers from tensorflow/core/framework/graph.proto,
node_def.proto, attr_value.proto, tensor.proto, tensor_shape.proto). The first node is a Const named
SYNTHETIC_MARKER, so a reader can tell a synthetic file from its first bytes.

    python3 tools/synthetic_parsing.py [OUTPUT.pb] [--seed N]
"""
import argparse
import os
import sys

import numpy as np

if not __package__:  # run as a script (python3 tools/synthetic_parsing.py): make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import image_io  # noqa: E402
import registry  # noqa: E402
from tools.synthetic_openpose import _varint  # noqa: E402

SYNTHETIC_MARKER = 'SYNTHETIC_seeded_random_weights'
SYNTHETIC_NOTE = 'SYNTHETIC: seeded random weights, not a trained model'
INPUT_NAME = 'input'
OUTPUT_NAME = 'parsing_scores'
NETWORK_SIZE = (384, 384)  # (height, width) the published graph resizes to, in and out
N_CLASSES = 20

# (name, kernel size, output channels, stride, relu)
LAYERS = (
    ('conv1', 3, 16, 2, True),
    ('conv2', 3, 32, 2, True),
    ('conv3', 3, 32, 1, True),
    ('fc_parsing', 1, N_CLASSES, 1, False),
)

DT_FLOAT = 1  # tensorflow.DataType
DT_INT32 = 3


def parsing_weights(seed=0):
    """The seeded weights: list of (name, kernel HWIO float32, bias float32, stride, relu)."""
    rng = np.random.default_rng(seed)
    weights = []
    channels = 3
    for index, (name, ksize, out_channels, stride, relu) in enumerate(LAYERS):
        fan_in = ksize * ksize * channels
        scale = np.sqrt(2.0 / fan_in)
        if index == 0:
            scale /= 64.0  # the input is mean-subtracted pixels (about +-128): keep activations near 1
        kernel = rng.standard_normal((ksize, ksize, channels, out_channels)) * scale
        if index == len(LAYERS) - 1:
            # ReLU features share a positive mean; zero-mean class filters make the classes answer to
            # image content rather than to that mean, so many labels win somewhere
            kernel -= kernel.mean(axis=2, keepdims=True)
        kernel = kernel.astype(np.float32)
        bias = (rng.standard_normal(out_channels) * 0.1).astype(np.float32)
        weights.append((name, kernel, bias, stride, relu))
        channels = out_channels
    return weights


# ---------------------------------------------------------------------------- protobuf wire format
# the varint encoder is shared with the Caffe writer; TensorFlow's GraphDef uses the same wire format


def _tag(field, wire_type):
    return _varint((field << 3) | wire_type)


def _field_varint(field, value):
    return _tag(field, 0) + _varint(value)


def _field_bytes(field, payload):
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    return _tag(field, 2) + _varint(len(payload)) + payload


def _shape(dims):
    # TensorShapeProto: repeated Dim dim = 2; Dim.size = 1
    return b''.join(_field_bytes(2, _field_varint(1, d)) for d in dims)


def _tensor(array):
    # TensorProto: dtype = 1, tensor_shape = 2, tensor_content = 4 (little-endian row-major bytes)
    array = np.ascontiguousarray(array)
    dtype = {np.dtype(np.float32): DT_FLOAT, np.dtype(np.int32): DT_INT32}[array.dtype]
    content = array.astype(array.dtype.newbyteorder('<'), copy=False).tobytes()
    return _field_varint(1, dtype) + _field_bytes(2, _shape(array.shape)) + _field_bytes(4, content)


# AttrValue: list = 1, s = 2, i = 3, f = 4, b = 5, type = 6, shape = 7, tensor = 8
def _attr_type(dtype):
    return _field_varint(6, dtype)


def _attr_string(text):
    return _field_bytes(2, text)


def _attr_bool(flag):
    return _field_varint(5, int(bool(flag)))


def _attr_shape(dims):
    return _field_bytes(7, _shape(dims))


def _attr_tensor(array):
    return _field_bytes(8, _tensor(array))


def _attr_int_list(values):
    # ListValue.i = 3, packed
    return _field_bytes(1, _field_bytes(3, b''.join(_varint(v) for v in values)))


def _node(name, op, inputs=(), attrs=None):
    # NodeDef: name = 1, op = 2, input = 3, attr = 5 (map entries: key = 1, value = 2)
    data = _field_bytes(1, name) + _field_bytes(2, op)
    data += b''.join(_field_bytes(3, i) for i in inputs)
    for key in sorted(attrs or {}):
        data += _field_bytes(5, _field_bytes(1, key) + _field_bytes(2, attrs[key]))
    return data


def _const(name, array):
    dtype = DT_FLOAT if array.dtype == np.float32 else DT_INT32
    return _node(name, 'Const', attrs={'dtype': _attr_type(dtype), 'value': _attr_tensor(array)})


def _resize_bilinear(name, source, size):
    # align_corners false and no half_pixel_centers: what TF 1.x tf.image.resize_images wrote in 2018
    return [_const(name + '/size', np.array(size, np.int32)),
            _node(name, 'ResizeBilinear', [source, name + '/size'],
                  {'T': _attr_type(DT_FLOAT), 'align_corners': _attr_bool(False)})]


def graph_def_bytes(seed=0):
    """Serialized GraphDef of the synthetic parsing network (deterministic for a seed)."""
    nodes = [
        _node(SYNTHETIC_MARKER, 'Const', attrs={
            'dtype': _attr_type(DT_FLOAT), 'value': _attr_tensor(np.zeros((), np.float32)),
            'note': _attr_string(SYNTHETIC_NOTE)}),
        _node(INPUT_NAME, 'Placeholder', attrs={
            'dtype': _attr_type(DT_FLOAT), 'shape': _attr_shape((2, -1, -1, 3))}),
    ]
    nodes += _resize_bilinear('resize_input', INPUT_NAME, NETWORK_SIZE)
    previous = 'resize_input'
    for name, kernel, bias, stride, relu in parsing_weights(seed):
        nodes += [
            _const(name + '/weights', kernel),
            _node(name + '/Conv2D', 'Conv2D', [previous, name + '/weights'], {
                'T': _attr_type(DT_FLOAT), 'data_format': _attr_string('NHWC'),
                'padding': _attr_string('SAME'), 'strides': _attr_int_list((1, stride, stride, 1)),
                'dilations': _attr_int_list((1, 1, 1, 1)), 'use_cudnn_on_gpu': _attr_bool(True)}),
            _const(name + '/biases', bias),
            _node(name + '/BiasAdd', 'BiasAdd', [name + '/Conv2D', name + '/biases'], {
                'T': _attr_type(DT_FLOAT), 'data_format': _attr_string('NHWC')}),
        ]
        previous = name + '/BiasAdd'
        if relu:
            nodes.append(_node(name + '/Relu', 'Relu', [previous], {'T': _attr_type(DT_FLOAT)}))
            previous = name + '/Relu'
    nodes += _resize_bilinear(OUTPUT_NAME, previous, NETWORK_SIZE)
    return b''.join(_field_bytes(1, node) for node in nodes)  # GraphDef.node = 1


def build_synthetic_parsing(path, seed=0):
    """Write the synthetic parsing GraphDef to `path` atomically; returns `path`."""
    data = graph_def_bytes(seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image_io.write_bytes(path, data)
    return path


def main(argv=None):
    """Write the graph to the path given, unless the file there already holds exactly it."""
    parser = argparse.ArgumentParser(description='Write the SYNTHETIC LIP JPPNet stand-in (seeded random '
                                                 'weights, not a trained model) as a TensorFlow .pb.')
    parser.add_argument('output', nargs='?', default=os.path.join(
        registry.models_dir(), 'synthetic', 'lip_jppnet_384.pb'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        with open(args.output, 'rb') as f:
            current = f.read()
    except OSError:
        current = None
    try:
        if current != graph_def_bytes(args.seed):
            build_synthetic_parsing(args.output, args.seed)
    except OSError as err:
        print(err, file=sys.stderr)  # human_parsing --synthetic shows this line
        return 1
    print(args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
