#!/usr/bin/env python3
"""Benchmark of a try-on's work between the networks, stage by stage, on an idle machine and while
other processes keep every core busy; of loading CpVton (GMM + TOM) cold and warm; of the networks on
the synthetic models; and of the command line's wall time for one --synthetic try-on. Prints median and
95th percentile; asserts nothing about time.

    python3 benchmarks/benchmark_pipeline.py [--repeat 300] [--load N] [--no-cli] [--markdown]

The non-network stages run from the parsing network's output (the (2, 20, 384, 384) JPPNet scores of a
shared VITON photo, here from the synthetic parsing graph) to the 256x192 result; the networks' outputs
(theta, TOM output) are fixed arrays, so the stages see what they see in a try-on.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2 as cv
import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

import blazepose  # noqa: E402
import gmm_rewrite  # noqa: E402
import human_parsing as hp  # noqa: E402
import registry  # noqa: E402
from tools import synthetic  # noqa: E402
from cp_vton import (HEIGHT, OWN_GMM_FILE, OWN_TOM_FILE, WIDTH, CpVton, crop_to_ratio, grid_sample,  # noqa: E402
                     pose_map, resize_to_model, to_unit_range, tps_grid)
from tryon_pipeline import keypoints_to_model, labels_to_model  # noqa: E402

SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
PERSON = os.path.join(SHARED, 'viton', 'person', '000001_0.jpg')
CLOTH = os.path.join(SHARED, 'viton', 'cloth', '000001_1.jpg')
BUSY_LOOP = 'while True: pass'


def timings(fn, repeat, cpu=False):
    """Median and 95th percentile of the wall time in ms (and, with cpu, the median CPU time of this
    thread: what the call costs, whatever else the machine runs)."""
    fn()
    times, cpu_times = np.empty(repeat), np.empty(repeat)
    for i in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu_times[i] = time.thread_time() - start_cpu
        times[i] = time.perf_counter() - start
    result = (1e3 * np.median(times), 1e3 * np.percentile(times, 95))
    return result + (1e3 * np.median(cpu_times),) if cpu else result


class CpuLoad:
    """`count` processes spinning at full speed, for the duration of a with block."""

    def __init__(self, count):
        self.count, self.processes = count, []

    def __enter__(self):
        self.processes = [subprocess.Popen([sys.executable, '-c', BUSY_LOOP]) for _ in range(self.count)]
        time.sleep(0.5)  # let them start spinning
        return self

    def __exit__(self, *exc):
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait()


def build_models(directory):
    synthetic.build_all(directory, openpose=False)
    return (os.path.join(directory, synthetic.GMM_FILE), os.path.join(directory, synthetic.TOM_FILE),
            os.path.join(directory, synthetic.PARSING_FILE))


def parsing_scores(parsing_path, person):
    """(2, 20, 384, 384): the synthetic parsing network's output for the photo, and the parser (None where
    OpenCV reads no TensorFlow graph, 5.1 on: the scores then come from the file an earlier run under
    4.x or 5.0 left beside the models, so that both see the same input)."""
    saved = os.path.join(os.path.dirname(parsing_path), 'parsing_scores_%s.npy'
                         % os.path.splitext(os.path.basename(PERSON))[0])
    if hp.TENSORFLOW_IMPORTER:
        parser = hp.JppNet(parsing_path)
        scores = parser.forward_scores(person)
        np.save(saved, scores)
        return scores, parser
    if not os.path.isfile(saved):
        sys.exit('OpenCV %s reads no TensorFlow graph: run this benchmark once under OpenCV 4.x or 5.0 with the '
                 'same --models directory, which leaves the parsing scores this run reads (%s)' % (cv.__version__, saved))
    return np.load(saved), None


def stage_functions(model, parsing_path):
    """The try-on between the networks, split as VirtualTryOn.infer and CpVton.infer do it."""
    person = cv.imread(PERSON)
    cloth = cv.imread(CLOTH)
    scores, parser = parsing_scores(parsing_path, person)  # the parsing network's output
    rng = np.random.default_rng(0)
    keypoints = np.column_stack([np.linspace(60, 130, 18), np.linspace(30, 245, 18), np.ones(18)])
    theta = rng.uniform(-0.2, 0.2, (1, 50)).astype(np.float32)                  # the GMM's output
    tom_out = rng.standard_normal((1, 4, 256, 192)).astype(np.float32)         # the TOM's output

    crop, box = crop_to_ratio(person)
    model_size = (WIDTH, HEIGHT)
    labels = hp.merge_flipped(scores[0], scores[1], model_size)
    model_keypoints = keypoints_to_model(keypoints, box)
    agnostic = model.prepare_agnostic(labels, resize_to_model(crop), model_keypoints)
    cloth_tensor = to_unit_range(resize_to_model(cloth))[None]
    grid = tps_grid(theta)
    warped = grid_sample(cloth_tensor, grid)

    def after_parsing(crop, box, model_labels):  # as VirtualTryOn.analyse and render do it, networks' outputs fixed
        agnostic = model.prepare_agnostic(model_labels, resize_to_model(crop), keypoints_to_model(keypoints, box))
        cloth_tensor = to_unit_range(resize_to_model(cloth))[None]
        warped = grid_sample(cloth_tensor, tps_grid(theta))
        return CpVton.compose(tom_out, warped)

    def from_labels(labels):
        crop, box = crop_to_ratio(person)
        return after_parsing(crop, box, labels_to_model(labels, box, person.shape))

    def from_scores():
        crop, box = crop_to_ratio(person)
        # the labels from the scores at 256x192, as JppNet.infer(size=) gives them in analyse
        return after_parsing(crop, box, hp.merge_flipped(scores[0], scores[1], model_size))

    stages = [
        ('one read of the parsing scores', 'cv.norm over the 23.6 MB: the floor of the next step',
         lambda: cv.norm(scores, cv.NORM_INF)),
        ('parsing scores -> labels', 'flip merge, resize to 256x192, argmax',
         lambda: hp.merge_flipped(scores[0], scores[1], model_size)),
        ('pose_map', '18 PIL squares (drawn into the agnostic below)', lambda: pose_map(model_keypoints)),
        ('prepare_agnostic', 'body-shape blur, kept regions, pose squares',
         lambda: model.prepare_agnostic(labels, resize_to_model(crop), model_keypoints)),
        ('cloth tensor', 'to [-1, 1] RGB', lambda: to_unit_range(resize_to_model(cloth))),
        ('tps_grid', 'theta -> 256x192 grid', lambda: tps_grid(theta)),
        ('grid_sample', 'warp of the cloth', lambda: grid_sample(cloth_tensor, grid)),
        ('compose', 'tanh, sigmoid, blend, to BGR', lambda: CpVton.compose(tom_out, warped)),
        ('non-network, from scores', 'all but pose_map, parsing output -> result', from_scores),
        ('non-network, from labels', 'the same from a label map', lambda: from_labels(labels)),
    ]
    own = CpVton(*(os.path.join(REPO_DIR, 'models', name) for name in (OWN_GMM_FILE, OWN_TOM_FILE)))
    # the shipped TOM's own input (photo-kept: person tensor, warped cloth and its mask) and compose
    model_person = resize_to_model(crop)
    own_person = own.prepare_person(labels, model_person, model_keypoints)
    _, own_warped, own_input = own.tom_input_of(own_person, cloth)
    pose_estimator = blazepose.BlazePose(registry.find_model(blazepose.BLAZEPOSE_TFLITE))
    # BlazePose keeps its last photo's result: alternate the photo and its mirror so that each call runs
    photos = [person, cv.flip(person, 1)]
    networks = [
        ('GMM forward (published size, synthetic)', lambda: model.predict_theta(cloth_tensor, agnostic)),
        ('TOM forward + compose (published size, synthetic)', lambda: model.try_on(agnostic, warped)),
        ('GMM forward (shipped, %s)' % OWN_GMM_FILE, lambda: own.predict_theta(cloth_tensor, agnostic)),
        ('TOM forward + compose (shipped, %s)' % OWN_TOM_FILE,
         lambda: own.compose(own.tom_forward(own_input), own_warped, model_person, labels, own_person)),
        ('BlazePose infer (detector + landmarks, 256x192 photo)', lambda: pose_estimator.infer(photos.reverse() or photos[0])),
    ]
    if parser is not None:
        networks.append(('JPPNet forward (synthetic)', lambda: parser.forward_scores(person)))
    return stages, networks


def load_times(gmm, tom, runs):
    # (getattr: the script also runs against older checkouts, which have no cache, for before/after)
    cache = getattr(gmm_rewrite, 'gmm_cache_dirs', lambda path: [os.path.join(os.path.dirname(path), '.cache')])(gmm)[0]
    cold = []
    for _ in range(runs):
        shutil.rmtree(cache, ignore_errors=True)
        start = time.perf_counter()
        CpVton(gmm, tom)
        cold.append(time.perf_counter() - start)
    warm = []
    for _ in range(runs):
        start = time.perf_counter()
        CpVton(gmm, tom)
        warm.append(time.perf_counter() - start)
    return cold, warm


def cli_times(home):
    """Wall time of `virtual_try_on.py --synthetic` on a shared pair: a first run that also builds
    the synthetic models, then one with the models built but no GMM cache, then a warm one."""
    pose = None
    try:
        from models import download_models
        pose = download_models.fetch(['pose_landmark_full.tflite'], os.environ.get('TRYON_MODEL_CACHE')
                                     or os.path.join(REPO_DIR, 'models'), progress=False)[0]
        os.symlink(pose, os.path.join(home, 'pose_landmark_full.tflite'))
    except Exception as err:  # no BlazePose at hand: the pose network is left out of the timing
        print('note: BlazePose not available (%s); the CLI runs get --keypoints' % err, file=sys.stderr)
    out = os.path.join(home, 'result.png')
    command = [sys.executable, os.path.join(REPO_DIR, 'virtual_try_on.py'), '--synthetic',
               '-i', PERSON, '-c', CLOTH, '-o', out]
    if pose is None:
        keypoints = os.path.join(home, 'keypoints.json')
        with open(keypoints, 'w') as f:
            f.write('{"people": [{"pose_keypoints": [%s]}]}' % ', '.join(
                '%g, %g, 1' % (60 + 4 * k, 30 + 12 * k) for k in range(18)))
        command += ['--keypoints', keypoints]
    env = dict(os.environ, OPENCV_TRYON_MODELS=home)
    env.pop('OPENCV_TRYON_CACHE', None)
    results = []
    for label in ('first run (builds the synthetic models)', 'models built, no GMM cache', 'second run (warm)'):
        if label.startswith('models built'):
            shutil.rmtree(os.path.join(home, 'synthetic', '.cache'), ignore_errors=True)
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        results.append((label, time.perf_counter() - start, result.returncode))
        if result.returncode:
            print(result.stderr, file=sys.stderr)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeat', type=int, default=300, help='calls per stage and condition')
    parser.add_argument('--load', type=int, default=os.cpu_count() or 2,
                        help='busy processes started for the loaded measurements (0: skip them)')
    parser.add_argument('--models', help='directory of the synthetic GMM/TOM/parsing files (default: a temp dir)')
    parser.add_argument('--no-cli', action='store_true', help='skip the command-line runs')
    parser.add_argument('--load-runs', type=int, default=5, help='CpVton loads per condition')
    args = parser.parse_args()

    directory = args.models or os.path.join(tempfile.gettempdir(), 'tryon_bench_models')
    gmm, tom, parsing = build_models(directory)
    print('OpenCV %s, NumPy %s, %d CPU cores, cv.getNumThreads() = %d; median / 95th percentile of %d calls'
          % (cv.__version__, np.__version__, os.cpu_count(), cv.getNumThreads(), args.repeat))
    try:
        print('load average before: %.2f %.2f %.2f' % os.getloadavg())
    except OSError:
        pass

    cold, warm = load_times(gmm, tom, args.load_runs)
    model = CpVton(gmm, tom)
    stages, networks = stage_functions(model, parsing)
    idle = [timings(fn, args.repeat, cpu=True) for _, _, fn in stages]
    loaded = None
    if args.load:
        with CpuLoad(args.load):
            loaded = [timings(fn, args.repeat, cpu=True) for _, _, fn in stages]
    try:
        print('load average after: %.2f %.2f %.2f' % os.getloadavg())
    except OSError:
        pass

    head = '| stage | what | median | p95 | CPU |'
    rule = '|---|---|---:|---:|---:|'
    if loaded:
        head += ' %d busy processes: median | p95 | CPU |' % args.load
        rule += '---:|---:|---:|'
    print('\n' + head + '\n' + rule)
    for i, (name, what, _) in enumerate(stages):
        row = '| %s | %s | %.2f ms | %.2f ms | %.2f ms |' % ((name, what) + idle[i])
        if loaded:
            row += ' %.2f ms | %.2f ms | %.2f ms |' % loaded[i]
        print(row)
    print('(wall-clock median and 95th percentile; CPU: median CPU time of the calling thread)')

    print('\n| load / network | median | p95 |\n|---|---:|---:|')
    print('| `CpVton(gmm, tom)` cold (no GMM cache: parse, rewrite, write cache) | %.0f ms | %.0f ms |'
          % (1e3 * np.median(cold), 1e3 * np.percentile(cold, 95)))
    print('| `CpVton(gmm, tom)` warm (cached rewrite) | %.0f ms | %.0f ms |'
          % (1e3 * np.median(warm), 1e3 * np.percentile(warm, 95)))
    runs = max(5, args.repeat // 30)
    for name, fn in networks:
        print('| %s | %.1f ms | %.1f ms |' % ((name,) + timings(fn, runs)))

    if not args.no_cli:
        home = tempfile.mkdtemp(prefix='tryon_bench_cli_')
        try:
            print('\n| `virtual_try_on.py --synthetic` on %s | wall time |\n|---|---:|'
                  % os.path.basename(PERSON))
            for label, seconds, status in cli_times(home):
                print('| %s | %.2f s%s |' % (label, seconds, '' if status == 0 else ' (exit %d)' % status))
        finally:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == '__main__':
    main()
