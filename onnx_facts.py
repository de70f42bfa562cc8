"""What an ONNX file says about itself (graph inputs, metadata), read without its weights.

The protobuf wire format (protobuf_wire.protobuf_fields), read only as far as needed: the graph inputs and
metadata of a 80 MB model are found by jumping over the weights, so checking a model costs no parse
(and no `import onnx`). Reading the whole model is onnx.load (gmm_rewrite.load_onnx)."""
import math
import mmap
import os

import protobuf_wire
import synthetic_models
from errors import ModelLoadError, RuntimeFailure, UsageError


def _fields(data, start=0, end=None):
    """(field number, value) of each field of a message: protobuf_wire.protobuf_fields without the wire type."""
    return ((field, value) for field, _, value in protobuf_wire.protobuf_fields(data, start, end))


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


# bytes per element of the ONNX tensor types (TensorProto.DataType) a weight may hold
_ITEM_SIZES = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8}  # float, uint8, int8, int32, int64, bool, fp16, double


def _check_weight(data, span, what, path):
    """The name of the initializer (TensorProto) at `span`; a ModelLoadError when its raw data is not the size
    its shape needs (OpenCV 4.x and 5.1 refuse such a file; 5.0 reads past it and computes garbage)."""
    name, dims, data_type, raw = '', [], None, None
    for field, wire_type, value in protobuf_wire.protobuf_fields(data, *span):
        if field == 1:                                          # dims: varints, or packed
            if wire_type == 2:
                pos, end = value
                while pos < end:
                    dim, pos = protobuf_wire.protobuf_varint(data, pos)
                    dims.append(dim)
            else:
                dims.append(value)
        elif field == 2:
            data_type = value
        elif field == 8:
            name = _protobuf_string(data, value)
        elif field == 9:                                        # raw_data
            raw = value[1] - value[0]
    if raw is not None and data_type in _ITEM_SIZES:
        needed = _ITEM_SIZES[data_type] * math.prod(dims)
        if raw != needed:
            raise ModelLoadError('cannot load the %s model %s: weight %s holds %d bytes, its shape %s needs %d '
                                 '(truncated or damaged?)' % (what, path, name, raw, dims, needed))
    return name


def onnx_summary(path, what):
    """(inputs {name: dims} that are not initializers, metadata {key: value}) of an ONNX file, read
    without parsing its weights. A missing file is a UsageError; a damaged one (a weight shorter than its
    shape among them) a ModelLoadError."""
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
                        elif f_graph == 5:                      # initializer: TensorProto
                            initializers.add(_check_weight(data, item, what, path))
                        elif f_graph == 11:                     # input
                            name, dims = _value_info_dims(data, item)
                            inputs[name] = dims
    except (ValueError, IndexError, TypeError, OSError) as err:  # mmap of an empty file: ValueError
        raise ModelLoadError('%s model %s is not a valid ONNX file (truncated or damaged?): %s'
                             % (what, path, err))
    if not has_graph:
        raise ModelLoadError('%s model %s holds no graph (truncated or damaged?)' % (what, path))
    return {k: v for k, v in inputs.items() if k not in initializers}, metadata


def is_synthetic(metadata):
    """True for a model whose metadata marks it as a seeded stand-in (tools/synthetic.py)."""
    return metadata.get(synthetic_models.SYNTHETIC_KEY, '').lower() == 'true'


def file_is_synthetic(path):
    """is_synthetic of an ONNX file's metadata; False for a file that is not readable ONNX (its loader then
    says what is wrong with it)."""
    try:
        return is_synthetic(onnx_summary(path, 'ONNX')[1])
    except (UsageError, RuntimeFailure):
        return False
