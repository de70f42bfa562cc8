"""The evaluation's SSIM (tests/evaluate_tryon.py) on hand-computed cases, and against scikit-image where
it is installed."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate_tryon  # noqa: E402


def test_ssim_of_constant_images_is_the_luminance_term():
    """Constant images: no variance, so SSIM = (2 a b + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2."""
    a, b = np.full((40, 30, 3), 100, np.uint8), np.full((40, 30, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert evaluate_tryon.ssim(a, b) == pytest.approx((2 * 100 * 150 + c1) / (100 ** 2 + 150 ** 2 + c1), abs=1e-12)
    noise = np.random.default_rng(0).integers(0, 256, (40, 30, 3)).astype(np.uint8)
    assert evaluate_tryon.ssim(noise, noise) == pytest.approx(1.0, abs=1e-12)
    assert evaluate_tryon.ssim(noise, 255 - noise) < 0


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip('skimage.metrics')
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (64, 48, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    expected = metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                             data_range=255, channel_axis=2)
    assert evaluate_tryon.ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_iou():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[:2], b[1:3] = True, True
    assert evaluate_tryon.iou(a, b) == pytest.approx(4 / 12)
    assert evaluate_tryon.iou(a & False, b & False) == 1.0
