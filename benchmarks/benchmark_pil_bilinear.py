"""Time pil_bilinear.resize against Pillow (and cv.resize) on CP-VTON's body-shape blur.

CP-VTON shrinks the 192x256 silhouette to 12x16 with PIL BILINEAR and enlarges it back. This
prints the median time per round trip, the ratio to Pillow, and how many pixels cv.resize's
round trip gets wrong on real VITON masks. No assertions: run it and read the figures.

    python benchmarks/benchmark_pil_bilinear.py [--repeat 2000]
"""
import argparse
import os
import sys
import time

import cv2 as cv
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pil_bilinear  # noqa: E402

SHARED_DATA = os.environ.get('TRYON_SHARED_DATA') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'shared', 'data')
BILINEAR = Image.Resampling.BILINEAR
SMALL, FULL = (12, 16), (192, 256)


def person_mask(path):
    """Rough body mask of a VITON photo: pixels far from the plain background colour."""
    photo = cv.imread(path).astype(np.int16)
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    background = np.median(border, axis=0)
    return np.where(np.abs(photo - background).max(axis=2) > 30, 255, 0).astype(np.uint8)


def median_us(function, repeat):
    function()  # warm caches
    times = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        function()
        times[i] = time.perf_counter() - start
    return float(np.median(times)) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=2000, help='timed calls per method')
    args = parser.parse_args()

    person_dir = os.path.join(SHARED_DATA, 'viton', 'person')
    paths = sorted(os.path.join(person_dir, f) for f in os.listdir(person_dir))
    masks = [person_mask(p) for p in paths]
    mask = masks[0]
    mask_image = Image.fromarray(mask)

    def ours():
        return pil_bilinear.resize(pil_bilinear.resize(mask, SMALL), FULL)

    def pillow_from_array():
        small = Image.fromarray(mask).resize(SMALL, BILINEAR)
        return np.asarray(small.resize(FULL, BILINEAR))

    def pillow_resize_only():
        return mask_image.resize(SMALL, BILINEAR).resize(FULL, BILINEAR)

    def opencv_linear():
        return cv.resize(cv.resize(mask, SMALL, interpolation=cv.INTER_LINEAR), FULL,
                         interpolation=cv.INTER_LINEAR)

    print('numpy %s, Pillow %s, OpenCV %s; %d timed calls each, median per round trip'
          % (np.__version__, Image.__version__, cv.__version__, args.repeat))
    print('round trip 192x256 -> 12x16 -> 192x256 (uint8 mask)')
    timings = {}
    for name, function in [('pil_bilinear.resize', ours),
                           ('Pillow fromarray+resize+asarray', pillow_from_array),
                           ('Pillow Image.resize only', pillow_resize_only),
                           ('cv.resize INTER_LINEAR', opencv_linear)]:
        timings[name] = median_us(function, args.repeat)
        print('  %-34s %8.1f us' % (name, timings[name]))
    print('  ratio pil_bilinear / Pillow (fromarray+resize+asarray): %.2fx'
          % (timings['pil_bilinear.resize'] / timings['Pillow fromarray+resize+asarray']))
    print('  ratio pil_bilinear / Pillow (Image.resize only):        %.2fx'
          % (timings['pil_bilinear.resize'] / timings['Pillow Image.resize only']))

    print('pixels differing from Pillow\'s round trip (of %d) on %d VITON person masks:'
          % (mask.size, len(masks)))
    for path, person in zip(paths, masks):
        reference = np.asarray(
            Image.fromarray(person).resize(SMALL, BILINEAR).resize(FULL, BILINEAR))
        ours_result = pil_bilinear.resize(pil_bilinear.resize(person, SMALL), FULL)
        opencv_result = cv.resize(cv.resize(person, SMALL, interpolation=cv.INTER_LINEAR), FULL,
                                  interpolation=cv.INTER_LINEAR)
        difference = np.abs(opencv_result.astype(int) - reference)
        print('  %s: pil_bilinear %d, cv.resize INTER_LINEAR %d (max |diff| %d)'
              % (os.path.basename(path), np.count_nonzero(ours_result != reference),
                 np.count_nonzero(difference), difference.max()))

    rng = np.random.default_rng(0)
    print('larger images (median per call):')
    for shape, size in [((400, 400, 4), (123, 77)), ((400, 400, 3), (400, 250)),
                        ((100, 100, 3), (400, 400)), ((400, 400), (7, 400))]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        ours_us = median_us(lambda: pil_bilinear.resize(image, size), max(args.repeat // 10, 20))
        pillow_us = median_us(lambda: np.asarray(Image.fromarray(image).resize(size, BILINEAR)),
                              max(args.repeat // 10, 20))
        print('  %-14s -> %-10s pil_bilinear %8.1f us, Pillow %8.1f us, ratio %.2fx'
              % (shape, size, ours_us, pillow_us, ours_us / pillow_us))


if __name__ == '__main__':
    main()
