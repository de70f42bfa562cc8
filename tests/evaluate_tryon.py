#!/usr/bin/env python3
"""Quality and speed of the try-on's GMM and TOM on VITON's test people: README's evaluation table.

    python3 tests/evaluate_tryon.py [--gmm FILE --tom FILE] [--limit N] [--chain dataset,default]
                                    [--repeat 20] [--sheet sheet.png] [--example example.png]

Paired protocol (test_pairs_paired.txt: each of the 395 test people with their own garment, the photo
is the ground truth), each person twice:
  dataset  VITON's own parsing and OpenPose keypoints, as dataset mode (--dataroot) uses them
  default  the default chain: BlazePose keypoints and MediaPipe parsing, computed from the photo; its
           result is the photo-sized one a user gets (the pose may frame the person in another box than
           the centre crop, framing.py), so the figures compare it with the photo pixel for pixel
Figures per chain:
  SSIM     of the 256x192 result against the photo: gaussian window 11x11, sigma 1.5, on each RGB
           channel with data range 255, the mean over the window positions that fit in the image, then
           over channels (Wang et al. 2004; scikit-image's structural_similarity with
           gaussian_weights=True, use_sample_covariance=False, data_range=255, channel_axis=2)
  IoU      of the warped garment mask (VITON's cloth-mask warped by the same TPS grid, > 0.5) against the
           upper-clothes region of VITON's parsing (labels 5, 6, 7: CP-VTON's parse_cloth)
Speed: GMM + TOM forward in cv.dnn (one person, one garment), median and 95th percentile of --repeat,
against the published-size graphs (the synthetic stand-ins have their layers), in the same run.
--sheet writes a picture sheet of unpaired pairs (person, garment, warped garment, result);
--example a full-resolution try-on of a test photo enlarged 4x in a wider frame.
"""
import argparse
import os
import sys
import tempfile
import time

import cv2 as cv
import numpy as np
from scipy import ndimage

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

import command_line  # noqa: E402
import errors  # noqa: E402
import human_parsing  # noqa: E402
import image_io  # noqa: E402
import openpose  # noqa: E402
import photo_kept  # noqa: E402
from cp_vton import GMM_FILE, HEIGHT, TOM_FILE, WIDTH, CpVton, grid_sample, to_image  # noqa: E402
from dataset_mode import read_pairs  # noqa: E402
from tryon_pipeline import VirtualTryOn, default_models  # noqa: E402

SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
VITON = os.path.join(SHARED, 'viton')
GARMENT_LABELS = (5, 6, 7)
# the try-on region of the paired protocol: the photo's own upper garment and arms (LIP labels)
REGION_LABELS = (5, 6, 7, 14, 15)


def ssim(a, b):
    """Mean SSIM of two uint8 images (H, W, C): gaussian 11x11 window, sigma 1.5, data range 255."""
    return float(ssim_map(a, b)[5:-5, 5:-5].mean())  # the window positions that fit (scikit-image crops 5)


def ssim_map(a, b):
    """SSIM at every window position (H, W), the mean over channels: gaussian 11x11 window, sigma 1.5."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: ndimage.gaussian_filter(x, sigma=1.5, truncate=3.5, mode='reflect')  # noqa: E731 (11 taps)
    values = []
    for channel in range(a.shape[2]):
        x, y = a[..., channel], b[..., channel]
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s)
    return np.mean(values, axis=0)


def region_figures(result, photo, region):
    """(SSIM, detail ratio) inside `region` (H, W bool): the mean SSIM over the window positions centred in
    the region (that fit in the image), and the mean |Laplacian| of the result's grey levels over the photo's
    there (1.0: as much fine detail as the photo; a blur gives less)."""
    inside = region.copy()
    inside[:5], inside[-5:], inside[:, :5], inside[:, -5:] = False, False, False, False
    if not inside.any():
        return float('nan'), float('nan')
    structure = float(ssim_map(result, photo)[inside].mean())
    laplacian = lambda image: np.abs(cv.Laplacian(cv.cvtColor(image, cv.COLOR_BGR2GRAY), cv.CV_64F))  # noqa: E731
    detail = float(laplacian(result)[region].mean() / max(laplacian(photo)[region].mean(), 1e-9))
    return structure, detail


def iou(mask, region):
    union = np.logical_or(mask, region).sum()
    return float(np.logical_and(mask, region).sum() / union) if union else 1.0


def read_person(stem, split='test'):
    test = os.path.join(VITON, split)
    return (image_io.read_image(os.path.join(test, 'image', stem + '.jpg')),
            human_parsing.read_parsing(os.path.join(test, 'image-parse', stem + '.png')),
            openpose.read_keypoints_json(os.path.join(test, 'pose', stem + '_keypoints.json')))


def cloth_and_mask(name, split='test'):
    test = os.path.join(VITON, split)
    cloth = image_io.read_image(os.path.join(test, 'cloth', name))
    mask = cv.imread(os.path.join(test, 'cloth-mask', name), cv.IMREAD_GRAYSCALE) >= 128
    return cloth, mask.astype(np.float32)


def evaluate(tryon, pairs, chain, split='test'):
    """Per pair (SSIM, IoU, region SSIM, region detail ratio) through `chain` ('dataset': VITON's parsing
    and keypoints; 'default': the tryon's own pose and parsing). A person the chain finds no neck and
    shoulders in is counted as failed."""
    scores, failed = [], []
    for person_name, cloth_name in pairs:
        stem = os.path.splitext(person_name)[0]
        photo, labels, keypoints = read_person(stem, split)
        cloth, mask = cloth_and_mask(cloth_name, split)
        try:
            analysis = tryon.analyse(photo, keypoints, labels) if chain == 'dataset' else tryon.analyse(photo)
        except errors.RuntimeFailure:
            failed.append(stem)
            continue
        grid, warped, tom_output = tryon.render(analysis, cloth)
        if chain == 'dataset':  # CP-VTON's protocol: the 256x192 result of the centre crop
            result = CpVton.compose(tom_output, warped, analysis.person, analysis.labels, analysis.agnostic)
        else:  # what a user gets: the photo back at its size, whatever box the pose framed the person in
            result = tryon.composite(analysis, cloth, grid, tom_output)
        warped_mask = grid_sample(mask[None, None], grid)[0, 0] > 0.5
        scores.append((ssim(result[..., ::-1], photo[..., ::-1]), iou(warped_mask, np.isin(labels, GARMENT_LABELS)))
                      + region_figures(result, photo, np.isin(labels, REGION_LABELS)))
    return np.array(scores), failed


def forward_times(cp_vton, repeat):
    """(GMM, TOM, both) forward seconds of --repeat runs on a fixed input."""
    rng = np.random.default_rng(0)
    channels = photo_kept.TOM_CHANNELS if cp_vton.representation == photo_kept.PHOTO_KEPT else 25
    agnostic = rng.uniform(-1, 1, (1, 22, HEIGHT, WIDTH)).astype(np.float32)
    cloth = rng.uniform(-1, 1, (1, 3, HEIGHT, WIDTH)).astype(np.float32)
    tom_input = rng.uniform(-1, 1, (1, channels, HEIGHT, WIDTH)).astype(np.float32)
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        cp_vton.predict_theta(cloth, agnostic)
        middle = time.perf_counter()
        cp_vton.tom.setInput(tom_input, cp_vton.tom_input)
        cp_vton.tom.forward()
        end = time.perf_counter()
        if i:  # the first run is warm-up
            times.append((middle - start, end - middle, end - start))
    return 1e3 * np.array(times)


def picture_sheet(tryon, pairs, path):
    """Rows of (person, garment, warped garment, result) for unpaired pairs, VITON's parsing and keypoints."""
    rows = []
    for person_name, cloth_name in pairs:
        photo, labels, keypoints = read_person(os.path.splitext(person_name)[0])
        cloth, _ = cloth_and_mask(cloth_name)
        grid, warped, tom_output = tryon.render(tryon.analyse(photo, keypoints, labels), cloth)
        analysis = tryon.analyse(photo, keypoints, labels)
        rows.append(np.hstack([photo, cloth, to_image(warped[0]),
                               CpVton.compose(tom_output, warped, analysis.person, analysis.labels, analysis.agnostic)]))
    image_io.write_image(path, np.vstack(rows))


def full_resolution_example(tryon, person_name, cloth_name, path):
    """A test photo enlarged 4x (Lanczos) and framed in white to 1200x1024, then the default chain at full
    resolution; written beside the photo as given."""
    photo, _, _ = read_person(os.path.splitext(person_name)[0])
    cloth, _ = cloth_and_mask(cloth_name)
    big = cv.resize(photo, None, fx=4, fy=4, interpolation=cv.INTER_LANCZOS4)
    framed = cv.copyMakeBorder(big, 0, 0, 216, 216, cv.BORDER_CONSTANT, value=(255, 255, 255))
    result = tryon.infer(framed, cloth)
    changed = np.any(result != framed, axis=2)
    image_io.write_image(path, np.hstack([framed, result]))
    return changed.mean(), framed.shape


def summary(name, scores, failed, total):
    if not len(scores):
        return '%-8s no pair evaluated (%d failed)' % (name, len(failed))
    return ('%-8s %3d of %d people: SSIM mean %.4f (median %.4f), warped-garment IoU median %.4f (mean %.4f), '
            'garment+arms region: SSIM mean %.4f, detail ratio mean %.3f%s'
            % (name, len(scores), total, scores[:, 0].mean(), np.median(scores[:, 0]), np.median(scores[:, 1]),
               scores[:, 1].mean(), np.nanmean(scores[:, 2]), np.nanmean(scores[:, 3]),
               '; no person found in %d: %s' % (len(failed), ' '.join(failed[:5])) if failed else ''))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--gmm', help='GMM ONNX (default: the one virtual_try_on.py loads)')
    parser.add_argument('--tom', help='TOM ONNX (default: the one virtual_try_on.py loads)')
    parser.add_argument('--limit', type=int, help='first N test people only')
    parser.add_argument('--split', choices=('test', 'test_clean'), default='test',
                        help="test: VITON's 395 test people (test_pairs_paired.txt); test_clean: the 200 people no "
                             "VITON training photo holds (test_clean_pairs_paired.txt)")
    parser.add_argument('--chain', default='dataset,default', help='dataset, default or both (comma-separated)')
    parser.add_argument('--repeat', type=int, default=20, help='forward timing runs (0: no timing)')
    parser.add_argument('--sheet', help='write a picture sheet of unpaired test pairs here')
    parser.add_argument('--sheet-pairs', type=int, default=6)
    parser.add_argument('--example', help='write a full-resolution example here')
    args = parser.parse_args(argv)
    command_line.setup_logging(quiet=True)

    gmm_path, tom_path = default_models() if not (args.gmm and args.tom) else (args.gmm, args.tom)
    gmm_path, tom_path = args.gmm or gmm_path, args.tom or tom_path
    print('OpenCV %s; GMM %s, TOM %s' % (cv.__version__, gmm_path, tom_path))
    cp_vton = CpVton(gmm_path, tom_path)
    pairs_file = 'test_pairs_paired.txt' if args.split == 'test' else 'test_clean_pairs_paired.txt'
    pairs = read_pairs(os.path.join(VITON, pairs_file))[:args.limit]
    chains = [c.strip() for c in args.chain.split(',') if c.strip()]
    if 'default' in chains or args.example:
        pose = openpose.create_pose_estimator()
        parsing = human_parsing.create_parser(pose=pose)
        default_tryon = VirtualTryOn(cp_vton, pose, parsing)
    dataset_tryon = VirtualTryOn(cp_vton)
    for chain in chains:
        start = time.monotonic()
        scores, failed = evaluate(dataset_tryon if chain == 'dataset' else default_tryon, pairs, chain, args.split)
        print(summary(chain, scores, failed, len(pairs)) + ' (%.0f s)' % (time.monotonic() - start))

    if args.repeat:
        from tools import synthetic
        ours = forward_times(cp_vton, args.repeat)
        with tempfile.TemporaryDirectory() as directory:
            published = CpVton(synthetic.build_gmm(os.path.join(directory, GMM_FILE)),
                                   synthetic.build_tom(os.path.join(directory, TOM_FILE)))
            theirs = forward_times(published, args.repeat)
        for name, times in (('these models', ours), ('published-size graphs', theirs)):
            print('%-22s GMM median %6.1f ms p95 %6.1f | TOM median %6.1f ms p95 %6.1f | GMM + TOM median %6.1f ms p95 %6.1f'
                  % ((name,) + tuple(v for column in times.T for v in (np.median(column), np.percentile(column, 95)))))
        print('GMM + TOM forward: %.2f of the published-size graphs\' time (medians)'
              % (np.median(ours[:, 2]) / np.median(theirs[:, 2])))
    if args.sheet:
        picture_sheet(dataset_tryon, read_pairs(os.path.join(VITON, 'test_pairs.txt'))[:args.sheet_pairs],
                      args.sheet)
        print('picture sheet: %s' % args.sheet)
    if args.example:
        person_name, cloth_name = read_pairs(os.path.join(VITON, 'test_pairs.txt'))[0]
        changed, shape = full_resolution_example(default_tryon, person_name, cloth_name, args.example)
        print('full-resolution example: %s (%dx%d photo, %.1f %% of its pixels changed)'
              % (args.example, shape[1], shape[0], 100 * changed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
