"""Fit the BlazePose -> OpenPose COCO calibration (models/blazepose_coco_calibration.json).

CP-VTON's GMM and TOM were trained on OpenPose COCO keypoints. BlazePose's landmarks sit
elsewhere on the body (hips most of all), so each COCO part gets a small linear correction in a
body frame (origin: the mean of shoulders and hips; unit: the mid-shoulder to mid-hip length)
from the frame coordinates, depth and visibility of the 33 landmarks, fitted by ridge regression
under a robust (Cauchy) loss of the pixel distance on the VITON train split (4,000 photos with
VITON's OpenPose JSON). A part is shown when its show probability (a logistic regression on the
same features of "OpenPose reports this part within 10 px of the corrected one") reaches a per-part
threshold that makes fewest misses plus false alarms plus (weighted) parts more than 10 px off.
Every choice (ridge lambdas, loss scale, thresholds and the far-off weight) is made by 5-fold
cross-validation within train, on held-out predictions: the most parts within 10 px of OpenPose's,
missing no more than 0.9x the parts that the uncalibrated mapping (MediaPipe's visibility >= 0.5)
misses. The test split is never fitted on (benchmarks/benchmark_blazepose.py evaluates it).

    python3 tools/fit_pose_calibration.py --data ../shared/data/viton [--cache /tmp/landmarks]
"""
import argparse
import json
import os
import sys

import cv2 as cv
import numpy as np

if not __package__:  # run as a script (python3 tools/fit_pose_calibration.py): make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import blazepose  # noqa: E402
from coco_parts import COCO_PARTS  # noqa: E402
import command_line  # noqa: E402
import errors  # noqa: E402
import image_io  # noqa: E402
import openpose  # noqa: E402
import registry  # noqa: E402

RIDGE_LAMBDAS = (0.03, 0.1, 0.3, 1.0)
ROBUST_SCALES_PX = (15.0, 25.0)   # Cauchy loss scale: residuals well past it (OpenPose's gross mistakes) pull little
ROBUST_ITERATIONS = 15      # reweighting rounds
FOLDS = 5                   # cross-validation within train: contiguous blocks of photos
FAR = 10.0                  # px: a part drawn this far from OpenPose's counts as wrong
FAR_WEIGHTS = tuple(np.round(np.arange(1.0, 4.001, 0.05), 2))
MISS_MARGIN = 0.9           # at most this share of the uncalibrated mapping's misses (MediaPipe's rule), on train
THRESHOLD_GRID = tuple(np.round(np.arange(0.02, 0.99, 0.02), 2))
SHOW_LAMBDAS = (0.3, 1.0, 3.0)  # ridge of the logistic 'OpenPose reports it within 10 px' probability
NEWTON_ITERATIONS = 30


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
    landmarks = np.full((len(names), blazepose.POSE_LANDMARKS['count'], 5), np.nan)
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
    rows = [blazepose.pose_calibration_features(lm) for lm in landmarks]
    features = np.stack([r[0] for r in rows])
    scales = np.array([r[2] for r in rows])
    base = np.stack([blazepose.blazepose_to_coco(lm) for lm in landmarks])
    return features, scales, base


def _ridge(features, targets, lam, sqrt_weights=None):
    """Ridge solution (F, 2) with the constant (last feature) not penalised; rows weighted by sqrt_weights**2."""
    if sqrt_weights is not None:
        features, targets = features * sqrt_weights[:, None], targets * sqrt_weights[:, None]
    penalty = lam * np.eye(features.shape[1])
    penalty[-1, -1] = 0
    return np.linalg.solve(features.T @ features + penalty, features.T @ targets)


def fit_part(features, targets, scales, lam, robust_px):
    """Ridge fit (F, 2) of body-frame offsets under a Cauchy loss of the residual in pixels
    (scale robust_px), by iterative reweighting: a part within a few pixels counts fully, one
    far off (OpenPose's own mistakes: a misplaced hip, a swapped wrist) hardly pulls."""
    weights = _ridge(features, targets, lam)
    for _ in range(ROBUST_ITERATIONS):
        residual_px = scales * np.hypot(*(features @ weights - targets).T)
        row = scales ** 2 / (1 + (residual_px / robust_px) ** 2)   # Cauchy's weight, in body units
        weights = _ridge(features, targets, lam, np.sqrt(row / row.mean()))
    return weights


def fit_parts(features, scales, base, reference, lam, robust_px):
    """(18, 2, F) weights, each part fitted where OpenPose reports it."""
    weights = np.zeros((len(COCO_PARTS), 2, features.shape[1]))
    for part in range(len(COCO_PARTS)):
        seen = reference[:, part, 2] > 0
        targets = (reference[seen, part, :2] - base[seen, part, :2]) / scales[seen, None]
        weights[part] = fit_part(features[seen], targets, scales[seen], lam, robust_px).T
    return weights


def _moved(features, scales, base, weights):
    parts = base.copy()
    parts[..., :2] += scales[:, None, None] * np.einsum('nf,pcf->npc', features, weights)
    return parts


def _folds(count):
    """(rest, held) masks of the FOLDS cross-validation folds: contiguous blocks of the count photos."""
    fold = (np.arange(count) * FOLDS) // count
    return [(fold != k, fold == k) for k in range(FOLDS)]


def _distance(parts, reference):
    """(N, 18) pixel distance of every part to OpenPose's."""
    return np.hypot(*(parts[..., :2] - reference[..., :2]).transpose(2, 0, 1))


def cross_validated_parts(features, scales, base, reference, lam, robust_px):
    """(N, 18, 3) parts of every train photo predicted by a fit on the other folds."""
    parts = np.zeros_like(base)
    for rest, held in _folds(len(features)):
        weights = fit_parts(features[rest], scales[rest], base[rest], reference[rest], lam, robust_px)
        parts[held] = _moved(features[held], scales[held], base[held], weights)
    return parts


def fit_logistic(features, labels, lam):
    """Ridge-penalised logistic regression weights (F,) by Newton steps; constant not penalised."""
    penalty = lam * np.eye(features.shape[1])
    penalty[-1, -1] = 0
    weights = np.zeros(features.shape[1])
    for _ in range(NEWTON_ITERATIONS):
        p = blazepose.sigmoid(features @ weights)
        step = np.linalg.solve((features * (p * (1 - p))[:, None]).T @ features + penalty,
                               features.T @ (p - labels) + penalty @ weights)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    return weights


def fit_show(features, good, lam):
    """(18, F) logistic weights of the probability that a part is good (OpenPose reports it within FAR px)."""
    return np.stack([fit_logistic(features, good[:, part].astype(np.float64), lam)
                     for part in range(len(COCO_PARTS))])


def cross_validated_show(features, good, lam):
    """(N, 18) show probability of every train photo from a fit on the other folds."""
    probability = np.zeros(good.shape)
    for rest, held in _folds(len(features)):
        probability[held] = blazepose.sigmoid(features[held] @ fit_show(features[rest], good[rest], lam).T)
    return probability


def choose_thresholds(parts, reference, size, far_weight):
    """Per part, the confidence threshold with fewest misses + false alarms + far_weight x parts
    drawn more than FAR px from OpenPose's (a square in the wrong place is as bad as a wrong square)."""
    grid = np.array(THRESHOLD_GRID)
    inside = _inside(parts, size)
    seen = reference[..., 2] > 0
    far = seen & (_distance(parts, reference) > FAR)
    thresholds = []
    for part in range(len(COCO_PARTS)):
        shown = (parts[:, part, 2, None] >= grid) & inside[:, part, None]          # (N, thresholds)
        cost = (np.sum(seen[:, part, None] & ~shown, 0) + np.sum(~seen[:, part, None] & shown, 0)
                + far_weight * np.sum(shown & far[:, part, None], 0))
        thresholds.append(float(grid[int(np.argmin(cost))]))
    return np.array(thresholds)


def _shown_figures(parts, reference, size, thresholds):
    """(share within FAR px where both report, misses, median px) of parts shown at these thresholds."""
    shown = (parts[..., 2] >= thresholds) & _inside(parts, size)
    seen = reference[..., 2] > 0
    dist = _distance(parts, reference)[shown & seen]
    return float(np.mean(dist <= FAR)), int(np.sum(seen & ~shown)), float(np.median(dist))


def _best_far_weight(parts, reference, size, miss_budget):
    """(within, misses, median, far weight, thresholds) with the most parts within FAR px among
    the far weights whose thresholds miss at most miss_budget parts."""
    best = None
    for far_weight in FAR_WEIGHTS:
        thresholds = choose_thresholds(parts, reference, size, far_weight)
        within, missed, median = _shown_figures(parts, reference, size, thresholds)
        if missed <= miss_budget and (best is None or within > best[0]):
            best = (within, missed, median, far_weight, thresholds)
    return best


def fit(landmarks, reference, size, log=print):
    """The calibration table (dict) from train landmarks (N, 39, 5) and OpenPose parts (N, 18, 3).
    Everything is chosen by cross-validation within train, on held-out predictions (in-sample
    residuals are smaller than a new photo's): first the ridge lambda and the robust scale of the
    position correction (with visibility thresholds), then the lambda of the show probability and
    its per-part thresholds."""
    has_person = ~np.isnan(landmarks[:, 0, 0])
    landmarks, reference = landmarks[has_person], reference[has_person]
    features, scales, base = _design(landmarks)
    count = len(landmarks)
    seen = reference[..., 2] > 0
    uncalibrated_missed = int(np.sum(seen & ~((base[..., 2] >= 0.5) & _inside(base, size))))
    miss_budget = int(MISS_MARGIN * uncalibrated_missed)
    log('train: %d photos, uncalibrated mapping misses %d parts; budget %d' % (count, uncalibrated_missed, miss_budget))
    best = None
    for robust_px in ROBUST_SCALES_PX:
        for lam in RIDGE_LAMBDAS:
            held_out = cross_validated_parts(features, scales, base, reference, lam, robust_px)
            found = _best_far_weight(held_out, reference, size, miss_budget)
            log('robust scale %g px, lambda %-5g: %d-fold held out, visibility thresholds: within %g px %.2f %%, '
                'missed %d, median %.2f px (far weight %g)'
                % (robust_px, lam, FOLDS, FAR, 100 * found[0], found[1], found[2], found[3]))
            if best is None or found[0] > best[3][0]:
                best = (robust_px, lam, held_out, found)
    robust_px, lam, held_out, _ = best
    # the show probability learns where the held-out correction lands within FAR px of a reported part
    good = seen & (_distance(held_out, reference) <= FAR)
    best = None
    for show_lam in SHOW_LAMBDAS:
        parts = held_out.copy()
        parts[..., 2] = cross_validated_show(features, good, show_lam)
        found = _best_far_weight(parts, reference, size, miss_budget)
        log('show lambda %-5g: %d-fold held out: within %g px %.2f %%, missed %d, median %.2f px (far weight %g)'
            % (show_lam, FOLDS, FAR, 100 * found[0], found[1], found[2], found[3]))
        if best is None or found[0] > best[1][0]:
            best = (show_lam, found)
    show_lam, (within, missed, median, far_weight, thresholds) = best
    weights = fit_parts(features, scales, base, reference, lam, robust_px)
    show_weights = fit_show(features, good, show_lam)
    return {'features': 'body frame x, y and z / scale of the 33 landmarks, their visibility, 1',
            'weights': weights.round(6).tolist(), 'ridge_lambda': lam, 'robust_scale_px': robust_px,
            'show_weights': show_weights.round(5).tolist(), 'show_lambda': show_lam,
            'far_weight': far_weight, 'show_threshold': thresholds.tolist(),
            'cross_validated': {'folds': FOLDS, 'within_10px': round(within, 4), 'missed': missed,
                                'missed_uncalibrated': uncalibrated_missed, 'median_px': round(median, 3)},
            'fitted_on': 'VITON train split, %d photos with a person (BlazePose, MediaPipe pipeline)' % count}


def _inside(parts, size):
    width, height = size
    return ((parts[..., 0] >= 0) & (parts[..., 0] <= width - 1) & (parts[..., 1] >= 0) & (parts[..., 1] <= height - 1))


def coco_parts(landmarks, size, table=None, threshold=0.5):
    """(N, 18, 3) COCO parts as BlazePose.infer gives them (missing: all 0), from cached landmarks."""
    out = np.zeros((len(landmarks), len(COCO_PARTS), 3))
    for i, lm in enumerate(landmarks):
        if not np.isnan(lm[0, 0]):
            out[i] = blazepose.landmarks_to_coco(lm, size, table, threshold if table is None else None)
    return out


def compare(parts, reference):
    """Figures of parts (N, 18, 3) against reference parts (N, 18, 3) (confidence 0: not reported):
    distances where both report, per part and overall, misses and false alarms."""
    ours, theirs = parts[..., 2] > 0, reference[..., 2] > 0
    both = ours & theirs
    dist = _distance(parts, reference)
    figures = {'all': _summary(dist[both], ours[theirs], np.sum(ours & ~theirs), np.sum(~theirs))}
    for part, name in enumerate(COCO_PARTS):
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
    parser.add_argument('--data', default=os.path.join(os.path.dirname(registry.REPO_DIR), 'shared', 'data', 'viton'),
                        help='VITON folder with train/ (image/, pose/)')
    parser.add_argument('--model', default=None, help='pose_landmark_full.tflite (default: the models directory)')
    parser.add_argument('--cache', default=None, help='folder to keep the BlazePose landmarks of each split')
    parser.add_argument('-o', '--output', default=blazepose.BLAZEPOSE_CALIBRATION)
    args = parser.parse_args(argv)
    train = os.path.join(args.data, 'train')
    if not os.path.isdir(os.path.join(train, 'image')):
        raise errors.UsageError('no VITON train split in %s' % args.data)
    model = args.model or registry.find_model(blazepose.BLAZEPOSE_TFLITE)
    estimator = blazepose.BlazePose(model, calibration=None)
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
    print('show thresholds: %s' % dict(zip(COCO_PARTS, table['show_threshold'])))
    # one line per entry, numbers packed: the table stays small (tens of kB) and readable
    text = ',\n'.join('%s: %s' % (json.dumps(key), json.dumps(value, separators=(',', ':')))
                      for key, value in table.items())
    image_io.write_bytes(args.output, ('{\n' + text + '\n}\n').encode('utf-8'))
    print('wrote %s' % args.output, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
