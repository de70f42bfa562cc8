"""virtual_try_on.py on bad input: one `error:` line, the documented exit status, no traceback, no output file.
And the odd-but-valid inputs (16-bit, greyscale, RGBA, a 40 MP photo) that must work."""
import json
import os
import subprocess
import sys

import cv2 as cv
import numpy as np
import pytest

from conftest import REPO_DIR, VITON_CLOTHES, VITON_PERSONS
from test_virtual_try_on_cli import make_person_analysis

SCRIPT = os.path.join(REPO_DIR, 'virtual_try_on.py')


@pytest.fixture
def setup(synthetic_dir, tmp_path):
    labels, keypoints = make_person_analysis(VITON_PERSONS[0], str(tmp_path))
    models = ['--gmm', os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'),
              '--tom', os.path.join(synthetic_dir, 'cp_vton_tom.onnx')]
    return {'dir': tmp_path, 'models': models, 'analysis': ['--labels', labels, '--keypoints', keypoints],
            'out': str(tmp_path / 'result.png'), 'synthetic': synthetic_dir}


def run(args, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], capture_output=True, text=True,
                          env=full_env, timeout=600)


# the most a try-on of a 40 MP photo may hold at once: the decoded photo alone is 114 MiB, and the try-on must
# stay far from a per-pixel blow-up; TRYON_PEAK_MIB lowers it (to see the check fail)
PEAK_MIB = float(os.environ.get('TRYON_PEAK_MIB', 2048))


# runs a Python script (argv[1], its arguments after it) and, as it exits, writes the peak resident memory of
# its own address space (VmHWM: a new address space starts at zero at exec, whereas ru_maxrss, of wait4 or
# getrusage, keeps the peak of the process that started it) as the last line of stderr
PEAK_WRAPPER = """import atexit, os, runpy, sys
def report():
    with open('/proc/self/status') as status:
        peak = [line.split()[1] for line in status if line.startswith('VmHWM:')][0]
    sys.stderr.write('peak-rss-kib: %s\\n' % peak)
atexit.register(report)
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def run_measuring_peak(script, args, env=None):
    """Run the Python `script` with `args`; returns (returncode, stdout, stderr, peak MiB of that process
    alone). RUSAGE_CHILDREN would give the largest peak of every child this process ever waited for, so a
    bound checked with it could pass whatever the child does."""
    if not os.path.exists('/proc/self/status'):
        pytest.skip('no /proc: the peak memory of one process is read from /proc/<pid>/status')
    result = subprocess.run([sys.executable, '-c', PEAK_WRAPPER, script] + [str(a) for a in args], capture_output=True,
                            text=True, env=dict(os.environ, **(env or {})), timeout=600)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith('peak-rss-kib: '), result.stderr
    return result.returncode, result.stdout, '\n'.join(lines[:-1]), int(lines[-1].split()[1]) / 1024


def assert_error(result, status, *phrases, output=None):
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(lines) == 1, result.stderr
    assert 'Traceback' not in result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    if output:
        assert not os.path.exists(output)
        assert not [f for f in os.listdir(os.path.dirname(output)) if f.endswith('.part')]


def tryon(setup, person=VITON_PERSONS[0], cloth=VITON_CLOTHES[0], extra=(), analysis=True, env=None):
    args = ['-i', person, '-c', cloth, '-o', setup['out']] + setup['models'] + list(extra)
    return run(args + (setup['analysis'] if analysis else []), env)


def test_missing_person_file(setup):
    assert_error(tryon(setup, person=str(setup['dir'] / 'nope.jpg')), 2, 'person photo file not found', 'nope.jpg',
                 output=setup['out'])


def test_missing_cloth_file(setup):
    assert_error(tryon(setup, cloth=str(setup['dir'] / 'nope.jpg')), 2, 'cloth photo file not found',
                 output=setup['out'])


def test_not_an_image(setup):
    path = setup['dir'] / 'notes.jpg'
    path.write_text('this is not a JPEG\n')
    assert_error(tryon(setup, person=str(path)), 2, 'not a readable image', output=setup['out'])


def test_empty_file(setup):
    path = setup['dir'] / 'empty.png'
    path.write_bytes(b'')
    assert_error(tryon(setup, cloth=str(path)), 2, 'empty', output=setup['out'])


def test_one_pixel_image(setup):
    path = str(setup['dir'] / 'one.png')
    cv.imwrite(path, np.zeros((1, 1, 3), np.uint8))
    assert_error(tryon(setup, person=path), 2, 'too small', output=setup['out'])


def test_photo_too_small_to_crop(setup):
    path = str(setup['dir'] / 'strip.png')
    cv.imwrite(path, np.full((20, 600, 3), 128, np.uint8))   # its 4:3 crop would be 15x20
    assert_error(tryon(setup, person=path), 2, 'too small', '256:192', output=setup['out'])


def test_output_directory_missing(setup):
    out = str(setup['dir'] / 'missing' / 'result.png')
    result = run(['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', out] + setup['models'] + setup['analysis'])
    assert_error(result, 2, 'output directory does not exist')
    assert not os.path.exists(os.path.dirname(out))


def test_truncated_model(setup):
    truncated = str(setup['dir'] / 'cp_vton_gmm.onnx')
    with open(os.path.join(setup['synthetic'], 'cp_vton_gmm.onnx'), 'rb') as f:
        data = f.read(1 << 20)
    with open(truncated, 'wb') as f:
        f.write(data)
    args = ['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', setup['out'], '--gmm', truncated,
            '--tom', setup['models'][3]] + setup['analysis']
    assert_error(run(args), 1, 'GMM model', 'not a valid ONNX file', output=setup['out'])



@pytest.mark.parametrize('network', ['gmm', 'tom'])
@pytest.mark.parametrize('damage', ['truncated', 'weight cut short'])
def test_a_gmm_or_tom_that_cannot_be_loaded_is_a_model_load_error(setup, network, damage):
    """A GMM or TOM file that is there but cannot be loaded (cut off, or whole but with a weight OpenCV cannot
    read) raises errors.ModelLoadError, as every other network does (test_conventions.py): one error line
    naming the network, exit status 1."""
    import onnx
    import errors
    from cp_vton import CpVton
    models = {'gmm': setup['models'][1], 'tom': setup['models'][3]}
    damaged = str(setup['dir'] / ('damaged_%s.onnx' % network))
    if damage == 'truncated':
        with open(models[network], 'rb') as f:
            data = f.read()
        with open(damaged, 'wb') as f:
            f.write(data[:len(data) // 2])
    else:   # the file's own structure is whole: OpenCV's reader is the one to fail
        model = onnx.load(models[network])
        weight = next(t for t in model.graph.initializer if len(t.raw_data) > 1000)
        weight.raw_data = weight.raw_data[:16]
        onnx.save(model, damaged)
    models[network] = damaged
    with pytest.raises(errors.ModelLoadError, match=network.upper() + ' model'):
        CpVton(models['gmm'], models['tom'])
    args = ['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', setup['out'], '--gmm', models['gmm'],
            '--tom', models['tom']] + setup['analysis']
    phrase = 'not a valid ONNX file' if damage == 'truncated' else 'cannot load the %s model' % network.upper()
    assert_error(run(args), 1, network.upper() + ' model', phrase, output=setup['out'])

def test_wrong_checksum_in_models_directory(setup):
    # a file under the published name that is not the published file (here: the synthetic one)
    models = setup['dir'] / 'models'
    models.mkdir()
    os.symlink(os.path.join(setup['synthetic'], 'cp_vton_gmm.onnx'), models / 'cp_vton_gmm.onnx')
    os.symlink(os.path.join(setup['synthetic'], 'cp_vton_tom.onnx'), models / 'cp_vton_tom.onnx')
    args = ['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', setup['out']] + setup['analysis']
    assert_error(run(args, env={'OPENCV_TRYON_MODELS': str(models)}), 1, 'not the published cp_vton_gmm.onnx',
                 'size', 'download_models.py cp_vton_gmm.onnx', output=setup['out'])


def test_missing_model_names_the_file(setup):
    args = ['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', setup['out'], '--gmm', setup['dir'] / 'nope.onnx',
            '--tom', setup['models'][3]] + setup['analysis']
    assert_error(run(args), 2, 'GMM model file not found', 'nope.onnx', output=setup['out'])


def test_without_the_published_pair_the_shipped_models_make_a_real_try_on(setup):
    """A models directory without cp_vton_gmm.onnx + cp_vton_tom.onnx: the GMM and TOM trained here (in git
    under models/) are loaded, with no SYNTHETIC warning, and the 256x192 result resembles the photo (VITON's
    own garment on its own person: the paired protocol, where the photo is the ground truth)."""
    import evaluate_tryon
    out = setup['out']
    args = ['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', out, '--model-size'] + setup['analysis']
    result = run(args, env={'OPENCV_TRYON_MODELS': str(setup['dir'])})
    assert result.returncode == 0, result.stderr
    assert 'SYNTHETIC' not in result.stderr
    photo, output = cv.imread(VITON_PERSONS[0]), cv.imread(out)
    assert evaluate_tryon.ssim(output, photo) > 0.7
    # the synthetic stand-ins on the same pair: noise, nowhere near the photo
    synthetic = str(setup['dir'] / 'synthetic.png')
    assert run(args[:5] + [synthetic] + args[6:] + setup['models']).returncode == 0
    assert evaluate_tryon.ssim(cv.imread(synthetic), photo) < 0.5


def test_wrong_input_names(setup):
    tom = setup['models'][3]
    args = ['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', setup['out'], '--gmm', tom, '--tom', tom]
    assert_error(run(args + setup['analysis']), 1, 'GMM model', 'input.18', output=setup['out'])


def test_no_person_found(setup):
    empty = setup['dir'] / 'nobody.json'
    empty.write_text(json.dumps({'people': [{'pose_keypoints': [0] * 54}]}))
    args = ['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', setup['out'], '--keypoints', empty,
            '--labels', setup['analysis'][1]] + setup['models']
    assert_error(run(args), 1, 'no person found', output=setup['out'])


def test_unavailable_backend_is_an_error_not_a_fallback(setup):
    result = tryon(setup, extra=['--backend', 'cuda', '--target', 'cuda'])
    if result.returncode == 0:
        pytest.skip('this OpenCV build has CUDA')
    assert_error(result, 2, 'backend cuda with target cuda is not available', output=setup['out'])


def test_unknown_backend_name(setup):
    result = tryon(setup, extra=['--backend', 'halide'])
    assert result.returncode == 2 and 'invalid choice' in result.stderr and 'Traceback' not in result.stderr


@pytest.mark.parametrize('kind', ['16bit', 'grey', 'rgba'])
def test_unusual_but_valid_photos(setup, kind):
    person = cv.imread(VITON_PERSONS[0])
    if kind == '16bit':
        image = person.astype(np.uint16) * 257
    elif kind == 'grey':
        image = cv.cvtColor(person, cv.COLOR_BGR2GRAY)
    else:
        image = cv.cvtColor(person, cv.COLOR_BGR2BGRA)
        image[..., 3] = 255   # opaque: the same pixels (transparency: test_conventions.py)
    path = str(setup['dir'] / ('person_%s.png' % kind))
    cv.imwrite(path, image)
    result = tryon(setup, person=path)
    assert result.returncode == 0, result.stderr
    assert cv.imread(setup['out']).shape == (256, 192, 3)
    if kind != 'grey':   # the same pixels as the 8-bit BGR photo: the same try-on
        reference = str(setup['dir'] / 'reference.png')
        assert run(['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', reference] + setup['models']
                   + setup['analysis']).returncode == 0
        assert np.array_equal(cv.imread(reference), cv.imread(setup['out']))


def test_forty_megapixel_photo(setup):
    person = cv.resize(cv.imread(VITON_PERSONS[0]), (5472, 7296), interpolation=cv.INTER_LINEAR)  # 39.9 MP
    path = str(setup['dir'] / 'big.jpg')
    cv.imwrite(path, person, [cv.IMWRITE_JPEG_QUALITY, 80])
    keypoints = setup['dir'] / 'big.json'
    points = np.array(json.load(open(setup['analysis'][3]))['people'][0]['pose_keypoints']).reshape(18, 3)
    points[:, :2] *= 5472 / 192
    keypoints.write_text(json.dumps({'people': [{'pose_keypoints': points.ravel().tolist()}]}))
    returncode, _, stderr, peak_mib = run_measuring_peak(
        SCRIPT, ['-i', path, '-c', VITON_CLOTHES[0], '-o', setup['out']] + setup['models']
        + ['--keypoints', keypoints, '--labels', setup['analysis'][1]])   # labels at 192x256
    assert returncode == 0, stderr
    assert cv.imread(setup['out']).shape == (7296, 5472, 3)   # full resolution, the default
    print('peak memory of the 40 MP try-on: %.0f MiB (bound %.0f MiB)' % (peak_mib, PEAK_MIB))
    assert peak_mib < PEAK_MIB


def test_peak_memory_is_the_childs_own(tmp_path):
    """The measure of test_forty_megapixel_photo: a child that holds 600 MiB measures over 600 MiB, and a
    small child run after it (by a process that holds 600 MiB itself) measures its own few MiB."""
    hold = tmp_path / 'hold.py'
    hold.write_text('import numpy as np\nheld = np.ones(600 << 20, np.uint8)\nprint(int(held.sum() > 0))\n')
    small = tmp_path / 'small.py'
    small.write_text('print(1)\n')
    status, out, _, big_peak = run_measuring_peak(str(hold), [])
    assert status == 0 and out.strip() == '1' and big_peak > 600
    held_here = np.ones(600 << 20, np.uint8)
    status, out, _, small_peak = run_measuring_peak(str(small), [])
    assert held_here.all() and status == 0 and out.strip() == '1'
    assert small_peak < 100 < big_peak


def test_no_person_in_the_photo_with_real_pose(synthetic_models_home, tmp_path):
    blank = str(tmp_path / 'wall.png')
    cv.imwrite(blank, np.full((256, 192, 3), 235, np.uint8))
    out = str(tmp_path / 'out.png')
    result = run(['--synthetic', '-i', blank, '-c', VITON_CLOTHES[0], '-o', out],
                 env={'OPENCV_TRYON_MODELS': synthetic_models_home})
    assert_error(result, 1, 'no person found', output=out)


def test_output_extension_not_writable(setup):
    out = str(setup['dir'] / 'result.xyz')
    result = run(['-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', out] + setup['models'] + setup['analysis'])
    assert_error(result, 2, 'cannot write images', output=out)
