"""A garment photo in which no garment stands out from its background is refused with one line (issue 29:
a plain-colour picture was accepted, exit 0, and the torso painted in flat colour); every shared garment,
white on white included, is accepted."""
import glob
import os
import subprocess
import sys

import cv2 as cv
import numpy as np
import pytest

import errors
import garment_check
import image_io
from conftest import REPO_DIR, SHARED_DATA, VITON_CLOTHES, VITON_PERSONS

SCRIPT = os.path.join(REPO_DIR, 'virtual_try_on.py')


def plain(colour=(60, 60, 200), noise=0.0, size=(400, 300), seed=0):
    image = np.full(size + (3,), colour, np.float64)
    image += np.random.default_rng(seed).normal(0, noise, image.shape) if noise else 0
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.mark.parametrize('image', [plain(), plain((255, 255, 255)), plain((0, 0, 0), size=(64, 48)),
                                   plain((128, 128, 128), noise=5), plain((128, 128, 128), noise=20),
                                   plain((30, 200, 90), noise=10, size=(3000, 2000))],
                         ids=['colour', 'white', 'small-black', 'noise5', 'noise20', '6MP-noise10'])
def test_plain_pictures_are_refused(image):
    assert garment_check.garment_share(image) < garment_check.MIN_FOREGROUND
    with pytest.raises(errors.RuntimeFailure, match='no garment found: nothing in the garment photo stands out'):
        garment_check.check_garment(image)


def test_a_garment_on_a_plain_picture_is_accepted():
    image = plain((255, 255, 255))
    cv.rectangle(image, (100, 120), (200, 300), (40, 40, 160), -1)  # 15 % of the photo
    assert garment_check.check_garment(image) > 0.1


def test_every_shared_garment_is_accepted():
    files = (sorted(glob.glob(os.path.join(SHARED_DATA, 'realworld', 'garment', '*')))
             + sorted(glob.glob(os.path.join(SHARED_DATA, 'viton', 'test', 'cloth', '*')))[:100] + VITON_CLOTHES)
    assert len(files) == 45 + 100 + len(VITON_CLOTHES)
    shares = {path: garment_check.garment_share(image_io.read_image(path)) for path in files}
    refused = [path for path, share in shares.items() if share < garment_check.MIN_FOREGROUND]
    assert refused == []
    # the white tops on white are the closest: kept three times above the bound
    assert min(shares.values()) > 3 * garment_check.MIN_FOREGROUND


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=600, cwd=cwd)


def test_command_line_refuses_a_plain_garment(tmp_path):
    cv.imwrite(str(tmp_path / 'plain.png'), plain())
    out = tmp_path / 'result.png'
    done = run_cli('-i', VITON_PERSONS[0], '-c', tmp_path / 'plain.png', '-o', out)
    errors = [line for line in done.stderr.splitlines() if line.startswith('error:')]
    assert done.returncode == 1 and len(errors) == 1 and 'Traceback' not in done.stderr, done.stderr
    assert errors[0].startswith('error: no garment found: nothing in the cloth photo %s' % (tmp_path / 'plain.png'))
    assert not out.exists() and os.listdir(tmp_path) == ['plain.png']
    # with garments: the plain one is one error line and skipped, the real one is written, exit 1
    done = run_cli('-i', VITON_PERSONS[0], '-c', tmp_path / 'plain.png', VITON_CLOTHES[0], '-o', tmp_path / 'out',
                   '--model-size')
    errors = [line for line in done.stderr.splitlines() if line.startswith('error:')]
    assert done.returncode == 1 and len(errors) == 1 and 'no garment found' in errors[0], done.stderr
    assert os.listdir(tmp_path / 'out') == ['000001_0_000001_1_tryon.png']


def test_python_api_refuses_a_plain_garment():
    from cp_vton import CpVton
    from tryon_pipeline import VirtualTryOn, default_models
    tryon = VirtualTryOn(CpVton(*default_models()))
    person = image_io.read_image(VITON_PERSONS[0])
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[[1, 2, 5, 8, 11]] = [[96, 60, 1], [70, 62, 1], [122, 62, 1], [80, 150, 1], [112, 150, 1]]
    keypoints[:, :2] *= person.shape[0] / 256  # the model frame's points in the photo (same aspect)
    labels = np.zeros(person.shape[:2], np.uint8)
    labels[person.shape[0] // 4:person.shape[0] * 3 // 4, person.shape[1] // 4:person.shape[1] * 3 // 4] = 5
    analysis = tryon.analyse(person, keypoints, labels)
    with pytest.raises(errors.RuntimeFailure, match='no garment found'):
        tryon.infer(analysis, plain())
    assert tryon.infer(analysis, image_io.read_image(VITON_CLOTHES[0]), full_resolution=False).shape == (256, 192, 3)
