"""CpVton loading: the ONNX wire-format reader against onnx's own parser, and the cache of the rewritten
GMM (named by the source's size and sha256, atomic, never stale, usable with a read-only models dir)."""
import hashlib
import os
import shutil
import stat

import numpy as np
import onnx
import pytest

import errors
import gmm_rewrite
from cp_vton import CpVton, pose_map
from gmm_rewrite import CACHE_ENV, GMM_CACHE_FORMAT, load_gmm
from onnx_facts import onnx_summary

RNG = np.random.default_rng(0)
AGNOSTIC = RNG.uniform(-1, 1, (1, 22, 256, 192)).astype(np.float32)
CLOTH = RNG.uniform(-1, 1, (1, 3, 256, 192)).astype(np.float32)


def theta_of(net):
    net.setInput(AGNOSTIC, 'input.1')
    net.setInput(CLOTH, 'input.18')
    return net.forward().copy()


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def gmm_copy(synthetic_dir, tmp_path, monkeypatch):
    """The synthetic GMM alone in a fresh directory; no cache outside tmp_path."""
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'user_cache'))
    directory = tmp_path / 'models'
    directory.mkdir()
    path = directory / 'cp_vton_gmm.onnx'
    shutil.copyfile(os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'), path)
    return str(path)


@pytest.fixture(scope='module')
def reference_theta(synthetic_dir):
    net, _, _ = load_gmm(os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'), cache=False)
    return theta_of(net)


@pytest.mark.parametrize('name', ['cp_vton_gmm.onnx', 'cp_vton_tom.onnx'])
def test_summary_equals_onnx_parse(synthetic_dir, name):
    path = os.path.join(synthetic_dir, name)
    model = onnx.load(path)
    initializers = {t.name for t in model.graph.initializer}
    expected_inputs = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                       for v in model.graph.input if v.name not in initializers}
    inputs, metadata = onnx_summary(path, 'X')
    assert inputs == expected_inputs and len(inputs) >= 1
    assert metadata == {p.key: p.value for p in model.metadata_props}
    assert metadata.get('synthetic') == 'true'


def test_summary_of_damaged_files(synthetic_dir, tmp_path):
    with open(os.path.join(synthetic_dir, 'cp_vton_tom.onnx'), 'rb') as f:
        head = f.read(1 << 20)
    for name, data in (('truncated.onnx', head), ('empty.onnx', b''), ('text.onnx', b'hello world\n' * 100)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(errors.RuntimeFailure, match='not a valid ONNX file|holds no graph'):
            onnx_summary(str(tmp_path / name), 'TOM')
    with pytest.raises(errors.UsageError, match='not found'):
        onnx_summary(str(tmp_path / 'missing.onnx'), 'TOM')


def test_cache_is_written_once_and_read_after(gmm_copy, reference_theta, monkeypatch):
    net, synthetic, _ = load_gmm(gmm_copy)
    assert synthetic
    cache_dir = os.path.join(os.path.dirname(gmm_copy), '.cache')
    name = 'cp_vton_gmm.std%d.%d.%s.onnx' % (GMM_CACHE_FORMAT, os.path.getsize(gmm_copy), sha256(gmm_copy))
    assert os.listdir(cache_dir) == [name]  # nothing else: no temporary file left behind
    cached = onnx.load(os.path.join(cache_dir, name))
    assert 'Correlation' not in {n.op_type for n in cached.graph.node}
    assert np.abs(theta_of(net) - reference_theta).max() <= 1e-5

    def no_parse(*args):
        raise AssertionError('the cached rewrite should have been used')
    monkeypatch.setattr(gmm_rewrite, 'load_onnx', no_parse)
    warm, synthetic, _ = load_gmm(gmm_copy)
    assert synthetic and np.abs(theta_of(warm) - reference_theta).max() <= 1e-5


def test_changed_source_never_meets_an_old_rewrite(gmm_copy, reference_theta):
    load_gmm(gmm_copy)
    cache_dir = os.path.join(os.path.dirname(gmm_copy), '.cache')
    old_entry = os.listdir(cache_dir)
    # the same size, one weight changed: another model
    model = onnx.load(gmm_copy)
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    weights = np.frombuffer(tensor.raw_data, np.float32).copy()
    weights[: weights.size // 2] *= 3
    tensor.raw_data = weights.tobytes()
    onnx.save(model, gmm_copy)
    os.utime(gmm_copy, ns=(0, 0))  # nor does an old timestamp fool it
    changed, _, _ = load_gmm(gmm_copy)
    entry = os.listdir(cache_dir)
    assert entry != old_entry and len(entry) == 1 and sha256(gmm_copy) in entry[0]  # the old rewrite is gone
    expected, _, _ = load_gmm(gmm_copy, cache=False)
    theta = theta_of(changed)
    assert np.abs(theta - theta_of(expected)).max() <= 1e-5
    assert np.abs(theta - reference_theta).max() > 1e-4


def test_damaged_cache_is_rewritten(gmm_copy, reference_theta):
    load_gmm(gmm_copy)
    cache_dir = os.path.join(os.path.dirname(gmm_copy), '.cache')
    cached = os.path.join(cache_dir, os.listdir(cache_dir)[0])
    with open(cached, 'r+b') as f:
        f.truncate(1000)
    net, _, _ = load_gmm(gmm_copy)
    assert np.abs(theta_of(net) - reference_theta).max() <= 1e-5
    assert os.path.getsize(cached) > 1000


def test_read_only_models_directory(gmm_copy, reference_theta, tmp_path, monkeypatch):
    models = os.path.dirname(gmm_copy)
    # '.cache' taken by a file: not writable even for root (who ignores permission bits)
    with open(os.path.join(models, '.cache'), 'w') as f:
        f.write('not a directory')
    os.chmod(models, stat.S_IRUSR | stat.S_IXUSR)
    try:
        net, _, _ = load_gmm(gmm_copy)
        assert np.abs(theta_of(net) - reference_theta).max() <= 1e-5
        assert len(os.listdir(tmp_path / 'user_cache' / 'opencv_tryon')) == 1  # cached for the user instead
        net, _, _ = load_gmm(gmm_copy)
        assert np.abs(theta_of(net) - reference_theta).max() <= 1e-5
        # nowhere to write at all: still loads, from memory
        monkeypatch.setenv(CACHE_ENV, os.path.join(models, '.cache', 'sub'))
        net, _, _ = load_gmm(gmm_copy)
        assert np.abs(theta_of(net) - reference_theta).max() <= 1e-5
    finally:
        os.chmod(models, stat.S_IRWXU)


def test_cpvton_loads_from_the_cache(synthetic_dir, gmm_copy):
    tom = os.path.join(os.path.dirname(gmm_copy), 'cp_vton_tom.onnx')
    os.symlink(os.path.join(synthetic_dir, 'cp_vton_tom.onnx'), tom)
    first = CpVton(gmm_copy, tom)
    second = CpVton(gmm_copy, tom)
    assert first.synthetic and second.synthetic and second.tom_input == first.tom_input
    person_labels = np.zeros((256, 192), np.uint8)
    person_labels[40:220, 50:140] = 5
    person = np.full((256, 192, 3), 200, np.uint8)
    pose = pose_map(np.column_stack([np.linspace(60, 130, 18), np.linspace(30, 245, 18), np.ones(18)]))
    cloth = np.full((256, 192, 3), 90, np.uint8)
    np.testing.assert_array_equal(first.infer(person_labels, person, pose, cloth),
                                  second.infer(person_labels, person, pose, cloth))
