#!/usr/bin/env python3
"""The C++ try-on (cpp/) against the Python implementation and Pillow. Prints figures; asserts nothing.

    python3 benchmarks/compare_cpp.py [--build DIR] [--models DIR] [--pairs N] [--repeat R]

  * the try-on of every VITON test pair (../shared/data/viton/test, test_pairs.txt, with the dataset's
    image-parse and pose files and the synthetic GMM/TOM): the C++ library (tryOnPhoto, the code path of
    the C++ command) against the Python API at network size (tryon_pipeline.VirtualTryOn.infer with
    keypoints= and labels=, 256x192), for the published-format GMM (custom Correlation node, served by
    the C++ Correlation layer) and for the standard-op GMM of tools/convert_gmm.py;
  * the agnostic input of the GMM (the deterministic part before any network), C++ against Python;
  * pilBilinearResize against Pillow on the 5,000 random cases of tests/test_pil_bilinear.py;
  * tpsGrid / gridSample against cp_vton.tps_grid / grid_sample;
  * the non-network time per try-on, C++ and Python (wall and CPU time; the machine may be shared).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import cv2 as cv
import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_DIR, os.path.join(REPO_DIR, 'tests')]  # the modules, and the C++ helper's file formats

import cpp_support  # noqa: E402
from cp_vton import (KEPT_LABELS, CpVton, crop_to_ratio, grid_sample, pose_map, resize_to_model,  # noqa: E402
                     to_unit_range, tps_grid)
from tryon_pipeline import VirtualTryOn, keypoints_to_model, labels_to_model  # noqa: E402

SHARED_DATA = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')


def synthetic_models(directory):
    """Synthetic GMM (published format) and TOM, and the standard-op GMM converted from it."""
    from tools import synthetic
    os.makedirs(directory, exist_ok=True)
    for name, build in ((synthetic.GMM_FILE, synthetic.build_gmm), (synthetic.TOM_FILE, synthetic.build_tom)):
        if not os.path.isfile(os.path.join(directory, name)):
            build(os.path.join(directory, name))
    standard = os.path.join(directory, 'cp_vton_gmm_std.onnx')
    if not os.path.isfile(standard):
        subprocess.run([sys.executable, os.path.join(REPO_DIR, 'tools', 'convert_gmm.py'),
                        os.path.join(directory, synthetic.GMM_FILE), standard], check=True, capture_output=True)
    return os.path.join(directory, synthetic.GMM_FILE), standard, os.path.join(directory, synthetic.TOM_FILE)


def compare_try_ons(helper, gmm, tom, pairs, expected, work_dir):
    out_dir = tempfile.mkdtemp(dir=work_dir)
    start = time.perf_counter()
    subprocess.run([helper, 'pairs', gmm, tom, os.path.join(SHARED_DATA, 'viton', 'test'),
                    os.path.join(SHARED_DATA, 'viton', 'test_pairs.txt'), out_dir, '0', str(len(pairs))],
                   check=True, capture_output=True, timeout=7200)
    seconds = time.perf_counter() - start
    worst, identical, total, pairs_equal, worst_share = 0, 0, 0, 0, 1.0
    for (person, cloth), python_result in zip(pairs, expected):
        name = '%s_%s.png' % (os.path.splitext(person)[0], os.path.splitext(cloth)[0])
        cpp_result = cv.imread(os.path.join(out_dir, name))
        diff = np.abs(cpp_result.astype(np.int16) - python_result)
        worst = max(worst, int(diff.max()))
        same = int(np.count_nonzero(diff == 0))
        identical += same
        total += diff.size
        pairs_equal += same == diff.size
        worst_share = min(worst_share, same / diff.size)
    return worst, identical / total, pairs_equal, worst_share, seconds


def time_ms(fn, repeat):
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return [1e3 * float(np.percentile(t, q)) for t in (wall, cpu) for q in (50, 95)]


def python_non_network(repeat):
    """The same work and inputs as benchmarks/benchmark_pipeline.py's non-network total."""
    person = cv.imread(os.path.join(SHARED_DATA, 'viton', 'person', '000001_0.jpg'))
    cloth = to_unit_range(cv.imread(os.path.join(SHARED_DATA, 'viton', 'cloth', '000001_1.jpg')))[None]
    labels = np.where(person.min(axis=2) < 235, 5, 0).astype(np.uint8)
    labels[:60][labels[:60] > 0] = 13
    keypoints = np.column_stack([np.linspace(60, 130, 18), np.linspace(30, 245, 18), np.ones(18)])
    theta = np.random.default_rng(0).uniform(-0.2, 0.2, (1, 50)).astype(np.float32)
    tom_out = np.random.default_rng(1).standard_normal((1, 4, 256, 192)).astype(np.float32)
    holder = type('Model', (), {'head_lut': np.isin(np.arange(256), KEPT_LABELS)})()
    return time_ms(lambda: (CpVton.prepare_agnostic(holder, labels, person, pose_map(keypoints)),
                            CpVton.compose(tom_out, grid_sample(cloth, tps_grid(theta)))), repeat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--build', help='C++ build directory (default: a temporary one)')
    parser.add_argument('--models', help='directory for the synthetic models (default: a temporary one)')
    parser.add_argument('--pairs', type=int, default=0, help='first N test pairs only (default: all)')
    parser.add_argument('--repeat', type=int, default=300, help='repetitions of the timings')
    args = parser.parse_args()
    work_dir = tempfile.mkdtemp(prefix='compare_cpp.')
    cli, helper = cpp_support.build(args.build or os.path.join(work_dir, 'build'))
    gmm, gmm_standard, tom = synthetic_models(args.models or os.path.join(work_dir, 'models'))
    print('Python: OpenCV %s, numpy %s' % (cv.__version__, np.__version__))

    # pilBilinearResize against Pillow
    import test_pil_bilinear as tpb
    from PIL import Image
    cases = [(image, size) for layout in tpb.LAYOUTS for image, size, _, _ in tpb.random_cases(layout)]
    major = int(Image.__version__.split('.')[0])
    results = cpp_support.resize_with_cpp(helper, cases, work_dir, major)
    wrong = sum(not np.array_equal(got, tpb.pillow_resize(image, size)) for (image, size), got in zip(cases, results))
    print('pilBilinearResize vs Pillow %s: %d cases, %d mismatches' % (Image.__version__, len(cases), wrong))

    # tpsGrid / gridSample against the Python ones
    rng = np.random.default_rng(2018)
    theta = rng.uniform(-0.3, 0.3, (8, 50)).astype(np.float32)
    cpp_support.write_blob(os.path.join(work_dir, 'theta.bin'), theta)
    subprocess.run([helper, 'tps', os.path.join(work_dir, 'theta.bin'), os.path.join(work_dir, 'grid.bin')], check=True)
    grid_cpp, grid_py = cpp_support.read_blob(os.path.join(work_dir, 'grid.bin')), tps_grid(theta)
    print('tpsGrid vs tps_grid (8 random theta): max |difference| %.3g, %.4f %% of values bit-identical'
          % (np.abs(grid_cpp - grid_py).max(), 100 * np.mean(grid_cpp == grid_py)))
    images = rng.standard_normal((8, 3, 256, 192)).astype(np.float32)
    grids = np.concatenate([grid_py[:4], rng.uniform(-1.3, 1.3, (4, 256, 192, 2)).astype(np.float32)])
    cpp_support.write_blob(os.path.join(work_dir, 'images.bin'), images)
    cpp_support.write_blob(os.path.join(work_dir, 'grids.bin'), grids)
    subprocess.run([helper, 'gridsample', os.path.join(work_dir, 'images.bin'), os.path.join(work_dir, 'grids.bin'),
                    os.path.join(work_dir, 'sampled.bin')], check=True)
    sampled_cpp, sampled_py = cpp_support.read_blob(os.path.join(work_dir, 'sampled.bin')), grid_sample(images, grids)
    print('gridSample vs grid_sample (4 TPS + 4 random grids beyond the border): max |difference| %.3g, '
          '%.4f %% bit-identical' % (np.abs(sampled_cpp - sampled_py).max(), 100 * np.mean(sampled_cpp == sampled_py)))

    # the try-on of the test pairs
    pairs = cpp_support.read_pairs(SHARED_DATA)
    if args.pairs:
        pairs = pairs[:args.pairs]
    agnostic_diff = 0
    holder = type('Model', (), {'head_lut': np.isin(np.arange(256), KEPT_LABELS)})()
    import human_parsing
    import openpose
    for person, cloth in pairs:
        stem = os.path.splitext(person)[0]
        out = os.path.join(work_dir, 'agnostic.bin')
        subprocess.run([helper, 'agnostic', os.path.join(SHARED_DATA, 'viton', 'test'), stem, out], check=True)
        person_path, _, keypoints_path, labels_path = cpp_support.pair_files(SHARED_DATA, person, cloth)
        photo = cv.imread(person_path)
        crop, box = crop_to_ratio(photo)
        labels = labels_to_model(human_parsing.read_parsing(labels_path), box, photo.shape)
        pose = pose_map(keypoints_to_model(openpose.read_keypoints_json(keypoints_path), box))
        expected = CpVton.prepare_agnostic(holder, labels, resize_to_model(crop), pose)
        agnostic_diff += int(np.count_nonzero(cpp_support.read_blob(out) != expected))
    print('agnostic (GMM input) of %d test photos: %d values differ from Python' % (len(pairs), agnostic_diff))

    start = time.perf_counter()
    try_on = VirtualTryOn(CpVton(gmm, tom))
    expected = [cpp_support.python_try_on(try_on, SHARED_DATA, person, cloth) for person, cloth in pairs]
    print('Python API: %d pairs in %.0f s' % (len(pairs), time.perf_counter() - start))
    for label, path in (('published-format GMM (C++ Correlation layer)', gmm),
                        ('standard-op GMM (tools/convert_gmm.py)', gmm_standard)):
        worst, share, equal, worst_share, seconds = compare_try_ons(helper, path, tom, pairs, expected, work_dir)
        print('C++ vs Python try-on, %s, %d pairs (%.0f s): max difference %d grey level(s), %.4f %% of '
              'pixel values identical (worst pair %.3f %%), %d pairs identical'
              % (label, len(pairs), seconds, worst, 100 * share, 100 * worst_share, equal))

    # non-network time per try-on
    bench = subprocess.run([helper, 'bench', os.path.join(SHARED_DATA, 'viton', 'person', '000001_0.jpg'),
                            os.path.join(SHARED_DATA, 'viton', 'cloth', '000001_1.jpg'), str(args.repeat)],
                           check=True, capture_output=True, text=True).stdout
    print('C++ non-network parts (%s' % bench.strip().split('\n', 1)[0].split(', ', 1)[1] + '):')
    print('\n'.join(bench.strip().split('\n')[1:]))
    wall50, wall95, cpu50, cpu95 = python_non_network(max(20, args.repeat // 3))
    print('Python non-network total (same work): wall %.3f / %.3f ms, CPU %.3f / %.3f ms (median / 95th percentile)'
          % (wall50, wall95, cpu50, cpu95))
    print('(load average at the end: %s)' % ', '.join('%.1f' % v for v in os.getloadavg()))


if __name__ == '__main__':
    main()
