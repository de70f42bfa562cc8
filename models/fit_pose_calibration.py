"""Fit the BlazePose -> OpenPose COCO calibration (models/blazepose_coco_calibration.json).

CP-VTON's GMM and TOM were trained on OpenPose COCO keypoints. BlazePose's landmarks sit
elsewhere on the body (hips most of all), so each COCO part gets a small linear correction in a
body frame (origin: the mean of shoulders and hips; unit: the mid-shoulder to mid-hip length)
from the frame coordinates, depth and visibility of the 33 landmarks, fitted by ridge regression
(least distances, by reweighting) on the VITON train split (4,000 photos with VITON's OpenPose JSON). Each part's visibility threshold
is the one that makes fewest misses plus false alarms plus parts more than 10 px off against
OpenPose on train. The test split
is only evaluated (`--evaluate`), never fitted on.

    python3 models/fit_pose_calibration.py --data ../shared/data/viton [--cache /tmp/landmarks]
    python3 models/fit_pose_calibration.py --data ../shared/data/viton --evaluate
"""
import argparse
import json
import os
import sys

import cv2 as cv
import numpy as np

if not __package__:  # run as a script (python3 models/fit_pose_calibration.py): make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402
import openpose  # noqa: E402

RIDGE_LAMBDAS = (0.1, 0.3, 1.0, 3.0, 10.0)
ROBUST_ITERATIONS = 10      # reweighting rounds: a least-absolute-distance fit
FAR_WEIGHTS = (1, 1.5, 2, 3)
FAR = 10.0                  # px: a part drawn this far from OpenPose's counts as wrong when choosing thresholds


def photo_names(split_dir):
    return sorted(f for f in os.listdir(os.path.join(split_dir, 'image')) if f.endswith('.jpg'))


def openpose_keypoints(split_dir, name):
    path = os.path.join(split_dir, 'pose', os.path.splitext(name)[0] + '_keypoints.json')
    return openpose.read_keypoints_json(path)


def blazepose_landmarks(estimator, split_dir, cache_dir=None):
    """(names, (N, 39, 5) landmarks, NaN where no person) of every photo of a split; cached as
    .npz in cache_dir keyed by the split's path and the estimator's refine passes."""
    names = photo_names(split_dir)
    cache = None
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        tag = '%s_r%d' % (os.path.abspath(split_dir).strip('/').replace('/', '_'), estimator.refine_passes)
        cache = os.path.join(cache_dir, tag + '.npz')
        if os.path.isfile(cache):
            data = np.load(cache)
            if list(data['names']) == names:
                return names, data['landmarks']
    landmarks = np.full((len(names), openpose.POSE_LANDMARKS['count'], 5), np.nan)
    for i, name in enumerate(names):
        image = cv.imread(os.path.join(split_dir, 'image', name))
        if image is None:
            print('warning: cannot read %s' % name, file=sys.stderr)
            continue
        result = estimator.estimate(image)
        if result['landmarks'] is not None:
            landmarks[i] = result['landmarks']
        if (i + 1) % 500 == 0:
            print('%s: %d/%d' % (os.path.basename(split_dir), i + 1, len(names)), file=sys.stderr)
    if cache:
        np.savez(cache, names=np.array(names), landmarks=landmarks)
    return names, landmarks


def openpose_split(split_dir, names):
    return np.stack([openpose_keypoints(split_dir, name) for name in names])


def image_size(split_dir, names):
    image = cv.imread(os.path.join(split_dir, 'image', names[0]))
    return image.shape[1], image.shape[0]


def _design(landmarks):
    """Per photo with a person: features (N, F), scale (N,), uncalibrated COCO parts (N, 18, 3)."""
    rows = [openpose.pose_calibration_features(lm) for lm in landmarks]
    features = np.stack([r[0] for r in rows])
    scales = np.array([r[2] for r in rows])
    base = np.stack([openpose.blazepose_to_coco(lm) for lm in landmarks])
    return features, scales, base


def _ridge(features, targets, lam):
    """Ridge solution (F, 2) with the constant (last feature) not penalised."""
    penalty = lam * np.eye(features.shape[1])
    penalty[-1, -1] = 0
    return np.linalg.solve(features.T @ features + penalty, features.T @ targets)


def fit_part(features, targets, lam):
    """Ridge fit of the least distances (not squares): iteratively reweighted by 1 / residual, so
    OpenPose's gross mistakes (a swapped or misplaced limb) pull little."""
    weights = _ridge(features, targets, lam)
    for _ in range(ROBUST_ITERATIONS):
        residual = np.hypot(*(features @ weights - targets).T)
        root = np.sqrt(1.0 / np.maximum(residual, 0.02))[:, None]
        weights = _ridge(features * root, targets * root, lam)
    return weights


def fit(landmarks, reference, size, log=print):
    """The calibration table (dict) from train landmarks (N, 39, 5) and OpenPose parts (N, 18, 3)."""
    has_person = ~np.isnan(landmarks[:, 0, 0])
    landmarks, reference = landmarks[has_person], reference[has_person]
    features, scales, base = _design(landmarks)
    count = len(landmarks)
    holdout = np.arange(count) >= int(0.8 * count)      # the last fifth of train chooses lambda
    best = None
    for lam in RIDGE_LAMBDAS:
        errors = []
        for part in range(len(openpose.COCO_PARTS)):
            seen = reference[:, part, 2] > 0
            targets = (reference[:, part, :2] - base[:, part, :2]) / scales[:, None]
            w = fit_part(features[seen & ~holdout], targets[seen & ~holdout], lam)
            test = seen & holdout
            moved = base[test, part, :2] + scales[test, None] * (features[test] @ w)
            errors.append(np.hypot(*(moved - reference[test, part, :2]).T))
        errors = np.concatenate(errors)
        score = (np.median(errors), np.mean(errors <= 10))
        log('lambda %-6g train holdout: median %.2f px, within 10 px %.1f %%' % (lam, score[0], 100 * score[1]))
        if best is None or score[0] < best[1][0]:
            best = (lam, score)
    lam = best[0]
    weights = np.zeros((len(openpose.COCO_PARTS), 2, features.shape[1]))
    for part in range(len(openpose.COCO_PARTS)):
        seen = reference[:, part, 2] > 0
        targets = (reference[:, part, :2] - base[:, part, :2]) / scales[:, None]
        weights[part] = fit_part(features[seen], targets[seen], lam).T
    table = {'features': 'body frame x, y and z / scale of the 33 landmarks, their visibility, 1',
             'weights': weights.round(6).tolist(), 'ridge_lambda': lam}
    # visibility threshold per part, on train: fewest misses + false alarms + w x parts drawn more
    # than FAR px from OpenPose's (a square in the wrong place is as bad as a wrong square); w is the
    # smallest that gives 96 % within FAR on train without more misses than the uncalibrated mapping
    parts = np.stack([openpose.apply_pose_calibration(lm, table) for lm in landmarks])
    inside = _inside(parts, size)
    seen = reference[:, :, 2] > 0
    far = np.hypot(*(parts[..., :2] - reference[..., :2]).transpose(2, 0, 1)) > FAR
    plain = np.stack([openpose.blazepose_to_coco(lm) for lm in landmarks])
    plain_missed = np.sum(seen & ~((plain[..., 2] >= 0.5) & _inside(plain, size)))
    grid = np.round(np.arange(0.02, 0.99, 0.02), 2)
    for far_weight in FAR_WEIGHTS:
        thresholds = []
        for part in range(len(openpose.COCO_PARTS)):
            costs = []
            for t in grid:
                shown = (parts[:, part, 2] >= t) & inside[:, part]
                costs.append(np.sum(seen[:, part] != shown) + far_weight * np.sum(shown & seen[:, part] & far[:, part]))
            thresholds.append(float(grid[int(np.argmin(costs))]))
        shown = (parts[..., 2] >= np.array(thresholds)) & inside
        within, missed = 1 - np.mean(far[shown & seen]), np.sum(seen & ~shown)
        log('far weight %g: train within %g px %.2f %%, missed %d (uncalibrated: %d)'
            % (far_weight, FAR, 100 * within, missed, plain_missed))
        if within >= 0.96 and missed <= plain_missed:
            break
    table['far_weight'] = far_weight
    table['visibility_threshold'] = thresholds
    table['fitted_on'] = 'VITON train split, %d photos with a person (BlazePose, MediaPipe pipeline)' % count
    return table


def _inside(parts, size):
    width, height = size
    return ((parts[..., 0] >= 0) & (parts[..., 0] <= width - 1) & (parts[..., 1] >= 0) & (parts[..., 1] <= height - 1))


def coco_parts(landmarks, size, table=None, threshold=0.5):
    """(N, 18, 3) COCO parts as BlazePose.infer gives them (missing: all 0), from cached landmarks."""
    out = np.zeros((len(landmarks), len(openpose.COCO_PARTS), 3))
    for i, lm in enumerate(landmarks):
        if np.isnan(lm[0, 0]):
            continue
        if table is None:
            parts, limits = openpose.blazepose_to_coco(lm), np.full(len(openpose.COCO_PARTS), threshold)
        else:
            parts, limits = openpose.apply_pose_calibration(lm, table), np.asarray(table['visibility_threshold'])
        shown = (parts[:, 2] >= limits) & _inside(parts, size)
        out[i, shown] = parts[shown]
    return out


def compare(parts, reference):
    """Figures of parts (N, 18, 3) against reference parts (N, 18, 3) (confidence 0: not reported):
    distances where both report, per part and overall, misses and false alarms."""
    ours, theirs = parts[..., 2] > 0, reference[..., 2] > 0
    both = ours & theirs
    dist = np.hypot(*(parts[..., :2] - reference[..., :2]).transpose(2, 0, 1))
    figures = {'all': _summary(dist[both], ours[theirs], np.sum(ours & ~theirs), np.sum(~theirs))}
    for part, name in enumerate(openpose.COCO_PARTS):
        o, t = ours[:, part], theirs[:, part]
        figures[name] = _summary(dist[o & t, part], o[t], np.sum(o & ~t), np.sum(~t))
    return figures


def _summary(dist, found_where_reported, false_alarms, not_reported):
    return {'median': float(np.median(dist)) if dist.size else float('nan'),
            'within10': float(np.mean(dist <= 10)) if dist.size else float('nan'),
            'p95': float(np.percentile(dist, 95)) if dist.size else float('nan'),
            'missed': float(1 - np.mean(found_where_reported)) if found_where_reported.size else 0.0,
            'missed_count': int(np.sum(~found_where_reported)), 'reported': int(found_where_reported.size),
            'false_alarms': int(false_alarms), 'not_reported': int(not_reported)}


def main(argv=None):
    parser = argparse.ArgumentParser(description='Fit the BlazePose -> OpenPose COCO calibration on VITON train.')
    parser.add_argument('--data', default=os.path.join(os.path.dirname(common.REPO_DIR), 'shared', 'data', 'viton'),
                        help='VITON folder with train/ (image/, pose/)')
    parser.add_argument('--model', default=None, help='pose_landmark_full.tflite (default: the models directory)')
    parser.add_argument('--cache', default=None, help='folder to keep the BlazePose landmarks of each split')
    parser.add_argument('-o', '--output', default=openpose.BLAZEPOSE_CALIBRATION)
    args = parser.parse_args(argv)
    train = os.path.join(args.data, 'train')
    if not os.path.isdir(os.path.join(train, 'image')):
        raise common.UsageError('no VITON train split in %s' % args.data)
    model = args.model or common.find_model(openpose.BLAZEPOSE_TFLITE)
    estimator = openpose.BlazePose(model, calibration=None)
    names, landmarks = blazepose_landmarks(estimator, train, args.cache)
    reference = openpose_split(train, names)
    size = image_size(train, names)
    table = fit(landmarks, reference, size)
    before = compare(coco_parts(landmarks, size), reference)['all']
    after = compare(coco_parts(landmarks, size, table), reference)['all']
    for label, f in (('uncalibrated', before), ('calibrated', after)):
        print('train %-12s: median %.2f px, within 10 px %.1f %%, 95th pct %.1f px, missed %.2f %%, '
              'false alarms %d of %d' % (label, f['median'], 100 * f['within10'], f['p95'], 100 * f['missed'],
                                         f['false_alarms'], f['not_reported']))
    print('visibility thresholds: %s' % dict(zip(openpose.COCO_PARTS, table['visibility_threshold'])))
    common.write_bytes(args.output, (json.dumps(table, indent=1) + '\n').encode('utf-8'))
    print('wrote %s' % args.output, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(common.run_main(main))
