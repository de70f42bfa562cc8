"""Convert a Caffe model (text .prototxt + binary .caffemodel) to ONNX without Caffe.

OpenCV 5 has no Caffe importer, so the OpenPose COCO body model is converted once to
ONNX here. Nothing from Caffe or from generated protobuf code is used: the prototxt is
read by a small text-format parser, the caffemodel by a protobuf wire-format decoder,
and the ONNX graph is written with the `onnx` package.

Supported layer types (what OpenPose needs): Input (or `input`/`input_dim`/`input_shape`),
Convolution, ReLU, Pooling (MAX/AVE with Caffe's rounding) and Concat; Dropout and Split
pass through.

The synthetic OpenPose caffemodel (seeded random weights with exactly the blob shapes the prototxt implies,
marked by the NetParameter name `SYNTHETIC: ...`) is written by tools/synthetic_openpose.py, which encodes
the wire format with the blob shapes this module reads.

    python3 openpose_caffe.py --prototxt openpose_pose_coco.prototxt \
        --caffemodel pose_iter_440000.caffemodel -o openpose_pose_coco.onnx
"""
import argparse
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import command_line
import errors
import image_io
import protobuf_wire
import synthetic_models

SYNTHETIC_DOC = 'SYNTHETIC: seeded random weights, not a trained model'
ONNX_INPUT = 'image'
OPSET = 13


class CaffeFormatError(errors.UsageError):
    """A prototxt or caffemodel this converter cannot read."""


# ============================================================================ text format
def _tokenize(text):
    """Split protobuf text format into tokens: names, numbers, quoted strings, punctuation."""
    tokens = []
    i, n = 0, len(text)
    line = 1
    while i < n:
        ch = text[i]
        if ch == '\n':
            line += 1
            i += 1
        elif ch.isspace() or ch in ',;':
            i += 1
        elif ch == '#':
            end = text.find('\n', i)
            i = n if end < 0 else end
        elif ch in '{}<>:[]':
            tokens.append((ch, None, line))
            i += 1
        elif ch in '"\'':
            j = i + 1
            chunk = []
            while j < n and text[j] != ch:
                if text[j] == '\\' and j + 1 < n:
                    chunk.append(text[j:j + 2])
                    j += 2
                else:
                    if text[j] == '\n':
                        raise CaffeFormatError('prototxt line %d: unterminated string' % line)
                    chunk.append(text[j])
                    j += 1
            if j >= n:
                raise CaffeFormatError('prototxt line %d: unterminated string' % line)
            raw = ''.join(chunk)
            value = raw.encode('latin-1', 'backslashreplace').decode('unicode_escape') if '\\' in raw else raw
            tokens.append(('str', value, line))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '{}<>:[],;#"\'':
                j += 1
            if j == i:
                raise CaffeFormatError('prototxt line %d: unexpected character %r' % (line, ch))
            tokens.append(('word', text[i:j], line))
            i = j
    return tokens


def _scalar(word):
    """A bare word: integer, float, boolean, or an enum name kept as a string."""
    for cast in (int, float):
        try:
            return cast(word)
        except ValueError:
            pass
    lowered = word.lower()
    if lowered in ('true', 'false'):
        return lowered == 'true'
    if lowered in ('inf', 'infinity', '-inf', '-infinity', 'nan'):
        return float(lowered)
    return word


def parse_prototxt(text):
    """Parse protobuf text format into nested dicts; every field maps to a list of values."""
    tokens = _tokenize(text)
    pos = 0

    def parse_message(closing):
        nonlocal pos
        message = {}
        while True:
            if pos >= len(tokens):
                if closing is None:
                    return message
                raise CaffeFormatError('prototxt: missing %r at end of file' % closing)
            kind, value, line = tokens[pos]
            if kind == closing:
                pos += 1
                return message
            if kind != 'word':
                raise CaffeFormatError('prototxt line %d: expected a field name, got %r' % (line, kind))
            name = value
            pos += 1
            has_colon = pos < len(tokens) and tokens[pos][0] == ':'
            if has_colon:
                pos += 1
            if pos >= len(tokens):
                raise CaffeFormatError('prototxt line %d: field %s has no value' % (line, name))
            kind, value, line = tokens[pos]
            if kind in '{<':
                pos += 1
                message.setdefault(name, []).append(parse_message('}' if kind == '{' else '>'))
            elif kind == '[':  # short form of a repeated scalar: dim: [1, 3, 368, 368]
                pos += 1
                while pos < len(tokens) and tokens[pos][0] != ']':
                    message.setdefault(name, []).append(parse_value())
                pos += 1
            elif has_colon:
                message.setdefault(name, []).append(parse_value())
            else:
                raise CaffeFormatError('prototxt line %d: expected ":" or "{" after %s' % (line, name))

    def parse_value():
        nonlocal pos
        kind, value, line = tokens[pos]
        pos += 1
        if kind == 'str':
            # adjacent string literals concatenate, as in protobuf
            while pos < len(tokens) and tokens[pos][0] == 'str':
                value += tokens[pos][1]
                pos += 1
            return value
        if kind == 'word':
            return _scalar(value)
        raise CaffeFormatError('prototxt line %d: unexpected %r' % (line, kind))

    return parse_message(None)


def _get(message, key, default=None):
    values = message.get(key)
    return values[0] if values else default


def read_prototxt(path):
    if not os.path.isfile(path):
        raise errors.UsageError('prototxt file not found: %s' % path)
    with open(path, 'rb') as f:
        data = f.read()
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise CaffeFormatError('%s is not a text prototxt' % path)
    net = parse_prototxt(text)
    if 'layer' not in net and 'layers' not in net:
        raise CaffeFormatError('%s holds no layer definitions' % path)
    if 'layers' in net and 'layer' not in net:
        raise CaffeFormatError('%s uses the legacy V1 "layers" syntax; upgrade it with Caffe\'s '
                               'upgrade_net_proto_text first' % path)
    return net


# ============================================================================ wire format: decode
def _read_varint(buf, pos):
    try:
        return protobuf_wire.protobuf_varint(buf, pos)
    except ValueError as err:
        raise CaffeFormatError(str(err))


def iter_fields(buf, start=0, end=None):
    """Yield (field_number, wire_type, value) of one message (protobuf_wire.protobuf_fields): length-delimited
    values are (start, end) offsets into buf, so large blobs are never copied."""
    try:
        yield from protobuf_wire.protobuf_fields(buf, start, end)
    except ValueError as err:
        raise CaffeFormatError('%s (not a caffemodel, or the file is cut short?)' % err)


def _packed_varints(buf, span):
    values = []
    pos, end = span
    while pos < end:
        value, pos = _read_varint(buf, pos)
        values.append(value)
    return values


def _decode_blob(buf, span):
    """BlobProto -> float32 array in its declared shape (shape 7, else num/channels/height/width)."""
    legacy = {}
    shape = None
    chunks = []
    singles = []
    doubles = []
    for field, wire_type, value in iter_fields(buf, *span):
        if field == 7 and wire_type == 2:       # BlobShape
            shape = []
            for f, wt, v in iter_fields(buf, *value):
                if f == 1:
                    shape.extend(_packed_varints(buf, v) if wt == 2 else [v])
        elif field == 5:                        # data, packed float (or one float per field)
            if wire_type == 2:
                chunks.append(np.frombuffer(buf[value[0]:value[1]], dtype='<f4'))
            elif wire_type == 5:
                singles.append(struct.unpack('<f', value)[0])
        elif field == 8:                        # double_data
            if wire_type == 2:
                doubles.append(np.frombuffer(buf[value[0]:value[1]], dtype='<f8'))
            elif wire_type == 1:
                doubles.append(np.array(struct.unpack('<d', value)))
        elif field in (1, 2, 3, 4) and wire_type == 0:
            legacy[field] = value
    if singles:
        chunks.append(np.array(singles, dtype=np.float32))
    if doubles:
        chunks.append(np.concatenate(doubles).astype(np.float32))
    data = np.concatenate(chunks) if len(chunks) > 1 else (chunks[0] if chunks else np.zeros(0, np.float32))
    if shape is None:
        shape = [legacy.get(i, 0) for i in (1, 2, 3, 4)]
        if not legacy:
            shape = [data.size]
        # legacy blobs pad leading dims with 1 (a bias is 1x1x1xN)
    if int(np.prod(shape)) != data.size:
        raise CaffeFormatError('blob holds %d values but its shape %s needs %d'
                               % (data.size, shape, int(np.prod(shape))))
    return data.astype(np.float32, copy=False).reshape(shape)


def _utf8(buf, span):
    return bytes(buf[span[0]:span[1]]).decode('utf-8', 'replace')


def read_caffemodel(path):
    """Decode a binary NetParameter: returns (net_name, {layer_name: [blob arrays]}).

    Reads the current `layer` field (100) and the legacy V1 `layers` field (2)."""
    if not os.path.isfile(path):
        raise errors.UsageError('caffemodel file not found: %s' % path)
    with open(path, 'rb') as f:
        data = f.read()
    if not data:
        raise CaffeFormatError('caffemodel file is empty: %s' % path)
    buf = memoryview(data)
    net_name = ''
    blobs = {}
    try:
        for field, wire_type, value in iter_fields(buf):
            if field == 1 and wire_type == 2:
                net_name = _utf8(buf, value)
            elif field in (100, 2) and wire_type == 2:
                # LayerParameter: name 1, blobs 7; V1LayerParameter: name 4, blobs 6
                name_field, blob_field = (1, 7) if field == 100 else (4, 6)
                name, layer_blobs = None, []
                for f, wt, v in iter_fields(buf, *value):
                    if f == name_field and wt == 2:
                        name = _utf8(buf, v)
                    elif f == blob_field and wt == 2:
                        layer_blobs.append(_decode_blob(buf, v))
                if name is not None and layer_blobs:
                    blobs[name] = layer_blobs
    except CaffeFormatError as err:
        raise CaffeFormatError('%s: %s' % (path, err))
    if not blobs:
        raise CaffeFormatError('%s holds no layer weights (not a caffemodel?)' % path)
    return net_name, blobs


def caffemodel_net_name(path):
    """The NetParameter name (field 1) without reading the weights: it is serialised first."""
    with open(path, 'rb') as f:
        head = f.read(4096)
    try:
        for field, wire_type, value in iter_fields(memoryview(head)):
            if field == 1 and wire_type == 2:
                return _utf8(head, value)
            return ''
    except CaffeFormatError:
        return ''
    return ''


def caffemodel_is_synthetic(path):
    return caffemodel_net_name(path).startswith('SYNTHETIC')


# ============================================================================ the network
def _pair(param, name, default):
    """Caffe's kernel/pad/stride/dilation: `name` (repeated, one or two values) or name_h/name_w."""
    h, w = _get(param, name + '_h'), _get(param, name + '_w')
    if h is not None or w is not None:
        return int(h if h is not None else default), int(w if w is not None else default)
    values = param.get(name, [])
    if name == 'kernel' and not values:
        values = param.get('kernel_size', [])
    if not values:
        return default, default
    if len(values) == 1:
        return int(values[0]), int(values[0])
    return int(values[0]), int(values[1])


def _input_shapes(net):
    """{name: shape} from `input` + `input_dim`/`input_shape`, or Input layers."""
    shapes = {}
    names = net.get('input', [])
    dims = [int(d) for d in net.get('input_dim', [])]
    input_shape = net.get('input_shape', [])
    for i, name in enumerate(names):
        if input_shape:
            shapes[name] = [int(d) for d in input_shape[i].get('dim', [])]
        elif dims:
            shapes[name] = dims[4 * i:4 * i + 4]
        else:
            shapes[name] = None
    for layer in net.get('layer', []):
        if _get(layer, 'type') == 'Input':
            param = _get(layer, 'input_param', {})
            layer_shapes = param.get('shape', [])
            for i, top in enumerate(layer.get('top', [])):
                shape = layer_shapes[min(i, len(layer_shapes) - 1)] if layer_shapes else None
                shapes[top] = [int(d) for d in shape.get('dim', [])] if shape else None
    return shapes


def _active_layers(net):
    """Layers of the TEST phase (include/exclude phase rules), Input layers dropped."""
    layers = []
    for layer in net.get('layer', []):
        includes = layer.get('include', [])
        excludes = layer.get('exclude', [])
        if includes and not any(_get(r, 'phase', 'TEST') == 'TEST' for r in includes):
            continue
        if any(_get(r, 'phase') == 'TEST' for r in excludes):
            continue
        if _get(layer, 'type') == 'Input':
            continue
        layers.append(layer)
    return layers


def blob_shapes(net):
    """Weight blob shapes per layer name as Caffe allocates them: conv weights
    (num_output, channels / group, kh, kw) and bias (num_output,). Tracks channel counts
    through the graph, so only the channel dimension of the inputs matters."""
    channels = {name: (shape[1] if shape and len(shape) > 1 else None)
                for name, shape in _input_shapes(net).items()}
    result = {}
    for layer in _active_layers(net):
        kind, name = _get(layer, 'type'), _get(layer, 'name')
        bottoms, tops = layer.get('bottom', []), layer.get('top', [])
        in_channels = [channels.get(b) for b in bottoms]
        if kind == 'Convolution':
            param = _get(layer, 'convolution_param', {})
            out = int(_get(param, 'num_output'))
            group = int(_get(param, 'group', 1))
            kh, kw = _pair(param, 'kernel', None)
            if in_channels[0] is None:
                raise CaffeFormatError('cannot infer the input channels of layer %s' % name)
            shapes = [(out, in_channels[0] // group, kh, kw)]
            if _get(param, 'bias_term', True):
                shapes.append((out,))
            result[name] = shapes
            channels[tops[0]] = out
        elif kind == 'Concat':
            param = _get(layer, 'concat_param', {})
            axis = int(_get(param, 'axis', _get(param, 'concat_dim', 1)))
            channels[tops[0]] = sum(in_channels) if axis == 1 else in_channels[0]
        else:
            for top in tops:
                channels[top] = in_channels[0] if in_channels else None
    return result


def _consumed(layers):
    """Blob names read by some layer (an in-place layer does not count as a consumer)."""
    used = set()
    for layer in layers:
        tops = set(layer.get('top', []))
        used.update(b for b in layer.get('bottom', []) if b not in tops)
    return used


def build_onnx(net, weights, outputs=None, synthetic=False, graph_name=None):
    """Build an onnx.ModelProto from a parsed prototxt and decoded blobs."""

    input_shapes = _input_shapes(net)
    if len(input_shapes) != 1:
        raise CaffeFormatError('expected exactly one network input, found %d' % len(input_shapes))
    caffe_input, input_shape = next(iter(input_shapes.items()))
    channels = input_shape[1] if input_shape and len(input_shape) == 4 else 3

    layers = _active_layers(net)
    current = {caffe_input: ONNX_INPUT}       # Caffe blob name -> latest ONNX tensor name
    produced_by = {}                          # ONNX tensor -> node index
    nodes, initializers = [], []
    used_names = {ONNX_INPUT}

    def fresh(name):
        candidate, k = name, 1
        while candidate in used_names:
            candidate = '%s_%d' % (name, k)
            k += 1
        used_names.add(candidate)
        return candidate

    def source(blob, layer_name):
        if blob not in current:
            raise CaffeFormatError('layer %s reads blob %r that no earlier layer produces'
                                   % (layer_name, blob))
        return current[blob]

    for layer in layers:
        kind, name = _get(layer, 'type'), _get(layer, 'name')
        bottoms, tops = layer.get('bottom', []), layer.get('top', [])
        inputs = [source(b, name) for b in bottoms]
        # a top that is also a bottom (in-place) becomes a new tensor named after the layer
        out_names = [fresh(name if top in bottoms else top) for top in tops]
        if kind == 'Convolution':
            param = _get(layer, 'convolution_param', {})
            blobs = weights.get(name)
            if not blobs:
                raise CaffeFormatError('the caffemodel has no weights for layer %s' % name)
            out = int(_get(param, 'num_output'))
            kernel = _pair(param, 'kernel', None)
            if None in kernel:
                raise CaffeFormatError('layer %s has no kernel_size' % name)
            pad = _pair(param, 'pad', 0)
            stride = _pair(param, 'stride', 1)
            dilation = _pair(param, 'dilation', 1)
            group = int(_get(param, 'group', 1))
            weight = blobs[0].reshape(out, -1, kernel[0], kernel[1])
            w_name = fresh(name + '_W')
            initializers.append(numpy_helper.from_array(weight.astype(np.float32), w_name))
            conv_inputs = [inputs[0], w_name]
            if _get(param, 'bias_term', True):
                if len(blobs) < 2:
                    raise CaffeFormatError('layer %s has bias_term but the caffemodel has no bias' % name)
                b_name = fresh(name + '_B')
                initializers.append(numpy_helper.from_array(blobs[1].reshape(out).astype(np.float32), b_name))
                conv_inputs.append(b_name)
            nodes.append(helper.make_node(
                'Conv', conv_inputs, out_names[:1], name=name, kernel_shape=list(kernel),
                pads=[pad[0], pad[1], pad[0], pad[1]], strides=list(stride),
                dilations=list(dilation), group=group))
        elif kind == 'ReLU':
            slope = float(_get(_get(layer, 'relu_param', {}), 'negative_slope', 0.0))
            if slope:
                nodes.append(helper.make_node('LeakyRelu', inputs[:1], out_names[:1], name=name, alpha=slope))
            else:
                nodes.append(helper.make_node('Relu', inputs[:1], out_names[:1], name=name))
        elif kind == 'Pooling':
            param = _get(layer, 'pooling_param', {})
            method = _get(param, 'pool', 'MAX')
            method = {0: 'MAX', 1: 'AVE'}.get(method, method)
            if method not in ('MAX', 'AVE'):
                raise CaffeFormatError('layer %s: pooling method %s is not supported' % (name, method))
            if _get(param, 'global_pooling', False):
                op = 'GlobalMaxPool' if method == 'MAX' else 'GlobalAveragePool'
                nodes.append(helper.make_node(op, inputs[:1], out_names[:1], name=name))
            else:
                kernel = _pair(param, 'kernel', None)
                if None in kernel:
                    raise CaffeFormatError('layer %s has no kernel_size' % name)
                pad = _pair(param, 'pad', 0)
                stride = _pair(param, 'stride', 1)
                round_mode = _get(param, 'round_mode', 'CEIL')
                ceil = round_mode in ('CEIL', 0)
                attrs = dict(kernel_shape=list(kernel), pads=[pad[0], pad[1], pad[0], pad[1]],
                             strides=list(stride), ceil_mode=int(ceil))
                if method == 'AVE':
                    # Caffe divides by the window clipped to the padded image: padding counts
                    attrs['count_include_pad'] = 1
                nodes.append(helper.make_node('MaxPool' if method == 'MAX' else 'AveragePool',
                                              inputs[:1], out_names[:1], name=name, **attrs))
        elif kind == 'Concat':
            param = _get(layer, 'concat_param', {})
            axis = int(_get(param, 'axis', _get(param, 'concat_dim', 1)))
            nodes.append(helper.make_node('Concat', inputs, out_names[:1], name=name, axis=axis))
        elif kind in ('Dropout', 'Split'):
            for out_name in out_names:
                nodes.append(helper.make_node('Identity', inputs[:1], [out_name], name=fresh(name)))
        else:
            raise CaffeFormatError('layer %s: type %s is not supported by this converter '
                                   '(Input, Convolution, ReLU, Pooling, Concat)' % (name, kind))
        for top, out_name in zip(tops, out_names):
            current[top] = out_name
            produced_by[out_name] = len(nodes) - 1

    if outputs is None:
        used = _consumed(layers)
        outputs = [t for layer in layers for t in layer.get('top', []) if t not in used]
        outputs = list(dict.fromkeys(outputs))
    graph_outputs = []
    for blob in outputs:
        if blob not in current:
            raise CaffeFormatError('requested output %r is not a blob of this network' % blob)
        tensor = current[blob]
        if tensor != blob:
            if blob in used_names:
                raise CaffeFormatError('cannot name the output %r: the name is taken' % blob)
            nodes.append(helper.make_node('Identity', [tensor], [blob], name=blob + '_output'))
            used_names.add(blob)
        graph_outputs.append(helper.make_tensor_value_info(blob, TensorProto.FLOAT, [1, None, None, None]))

    # keep only what the outputs need (a net with an unused branch converts cleanly)
    needed = {o.name for o in graph_outputs}
    kept = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    initializers = [t for t in initializers if t.name in needed]

    graph = helper.make_graph(
        kept, graph_name or _get(net, 'name', 'caffe_net'),
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, [1, channels, 'height', 'width'])],
        graph_outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='openpose_caffe.py')
    model.ir_version = 7
    if synthetic:
        model.doc_string = SYNTHETIC_DOC
        helper.set_model_props(model, {synthetic_models.SYNTHETIC_KEY: 'true'})
    onnx.checker.check_model(model)
    return model


def _save_atomic(model, onnx_path):
    return image_io.write_bytes(onnx_path, model.SerializeToString())


def convert(prototxt_path, caffemodel_path, onnx_path, outputs=None):
    """Convert prototxt + caffemodel to an ONNX file with input `image` (1, C, H, W), H and W
    dynamic. `outputs` lists Caffe blob names (default: the blobs no layer consumes).
    A synthetic caffemodel gives an ONNX marked synthetic. Returns onnx_path."""
    net = read_prototxt(prototxt_path)
    net_name, weights = read_caffemodel(caffemodel_path)
    model = build_onnx(net, weights, outputs, synthetic=net_name.startswith('SYNTHETIC'))
    return _save_atomic(model, onnx_path)


# ============================================================================ CLI
def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert a Caffe model (OpenPose COCO) to ONNX, '
                                                 'without Caffe.')
    parser.add_argument('--prototxt', required=True, help='network definition (.prototxt)')
    parser.add_argument('--caffemodel', required=True, help='trained weights (.caffemodel)')
    parser.add_argument('-o', '--output', required=True, help='ONNX file to write')
    parser.add_argument('--outputs', nargs='+', default=None,
                        help='Caffe blob names to expose as outputs (default: the final blobs)')
    args = parser.parse_args(argv)
    convert(args.prototxt, args.caffemodel, args.output, args.outputs)
    print('wrote %s' % args.output)
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
