#!/usr/bin/env python3
"""Fit the per-pixel classifier of mediapipe_parsing.MediaPipeParsing on VITON's training photos and
their LIP parsings (CP-VTON layout: image/*.jpg, image-parse/*.png), and write its weights
(models/mediapipe_parsing_mlp.npz, a few kB).

For each of --photos photos spread over the folder: the MediaPipe evidence (pose keypoints, the two
person masks) exactly as MediaPipeParsing.infer computes it, mediapipe_parsing.parsing_features, and
--pixels pixels drawn at random with their LIP label mapped to the classifier's classes. A
two-hidden-layer perceptron (ReLU, softmax) is trained on them with Adam in numpy, seeded: the
same inputs give the same file. Evaluate on the test photos only (tests/score_parsing.py).

    python3 tools/fit_mediapipe_parsing.py --data ../shared/data/viton/train [--photos 600]
"""
import argparse
import os
import sys
import time

# small matrices: one BLAS thread is faster, and does not thrash on a loaded machine
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
import numpy as np  # noqa: E402

if not __package__:  # run as a script (python3 tools/fit_mediapipe_parsing.py): make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import command_line  # noqa: E402
import errors  # noqa: E402
import human_parsing  # noqa: E402
import image_io  # noqa: E402
import mediapipe_parsing  # noqa: E402
import registry  # noqa: E402


def collect(parser, data, photos, pixels, seed):
    """(features, classes) of `pixels` random pixels of each of `photos` photos."""
    names = sorted(f for f in os.listdir(os.path.join(data, 'image')) if f.endswith('.jpg'))
    names = names[::max(1, len(names) // photos)][:photos]
    rng = np.random.default_rng(seed)
    features, classes = [], []
    for number, name in enumerate(names):
        image = image_io.read_image(os.path.join(data, 'image', name))
        truth = human_parsing.read_parsing(os.path.join(data, 'image-parse', name[:-4] + '.png'))
        work, factor = parser.work_image(image)
        if factor != 1.0:
            raise errors.UsageError('%s: fitting expects photos of at most %d px' % (name, mediapipe_parsing.MEDIAPIPE_WORK_SIZE))
        per_pixel = mediapipe_parsing.parsing_features(work, *parser.person_evidence(work))
        chosen = rng.choice(per_pixel.shape[0] * per_pixel.shape[1], pixels, replace=False)
        features.append(per_pixel.reshape(-1, per_pixel.shape[-1])[chosen])
        classes.append(mediapipe_parsing.MEDIAPIPE_CLASS_OF_LABEL[truth.ravel()[chosen]])
        if (number + 1) % 100 == 0:
            print('%d/%d photos' % (number + 1, len(names)), flush=True)
    return np.concatenate(features), np.concatenate(classes)


def train(features, classes, n_classes, hidden=32, iterations=1200, batch=8192, rate=3e-3,
          weight_decay=1e-5, seed=0):
    """Weights of a features -> hidden -> hidden -> classes perceptron (ReLU), trained with Adam on
    the softmax cross-entropy; the rate drops tenfold for the last fifth."""
    rng = np.random.default_rng(seed)
    mean = features.mean(axis=0)
    std = features.std(axis=0) + 1e-6
    x_all = ((features - mean) / std).astype(np.float32)
    n_in = features.shape[1]

    def init(rows, cols, gain):
        return (rng.standard_normal((rows, cols)) * np.sqrt(gain / rows)).astype(np.float32)

    p = {'W1': init(n_in, hidden, 2), 'b1': np.zeros(hidden, np.float32),
         'W2': init(hidden, hidden, 2), 'b2': np.zeros(hidden, np.float32),
         'W3': init(hidden, n_classes, 1), 'b3': np.zeros(n_classes, np.float32)}
    first = {k: np.zeros_like(v) for k, v in p.items()}
    second = {k: np.zeros_like(v) for k, v in p.items()}
    rows = np.arange(batch)
    for step in range(1, iterations + 1):
        pick = rng.integers(0, len(x_all), batch)
        x, y = x_all[pick], classes[pick]
        h1 = np.maximum(x @ p['W1'] + p['b1'], 0)
        h2 = np.maximum(h1 @ p['W2'] + p['b2'], 0)
        z = h2 @ p['W3'] + p['b3']
        z -= z.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        if step % 200 == 0:
            print('step %d: loss %.4f' % (step, -np.log(prob[rows, y] + 1e-9).mean()), flush=True)
        g3 = prob
        g3[rows, y] -= 1
        g3 /= batch
        g2 = (g3 @ p['W3'].T) * (h2 > 0)
        g1 = (g2 @ p['W2'].T) * (h1 > 0)
        grads = {'W3': h2.T @ g3, 'b3': g3.sum(0), 'W2': h1.T @ g2, 'b2': g2.sum(0),
                 'W1': x.T @ g1, 'b1': g1.sum(0)}
        step_rate = rate * (0.1 if step > 0.8 * iterations else 1.0)
        for k in p:
            g = grads[k] + weight_decay * p[k]
            first[k] = 0.9 * first[k] + 0.1 * g
            second[k] = 0.999 * second[k] + 0.001 * g * g
            p[k] -= step_rate * (first[k] / (1 - 0.9 ** step)) / (np.sqrt(second[k] / (1 - 0.999 ** step)) + 1e-8)
    p['mean'] = mean.astype(np.float32)
    p['std'] = std.astype(np.float32)
    return p


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--data', default=os.path.join(registry.REPO_DIR, '..', 'shared', 'data', 'viton', 'train'),
                        help='folder in CP-VTON layout (image/, image-parse/)')
    parser.add_argument('--photos', type=int, default=600)
    parser.add_argument('--pixels', type=int, default=600, help='pixels drawn per photo')
    parser.add_argument('--hidden', type=int, default=32)
    parser.add_argument('--iterations', type=int, default=1200)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('-o', '--output', default=mediapipe_parsing.MEDIAPIPE_TABLE)
    args = parser.parse_args(argv)
    started = time.time()
    # evidence only: the classifier table is not needed (nor read) to collect the features
    mediapipe = mediapipe_parsing.MediaPipeParsing(table=None)
    features, classes = collect(mediapipe, args.data, args.photos, args.pixels, args.seed)
    print('%d samples, %d features (%.0f s)' % (len(features), features.shape[1], time.time() - started))
    weights = train(features, classes, len(mediapipe_parsing.MEDIAPIPE_CLASS_LABELS), args.hidden,
                    args.iterations, seed=args.seed)
    temporary = args.output + '.tmp.npz'
    np.savez(temporary, **weights)
    os.replace(temporary, args.output)
    print('wrote %s (%d bytes, %.0f s)' % (args.output, os.path.getsize(args.output), time.time() - started))
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
