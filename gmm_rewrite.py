"""The published GMM's custom `Correlation` node rewritten into standard ONNX operators, and the cache
of the rewrite beside the model, so that only the first load of a GMM pays for it."""
import os

import cv2 as cv
import numpy as np
import onnx
from onnx import helper, numpy_helper

import dnn_engines
import image_io
import registry
from errors import ModelLoadError, UsageError
from onnx_facts import is_synthetic, onnx_summary

GMM_INPUTS = ('input.1', 'input.18')  # agnostic (1, 22, 256, 192), cloth (1, 3, 256, 192)
# ONNX metadata of a GMM whose correlation is already standard operators (no rewrite, no cache)
STANDARD_OPS_KEY = 'standard_ops'


def _without_weights(model):
    """A copy of the graph in which the large initializers keep their name, type and shape but not their
    data: all that shape inference needs (small ones, such as Reshape targets, are kept whole), without
    copying tens of MB of weights into and out of it."""
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
            raise ModelLoadError('cannot rewrite Correlation node %r: the spatial size of its input is unknown'
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


def load_onnx(path, what):
    """onnx.load with clear errors: a missing file is a UsageError, a truncated one or not ONNX a ModelLoadError."""
    if not os.path.isfile(path):
        raise UsageError('%s model file not found: %s' % (what, path))
    try:
        model = onnx.load(path)
    except Exception as err:  # protobuf DecodeError and friends: the file is damaged
        raise ModelLoadError('%s model %s is not a valid ONNX file (truncated or damaged?): %s'
                             % (what, path, str(err).splitlines()[0] if str(err) else type(err).__name__))
    if not model.graph.node:
        raise ModelLoadError('%s model %s holds no graph (truncated or damaged?)' % (what, path))
    return model


GMM_CACHE_FORMAT = 1  # part of every cache name: raise it when replace_correlation writes other graphs
CACHE_ENV = 'OPENCV_TRYON_CACHE'


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
            cached = image_io.write_bytes(os.path.join(directory, name), data)
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


def check_gmm(path):
    """The GMM file's metadata, once its inputs are known to be the GMM's (another network: a ModelLoadError)."""
    inputs, metadata = onnx_summary(path, 'GMM')
    if sorted(inputs) != sorted(GMM_INPUTS):
        raise ModelLoadError('GMM model %s has inputs %s; expected %s (agnostic, cloth)'
                             % (path, ', '.join(sorted(inputs)), ', '.join(GMM_INPUTS)))
    return metadata


def remove_final_tanh(model):
    """Drop the graph's final Tanh (the regression's activation), in place: the graph then outputs the
    pre-activation under the same name. Returns whether there was one. OpenCV 5.1 fuses the GMM's last
    Gemm and Tanh, and the fused result depends on the thread count (theta 2e-8 apart with 1 and 2 threads,
    a few pixels of a result); NumPy's tanh of the Gemm's output does not."""
    graph = model.graph
    final = graph.output[0].name
    producer = next((node for node in graph.node if final in node.output), None)
    if producer is None or producer.op_type != 'Tanh':
        return False
    source = producer.input[0]
    graph.node.remove(producer)
    for node in graph.node:  # the pre-activation takes the output's name
        node.output[:] = [final if name == source else name for name in node.output]
        node.input[:] = [final if name == source else name for name in node.input]
    return True


def load_gmm(path, engine=None, cache=True, tanh_in_numpy=False):
    """Read the GMM ONNX with its Correlation node rewritten to standard ops; return (cv.dnn.Net,
    is_synthetic, tanh_pending). With tanh_in_numpy, a GMM of standard operators is read without its final
    Tanh (remove_final_tanh) and tanh_pending is True: the caller applies np.tanh to the net's output,
    which then does not depend on OpenCV's thread count.

    The rewrite (onnx parse, shape inference, serialisation: seconds) is cached as an ONNX file
    named by the source's size and sha256 (see gmm_cache_dirs), written atomically, so a changed
    source can never meet an old rewrite; a cache that OpenCV cannot read is rewritten. The sha256 is
    registry.stamped_sha256's, the stamp verify_published keeps: an unchanged file is not hashed again."""
    metadata = check_gmm(path)
    if metadata.get(STANDARD_OPS_KEY, '').lower() == 'true':  # nothing to rewrite (tools/train_cpvton.py)
        if tanh_in_numpy:
            model = load_onnx(path, 'GMM')
            if remove_final_tanh(model):
                return (read_onnx_buffer(model.SerializeToString(), engine, 'GMM model %s' % path),
                        is_synthetic(metadata), True)
        return read_onnx_file(path, engine, 'GMM'), is_synthetic(metadata), False
    if cache:
        prefix, name = _gmm_cache_name(path, os.path.getsize(path), registry.stamped_sha256(path))
        for directory in gmm_cache_dirs(path):
            cached = os.path.join(directory, name)
            if os.path.isfile(cached):
                try:
                    return read_onnx_file(cached, engine, 'GMM'), is_synthetic(metadata), False
                except ModelLoadError:
                    pass  # damaged: rewritten below
    model = load_onnx(path, 'GMM')
    replace_correlation(model)
    data = model.SerializeToString()
    cached = _store_gmm_cache(path, prefix, name, data) if cache else None
    net = (read_onnx_file(cached, engine, 'GMM') if cached
           else read_onnx_buffer(data, engine, 'GMM model %s' % path))
    return net, is_synthetic(metadata), False


def read_onnx_file(path, engine=None, what='ONNX'):
    """cv.dnn's net of an ONNX file; a file OpenCV cannot read is a ModelLoadError 'cannot load the <what> model'."""
    return dnn_engines.load_net(cv.dnn.readNetFromONNX, path, engine, 'cannot load the %s model %s' % (what, path))


def read_onnx_buffer(buffer, engine=None, what='ONNX model in memory'):
    """read_onnx_file of a model in memory (serialised bytes); `what` names it in the error."""
    return dnn_engines.load_net(cv.dnn.readNetFromONNX, np.frombuffer(buffer, np.uint8), engine,
                                'cannot load the %s' % what)

