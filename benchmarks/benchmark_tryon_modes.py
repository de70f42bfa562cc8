#!/usr/bin/env python3
"""Figures for the try-on's three uses, on the synthetic GMM/TOM/parsing and the real BlazePose; prints
them, asserts nothing about time.

    python3 benchmarks/benchmark_tryon_modes.py [--repeat 20] [--models DIR]

1. Full resolution on a 12 MP photo (a VITON test photo enlarged 12x, padded to 3000x4000): time of
   infer() at full resolution and at --model-size on one analysis, the difference; the peak memory of the
   command line for both; the Laplacian variance inside the garment region (full resolution vs the 256x192
   result scaled up), on that photo and on one enlarged 3x.
2. Many garments: analyse + 1 garment vs analyse + 10 garments, against one GMM + TOM forward.
(The dataset-mode figures come from the command itself: see README, "Three uses".)
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import cv2 as cv
import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

import blazepose  # noqa: E402
import human_parsing  # noqa: E402
import openpose  # noqa: E402
from cp_vton import HEIGHT, CpVton, grid_sample, resize_to_model, to_image, to_unit_range, tps_grid  # noqa: E402
from full_resolution import FEATHER, edit_region  # noqa: E402
from garment_mask import cloth_mask  # noqa: E402
from tryon_pipeline import VirtualTryOn  # noqa: E402
from models import download_models
from tools import synthetic  # noqa: E402

SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
TEST = os.path.join(SHARED, 'viton', 'test')
PAIRS = [line.split() for line in open(os.path.join(SHARED, 'viton', 'test_pairs.txt'))]


def stats(times):
    """times: (n, 2) of (wall, CPU) seconds."""
    times = 1e3 * np.asarray(times).reshape(-1, 2)
    return 'wall median %7.1f ms, p95 %7.1f ms; CPU median %7.1f ms, p95 %7.1f ms' % (
        np.median(times[:, 0]), np.percentile(times[:, 0], 95), np.median(times[:, 1]), np.percentile(times[:, 1], 95))


def clock():
    return np.array([time.perf_counter(), time.process_time()])


def timed(fn, repeat):
    """(repeat, 2) wall and process-CPU seconds of fn() (after one warm-up call). On a shared machine the
    CPU time is the steadier figure: it does not count the time other processes hold the cores."""
    fn()
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return np.array(times)


def enlarged(index, scale, size):
    """Photo, labels, keypoints and cloth of test pair `index`, the photo enlarged and padded to size (w, h),
    the cloth enlarged by the same factor."""
    person_name, cloth_name = PAIRS[index]
    stem = os.path.splitext(person_name)[0]
    person = cv.resize(cv.imread(os.path.join(TEST, 'image', person_name)), None, fx=scale, fy=scale,
                       interpolation=cv.INTER_CUBIC)
    labels = cv.resize(human_parsing.read_parsing(os.path.join(TEST, 'image-parse', stem + '.png')), None,
                       fx=scale, fy=scale, interpolation=cv.INTER_NEAREST)
    keypoints = openpose.read_keypoints_json(os.path.join(TEST, 'pose', stem + '_keypoints.json'))
    left, top = (size[0] - person.shape[1]) // 2, (size[1] - person.shape[0]) // 2
    pad = (top, size[1] - person.shape[0] - top, left, size[0] - person.shape[1] - left)
    photo = cv.copyMakeBorder(person, *pad, cv.BORDER_CONSTANT, value=(40, 160, 90))
    labels = cv.copyMakeBorder(labels, *pad, cv.BORDER_CONSTANT, value=0)
    found = keypoints[:, 2] > 0
    keypoints[:, 0] = np.where(found, keypoints[:, 0] * scale + left, 0)
    keypoints[:, 1] = np.where(found, keypoints[:, 1] * scale + top, 0)
    cloth = cv.resize(cv.imread(os.path.join(TEST, 'cloth', cloth_name)), None, fx=scale, fy=scale,
                      interpolation=cv.INTER_CUBIC)
    return photo, labels, keypoints, cloth


def laplacian_variance(image, where):
    return float(cv.Laplacian(cv.cvtColor(image, cv.COLOR_BGR2GRAY), cv.CV_64F)[where].var())


def garment_detail(chain, photo, labels, keypoints, cloth):
    """Laplacian variance where the garment (not TOM's rendering) makes the pixel, deep inside the region:
    full resolution vs the 256x192 result scaled up (linear and cubic), and the cloth photo's own."""
    analysis = chain.analyse(photo, keypoints, labels)
    x, y, w, h = analysis.box
    grid, warped, tom_output = chain.render(analysis, cloth)
    full = VirtualTryOn.composite(analysis, cloth, grid, tom_output)[y:y + h, x:x + w]
    small = CpVton.compose(tom_output, warped)
    composition = 1 / (1 + np.exp(-tom_output[0, 3]))
    warped_mask = grid_sample(cloth_mask(resize_to_model(cloth))[None, None].astype(np.float32), grid)
    region = edit_region(analysis.labels, warped_mask[0, 0], composition) & (composition > 0.5)
    margin = int(np.ceil(h / HEIGHT)) * 2 + 2 * FEATHER + 1
    deep = cv.erode(cv.resize(region.astype(np.uint8), (w, h), interpolation=cv.INTER_NEAREST),
                    np.ones((margin, margin), np.uint8)) > 0
    figures = {'full resolution': laplacian_variance(full, deep)}
    for name, flag in (('256x192 scaled up (linear)', cv.INTER_LINEAR), ('256x192 scaled up (cubic)', cv.INTER_CUBIC)):
        figures[name] = laplacian_variance(cv.resize(small, (w, h), interpolation=flag), deep)
    # the warped cloth alone (composition mask forced to 1): what the garment brings, without TOM's mix
    cloth_only = tom_output.copy()
    cloth_only[0, 3] = 30
    full_cloth = VirtualTryOn.composite(analysis, cloth, grid, cloth_only)[y:y + h, x:x + w]
    figures['warped cloth alone, full resolution'] = laplacian_variance(full_cloth, deep)
    figures['warped cloth alone, 256x192 scaled up (linear)'] = laplacian_variance(
        cv.resize(to_image(warped[0]), (w, h), interpolation=cv.INTER_LINEAR), deep)
    figures['cloth photo (its garment)'] = laplacian_variance(cloth, cv.erode(cloth_mask(cloth), np.ones((5, 5))) > 0)
    return int(deep.sum()), figures


def cli_peak(args):
    """Peak RSS (MiB) and wall time of one command-line run in a fresh process."""
    code = ('import resource, subprocess, sys, time; s = time.perf_counter(); '
            'r = subprocess.run(sys.argv[1:], capture_output=True); t = time.perf_counter() - s; '
            'print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, t)')
    out = subprocess.run([sys.executable, '-c', code, sys.executable, os.path.join(REPO_DIR, 'virtual_try_on.py')]
                         + [str(a) for a in args], capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1]) / 1024, float(out[2])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--models', help='directory of the synthetic models (default: built in a temp dir)')
    parser.add_argument('--threads', type=int, help='cv.setNumThreads (default: OpenCV\'s choice)')
    args = parser.parse_args()
    if args.threads:
        cv.setNumThreads(args.threads)
    directory = args.models or os.path.join(tempfile.gettempdir(), 'tryon_bench_models')
    if not args.models:
        synthetic.build_all(directory, openpose=False)
    gmm, tom = os.path.join(directory, 'cp_vton_gmm.onnx'), os.path.join(directory, 'cp_vton_tom.onnx')
    cp_vton = CpVton(gmm, tom)
    blazepose_path = download_models.fetch(['pose_landmark_full.tflite'],
                                           os.environ.get('TRYON_MODEL_CACHE') or os.path.join(REPO_DIR, 'models'),
                                           progress=False)[0]
    chain = VirtualTryOn(cp_vton, blazepose.BlazePose(blazepose_path),
                         human_parsing.JppNet(os.path.join(directory, 'lip_jppnet_384.pb')))
    print('OpenCV %s, numpy %s, %d CPU threads, %d repetitions' % (cv.__version__, np.__version__,
                                                                  cv.getNumThreads(), args.repeat))

    # 1. full resolution, 12 MP
    photo, labels, keypoints, cloth = enlarged(1, 12, (3000, 4000))
    analysis = chain.analyse(photo, keypoints, labels)
    full, small = [], []
    for _ in range(args.repeat + 1):   # interleaved, so that load on the machine hits both alike
        for times, full_resolution in ((full, True), (small, False)):
            start = clock()
            chain.infer(analysis, cloth, full_resolution=full_resolution)
            times.append(clock() - start)
    full, small = np.array(full[1:]), np.array(small[1:])
    print('\n1. full resolution: photo %dx%d (%.1f MP), crop %dx%d, cloth %dx%d'
          % (photo.shape[1], photo.shape[0], photo.shape[0] * photo.shape[1] / 1e6, analysis.box[2], analysis.box[3],
             cloth.shape[1], cloth.shape[0]))
    print('  infer, --model-size       %s' % stats(small))
    print('  infer, full resolution    %s' % stats(full))
    print('  extra for full resolution %s' % stats(np.subtract(full, small)))
    result = chain.infer(analysis, cloth)
    for ext in ('.png', '.jpg'):   # writing the result: not part of the try-on, but a user waits for it
        print('  encoding the result as %s  %s' % (ext, stats(timed(lambda: cv.imencode(ext, result), 3))))
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, name) for name in ('photo.png', 'labels.png', 'kp.json', 'cloth.png')]
        cv.imwrite(paths[0], photo)
        cv.imwrite(paths[1], labels)
        with open(paths[2], 'w') as f:
            f.write('{"people": [{"pose_keypoints": %s}]}' % keypoints.ravel().tolist())
        cv.imwrite(paths[3], cloth)
        for what, extra in (('--model-size', ['--model-size']), ('full resolution', [])):
            status, peak, seconds = cli_peak(['-i', paths[0], '-c', paths[3], '-o', os.path.join(tmp, 'out.png'),
                                              '--labels', paths[1], '--keypoints', paths[2], '--gmm', gmm,
                                              '--tom', tom] + extra)
            print('  command line, %-15s exit %d, peak RSS %6.0f MiB, %.1f s (model loading, PNG I/O included)'
                  % (what, status, peak, seconds))
    for scale, size in ((12, (3000, 4000)), (3, (1000, 768))):
        count, figures = garment_detail(chain, *enlarged(1, scale, size))
        print('  Laplacian variance in the garment region, photo enlarged %dx (%d pixels):' % (scale, count))
        for name, value in figures.items():
            print('    %-46s %8.1f' % (name, value))

    # 2. many garments
    person_name = PAIRS[0][0]
    person = cv.imread(os.path.join(TEST, 'image', person_name))
    big = enlarged(0, 3, (576, 768))[0]
    clothes = [cv.imread(os.path.join(TEST, 'cloth', PAIRS[i][1])) for i in range(10)]
    clothes_big = [cv.resize(c, None, fx=3, fy=3, interpolation=cv.INTER_CUBIC) for c in clothes]
    runs = max(3, args.repeat // 4)
    agnostic = chain.analyse(person).agnostic
    cloth_tensor = to_unit_range(clothes[0])[None]
    tom_input = np.concatenate([agnostic, grid_sample(cloth_tensor, tps_grid(np.zeros((1, 50))))], axis=1)

    def forwards():
        cp_vton.predict_theta(cloth_tensor, agnostic)
        cp_vton.tom.setInput(tom_input, cp_vton.tom_input)
        cp_vton.tom.forward()
    gmm_tom = np.median(timed(forwards, runs), axis=0)
    print('\n2. many garments (BlazePose + synthetic parsing, GMM, TOM; %d runs each; wall / CPU)' % runs)
    print('  GMM + TOM forward: %.1f / %.1f ms' % tuple(1e3 * gmm_tom))
    for what, photo_, clothes_, full_resolution in (('256x192 photo, --model-size', person, clothes, False),
                                                    ('576x768 photo, full resolution', big, clothes_big, True)):
        one = timed(lambda: chain.infer(chain.analyse(photo_), clothes_[0], full_resolution=full_resolution), runs)

        def ten():
            analysis = chain.analyse(photo_)
            for cloth in clothes_:
                chain.infer(analysis, cloth, full_resolution=full_resolution)
        t1, t10 = np.median(one, axis=0), np.median(timed(ten, runs), axis=0)
        extra = (t10 - t1) / 9
        print('  %s: 1 garment %.0f / %.0f ms, 10 garments %.0f / %.0f ms, each extra garment %.1f / %.1f ms '
              '(GMM + TOM forward %+.1f / %+.1f ms)' % ((what,) + tuple(1e3 * t1) + tuple(1e3 * t10)
                                                       + tuple(1e3 * extra) + tuple(1e3 * (extra - gmm_tom))))
        # the same, steadier on a shared machine: one garment on the analysis vs the two forwards alone,
        # interleaved, median of the per-pair differences
        analysis = chain.analyse(photo_)
        pairs = []
        for i in range(3 * runs):
            start = clock()
            chain.infer(analysis, clothes_[i % 10], full_resolution=full_resolution)
            middle = clock()
            forwards()
            pairs.append((middle - start) - (clock() - middle))
        print('    one garment minus GMM + TOM forward, %d interleaved pairs: %s' % (len(pairs), stats(pairs)))
    print('\npeak RSS of this process %.0f MiB' % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


if __name__ == '__main__':
    main()
