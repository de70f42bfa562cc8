"""Figures for BlazePose on the VITON test split: faithfulness to MediaPipe's own output, accuracy
against VITON's OpenPose keypoints (per part, before/after calibration), and the speed of infer().

    python3 benchmarks/benchmark_blazepose.py [--before OLD_blazepose.py] [--cache /tmp/landmarks] [--speed 200]

--before names another module with a BlazePose class (e.g. `git show main:blazepose.py > /tmp/blazepose_main.py`;
openpose.py before the split) whose
BlazePose is measured the same way, for the before/after tables. The machine's load changes the
timings: they are the median and 95th percentile of many calls.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import cv2 as cv
import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)
import blazepose  # noqa: E402
import coco_parts  # noqa: E402
import command_line  # noqa: E402
import registry  # noqa: E402
from tools import fit_pose_calibration as fpc  # noqa: E402

DATA = os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data', 'viton')


def load_module(path):
    spec = importlib.util.spec_from_file_location('openpose_before', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mediapipe_reference(names, size):
    """MediaPipe's own output: (33 landmarks (N, 33, 3) NaN where no person, COCO parts (N, 18, 3)
    as MediaPipe reports them: visibility >= 0.5 and inside the photo)."""
    with open(os.path.join(DATA, 'test_mediapipe_pose.json')) as f:
        photos = json.load(f)['photos']
    landmarks = np.full((len(names), 33, 3), np.nan)
    parts = np.zeros((len(names), 18, 3))
    for i, name in enumerate(names):
        if photos.get(name):
            landmarks[i] = photos[name]['landmarks33']
            coco = np.array(photos[name]['coco18'])
            shown = (coco[:, 2] >= 0.5) & fpc._inside(coco, size)
            parts[i, shown] = coco[shown]
    return landmarks, parts


def print_table(rows, label):
    print('\n%s' % label)
    print('| part | ' + ' | '.join(name for name, _ in rows) + ' |')
    print('|---|' + '---|' * len(rows))
    for part in ('all',) + coco_parts.COCO_PARTS:
        cells = []
        for _, figures in rows:
            f = figures[part]
            cells.append('%.1f px, %.0f %% <=10, missed %.1f %%' % (f['median'], 100 * f['within10'], 100 * f['missed']))
        print('| %s | %s |' % (part, ' | '.join(cells)))


def summary_line(name, f):
    return ('%-28s median %.2f px, within 10 px %.1f %%, 95th pct %.1f px, hips %.1f / %.1f px, knees %.1f / %.1f px, '
            'missed %d of %d (%.2f %%), false alarms %d of %d' % (
                name, f['all']['median'], 100 * f['all']['within10'], f['all']['p95'], f['RHip']['median'],
                f['LHip']['median'], f['RKnee']['median'], f['LKnee']['median'], f['all']['missed_count'],
                f['all']['reported'], 100 * f['all']['missed'], f['all']['false_alarms'], f['all']['not_reported']))


def speed(estimators, image, repeats):
    """{name: (median, 95th pct) ms} of infer(), the estimators called in turn (same load)."""
    times = {name: [] for name in estimators}
    for est in estimators.values():
        est.infer(image)
    for k in range(repeats):
        image_k = image.copy()
        image_k[0, 0, 0] = k % 256         # a new photo each call: no cached result
        for name, est in estimators.items():
            start = time.perf_counter()
            est.infer(image_k)
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: (np.median(t), np.percentile(t, 95)) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--before', default=None,
                        help='an older blazepose.py (or openpose.py before the split) to compare with')
    parser.add_argument('--cache', default=None, help='folder holding cached landmarks (fit_pose_calibration.py)')
    parser.add_argument('--speed', type=int, default=0, help='time infer() this many times (0: skip)')
    parser.add_argument('--refine-passes', type=int, default=0)
    args = parser.parse_args(argv)
    test = os.path.join(DATA, 'test')
    model = registry.find_model(blazepose.BLAZEPOSE_TFLITE, os.environ.get('TRYON_MODEL_CACHE'))
    estimator = blazepose.BlazePose(model, calibration=None, refine_passes=args.refine_passes)
    names, landmarks = fpc.blazepose_landmarks(estimator, test, args.cache)
    size = fpc.image_size(test, names)
    reference = fpc.openpose_split(test, names)
    mp_landmarks, mp_parts = mediapipe_reference(names, size)
    table = blazepose.load_pose_calibration(blazepose.BLAZEPOSE_CALIBRATION)

    print('OpenCV %s, %d test photos, refine passes %d' % (cv.__version__, len(names), args.refine_passes))
    both = ~np.isnan(landmarks[:, 0, 0]) & ~np.isnan(mp_landmarks[:, 0, 0])
    dist = np.hypot(*(landmarks[both, :33, :2] - mp_landmarks[both, :, :2]).transpose(2, 0, 1)).ravel()
    ours_plain = fpc.coco_parts(landmarks, size)
    faithful = fpc.compare(ours_plain, mp_parts)['all']
    print('faithfulness to MediaPipe (33 landmarks, %d photos with a person in both; %d photos where only one '
          'finds one): median %.2f px, 95th pct %.2f px, max %.1f px; COCO parts MediaPipe reports that we '
          'miss: %d of %d (%.2f %%), we report and it does not: %d'
          % (both.sum(), np.sum(np.isnan(landmarks[:, 0, 0]) != np.isnan(mp_landmarks[:, 0, 0])),
             np.median(dist), np.percentile(dist, 95), dist.max(), faithful['missed_count'], faithful['reported'],
             100 * faithful['missed'], faithful['false_alarms']))

    rows = []
    if args.before:
        old = load_module(args.before).BlazePose(model)
        before = np.stack([old.infer(cv.imread(os.path.join(test, 'image', n))) for n in names])
        rows.append(('before (%s)' % os.path.basename(args.before), fpc.compare(before, reference)))
    rows.append(('MediaPipe itself', fpc.compare(mp_parts, reference)))
    rows.append(('ours, uncalibrated', fpc.compare(ours_plain, reference)))
    rows.append(('ours, calibrated', fpc.compare(fpc.coco_parts(landmarks, size, table), reference)))
    print('\naccuracy against VITON OpenPose (test split; missed = OpenPose reports it, we do not):')
    for name, figures in rows:
        print(summary_line(name, figures))
    print_table(rows, 'per part: median distance, share within 10 px, missed')

    if args.speed:
        image = cv.imread(os.path.join(test, 'image', names[0]))
        estimators = {'ours': blazepose.BlazePose(model)}
        if args.before:
            estimators['before'] = load_module(args.before).BlazePose(model)
        for name, (median, p95) in speed(estimators, image, args.speed).items():
            print('speed %-7s infer on %dx%d: median %.1f ms, 95th pct %.1f ms (%d calls, interleaved)'
                  % (name, image.shape[1], image.shape[0], median, p95, args.speed))
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
