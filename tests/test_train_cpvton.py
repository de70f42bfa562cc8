"""The training tool (tools/train_cpvton.py) on a few VITON training pairs: its inputs are the runtime's,
bit for bit; a paused and resumed run is the uninterrupted run; the export reads in cv.dnn as PyTorch
computes it. Skipped where PyTorch is not installed (pip install -e .[train])."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip('torch')

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

import human_parsing  # noqa: E402
import image_io  # noqa: E402
import openpose  # noqa: E402
import photo_kept  # noqa: E402
from cp_vton import (OWN_GMM_FILE, OWN_TOM_FILE, CpVton, grid_sample, resize_to_model,  # noqa: E402
                     to_unit_range, tps_grid)
from dataset_mode import read_pairs  # noqa: E402
from gmm_rewrite import GMM_INPUTS, load_gmm  # noqa: E402
from tryon_pipeline import VirtualTryOn, default_models  # noqa: E402
from tools.cpvton_training.data import Samples, Warps, batch_indices, build_cache  # noqa: E402
from tools.cpvton_training.export import (check_in_cv_dnn, gmm_difference_in_cp_vton,  # noqa: E402
                                          round_weights_to_fp16, tom_difference_in_cp_vton)
from tools.cpvton_training.networks import GMM, TOM, TpsWarp, tom_channels  # noqa: E402

SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
VITON = os.path.join(SHARED, 'viton')
TRAIN = os.path.join(VITON, 'train')
pytestmark = pytest.mark.skipif(not os.path.isdir(TRAIN), reason='VITON training pairs not in ../shared/data')


def run(work, *extra):
    command = [sys.executable, os.path.join(REPO_DIR, 'tools', 'train_cpvton.py'), '--data', VITON,
               '--work', str(work), '--limit', '12', '--val', '4', '--batch', '2', '--width', '0.125',
               '--log-every', '1', '--val-every', '2', '--threads', '1', *extra]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    work = tmp_path_factory.mktemp('train_cache')
    return build_cache(TRAIN, os.path.join(VITON, 'train_pairs.txt'), str(work), limit=6)


def test_training_agnostic_is_the_runtime_agnostic_bit_for_bit(cache):
    """A cached training sample's agnostic against the dataset-mode analysis of the same pair, read from the
    files by the runtime (VirtualTryOn.analyse with VITON's keypoints and parsing, CpVton.prepare_person)."""
    samples = Samples(cache)
    cp_vton = CpVton(*default_models())
    tryon = VirtualTryOn(cp_vton)
    pairs = read_pairs(os.path.join(cache, 'pairs.txt'))
    for i, (person, cloth) in enumerate(pairs):
        stem = os.path.splitext(person)[0]
        analysis = tryon.analyse(image_io.read_image(os.path.join(TRAIN, 'image', person)),
                                 openpose.read_keypoints_json(os.path.join(TRAIN, 'pose', stem + '_keypoints.json')),
                                 human_parsing.read_parsing(os.path.join(TRAIN, 'image-parse', stem + '.png')))
        expected = analysis.agnostic[0, :22]  # the GMM's agnostic; a photo-kept TOM's person tensor begins with it
        got = samples.agnostic(i)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), (person, np.abs(got - expected).max())
        if cp_vton.representation == photo_kept.PHOTO_KEPT:  # the TOM's whole person tensor, as the runtime builds it
            assert np.array_equal(samples.person(i), analysis.agnostic[0]), person
        batch = samples.batch([i])
        cloth_image = image_io.read_image(os.path.join(TRAIN, 'cloth', cloth))
        assert np.array_equal(batch['cloth'][0].numpy(), to_unit_range(resize_to_model(cloth_image)))
        # the GMM's target region is the parsing's upper clothes, dress and coat (CP-VTON's parse_cloth)
        assert np.array_equal(batch['garment'][0, 0].numpy() > 0, np.isin(analysis.labels, (5, 6, 7)))


def test_tps_warp_is_the_runtime_warp(cache):
    """PyTorch's grid and grid_sample in training against cp_vton.tps_grid and grid_sample."""
    samples = Samples(cache)
    data = samples.batch([0, 1])
    theta = torch.from_numpy(np.random.default_rng(3).uniform(-0.2, 0.2, (2, 50)).astype(np.float32))
    warp = TpsWarp()
    grid = warp.grid(theta)
    np.testing.assert_allclose(grid.numpy(), tps_grid(theta.numpy()), atol=2e-6)
    warped = warp.sample(data['cloth'], grid).numpy()
    np.testing.assert_allclose(warped, grid_sample(data['cloth'].numpy(), grid.numpy()), atol=2e-5)


def test_batch_order_depends_on_seed_and_step_only():
    pool = np.arange(10, 17)
    steps = [batch_indices(step, 3, pool, seed=5) for step in range(7)]
    flat = np.concatenate(steps)
    # each epoch (7 samples) is a permutation of the pool, and the epochs differ
    assert sorted(flat[:7]) == list(pool) and sorted(flat[7:14]) == list(pool)
    assert not np.array_equal(flat[:7], flat[7:14])
    assert np.array_equal(batch_indices(4, 3, pool, seed=5), steps[4])
    assert not np.array_equal(batch_indices(4, 3, pool, seed=6), steps[4])


def _rows(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != 'seconds'} for row in csv.DictReader(f)]


def test_paused_and_resumed_run_equals_the_uninterrupted_run(tmp_path):
    straight, paused = tmp_path / 'straight', tmp_path / 'paused'
    settings = ('--gmm-steps', '4', '--tom-steps', '2', '--stop-after', 'tom')
    run(straight, *settings)
    run(paused, *settings, '--pause-after', '3')     # GMM steps 1-3
    assert torch.load(paused / 'gmm.pt', weights_only=False)['step'] == 3
    run(paused, *settings, '--pause-after', '1')     # GMM step 4, warps, TOM step 1
    run(paused, *settings)                           # TOM step 2
    for name in ('gmm', 'tom'):
        a = torch.load(straight / (name + '.pt'), weights_only=False)
        b = torch.load(paused / (name + '.pt'), weights_only=False)
        assert a['step'] == b['step']
        for key, value in a['model'].items():
            assert torch.equal(value, b['model'][key]), (name, key)
        assert _rows(straight / (name + '_loss.csv')) == _rows(paused / (name + '_loss.csv'))
    assert np.array_equal(np.load(straight / 'gmm_theta.npy'), np.load(paused / 'gmm_theta.npy'))
    # a resumed run with other settings is refused
    command = [sys.executable, os.path.join(REPO_DIR, 'tools', 'train_cpvton.py'), '--data', VITON,
               '--work', str(paused), '--limit', '12', '--val', '4', '--gmm-steps', '5']
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2 and 'other settings' in result.stderr


def test_a_finished_run_trains_further_when_its_steps_are_raised(tmp_path):
    """Raising --gmm-steps/--tom-steps on a finished work folder goes on from its checkpoints (the shipped
    pair was trained so: docs/models.md): the GMM's final weights and warps are made again from the longer
    GMM, config.json keeps the lengths run before; lowering a length is refused."""
    import json
    run(tmp_path, '--gmm-steps', '2', '--tom-steps', '1', '--stop-after', 'tom')
    before = np.load(tmp_path / 'gmm_theta.npy')
    run(tmp_path, '--gmm-steps', '3', '--tom-steps', '2', '--stop-after', 'tom')
    assert torch.load(tmp_path / 'gmm.pt', weights_only=False)['step'] == 3
    assert torch.load(tmp_path / 'tom.pt', weights_only=False)['step'] == 2
    assert not np.array_equal(np.load(tmp_path / 'gmm_theta.npy'), before)
    assert os.path.isfile(tmp_path / 'gmm_theta.npy.step2')
    with open(tmp_path / 'config.json') as f:
        config = json.load(f)
    assert config['extended_from'] == [{'gmm_steps': 2, 'tom_steps': 1}] and config['gmm_steps'] == 3
    command = [sys.executable, os.path.join(REPO_DIR, 'tools', 'train_cpvton.py'), '--data', VITON,
               '--work', str(tmp_path), '--limit', '12', '--val', '4', '--batch', '2', '--width', '0.125',
               '--val-every', '2', '--gmm-steps', '3', '--tom-steps', '1']
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2 and 'other settings (tom_steps)' in result.stderr


def test_export_reads_in_cv_dnn_as_pytorch_computes_it(tmp_path):
    """The exported GMM and TOM (opset 11, fp16 storage, free batch) in this OpenCV against PyTorch, with a
    batch of two; the GMM needs no Correlation rewrite, the TOM's instance norms are decomposed (OpenCV
    4.14's own differed by 2e-4 on these one-step eighth-width models; decomposed, 5e-6 on 4.14 and 5.1).
    The shipped pair's figures on each OpenCV: docs/models.md, 'Our own GMM and TOM'."""
    import cv2 as cv
    import onnx
    from tools import onnx_float32
    printed = run(tmp_path, '--gmm-steps', '1', '--tom-steps', '1', '--out', str(tmp_path / 'out')).stdout
    # the export's own check: the files through CpVton, as users run them, against PyTorch
    figures = [float(line.rsplit(' ', 1)[1]) for line in printed.splitlines() if 'CpVton' in line]
    assert len(figures) == 2 and max(figures) < 1e-4, printed
    runtime = CpVton(str(tmp_path / 'out' / OWN_GMM_FILE), str(tmp_path / 'out' / OWN_TOM_FILE))
    samples = Samples(os.path.join(tmp_path, 'cache'))
    indices = np.array([0, 3])
    data = Warps(os.path.join(tmp_path, 'gmm_theta.npy')).add(
        samples.batch(indices, np.zeros(len(indices), bool)), indices)
    photo_kept_tom = lambda width: TOM(width, *tom_channels(photo_kept.PHOTO_KEPT))  # noqa: E731 (the default)
    for name, model_class, inputs, names in (
            ('gmm', GMM, [data['agnostic'], data['cloth']], list(GMM_INPUTS)),
            ('tom', photo_kept_tom, [torch.cat([data['person_tensor'], data['warped'], data['warped_mask']], 1)],
             ['input'])):
        model = model_class(0.125)
        # the GMM as exported: BatchNorm statistics recalibrated after training (gmm_final.pt)
        state = torch.load(tmp_path / ('gmm_final.pt' if name == 'gmm' else 'tom.pt'), weights_only=False)
        model.load_state_dict(state if name == 'gmm' else state['model'])
        model.eval()
        round_weights_to_fp16(model)
        with torch.no_grad():
            expected = model(*inputs).numpy()
        path = str(tmp_path / 'out' / (OWN_GMM_FILE if name == 'gmm' else OWN_TOM_FILE))
        difference = check_in_cv_dnn(path, inputs, names, expected)
        assert difference < 1e-4, (name, cv.__version__, difference)
        in_runtime = (gmm_difference_in_cp_vton(runtime, *inputs, expected) if name == 'gmm'
                      else tom_difference_in_cp_vton(runtime, inputs[0], expected))
        assert in_runtime < 1e-4, (name, cv.__version__, in_runtime)
        # standard ops an older importer reads too: no Identity of a weight, float16 weights only through a Cast
        graph = onnx.load(path).graph
        assert 'Identity' not in {node.op_type for node in graph.node}
        assert 'InstanceNormalization' not in {node.op_type for node in graph.node}  # decomposed for OpenCV 4.x
        # the float32 copy for OpenCV builds without FLOAT16 (tools/onnx_float32.py) computes the same
        converted = onnx.load(path)
        assert onnx_float32.to_float32(converted) > 0
        assert not [t for t in converted.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
        net = cv.dnn.readNetFromONNX(np.frombuffer(converted.SerializeToString(), np.uint8))
        for input_name, value in zip(names, inputs):
            net.setInput(value.numpy(), input_name)
        reference = cv.dnn.readNetFromONNX(path)
        for input_name, value in zip(names, inputs):
            reference.setInput(value.numpy(), input_name)
        assert np.array_equal(net.forward(), reference.forward()), name
    net, synthetic, _ = load_gmm(str(tmp_path / 'out' / OWN_GMM_FILE), cache=False)
    assert not synthetic
    assert not os.path.exists(tmp_path / 'out' / '.cache')  # read as it is, not rewritten


def test_shipped_tom_computes_in_cv_dnn_as_pytorch():
    """The shipped TOM (models/cp_vton_tom_small.onnx) against PyTorch's TOM holding the weights read back
    from the file, on two VITON test people in dataset mode (the shipped GMM's warps): within 1e-4 of
    output scales of 20-50, on every OpenCV of the matrix (OpenCV 4.x's own InstanceNormalization was 4e-3
    off: the export decomposes it)."""
    import cv2 as cv
    import onnx
    from onnx import numpy_helper
    models_dir = os.path.join(REPO_DIR, 'models')
    tom_path = os.path.join(models_dir, OWN_TOM_FILE)
    graph = onnx.load(tom_path).graph
    assert 'InstanceNormalization' not in {node.op_type for node in graph.node}
    weights = {t.name[:-len('.fp16')] if t.name.endswith('.fp16') else t.name:
               torch.from_numpy(numpy_helper.to_array(t).astype(np.float32)) for t in graph.initializer}
    cp_vton = CpVton(os.path.join(models_dir, OWN_GMM_FILE), tom_path)
    model = TOM(0.5, *tom_channels(cp_vton.representation))
    model.load_state_dict({key: weights[key] for key in model.state_dict()})
    model.eval()
    test_dir = os.path.join(VITON, 'test')
    with open(os.path.join(VITON, 'test_pairs_paired.txt')) as f:
        pairs = [line.split() for line in f][:2]
    inputs = []
    for person_name, cloth_name in pairs:
        stem = os.path.splitext(person_name)[0]
        person = cv.imread(os.path.join(test_dir, 'image', person_name))
        labels = human_parsing.read_parsing(os.path.join(test_dir, 'image-parse', stem + '.png'))
        keypoints = openpose.read_keypoints_json(os.path.join(test_dir, 'pose', stem + '_keypoints.json'))
        agnostic = cp_vton.prepare_person(labels, person, keypoints)
        inputs.append(cp_vton.tom_input_of(agnostic, cv.imread(os.path.join(test_dir, 'cloth', cloth_name)))[2])
    batch = torch.from_numpy(np.concatenate(inputs))
    with torch.no_grad():
        expected = model(batch).numpy()
    difference = check_in_cv_dnn(tom_path, [batch], ['input'], expected)
    assert difference <= 1e-4, (difference, cv.__version__)
    in_runtime = tom_difference_in_cp_vton(cp_vton, batch, expected)  # as users run it: CpVton's TOM, tanh, sigmoid
    assert in_runtime <= 1e-4, (in_runtime, cv.__version__)
