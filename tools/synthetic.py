"""Architecture-faithful SYNTHETIC stand-ins for the published models, with seeded random weights.

The published weights cannot be downloaded everywhere (CI, air-gapped machines), so the whole chain is
proven on models that have the published architectures, input/output names and shapes, but random
weights. Every file built here is marked synthetic (ONNX metadata ``synthetic = true``, or the marker of
its format) and every loader prints a warning for it: their output is NOT a try-on.

    python3 tools/synthetic.py [DIR]        # same as: python3 models/download_models.py --synthetic

GMM and TOM follow CP-VTON's ``networks.py`` (GMM: two FeatureExtraction towers, FeatureL2Norm,
FeatureCorrelation as the custom ``Correlation`` node the published file holds, FeatureRegression;
TOM: UnetGenerator(25, 4, 6, ngf=64, InstanceNorm2d) with bilinear upsampling). build_photo_kept_tom builds
the TOM of our own person representation (photo_kept.py: 30 -> 5 channels, named in its metadata) for the
tests of the code that reads that representation; build_all leaves it out.
"""
import argparse
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

if not __package__:  # run as a script (python3 tools/synthetic.py): make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import image_io  # noqa: E402
import registry  # noqa: E402
from synthetic_models import SYNTHETIC_KEY  # noqa: E402

MODELS_DIR = os.path.join(registry.REPO_DIR, 'models')

GMM_FILE, TOM_FILE = 'cp_vton_gmm.onnx', 'cp_vton_tom.onnx'
HEIGHT, WIDTH = registry.model_input(GMM_FILE, 'height'), registry.model_input(GMM_FILE, 'width')
PARSING_FILE = 'lip_jppnet_384.pb'
SYNTHETIC_DOC = 'SYNTHETIC: seeded random weights, not a trained model; its output is not a try-on'


class _GraphBuilder:
    """Collects nodes and initializers; each op method returns the name of its output."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.count = 0

    def _name(self, prefix):
        self.count += 1
        return '%s_%d' % (prefix, self.count)

    def const(self, array, prefix='w'):
        name = self._name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, kernel, stride=1, pad=0, bias=True, gain=2.0):
        # He-style scale keeps activations in range through the deep towers
        std = np.sqrt(gain / (cin * kernel * kernel))
        w = (self.rng.standard_normal((cout, cin, kernel, kernel)) * std).astype(np.float32)
        inputs = [x, self.const(w)]
        if bias:
            inputs.append(self.const((self.rng.standard_normal(cout) * 0.01).astype(np.float32), 'b'))
        return self.op('Conv', inputs, kernel_shape=[kernel, kernel], strides=[stride, stride],
                       pads=[pad] * 4)

    def batch_norm(self, x, channels):
        scale = (1.0 + 0.1 * self.rng.standard_normal(channels)).astype(np.float32)
        bias = (0.1 * self.rng.standard_normal(channels)).astype(np.float32)
        mean = (0.1 * self.rng.standard_normal(channels)).astype(np.float32)
        var = (1.0 + 0.2 * self.rng.random(channels)).astype(np.float32)
        return self.op('BatchNormalization', [x] + [self.const(a, 'bn') for a in (scale, bias, mean, var)],
                       epsilon=1e-5)

    def instance_norm(self, x, channels):
        # InstanceNorm2d(affine=False): unit scale, zero bias
        return self.op('InstanceNormalization', [x, self.const(np.ones(channels, np.float32), 'in'),
                                                 self.const(np.zeros(channels, np.float32), 'in')],
                       epsilon=1e-5)

    def upsample2x(self, x):
        # nn.Upsample(scale_factor=2, mode='bilinear') on PyTorch >= 0.4: align_corners=False
        return self.op('Resize', [x, '', self.const(np.array([1, 1, 2, 2], np.float32), 'scales')],
                       mode='linear', coordinate_transformation_mode='half_pixel')

    def model(self, inputs, outputs, graph_name, metadata=None):
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)],
                                  producer_name='opencv-tryon tools/synthetic.py', doc_string=SYNTHETIC_DOC)
        model.ir_version = 6
        helper.set_model_props(model, dict({SYNTHETIC_KEY: 'true', 'description': SYNTHETIC_DOC}, **(metadata or {})))
        return model


def _feature_extraction(g, x, cin):
    """CP-VTON FeatureExtraction(ngf=64, n_layers=3, BatchNorm2d): conv -> ReLU -> BN blocks."""
    for cout in (64, 128, 256, 512):
        x = g.batch_norm(g.op('Relu', [g.conv(x, cin, cout, 4, stride=2, pad=1)]), cout)
        cin = cout
    x = g.batch_norm(g.op('Relu', [g.conv(x, 512, 512, 3, pad=1)]), 512)
    return g.op('Relu', [g.conv(x, 512, 512, 3, pad=1)])


def _l2_norm(g, x):
    """FeatureL2Norm: x / sqrt(sum_c x^2 + 1e-6)."""
    sum_sq = g.op('ReduceSum', [g.op('Mul', [x, x])], axes=[1], keepdims=1)
    norm = g.op('Sqrt', [g.op('Add', [sum_sq, g.const(np.array(1e-6, np.float32), 'eps')])])
    return g.op('Div', [x, norm])


def build_gmm(path, seed=1):
    """Synthetic GMM with the published interface: input.1 (1,22,256,192), input.18 (1,3,256,192) -> (1,50)."""
    g = _GraphBuilder(seed)
    feature_a = _l2_norm(g, _feature_extraction(g, 'input.1', 22))
    feature_b = _l2_norm(g, _feature_extraction(g, 'input.18', 3))
    # the published graph holds this custom op; CpVton rewrites it into standard ops on load
    x = g.op('Correlation', [feature_a, feature_b])
    cin = (HEIGHT // 16) * (WIDTH // 16)
    for cout, kernel, stride, pad in ((512, 4, 2, 1), (256, 4, 2, 1), (128, 3, 1, 1), (64, 3, 1, 1)):
        x = g.op('Relu', [g.batch_norm(g.conv(x, cin, cout, kernel, stride, pad), cout)])
        cin = cout
    x = g.op('Flatten', [x], axis=1)
    features = 64 * (HEIGHT // 64) * (WIDTH // 64)
    # small weights keep theta near 0 so the synthetic warp stays a gentle deformation of the cloth
    w = (g.rng.standard_normal((features, 50)) * 0.05 / np.sqrt(features)).astype(np.float32)
    b = (g.rng.standard_normal(50) * 0.02).astype(np.float32)
    x = g.op('Add', [g.op('MatMul', [x, g.const(w)]), g.const(b, 'b')])
    g.op('Tanh', [x])
    g.nodes[-1].output[0] = 'theta'
    model = g.model([helper.make_tensor_value_info('input.1', TensorProto.FLOAT, [1, 22, HEIGHT, WIDTH]),
                     helper.make_tensor_value_info('input.18', TensorProto.FLOAT, [1, 3, HEIGHT, WIDTH])],
                    [helper.make_tensor_value_info('theta', TensorProto.FLOAT, [1, 50])], 'cp_vton_gmm_synthetic')
    _save(model, path)
    return path


# (outer_nc, inner_nc) of the nested U-Net blocks, outermost first: ngf = 64, 6 downsamplings
_UNET_LEVELS = [(4, 64), (64, 128), (128, 256), (256, 512), (512, 512), (512, 512)]


def _unet_block(g, x, levels, input_nc, outermost=False):
    """UnetSkipConnectionBlock(outer_nc, inner_nc) = levels[0], wrapping the blocks of levels[1:]."""
    outer_nc, inner_nc = levels[0]
    innermost = len(levels) == 1
    down = x if outermost else g.op('LeakyRelu', [x], alpha=0.2)
    down = g.conv(down, input_nc, inner_nc, 4, stride=2, pad=1)
    if not (outermost or innermost):
        down = g.instance_norm(down, inner_nc)
    if innermost:
        inner, inner_channels = down, inner_nc
    else:
        # every inner block returns cat([x, model(x)])
        inner, inner_channels = _unet_block(g, down, levels[1:], inner_nc), 2 * inner_nc
    up = g.conv(g.upsample2x(g.op('Relu', [inner])), inner_channels, outer_nc, 3, pad=1)
    if outermost:
        return up
    return g.op('Concat', [x, g.instance_norm(up, outer_nc)], axis=1)


def build_tom(path, seed=2):
    """Synthetic TOM with the published interface: (1,25,256,192) -> (1,4,256,192) (rendered, mask logits)."""
    g = _GraphBuilder(seed)
    _unet_block(g, 'input.1', _UNET_LEVELS, 25, outermost=True)
    g.nodes[-1].output[0] = 'output'
    model = g.model([helper.make_tensor_value_info('input.1', TensorProto.FLOAT, [1, 25, HEIGHT, WIDTH])],
                    [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 4, HEIGHT, WIDTH])],
                    'cp_vton_tom_synthetic')
    _save(model, path)
    return path


def build_photo_kept_tom(path, seed=3):
    """Synthetic TOM of the photo-kept representation (photo_kept.py): (1,30,256,192) -> (1,5,256,192), its
    metadata saying photo-kept. Rendered person and composition mask come from a random U-Net as in build_tom;
    the coverage logits are the warped cloth's mask (input channel 29) as 8 m - 4, what a trained TOM learns
    roughly, so that the result shows the paint mask at work and the logits stay away from 0, where OpenCV
    builds that round differently could flip a pixel between the photo and the try-on."""
    import photo_kept
    g = _GraphBuilder(seed)
    levels = [(4, 64)] + _UNET_LEVELS[1:]
    rendered = _unet_block(g, 'input.1', levels, photo_kept.TOM_CHANNELS, outermost=True)
    pick = np.zeros((1, photo_kept.TOM_CHANNELS, 1, 1), np.float32)
    pick[0, photo_kept.TOM_CHANNELS - 1] = 8
    coverage = g.op('Conv', ['input.1', g.const(pick), g.const(np.array([-4], np.float32), 'b')], kernel_shape=[1, 1])
    g.op('Concat', [rendered, coverage], axis=1)
    g.nodes[-1].output[0] = 'output'
    model = g.model([helper.make_tensor_value_info('input.1', TensorProto.FLOAT,
                                                   [1, photo_kept.TOM_CHANNELS, HEIGHT, WIDTH])],
                    [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 5, HEIGHT, WIDTH])],
                    'cp_vton_tom_photo_kept_synthetic',
                    {photo_kept.REPRESENTATION_KEY: photo_kept.PHOTO_KEPT})
    _save(model, path)
    return path


def _save(model, path):
    image_io.write_bytes(path, model.SerializeToString())


def _shared_prototxt():
    """OpenPose's prototxt: from the models directory, else the shared test data beside the checkout."""
    for candidate in (os.path.join(MODELS_DIR, 'openpose_pose_coco.prototxt'),
                      os.path.join(os.path.dirname(os.path.dirname(MODELS_DIR)), 'shared', 'data', 'models',
                                   'openpose_pose_coco.prototxt')):
        if os.path.isfile(candidate):
            return candidate
    return None


def build_all(directory, openpose=True, verbose=False):
    """Build every synthetic model into `directory`, skipping files already there (the builders are
    seeded, so an existing file is the same model). Returns the list of paths."""
    os.makedirs(directory, exist_ok=True)
    built = []
    for name, builder in ((GMM_FILE, build_gmm), (TOM_FILE, build_tom)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            if verbose:
                print('building synthetic %s' % path, file=sys.stderr)
            builder(path)
        built.append(path)
    path = os.path.join(directory, PARSING_FILE)
    if not os.path.isfile(path):
        from tools.synthetic_parsing import build_synthetic_parsing
        build_synthetic_parsing(path)
    built.append(path)
    if openpose:
        prototxt = _shared_prototxt()
        if prototxt is None:
            if verbose:
                print('note: openpose_pose_coco.prototxt not found; synthetic OpenPose skipped '
                      '(get it with: python3 models/download_models.py openpose_pose_coco.prototxt)',
                      file=sys.stderr)
        else:
            from tools.synthetic_openpose import build_synthetic_openpose
            built += sorted(build_synthetic_openpose(directory, prototxt).values())
    return built


def main(argv=None):
    parser = argparse.ArgumentParser(description='Build the SYNTHETIC stand-in models (seeded random weights, '
                                                 'not trained ones) into a directory, skipping files already there.')
    parser.add_argument('directory', nargs='?', default=os.path.join(MODELS_DIR, 'synthetic'))
    parser.add_argument('--no-openpose', action='store_true', help='leave out the synthetic OpenPose')
    parser.add_argument('--quiet', action='store_true', help='print the paths only')
    args = parser.parse_args(argv)
    try:
        built = build_all(args.directory, openpose=not args.no_openpose, verbose=not args.quiet)
    except OSError as err:
        print(err, file=sys.stderr)  # the try-on's --synthetic shows this line
        return 1
    for path in built:
        print(path)
    if not args.quiet:
        print('these are SYNTHETIC models with random weights, not trained ones', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
