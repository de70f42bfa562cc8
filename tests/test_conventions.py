"""What every user meets first: garments with alpha, backend names, --help, messages, the installable package."""
import importlib
import logging
import os
import re
import subprocess
import sys
import warnings

import cv2 as cv
import numpy as np
import pytest
from PIL import Image

import dnn_backends
import errors
import image_io
import openvino_precision
import synthetic_models
import virtual_try_on as vto
from cp_vton import CpVton, pose_map
from conftest import REPO_DIR, VITON_CLOTHES, VITON_PERSONS
from test_virtual_try_on_cli import make_person_analysis

SCRIPTS = ('virtual_try_on.py', 'openpose.py', 'human_parsing.py', os.path.join('models', 'download_models.py'))


def cut_out(garment_bgr):
    """A shop-style cut-out of a VITON garment: alpha 255 on the garment, 0 on the white background, a soft
    2-px edge; returns (alpha, rgba with black under the transparent pixels, the same with white)."""
    garment = garment_bgr.min(axis=2) < 240
    garment = cv.morphologyEx(garment.astype(np.uint8), cv.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    alpha = cv.GaussianBlur(garment * 255, (5, 5), 0)
    rgb = cv.cvtColor(garment_bgr, cv.COLOR_BGR2RGB)
    clear = (alpha == 0)[..., None]
    on_black = np.dstack([np.where(clear, 0, rgb), alpha])
    on_white = np.dstack([np.where(clear, 255, rgb), alpha])
    return alpha, on_black, on_white


def pillow_over_white(rgba):
    """The independent reference: Pillow's alpha compositing over an opaque white image, as BGR."""
    white = Image.new('RGBA', (rgba.shape[1], rgba.shape[0]), (255, 255, 255, 255))
    flat = Image.alpha_composite(white, Image.fromarray(rgba, 'RGBA')).convert('RGB')
    return cv.cvtColor(np.asarray(flat), cv.COLOR_RGB2BGR)


@pytest.fixture(scope='module')
def cp_vton(synthetic_dir):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', synthetic_models.SyntheticModelWarning)
        return CpVton(os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'),
                      os.path.join(synthetic_dir, 'cp_vton_tom.onnx'))


@pytest.mark.parametrize('pair', range(len(VITON_CLOTHES)))
def test_garment_with_alpha_is_laid_over_white(cp_vton, tmp_path, pair):
    garment = cv.imread(VITON_CLOTHES[pair])
    alpha, on_black, on_white = cut_out(garment)
    assert (alpha == 0).mean() > 0.2 and ((alpha > 0) & (alpha < 255)).any()    # a real cut-out, soft edge
    reference = pillow_over_white(on_black)
    paths = {}
    for name, rgba in (('black', on_black), ('white', on_white)):
        paths[name] = str(tmp_path / ('garment_%s.png' % name))
        cv.imwrite(paths[name], cv.cvtColor(rgba, cv.COLOR_RGBA2BGRA))
    paths['reference'] = str(tmp_path / 'garment_on_white.png')
    cv.imwrite(paths['reference'], reference)
    # a plain alpha drop leaves the transparent black: most of the photo would reach the networks black
    dropped = cv.imread(paths['black'], cv.IMREAD_COLOR)
    assert np.abs(dropped.astype(int) - reference).max() > 200

    read = {name: image_io.read_image(path) for name, path in paths.items()}
    for name in ('black', 'white'):
        assert np.abs(read[name].astype(int) - reference).max() <= 1, name

    labels_path, keypoints_path = make_person_analysis(VITON_PERSONS[pair], str(tmp_path))
    person = cv.imread(VITON_PERSONS[pair])
    import human_parsing
    import openpose
    labels = human_parsing.read_parsing(labels_path)
    pose = pose_map(openpose.read_keypoints_json(keypoints_path))
    results = {name: cp_vton.infer(labels, person, pose, image).astype(int) for name, image in read.items()}
    for name in ('black', 'white'):
        difference = np.abs(results[name] - results['reference']).max()
        print('pair %d, garment cut out over %s: max difference to the garment on white %d' % (pair, name, difference))
        assert difference <= 1, name


def test_person_photo_with_alpha_is_laid_over_white(tmp_path):
    person = cv.imread(VITON_PERSONS[0])
    _, on_black, _ = cut_out(person)
    path = str(tmp_path / 'person.png')
    cv.imwrite(path, cv.cvtColor(on_black, cv.COLOR_RGBA2BGRA))
    assert np.abs(image_io.read_image(path).astype(int) - pillow_over_white(on_black)).max() <= 1


def test_backend_alone_picks_its_natural_target():
    assert dnn_backends.backend_target('opencv') == (cv.dnn.DNN_BACKEND_OPENCV, cv.dnn.DNN_TARGET_CPU)
    assert dnn_backends.backend_target('default') == (cv.dnn.DNN_BACKEND_DEFAULT, cv.dnn.DNN_TARGET_CPU)
    for backend, target in (('cuda', 'cuda'), ('openvino', 'cpu')):
        try:
            pair = dnn_backends.backend_target(backend)
        except errors.UsageError as err:     # this OpenCV has no such backend: the message says what to use
            message = str(err)
            assert 'backend %s with target %s is not available' % (backend, target) in message
            assert '--backend opencv --target cpu' in message or 'add --target' in message
        else:
            assert pair == (dnn_backends.BACKENDS[backend], dnn_backends.TARGETS[target])


def test_unavailable_target_says_what_to_add():
    with pytest.raises(errors.UsageError, match=r'targets for this backend: cpu.*add --target cpu'):
        dnn_backends.backend_target('opencv', 'cuda')


def test_cpu_bf16_is_a_target_of_openvino_only(tmp_path):
    with pytest.raises(errors.UsageError, match=r'cpu_bf16 is a precision of OpenVINO.*--backend openvino'):
        dnn_backends.backend_target('opencv', 'cpu_bf16')
    script = os.path.join(REPO_DIR, 'virtual_try_on.py')
    for backend, message in (('opencv', 'use it with --backend openvino'),
                             ('openvino', None)):
        result = subprocess.run([sys.executable, script, '-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0],
                                 '-o', str(tmp_path / 'out.png'), '--backend', backend, '--target', 'cpu_bf16'],
                                capture_output=True, text=True, timeout=120)
        if message is None and 'not available' not in result.stderr:
            continue   # an OpenCV built with OpenVINO: tests/test_openvino.py covers it
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith('error:')]
        assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
        assert (message or 'backend openvino with target cpu is not available') in lines[0]


def test_openvino_f32_request_caps_the_cpu_isa_below_bf16_and_keeps_the_users_own_cap():
    # OpenVINO's documented ISA names, lowest to highest: ... AVX512_CORE, AVX512_CORE_VNNI, AVX512_CORE_BF16
    assert openvino_precision.isa_cap_environment({}, 'f32') == {
        'OV_CPU_MAX_ISA': 'AVX512_CORE_VNNI', 'ONEDNN_MAX_CPU_ISA': 'AVX512_CORE_VNNI'}
    assert openvino_precision.isa_cap_environment({}, 'bf16') == {}
    assert openvino_precision.isa_cap_environment({'ONEDNN_MAX_CPU_ISA': 'AVX2'}, 'f32') == {}
    assert openvino_precision.isa_cap_environment({'OV_CPU_MAX_ISA': 'ALL'}, 'f32') == {}
    with pytest.raises(ValueError):
        openvino_precision.isa_cap_environment({}, 'fp16')


def test_bf16_units_read_from_cpuinfo_flags():
    sapphire_rapids = 'processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n'
    zen4 = 'flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n'
    skylake = 'flags\t\t: fpu sse avx2 avx512f avx512bw avx512vl\n'
    assert openvino_precision.cpu_has_bf16(sapphire_rapids) is True
    assert openvino_precision.cpu_has_bf16(zen4) is True
    assert openvino_precision.cpu_has_bf16(skylake) is False
    assert openvino_precision.cpu_has_bf16('model name\t: some CPU\n') is None


def build_parsers():
    import human_parsing
    import openpose
    from models import download_models
    return {'virtual_try_on.py': vto.build_parser(), 'openpose.py': openpose.build_parser(),
            'human_parsing.py': human_parsing.build_parser(), 'download_models.py': download_models.build_parser()}


def test_every_option_has_help_and_the_shared_ones_come_last_in_one_order():
    for script, parser in build_parsers().items():
        options = [a for a in parser._actions if a.option_strings and a.dest != 'help']
        for action in options:
            if action.help != '==SUPPRESS==':
                assert action.help and action.help.strip(), (script, action.dest)
                shown = parser._get_formatter()._expand_help(action)
                assert shown.count('(default') <= 1, (script, action.dest)
        tail = [a.dest for a in options if a.help != '==SUPPRESS=='][-4:]
        shared = ['backend', 'target', 'quiet', 'verbose']
        assert tail == (shared if script != 'download_models.py' else tail[:2] + shared[2:]), script
        assert options[0].option_strings[:1] in (['-i'], ['--list']), script


@pytest.mark.parametrize('script', SCRIPTS)
def test_help_text_has_no_doubled_defaults(script):
    result = subprocess.run([sys.executable, os.path.join(REPO_DIR, script), '--help'], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    text = ' '.join(result.stdout.split())
    assert not re.search(r'\(default: [^)]*\)\s*\(default', text)
    assert '-q, --quiet' in text and '-v, --verbose' in text


def test_library_messages_are_logging_and_warnings_an_application_controls(synthetic_dir, caplog):
    gmm, tom = (os.path.join(synthetic_dir, name) for name in ('cp_vton_gmm.onnx', 'cp_vton_tom.onnx'))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        CpVton(gmm, tom)
    synthetic = [w for w in caught if issubclass(w.category, synthetic_models.SyntheticModelWarning)]
    assert len(synthetic) == 2 and 'cp_vton_gmm.onnx' in str(synthetic[0].message)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        warnings.filterwarnings('ignore', category=synthetic_models.SyntheticModelWarning)
        CpVton(gmm, tom)
    assert not caught
    # the modules log through their own loggers; no handler is installed by importing them
    modules = ('command_line', 'dnn_backends', 'synthetic_models', 'openpose', 'human_parsing', 'virtual_try_on',
               'models.download_models')
    for module in modules:
        importlib.import_module(module)
    for name in modules:
        assert logging.getLogger(name).handlers == [], name


def test_pyproject_installs_the_flat_modules_and_the_console_commands():
    try:
        import tomllib
    except ImportError:
        pytest.skip('tomllib needs Python 3.11')
    with open(os.path.join(REPO_DIR, 'pyproject.toml'), 'rb') as f:
        project = tomllib.load(f)
    flat = sorted(f[:-3] for f in os.listdir(REPO_DIR) if f.endswith('.py'))
    assert sorted(project['tool']['setuptools']['py-modules']) == flat
    for command, target in project['project']['scripts'].items():
        module, function = target.split(':')
        assert callable(getattr(importlib.import_module(module), function)), command
    with open(os.path.join(REPO_DIR, 'requirements.txt')) as f:
        assert project['project']['dependencies'] == [line.strip() for line in f if line.strip()]


def test_every_name_is_used_from_the_module_that_defines_it():
    """virtual_try_on.py is the command line, not a façade: what code takes of it (tests and tools too), it
    defines itself."""
    import ast
    import io
    import tokenize
    with open(os.path.join(REPO_DIR, 'virtual_try_on.py')) as f:
        tree = ast.parse(f.read())
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    defined |= {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets
                if isinstance(target, ast.Name)}
    borrowed = []
    for folder in ('', 'tests', 'tools', 'models'):
        directory = os.path.join(REPO_DIR, folder)
        for name in sorted(os.listdir(directory)):
            if not name.endswith('.py'):
                continue
            with open(os.path.join(directory, name)) as f:
                tokens = [t for t in tokenize.generate_tokens(io.StringIO(f.read()).readline)
                          if t.type in (tokenize.NAME, tokenize.OP)]
            for module, dot, used in zip(tokens, tokens[1:], tokens[2:]):
                if module.string in ('vto', 'virtual_try_on') and dot.string == '.' and used.string not in defined:
                    borrowed.append('%s:%d %s' % (os.path.join(folder, name), used.start[0], used.string))
    assert not borrowed, borrowed


def test_networks_of_one_role_share_one_interface():
    """model_roles: every pose estimator and every parser has its role's methods, with the same parameters in
    the same order."""
    import inspect
    import blazepose
    import human_parsing
    import mediapipe_parsing
    import model_roles
    import openpose
    roles = {model_roles.PoseEstimator: (openpose.OpenPose, blazepose.BlazePose),
             model_roles.HumanParser: (human_parsing.JppNet, mediapipe_parsing.MediaPipeParsing)}
    for role, classes in roles.items():
        methods = [name for name in dir(role) if not name.startswith('_')]
        assert 'setBackendAndTarget' in methods and 'infer' in methods
        for cls in classes:
            for name in methods:
                expected = list(inspect.signature(getattr(role, name)).parameters)
                assert list(inspect.signature(getattr(cls, name)).parameters) == expected, (cls, name)


def test_a_model_that_cannot_be_loaded_is_one_error_with_exit_status_1(tmp_path):
    import errors
    import blazepose
    import human_parsing
    import openpose
    garbage = tmp_path / 'garbage'
    garbage.write_bytes(b'not a network at all' * 100)
    detector = tmp_path / 'pose_detection.tflite'
    detector.write_bytes(b'not a detector')
    for load, suffix in ((openpose.OpenPose, '.onnx'), (blazepose.BlazePose, '.tflite'),
                         (human_parsing.JppNet, '.pb')):
        path = garbage.with_suffix(suffix)
        path.write_bytes(garbage.read_bytes())
        with pytest.raises(errors.ModelLoadError):
            load(str(path))
    assert issubclass(errors.ModelLoadError, errors.RuntimeFailure)   # run_main: exit status 1
