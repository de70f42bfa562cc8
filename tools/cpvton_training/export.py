"""The trained GMM and TOM as ONNX files for cv.dnn: opset 11, standard operators, free batch, instance norms
decomposed, weights stored as fp16 (cast to float32 on load); checked against PyTorch."""
import io
import json
import os

import cv2 as cv
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

import cp_vton
import gmm_rewrite
import image_io
import photo_kept
from tools.cpvton_training.data import Warps, tom_person_flags
from tools.cpvton_training.settings import result_settings

# the checkout: the exported files name the training data relative to it, not a folder of this machine
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def round_weights_to_fp16(model):
    """Round every floating parameter and buffer to fp16 precision (what the exported file stores)."""
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.dtype == torch.float32:
                tensor.copy_(tensor.half().float())


def _inline_identities(onnx_model):
    """The exporter shares equal weights through Identity nodes (BatchNorm scales of 1, say); older
    OpenCV importers (4.6) fail on an Identity of a constant: give each its own copy of the weight."""
    graph = onnx_model.graph
    initializers = {t.name: t for t in graph.initializer}
    for node in [n for n in graph.node if n.op_type == 'Identity' and n.input[0] in initializers]:
        graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(initializers[node.input[0]]),
                                                         node.output[0]))
        graph.node.remove(node)


def _decompose_instance_norm(onnx_model):
    """Each InstanceNormalization as (x - mean) / sqrt(var + eps), the means over width then over height.
    OpenCV 4.x's own instance norm is 2e-3 off PyTorch on the trained TOM (one pass over the whole plane in
    float32); this form is within 5e-5 of it on OpenCV 4.14, 5.0 and 5.1. Scale and bias are applied only
    where they are not 1 and 0 (the exporter writes them as constants)."""
    graph = onnx_model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == 'Constant' and n.attribute and n.attribute[0].name == 'value'})
    nodes = []
    for node in graph.node:
        if node.op_type != 'InstanceNormalization':
            nodes.append(node)
            continue
        x, scale, bias = node.input
        epsilon = next((a.f for a in node.attribute if a.name == 'epsilon'), 1e-5)
        name = node.name or node.output[0]
        part = lambda suffix: '%s/%s' % (name, suffix)  # noqa: E731
        graph.initializer.append(numpy_helper.from_array(np.array(epsilon, np.float32), part('epsilon')))
        nodes += [helper.make_node('ReduceMean', [x], [part('row_mean')], axes=[3], keepdims=1, name=part('row_mean')),
                  helper.make_node('ReduceMean', [part('row_mean')], [part('mean')], axes=[2], keepdims=1,
                                   name=part('mean')),
                  helper.make_node('Sub', [x, part('mean')], [part('centred')], name=part('centred')),
                  helper.make_node('Mul', [part('centred'), part('centred')], [part('squared')], name=part('squared')),
                  helper.make_node('ReduceMean', [part('squared')], [part('row_var')], axes=[3], keepdims=1,
                                   name=part('row_var')),
                  helper.make_node('ReduceMean', [part('row_var')], [part('var')], axes=[2], keepdims=1,
                                   name=part('var')),
                  helper.make_node('Add', [part('var'), part('epsilon')], [part('var_eps')], name=part('var_eps')),
                  helper.make_node('Sqrt', [part('var_eps')], [part('std')], name=part('std'))]
        trivial = (scale in constants and bias in constants and np.all(constants[scale] == 1)
                   and np.all(constants[bias] == 0))
        normalised = node.output[0] if trivial else part('normalised')
        nodes.append(helper.make_node('Div', [part('centred'), part('std')], [normalised], name=part('normalised')))
        if not trivial:
            for what, value in (('scale', scale), ('bias', bias)):
                graph.initializer.append(numpy_helper.from_array(
                    constants[value].astype(np.float32).reshape(1, -1, 1, 1), part(what)))
            nodes += [helper.make_node('Mul', [normalised, part('scale')], [part('scaled')], name=part('scaled')),
                      helper.make_node('Add', [part('scaled'), part('bias')], [node.output[0]], name=part('bias'))]
    used = {name for node in nodes for name in node.input}
    nodes = [n for n in nodes if n.op_type != 'Constant' or n.output[0] in used]
    del graph.node[:]
    graph.node.extend(nodes)


def _store_fp16(onnx_model):
    """Large float32 initializers stored as float16, each followed by a Cast to float32: half the bytes,
    standard ONNX, read by cv.dnn on OpenCV 4.x and 5.x."""
    graph = onnx_model.graph
    initializers, casts = [], []
    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.float32 and array.size > 64:
            half = numpy_helper.from_array(array.astype(np.float16), tensor.name + '.fp16')
            initializers.append(half)
            casts.append(helper.make_node('Cast', [half.name], [tensor.name], to=TensorProto.FLOAT,
                                          name=tensor.name + '.cast'))
        else:
            initializers.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def export_onnx(model, inputs, input_names, path, metadata):
    """Export an eval-mode model with fp16-rounded weights to ONNX at `path` (atomically): opset 11,
    free batch dimension, fp16 storage. Returns the PyTorch output on `inputs` (the reference)."""
    model.eval()
    round_weights_to_fp16(model)
    with torch.no_grad():
        reference = model(*inputs).numpy()
    buffer = io.BytesIO()
    axes = {name: {0: 'batch'} for name in input_names + ['output']}
    torch.onnx.export(model, tuple(inputs), buffer, input_names=input_names, output_names=['output'],
                      opset_version=11, dynamo=False, dynamic_axes=axes, do_constant_folding=True)
    onnx_model = onnx.load_from_string(buffer.getvalue())
    _inline_identities(onnx_model)
    _decompose_instance_norm(onnx_model)
    _store_fp16(onnx_model)
    onnx_model.producer_name = 'opencv-tryon tools/train_cpvton.py'
    helper.set_model_props(onnx_model, metadata)
    onnx.checker.check_model(onnx_model)
    image_io.write_bytes(path, onnx_model.SerializeToString())
    return reference


def check_in_cv_dnn(path, inputs, input_names, reference):
    """Largest difference between a bare cv.dnn read of the ONNX file and PyTorch's reference (the export
    itself is checked as users run it: export_models)."""
    net = cv.dnn.readNetFromONNX(path)
    for name, value in zip(input_names, inputs):
        net.setInput(value.numpy(), name)
    return float(np.abs(net.forward() - reference).max())


def gmm_difference_in_cp_vton(runtime, agnostic, cloth, reference):
    """Largest difference between theta as the runtime's CpVton computes it (the GMM read without its final
    Tanh, applied in NumPy: gmm_rewrite.load_gmm), a pair at a time as predict_theta runs, and PyTorch's
    reference (N, 50)."""
    theta = np.concatenate([runtime.predict_theta(cloth[i:i + 1].numpy(), agnostic[i:i + 1].numpy())
                            for i in range(len(agnostic))])
    return float(np.abs(theta - reference).max())


def tom_difference_in_cp_vton(runtime, inputs, reference):
    """Largest difference between the TOM as the runtime's CpVton runs it and PyTorch's reference: the raw
    output (CpVton.tom_forward; the scale the 1e-4 bound was set on), and what compose takes of it, the
    rendered person (cp_vton.tanh) and the masks (cp_vton.sigmoid) against torch's tanh and sigmoid."""
    output = runtime.tom_forward(inputs.numpy(), batch=len(inputs))
    expected = torch.from_numpy(reference)
    activated = ((cp_vton.tanh(output[:, :3]), torch.tanh(expected[:, :3]).numpy()),
                 (cp_vton.sigmoid(output[:, 3:]), torch.sigmoid(expected[:, 3:]).numpy()))
    return float(max(np.abs(output - reference).max(), *(np.abs(got - want).max() for got, want in activated)))


def export_models(config, gmm, tom, samples, out_dir, work):
    """Write the trained GMM and TOM into out_dir under the shipped names (cp_vton_gmm_small.onnx,
    cp_vton_tom_small.onnx, never the published pair's); check them through cp_vton.CpVton, the path users
    run, against PyTorch on the same inputs. Returns {name: (path, largest difference)}."""
    indices = np.arange(min(2, samples.count))
    data = Warps(os.path.join(work, 'gmm_theta.npy')).add(
        samples.batch(indices, tom_person_flags('tom', config, None, len(indices))), indices)
    settings = result_settings(config)
    # the data folder relative to the checkout: a file that ships names no folder of the machine it was made on
    settings['data'] = os.path.relpath(settings['data'], CHECKOUT)
    described = {'description': 'CP-VTON %s trained by tools/train_cpvton.py on VITON train pairs',
                 'training': json.dumps(settings, sort_keys=True), gmm_rewrite.STANDARD_OPS_KEY: 'true'}
    if config['representation'] == photo_kept.PHOTO_KEPT:
        tom_input = torch.cat([data['person_tensor'], data['warped'], data['warped_mask']], 1)
    else:
        tom_input = torch.cat([data['agnostic'], data['warped']], 1)
    paths, references = {}, {}
    for name, model, inputs, names in (
            ('gmm', gmm, [data['agnostic'], data['cloth']], list(gmm_rewrite.GMM_INPUTS)),
            ('tom', tom, [tom_input], ['input'])):
        path = os.path.join(out_dir, cp_vton.OWN_GMM_FILE if name == 'gmm' else cp_vton.OWN_TOM_FILE)
        metadata = dict(described, description=described['description'] % name.upper())
        if name == 'tom':
            metadata[photo_kept.REPRESENTATION_KEY] = config['representation']
        paths[name], references[name] = path, export_onnx(model, inputs, names, path, metadata)
    runtime = cp_vton.CpVton(paths['gmm'], paths['tom'])
    return {'gmm': (paths['gmm'], gmm_difference_in_cp_vton(runtime, data['agnostic'], data['cloth'],
                                                            references['gmm'])),
            'tom': (paths['tom'], tom_difference_in_cp_vton(runtime, tom_input, references['tom']))}

