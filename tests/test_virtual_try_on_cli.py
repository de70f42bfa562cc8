"""The try-on command line end to end, on the shared VITON photos with the synthetic models."""
import json
import os
import subprocess
import sys

import cv2 as cv
import numpy as np
import pytest

from conftest import REPO_DIR, VITON_CLOTHES, VITON_PERSONS

SCRIPT = os.path.join(REPO_DIR, 'virtual_try_on.py')

# hand-placed COCO-18 keypoints of a front-facing person in a 192x256 VITON photo
KEYPOINTS = [[96, 40], [96, 70], [70, 72], [60, 110], [55, 150], [122, 72], [132, 110], [137, 150], [80, 150],
             [80, 200], [80, 245], [112, 150], [112, 200], [112, 245], [90, 35], [102, 35], [85, 38], [107, 38]]


def make_person_analysis(person_path, directory):
    """A LIP label PNG and an OpenPose JSON for a VITON photo, made for the test (not by a network)."""
    person = cv.imread(person_path)
    foreground = person.min(axis=2) < 230
    labels = np.where(foreground, 5, 0).astype(np.uint8)      # upper clothes
    labels[:60][foreground[:60]] = 13                          # face
    labels[:25][foreground[:25]] = 2                           # hair
    labels[190:][foreground[190:]] = 9                         # pants
    labels_path = os.path.join(directory, 'labels.png')
    cv.imwrite(labels_path, labels)
    keypoints = np.column_stack([np.array(KEYPOINTS, float), np.full(18, 0.9)])
    keypoints_path = os.path.join(directory, 'keypoints.json')
    with open(keypoints_path, 'w') as f:
        json.dump({'people': [{'pose_keypoints': keypoints.ravel().tolist()}]}, f)
    return labels_path, keypoints_path


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.mark.parametrize('pair', [0, 3])
def test_cli_writes_a_256x192_png_deterministically(synthetic_dir, tmp_path, pair):
    labels, keypoints = make_person_analysis(VITON_PERSONS[pair], str(tmp_path))
    outputs = []
    for run in range(2):
        out = tmp_path / ('out%d.png' % run)
        result = run_cli('-i', VITON_PERSONS[pair], '-c', VITON_CLOTHES[pair], '-o', out,
                         '--gmm', os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'),
                         '--tom', os.path.join(synthetic_dir, 'cp_vton_tom.onnx'),
                         '--labels', labels, '--keypoints', keypoints)
        assert result.returncode == 0, result.stderr
        assert 'SYNTHETIC' in result.stderr
        image = cv.imread(str(out), cv.IMREAD_UNCHANGED)
        assert image.shape == (256, 192, 3) and image.dtype == np.uint8
        assert image.std() > 5   # not a constant image
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.part')]


def test_cli_default_output_name_is_printed(synthetic_dir, tmp_path):
    labels, keypoints = make_person_analysis(VITON_PERSONS[1], str(tmp_path))
    result = run_cli('-i', VITON_PERSONS[1], '-c', VITON_CLOTHES[1],
                     '--gmm', os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'),
                     '--tom', os.path.join(synthetic_dir, 'cp_vton_tom.onnx'),
                     '--labels', labels, '--keypoints', keypoints, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    name = '%s_%s_tryon.png' % (os.path.basename(VITON_PERSONS[1])[:-4], os.path.basename(VITON_CLOTHES[1])[:-4])
    assert result.stdout.strip() == name
    assert (tmp_path / name).is_file()


@pytest.mark.parametrize('pair', range(len(VITON_PERSONS)))
def test_synthetic_whole_chain_on_every_viton_pair(synthetic_models_home, tmp_path, pair):
    """Real BlazePose, real parsing from MediaPipe's models (no JPPNet file), synthetic GMM/TOM: the whole
    chain with no person analysis given."""
    out = tmp_path / 'out.png'
    result = run_cli('--synthetic', '-i', VITON_PERSONS[pair], '-c', VITON_CLOTHES[pair], '-o', out,
                     env=dict(os.environ, OPENCV_TRYON_MODELS=synthetic_models_home))
    assert result.returncode == 0, result.stderr
    assert 'BlazePose' in result.stderr and 'NOT a try-on' in result.stderr
    warnings = [line for line in result.stderr.splitlines() if 'SYNTHETIC' in line]
    assert len(warnings) == 1 and all(name in warnings[0] for name in ('cp_vton_gmm.onnx', 'cp_vton_tom.onnx'))
    assert 'lip_jppnet_384.pb' not in warnings[0] and 'parsing with MediaPipe models' in result.stderr
    assert cv.imread(str(out)).shape == (256, 192, 3)
    if pair == 0:     # -q: the notes go, the warning stays
        quiet = run_cli('--synthetic', '-q', '-i', VITON_PERSONS[pair], '-c', VITON_CLOTHES[pair], '-o', out,
                        env=dict(os.environ, OPENCV_TRYON_MODELS=synthetic_models_home))
        assert quiet.returncode == 0 and quiet.stderr.splitlines() == warnings, quiet.stderr


def test_chain_with_synthetic_openpose_and_named_backend(synthetic_dir, synthetic_models_home, tmp_path):
    """OpenPose (synthetic, through the converter's ONNX; and the Caffe files where OpenCV 4 reads them)
    in the chain, with the backend and target named: random heatmaps may or may not hold a torso, so
    the run either succeeds or says that no person was found, never anything else."""
    models = [['--pose-model', os.path.join(synthetic_dir, 'openpose_pose_coco.onnx')]]
    if hasattr(cv.dnn, 'readNetFromCaffe'):
        models.append(['--pose-model', os.path.join(synthetic_dir, 'pose_iter_440000.caffemodel'),
                       '--pose-config', os.path.join(synthetic_dir, 'openpose_pose_coco.prototxt')])
    for pose_args in models:
        out = tmp_path / 'out.png'
        result = run_cli('--synthetic', '-i', VITON_PERSONS[2], '-c', VITON_CLOTHES[2], '-o', out,
                         '--backend', 'opencv', '--target', 'cpu', *pose_args,
                         env=dict(os.environ, OPENCV_TRYON_MODELS=synthetic_models_home))
        assert 'pose_' in result.stderr and 'SYNTHETIC' in result.stderr   # the pose model's own warning
        if result.returncode == 0:
            assert cv.imread(str(out)).shape == (256, 192, 3)
        else:
            assert result.returncode == 1 and 'error: no person found' in result.stderr, result.stderr
            assert not out.exists()


def test_show_without_a_display_is_refused_before_the_work(tmp_path):
    """Issue 29: --show with no display ran the try-on, then Qt aborted (exit 134)."""
    env = {name: value for name, value in os.environ.items() if name not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    out = tmp_path / 'result.png'
    done = run_cli('-i', VITON_PERSONS[0], '-c', VITON_CLOTHES[0], '-o', out, '--show', env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == ['error: --show needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is '
                                        'set (no window can open here); leave out --show and open the file written '
                                        'with -o']
    assert not out.exists() and done.stdout == ''


def test_check_display_rule():
    import virtual_try_on
    from errors import UsageError
    virtual_try_on.check_display({'DISPLAY': ':0'}, 'linux')
    virtual_try_on.check_display({'WAYLAND_DISPLAY': 'wayland-0'}, 'linux')
    virtual_try_on.check_display({}, 'darwin')
    virtual_try_on.check_display({}, 'win32')
    with pytest.raises(UsageError, match='--show needs a display'):
        virtual_try_on.check_display({'DISPLAY': ''}, 'linux')


def test_help_names_the_shipped_pair_as_the_default():
    text = ' '.join(run_cli('--help').stdout.split())
    assert ('--gmm GMM GMM model (default: cp_vton_gmm_small.onnx, the pair trained here and shipped in models/; '
            'the published cp_vton_gmm.onnx when it and cp_vton_tom.onnx are both in the models directory)') in text
    assert '--tom TOM TOM model (default: cp_vton_tom_small.onnx, shipped with cp_vton_gmm_small.onnx' in text
