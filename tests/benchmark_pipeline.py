#!/usr/bin/env python3
"""Benchmark of the try-on's non-network work (agnostic, TPS grid, warp, composition) and of the
networks on the synthetic models. Prints figures; asserts nothing about time.

    python3 tests/benchmark_pipeline.py [--repeat 200]
"""
import argparse
import os
import sys
import tempfile
import time

import cv2 as cv
import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

from models import synthetic  # noqa: E402
import virtual_try_on as vto  # noqa: E402

SHARED = os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data', 'viton')


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--repeat', type=int, default=200)
    parser.add_argument('--models', help='directory of GMM/TOM files (default: synthetic ones in a temp dir)')
    args = parser.parse_args()
    directory = args.models or os.path.join(tempfile.gettempdir(), 'tryon_bench_models')
    if not args.models:
        os.makedirs(directory, exist_ok=True)
        for name, build in ((synthetic.GMM_FILE, synthetic.build_gmm), (synthetic.TOM_FILE, synthetic.build_tom)):
            if not os.path.isfile(os.path.join(directory, name)):
                build(os.path.join(directory, name))
    model = vto.CpVton(os.path.join(directory, synthetic.GMM_FILE), os.path.join(directory, synthetic.TOM_FILE))

    person = cv.imread(os.path.join(SHARED, 'person', '000001_0.jpg'))
    cloth = vto.to_unit_range(cv.imread(os.path.join(SHARED, 'cloth', '000001_1.jpg')))[None]
    labels = np.where(person.min(axis=2) < 235, 5, 0).astype(np.uint8)
    labels[:60][labels[:60] > 0] = 13
    keypoints = np.column_stack([np.linspace(60, 130, 18), np.linspace(30, 245, 18), np.ones(18)])
    theta = np.random.default_rng(0).uniform(-0.2, 0.2, (1, 50)).astype(np.float32)
    tom_out = np.random.default_rng(1).standard_normal((1, 4, 256, 192)).astype(np.float32)

    pose = vto.pose_map(keypoints)
    agnostic = model.prepare_agnostic(labels, person, pose)
    grid = vto.tps_grid(theta)
    warped = vto.grid_sample(cloth, grid)
    parts = {
        'pose_map': lambda: vto.pose_map(keypoints),
        'prepare_agnostic': lambda: model.prepare_agnostic(labels, person, pose),
        'tps_grid': lambda: vto.tps_grid(theta),
        'grid_sample': lambda: vto.grid_sample(cloth, grid),
        'compose': lambda: vto.CpVton.compose(tom_out, warped),
    }
    total = lambda: (model.prepare_agnostic(labels, person, vto.pose_map(keypoints)),  # noqa: E731
                     vto.CpVton.compose(tom_out, vto.grid_sample(cloth, vto.tps_grid(theta))))
    print('OpenCV %s, numpy %s, %d repetitions, median per call' % (cv.__version__, np.__version__, args.repeat))
    for name, fn in parts.items():
        print('  %-18s %7.3f ms' % (name, median_ms(fn, args.repeat)))
    print('  %-18s %7.3f ms   (agnostic + pose map + TPS grid + warp + composition)'
          % ('non-network total', median_ms(total, args.repeat)))
    runs = max(3, args.repeat // 40)
    print('  %-18s %7.1f ms   (synthetic GMM forward)' % ('GMM', median_ms(lambda: model.predict_theta(cloth, agnostic), runs)))
    print('  %-18s %7.1f ms   (synthetic TOM forward + composition)' % ('TOM', median_ms(lambda: model.try_on(agnostic, warped), runs)))


if __name__ == '__main__':
    main()
