"""Shared test fixtures: paths to the shared real data and a per-run cache of synthetic models."""
import os
import sys

import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)  # the modules under test, and the models package, from this checkout

# ../shared/data beside the checkout (CI has it there too); TRYON_SHARED_DATA overrides.
SHARED_DATA = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
VITON_PERSONS = sorted(os.path.join(SHARED_DATA, 'viton', 'person', f)
                       for f in os.listdir(os.path.join(SHARED_DATA, 'viton', 'person')))
VITON_CLOTHES = [p.replace('person', 'cloth').replace('_0.jpg', '_1.jpg') for p in VITON_PERSONS]


@pytest.fixture(scope='session')
def shared_data():
    return SHARED_DATA


@pytest.fixture(scope='session')
def synthetic_dir(tmp_path_factory):
    """The synthetic model set (tools/synthetic.py), built once per test run.

    TRYON_SYNTHETIC_CACHE names a directory to reuse between runs (CI's two OpenCV
    generations share one build); the builders are seeded, so a reuse is the same bytes.
    """
    from tools import synthetic
    directory = os.environ.get('TRYON_SYNTHETIC_CACHE') or str(tmp_path_factory.mktemp('synthetic'))
    synthetic.build_all(directory)
    return directory


@pytest.fixture(scope='session')
def blazepose_model():
    """MediaPipe's pose_landmark_full.tflite (and beside it pose_detection.tflite, BlazePose's person
    detector), the real networks the tests run, taken from the
    mediapipe wheel on PyPI once (into $TRYON_MODEL_CACHE or the gitignored models/) and verified by
    sha256. No skip: without it the real-model tests must fail, not vanish."""
    from models import download_models
    directory = os.environ.get('TRYON_MODEL_CACHE') or os.path.join(REPO_DIR, 'models')
    return download_models.fetch(['pose_landmark_full.tflite', 'pose_detection.tflite'], directory,
                                 progress=False)[0]


@pytest.fixture(scope='session')
def synthetic_models_home(synthetic_dir, blazepose_model, tmp_path_factory):
    """A models directory as --synthetic sees it: synthetic/ beside the real MediaPipe files (BlazePose,
    and the selfie segmentation that parsing without JPPNet uses)."""
    from models import download_models
    selfie = download_models.fetch(['selfie_segmentation.tflite'], os.path.dirname(blazepose_model), progress=False)[0]
    home = tmp_path_factory.mktemp('models_home')
    os.symlink(synthetic_dir, home / 'synthetic')
    os.symlink(blazepose_model, home / 'pose_landmark_full.tflite')
    os.symlink(os.path.join(os.path.dirname(blazepose_model), 'pose_detection.tflite'), home / 'pose_detection.tflite')
    os.symlink(selfie, home / 'selfie_segmentation.tflite')
    return str(home)
