"""What an ONNX file says about itself (graph inputs, metadata), read without its weights.

The protobuf wire format (protobuf_wire.protobuf_fields), read only as far as needed: the graph inputs and
metadata of a 80 MB model are found by jumping over the weights, so checking a model costs no parse
(and no `import onnx`). Reading the whole model is onnx.load (gmm_rewrite.load_onnx)."""
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


def onnx_summary(path, what):
    """(inputs {name: dims} that are not initializers, metadata {key: value}) of an ONNX file, read
    without parsing its weights. A missing file is a UsageError; a damaged one a ModelLoadError."""
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
