#!/usr/bin/env python3
"""Score a human parser against a folder of LIP parsings in CP-VTON's layout (image/*.jpg,
image-parse/*.png), with the figures CP-VTON's use of the parsing cares about:

* body shape (label > 0) IoU: median and 10th percentile over photos;
* head (labels 1 hat, 2 hair, 4 sunglasses, 13 face) IoU: median;
* kept lower body (9 pants, 12 skirt) IoU: median over the photos whose parsing has them;
* the agnostic's blurred shape channel (label > 0 as 0/255, Pillow BILINEAR down to 1/16 and back
  up, as CP-VTON builds it): mean absolute difference in grey levels, median over photos;
* the parser's infer() time per photo: wall and CPU time, median and 95th percentile.

    python3 tests/score_parsing.py [--data ../shared/data/viton/test] [--parser mediapipe|jppnet]
                                   [--model FILE] [--predicted DIR] [--limit N] [--benchmark N] [--threads T]

--parser mediapipe (default) scores mediapipe_parsing.MediaPipeParsing, --parser jppnet JppNet
(--model or lip_jppnet_384.pb in the models directory); --predicted scores label PNGs already in
DIR (same stems) instead of running a parser.
"""
import argparse
import os
import sys
import time

import cv2 as cv
import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)
import blazepose  # noqa: E402
import command_line  # noqa: E402
import errors  # noqa: E402
import human_parsing  # noqa: E402
import image_io  # noqa: E402
import mediapipe_parsing  # noqa: E402
import pil_bilinear  # noqa: E402
import registry  # noqa: E402

HEAD_LABELS = (1, 2, 4, 13)
LOWER_LABELS = (9, 12)
DEFAULT_DATA = os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data', 'viton', 'test')


def iou(a, b):
    """Intersection over union of two boolean masks; nan when both are empty."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else float('nan')


def shape_channel(labels):
    """CP-VTON's body shape before normalisation: (labels > 0) * 255, Pillow BILINEAR to 1/16 and back."""
    height, width = labels.shape
    shape = np.where(labels > 0, np.uint8(255), np.uint8(0))
    small = pil_bilinear.resize(shape, (max(1, width // 16), max(1, height // 16)))
    return pil_bilinear.resize(small, (width, height))


def score_photo(predicted, truth):
    """Per-photo figures: body, head and lower-body IoU (lower is nan when the truth has none) and
    the shape channel's mean absolute difference."""
    if predicted.shape != truth.shape:
        raise ValueError('predicted %s and true %s label maps differ in size' % (predicted.shape, truth.shape))
    lower_truth = np.isin(truth, LOWER_LABELS)
    return {
        'body': iou(predicted > 0, truth > 0),
        'head': iou(np.isin(predicted, HEAD_LABELS), np.isin(truth, HEAD_LABELS)),
        'lower': iou(np.isin(predicted, LOWER_LABELS), lower_truth) if lower_truth.any() else float('nan'),
        'shape_mad': float(np.abs(shape_channel(predicted).astype(np.int16)
                                  - shape_channel(truth).astype(np.int16)).mean()),
    }


def summarise(rows):
    """The issue's figures over per-photo rows of score_photo."""
    column = {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}
    lower = column['lower'][~np.isnan(column['lower'])]
    return {
        'photos': len(rows),
        'body_iou_median': float(np.median(column['body'])),
        'body_iou_p10': float(np.percentile(column['body'], 10)),
        'head_iou_median': float(np.nanmedian(column['head'])),
        'lower_photos': len(lower),
        'lower_iou_median': float(np.median(lower)) if len(lower) else float('nan'),
        'shape_mad_median': float(np.median(column['shape_mad'])),
        'shape_mad_mean': float(np.mean(column['shape_mad'])),
    }


def stems(data, limit=None):
    names = sorted(f[:-4] for f in os.listdir(os.path.join(data, 'image')) if f.endswith('.jpg'))
    if limit and limit < len(names):
        names = names[::len(names) // limit][:limit]  # spread over the folder
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--data', default=DEFAULT_DATA, help='folder in CP-VTON layout')
    parser.add_argument('--parser', choices=('mediapipe', 'jppnet'), default='mediapipe')
    parser.add_argument('--model', help='JPPNet graph for --parser jppnet')
    parser.add_argument('--chain-pose', action='store_true',
                        help="mediapipe: take keypoints and person mask from blazepose.BlazePose's infer() and "
                             "segment(), as the try-on chain does (default: the parser's own pass)")
    parser.add_argument('--predicted', help='folder of label PNGs to score instead of running a parser')
    parser.add_argument('--limit', type=int, help='score this many photos spread over the folder')
    parser.add_argument('--benchmark', type=int, metavar='N',
                        help='only time infer() N times on the first photo (after 3 warm-up runs)')
    parser.add_argument('--threads', type=int, help='cv.setNumThreads(THREADS) first')
    args = parser.parse_args(argv)
    if args.threads:
        cv.setNumThreads(args.threads)
    for sub in ('image', 'image-parse'):
        if not os.path.isdir(os.path.join(args.data, sub)):
            raise errors.UsageError('%s has no %s/ folder (CP-VTON layout expected)' % (args.data, sub))
    net = None
    if not args.predicted:
        if args.parser == 'jppnet':
            net = human_parsing.JppNet(args.model or registry.find_model(human_parsing.MODEL_NAME))
        elif args.chain_pose:
            import openpose
            net = mediapipe_parsing.MediaPipeParsing(pose=openpose.create_pose_estimator(
                os.path.join(registry.models_dir(), blazepose.BLAZEPOSE_TFLITE)))
        else:
            net = mediapipe_parsing.MediaPipeParsing()
    rows, times = [], []
    if args.benchmark:
        if net is None:
            raise errors.UsageError('--benchmark times a parser: leave out --predicted')
        stem = stems(args.data)[0]
        image = image_io.read_image(os.path.join(args.data, 'image', stem + '.jpg'))
        for run in range(3 + args.benchmark):
            photo = image.copy()
            photo[0, 0] = (run % 256, run // 256 % 256, 7)   # a new photo each run: no cached pose result
            start, start_cpu = time.perf_counter(), time.process_time()
            net.infer(photo)
            if run >= 3:
                times.append((time.perf_counter() - start, time.process_time() - start_cpu))
        print_times(times, '%s (%dx%d)' % (stem, image.shape[1], image.shape[0]))
        return 0
    for stem in stems(args.data, args.limit):
        truth = human_parsing.read_parsing(os.path.join(args.data, 'image-parse', stem + '.png'))
        if net is None:
            predicted = human_parsing.read_parsing(os.path.join(args.predicted, stem + '.png'))
        else:
            image = image_io.read_image(os.path.join(args.data, 'image', stem + '.jpg'))
            start, start_cpu = time.perf_counter(), time.process_time()
            predicted = net.infer(image)
            times.append((time.perf_counter() - start, time.process_time() - start_cpu))
        rows.append(score_photo(predicted, truth))
    figures = summarise(rows)
    print('%d photos of %s scored (%s)' % (figures['photos'], args.data, args.predicted or args.parser))
    print('body shape IoU: median %.4f, 10th percentile %.4f' % (figures['body_iou_median'], figures['body_iou_p10']))
    print('head (1, 2, 4, 13) IoU: median %.4f' % figures['head_iou_median'])
    print('lower body (9, 12) IoU: median %.4f over %d photos that have them'
          % (figures['lower_iou_median'], figures['lower_photos']))
    print('blurred shape channel: mean abs difference, median %.2f grey levels (mean %.2f)'
          % (figures['shape_mad_median'], figures['shape_mad_mean']))
    if times:
        print_times(times, '%d photos' % len(times))
    return 0


def print_times(times, what):
    # CPU time (all threads of this process) tells the cost apart from the machine's load
    wall, cpu = 1000 * np.array(times).T
    print('infer: wall median %.1f ms, 95th percentile %.1f ms; CPU time median %.1f ms, 95th percentile '
          '%.1f ms (%s, %d runs, %d OpenCV threads, load average %.1f)'
          % (np.median(wall), np.percentile(wall, 95), np.median(cpu), np.percentile(cpu, 95), what, len(wall),
             cv.getNumThreads(), os.getloadavg()[0]))


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
