"""Convert MediaPipe's pose detector (pose_detection.tflite) to ONNX, in memory, without TensorFlow.

OpenCV's TFLite importer (4.14 and 5.0) stops at two operators of this model: DENSIFY (its
1x1 convolution weights are stored sparse, CSR on the input channels) and DEPTH_TO_SPACE.
This module reads the TFLite flatbuffer directly (a small reader of the fields the schema
gives; no flatbuffers or tflite package), densifies the sparse weights, and writes an NCHW
ONNX graph with the `onnx` package. The weights are the wheel's own (float16 widened to
float32); nothing is retrained or approximated.

Supported operators: those of pose_detection.tflite (CONV_2D, DEPTHWISE_CONV_2D, ADD, PAD,
DEQUANTIZE, DENSIFY, DEPTH_TO_SPACE, RESIZE_BILINEAR, RESHAPE, CONCATENATION). Anything else
is a clear error naming the operator.

    python3 tflite_onnx.py pose_detection.tflite -o pose_detection.onnx
"""
import argparse
import os
import struct
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

import command_line
import errors
import image_io

OPSET = 13
ONNX_INPUT = 'image'

# TFLite BuiltinOperator codes used here (schema.fbs)
ADD, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, DEPTH_TO_SPACE, DEQUANTIZE = 0, 2, 3, 4, 5, 6
RESHAPE, RESIZE_BILINEAR, PAD, DENSIFY = 22, 23, 34, 124
OP_NAMES = {ADD: 'ADD', CONCATENATION: 'CONCATENATION', CONV_2D: 'CONV_2D',
            DEPTHWISE_CONV_2D: 'DEPTHWISE_CONV_2D', DEPTH_TO_SPACE: 'DEPTH_TO_SPACE',
            DEQUANTIZE: 'DEQUANTIZE', RESHAPE: 'RESHAPE', RESIZE_BILINEAR: 'RESIZE_BILINEAR',
            PAD: 'PAD', DENSIFY: 'DENSIFY'}
TENSOR_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32}
INDEX_DTYPES = {1: '<i4', 2: '<u2', 3: 'u1'}       # SparseIndexVector union: Int32/Uint16/Uint8Vector
# fused activation -> (min, max) of a Clip; None: no activation
ACTIVATIONS = {0: None, 1: (0.0, None), 3: (0.0, 6.0)}


class TFLiteFormatError(errors.UsageError):
    """A .tflite this converter cannot read."""


class _FlatBuffer:
    """Read-only access to flatbuffer tables: field i of a table, vectors, strings."""

    def __init__(self, data):
        self.data = data

    def _u32(self, pos):
        return struct.unpack_from('<I', self.data, pos)[0]

    def root(self):
        return self._u32(0)

    def field_pos(self, table, index):
        vtable = table - struct.unpack_from('<i', self.data, table)[0]
        vtable_size = struct.unpack_from('<H', self.data, vtable)[0]
        if 4 + 2 * index >= vtable_size:
            return None
        offset = struct.unpack_from('<H', self.data, vtable + 4 + 2 * index)[0]
        return table + offset if offset else None

    def scalar(self, table, index, fmt, default=0):
        pos = self.field_pos(table, index)
        return default if pos is None else struct.unpack_from(fmt, self.data, pos)[0]

    def ref(self, table, index):
        pos = self.field_pos(table, index)
        return None if pos is None else pos + self._u32(pos)

    def tables(self, table, index):
        vector = self.ref(table, index)
        if vector is None:
            return []
        start = vector + 4
        return [start + 4 * k + self._u32(start + 4 * k) for k in range(self._u32(vector))]

    def array(self, table, index, dtype):
        vector = self.ref(table, index)
        if vector is None:
            return np.zeros(0, dtype)
        dtype = np.dtype(dtype)
        count = self._u32(vector)
        if dtype.itemsize == 1:
            return np.frombuffer(self.data, dtype, count, vector + 4)
        return np.frombuffer(self.data, dtype, count, vector + 4).copy()

    def string(self, table, index):
        vector = self.ref(table, index)
        return '' if vector is None else self.data[vector + 4:vector + 4 + self._u32(vector)].decode()


def _densify(fb, tensor, shape, values):
    """Dense array of a sparse tensor whose leading dims are dense and whose last dim is CSR."""
    sparsity = fb.ref(tensor, 6)
    order = fb.array(sparsity, 0, '<i4')
    if fb.ref(sparsity, 1) is not None or list(order) != list(range(len(shape))):
        raise TFLiteFormatError('block-sparse or reordered sparse tensors are not supported')
    dims = fb.tables(sparsity, 2)
    formats = [fb.scalar(dim, 0, '<b') for dim in dims]
    if formats != [0] * (len(shape) - 1) + [1]:
        raise TFLiteFormatError('sparse tensor layout %s is not supported (dense rows, CSR last dim)' % formats)
    last = dims[-1]

    def index_vector(type_field, value_field):
        kind = fb.scalar(last, type_field, '<B')
        if kind not in INDEX_DTYPES:
            raise TFLiteFormatError('sparse index vector type %d is not supported' % kind)
        return fb.array(fb.ref(last, value_field), 0, INDEX_DTYPES[kind]).astype(np.int64)

    segments, columns = index_vector(2, 3), index_vector(4, 5)
    rows = int(np.prod(shape[:-1]))
    dense = np.zeros((rows, shape[-1]), values.dtype)
    dense[np.repeat(np.arange(rows), np.diff(segments)), columns] = values
    return dense.reshape(shape)


def read_tflite(data):
    """(tensors, operators, inputs, outputs) of the first subgraph.

    tensors: list of dicts {name, shape, dtype, data (np array or None)};
    operators: list of dicts {code, inputs, outputs, options (table position or None)}.
    """
    fb = _FlatBuffer(data)
    try:
        model = fb.root()
        codes = [max(fb.scalar(c, 0, '<b'), fb.scalar(c, 3, '<i')) for c in fb.tables(model, 1)]
        subgraph = fb.tables(model, 2)[0]
        buffers = fb.tables(model, 4)
        tensors = []
        for t in fb.tables(subgraph, 0):
            shape = [int(v) for v in fb.array(t, 0, '<i4')]
            dtype = TENSOR_DTYPES.get(fb.scalar(t, 1, '<b'))
            buffer = fb.scalar(t, 2, '<I')
            values = None
            if buffer and fb.ref(buffers[buffer], 0) is not None and dtype is not None:
                values = fb.array(buffers[buffer], 0, 'u1').view(dtype)
                if fb.ref(t, 6) is not None:        # sparse: values of the non-zero entries only
                    values = _densify(fb, t, shape, values)
                else:
                    values = values.reshape(shape)
            tensors.append({'name': fb.string(t, 3), 'shape': shape, 'data': values})
        operators = [{'code': codes[fb.scalar(op, 0, '<I')],
                      'inputs': [int(v) for v in fb.array(op, 1, '<i4')],
                      'outputs': [int(v) for v in fb.array(op, 2, '<i4')],
                      'options': fb.ref(op, 4)} for op in fb.tables(subgraph, 3)]
        inputs = [int(v) for v in fb.array(subgraph, 1, '<i4')]
        outputs = [int(v) for v in fb.array(subgraph, 2, '<i4')]
    except (struct.error, IndexError, ValueError) as err:
        raise TFLiteFormatError('not a readable TFLite model: %s' % err)
    return fb, tensors, operators, inputs, outputs


def _same_padding(in_size, kernel, stride, dilation):
    out = -(-in_size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def tflite_to_onnx(data):
    """ONNX ModelProto (NCHW, float32) equivalent to the TFLite model in `data` (bytes)."""
    fb, tensors, operators, inputs, outputs = read_tflite(data)
    nodes, initializers = [], []
    consts = {i: t['data'] for i, t in enumerate(tensors) if t['data'] is not None}
    names = {}

    def name(i):
        return names.get(i, 'T%d' % i)

    def const(array, tag):
        const_name = 'c%d_%s' % (len(initializers), tag)
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), const_name))
        return const_name

    def activation(op_out, code):
        if code not in ACTIVATIONS:
            raise TFLiteFormatError('fused activation %d is not supported' % code)
        bounds = ACTIVATIONS[code]
        if bounds is None:
            return
        raw = op_out + '_pre'
        nodes[-1].output[0] = raw
        if bounds[1] is None:
            nodes.append(helper.make_node('Relu', [raw], [op_out]))
        else:
            nodes.append(helper.make_node('Clip', [raw, const(np.float32(bounds[0]), 'min'),
                                                   const(np.float32(bounds[1]), 'max')], [op_out]))

    for i in inputs:
        names[i] = ONNX_INPUT
    for op in operators:
        code, ins, out = op['code'], op['inputs'], op['outputs'][0]
        opt = op['options']
        out_name = name(out)
        if code in (DEQUANTIZE, DENSIFY):
            if ins[0] not in consts:
                raise TFLiteFormatError('%s of a non-constant tensor is not supported' % OP_NAMES[code])
            consts[out] = consts[ins[0]].astype(np.float32)
        elif code in (CONV_2D, DEPTHWISE_CONV_2D):
            weight = np.asarray(consts[ins[1]], np.float32)
            bias = np.asarray(consts[ins[2]], np.float32) if len(ins) > 2 and ins[2] >= 0 else None
            if code == CONV_2D:      # OHWI -> OIHW
                padding, stride_w, stride_h = fb.scalar(opt, 0, '<b'), fb.scalar(opt, 1, '<i'), fb.scalar(opt, 2, '<i')
                act = fb.scalar(opt, 3, '<b')
                dil_w, dil_h = fb.scalar(opt, 4, '<i', 1), fb.scalar(opt, 5, '<i', 1)
                kernel = weight.transpose(0, 3, 1, 2)
                group = 1
            else:                    # 1HW(C*m) -> (C*m)1HW, one group per input channel
                padding, stride_w, stride_h = fb.scalar(opt, 0, '<b'), fb.scalar(opt, 1, '<i'), fb.scalar(opt, 2, '<i')
                act = fb.scalar(opt, 4, '<b')
                dil_w, dil_h = fb.scalar(opt, 5, '<i', 1), fb.scalar(opt, 6, '<i', 1)
                kernel = weight.transpose(3, 0, 1, 2)
                group = tensors[ins[0]]['shape'][3]
            _, in_h, in_w, _ = tensors[ins[0]]['shape']
            kh, kw = kernel.shape[2:]
            if padding == 0:     # SAME
                top, bottom = _same_padding(in_h, kh, stride_h, dil_h)
                left, right = _same_padding(in_w, kw, stride_w, dil_w)
            else:
                top = bottom = left = right = 0
            conv_in = [name(ins[0]), const(kernel, 'w')] + ([const(bias, 'b')] if bias is not None else [])
            nodes.append(helper.make_node('Conv', conv_in, [out_name], kernel_shape=[kh, kw],
                                          strides=[stride_h, stride_w], dilations=[dil_h, dil_w],
                                          pads=[top, left, bottom, right], group=group))
            activation(out_name, act)
        elif code == ADD:
            nodes.append(helper.make_node('Add', [name(ins[0]), name(ins[1])], [out_name]))
            activation(out_name, fb.scalar(opt, 0, '<b') if opt else 0)
        elif code == PAD:
            pads = np.asarray(consts[ins[1]], np.int64).reshape(4, 2)[[0, 3, 1, 2]]   # NHWC -> NCHW
            nodes.append(helper.make_node('Pad', [name(ins[0]), const(pads.T.ravel(), 'pads')], [out_name]))
        elif code == DEPTH_TO_SPACE:
            block = fb.scalar(opt, 0, '<i')
            nodes.append(helper.make_node('DepthToSpace', [name(ins[0])], [out_name], blocksize=block, mode='DCR'))
        elif code == RESIZE_BILINEAR:
            align_corners, half_pixel = fb.scalar(opt, 2, '<b'), fb.scalar(opt, 3, '<b')
            mode = 'align_corners' if align_corners else ('half_pixel' if half_pixel else 'asymmetric')
            size = np.asarray(consts[ins[1]], np.int64)
            shape = tensors[ins[0]]['shape']
            sizes = np.array([shape[0], shape[3], size[0], size[1]], np.int64)
            nodes.append(helper.make_node('Resize', [name(ins[0]), '', '', const(sizes, 'sizes')], [out_name],
                                          mode='linear', coordinate_transformation_mode=mode))
        elif code == RESHAPE:     # back to TFLite's NHWC order first: the head outputs are (1, anchors, k)
            nhwc = out_name + '_nhwc'
            nodes.append(helper.make_node('Transpose', [name(ins[0])], [nhwc], perm=[0, 2, 3, 1]))
            target = np.asarray(tensors[out]['shape'], np.int64)
            nodes.append(helper.make_node('Reshape', [nhwc, const(target, 'shape')], [out_name]))
        elif code == CONCATENATION:
            axis = fb.scalar(opt, 0, '<i')
            rank = len(tensors[out]['shape'])
            if rank == 4:      # NHWC axis -> NCHW axis
                axis = [0, 2, 3, 1][axis % 4]
            nodes.append(helper.make_node('Concat', [name(i) for i in ins], [out_name], axis=axis))
            activation(out_name, fb.scalar(opt, 1, '<b'))
        else:
            raise TFLiteFormatError('TFLite operator %s is not supported by this converter'
                                    % OP_NAMES.get(code, code))

    in_shape = tensors[inputs[0]]['shape']
    graph_inputs = [helper.make_tensor_value_info(ONNX_INPUT, onnx.TensorProto.FLOAT,
                                                  [in_shape[0], in_shape[3], in_shape[1], in_shape[2]])]
    graph_outputs = []
    for i in outputs:
        graph_outputs.append(helper.make_tensor_value_info(tensors[i]['name'], onnx.TensorProto.FLOAT,
                                                           tensors[i]['shape']))
        for node in nodes:          # the graph outputs keep the TFLite names (Identity, Identity_1)
            node.output[:] = [tensors[i]['name'] if o == name(i) else o for o in node.output]
    graph = helper.make_graph(nodes, 'tflite_converted', graph_inputs, graph_outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='tflite_onnx.py')
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert pose_detection.tflite to ONNX (no TensorFlow).')
    parser.add_argument('tflite')
    parser.add_argument('-o', '--output', required=True)
    args = parser.parse_args(argv)
    if not os.path.isfile(args.tflite):
        raise errors.UsageError('file not found: %s' % args.tflite)
    with open(args.tflite, 'rb') as f:
        model = tflite_to_onnx(f.read())
    image_io.write_bytes(args.output, model.SerializeToString())
    print('wrote %s' % args.output, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
