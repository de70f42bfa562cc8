#!/usr/bin/env python3
"""Full-resolution try-ons on the shared real-world photos (../shared/data/realworld: people at 768x1024 and
more, product photos of garments), with what a person checks by eye: a picture sheet of person, garment,
result and crops of the arms, shoulders and neckline beside the photo's own, and the figures that need no
ground truth.

    python3 tests/realworld_sheet.py [--garments-per-person 2] [--sheet docs/realworld_sheet.png] [--crops 8]
                                     [--half-body 20 --half-body-sheet half.png]

Every person is tried on with --garments-per-person garments (person i takes garments i, i + 1, ... of the
sorted folder, so every garment is used). Printed: people refused (and why), try-ons written, changed pixels
above the chin (the first row below the face the parsing finds, else the neck keypoint's row), the share of
the photo changed, the time per try-on (median, p95). --half-body N: the first N VITON test photos cut at
the waist (hips out of frame) and at the chest, enlarged 4x, each tried on with the next person's garment:
refused photos and changed pixels above the chin."""
import argparse
import os
import sys
import time

import cv2 as cv
import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_DIR)

import command_line  # noqa: E402
import errors  # noqa: E402
import image_io  # noqa: E402
import photo_kept  # noqa: E402
from coco_parts import PART_INDEX  # noqa: E402
from cp_vton import HEIGHT  # noqa: E402
from tryon_pipeline import TryOnModels, load_tryon  # noqa: E402

SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
REALWORLD = os.path.join(SHARED, 'realworld')
CROP = 256  # side of a crop, in photo pixels


def images(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(('.jpg', '.jpeg', '.png')))


def chin_in_photo(analysis):
    """The chin's row in the photo's pixels (photo_kept.chin_row of the analysis, mapped from the model frame)."""
    x, y, w, h = analysis.box
    return y + int(np.floor(photo_kept.chin_row(analysis.labels, analysis.keypoints) * h / HEIGHT))


def crop_at(image, centre, side=CROP):
    """A side x side crop of image centred at (x, y), shifted to stay inside it."""
    height, width = image.shape[:2]
    side = min(side, height, width)
    x = int(np.clip(centre[0] - side // 2, 0, width - side))
    y = int(np.clip(centre[1] - side // 2, 0, height - side))
    return image[y:y + side, x:x + side]


def crop_centres(analysis):
    """Photo pixels of the neckline (neck keypoint), a shoulder and an elbow (the model frame mapped back)."""
    x, y, w, h = analysis.box
    scale_x, scale_y = w / 192.0, h / float(HEIGHT)
    centres = []
    for name in ('Neck', 'RShoulder', 'LElbow'):
        k = analysis.keypoints[PART_INDEX[name]]
        if k[2] > 0:
            centres.append((x + k[0] * scale_x, y + k[1] * scale_y))
    return centres


def row_of(person, cloth, result, analysis, height=512):
    """person | garment | result at `height`, then for each crop centre the photo's crop over the result's."""
    fit = lambda image: cv.resize(image, (max(1, round(image.shape[1] * height / image.shape[0])), height),  # noqa: E731
                                  interpolation=cv.INTER_AREA)
    tiles = [fit(person), fit(cloth), fit(result)]
    for centre in crop_centres(analysis):
        before, after = crop_at(person, centre), crop_at(result, centre)
        pair = np.vstack([before, after])
        tiles.append(cv.resize(pair, (height // 2, height), interpolation=cv.INTER_AREA))
    return np.hstack(tiles)


def half_body(tryon, count, sheet=None):
    """Waist-up (rows 0-150 of 256) and chest-up (rows 0-115) crops of the first `count` VITON test photos,
    enlarged 4x (Lanczos): (tried, refused, changed pixels above the chin); a sheet of the first six."""
    test = os.path.join(SHARED, 'viton', 'test')
    names = sorted(os.listdir(os.path.join(test, 'image')))[:count]
    tried, refused, above_chin, rows = 0, [], 0, []
    for i, name in enumerate(names):
        photo = image_io.read_image(os.path.join(test, 'image', name), 'person photo')
        cloth = image_io.read_image(os.path.join(test, 'cloth', names[(i + 1) % len(names)].replace('_0.', '_1.')),
                                  'garment photo')
        for cut in (150, 115):
            person = cv.resize(photo[:cut], None, fx=4, fy=4, interpolation=cv.INTER_LANCZOS4)
            tried += 1
            try:
                analysis = tryon.analyse(person)
            except (errors.RuntimeFailure, errors.UsageError) as err:
                refused.append('%s cut at %d: %s' % (name, cut, errors.error_line(err)))
                continue
            result = tryon.infer(analysis, cloth)
            above_chin += int(np.any(result != person, axis=2)[:max(chin_in_photo(analysis), 0)].sum())
            if sheet and len(rows) < 6:
                rows.append(np.hstack([person, result]))
    if sheet and rows:
        width = max(row.shape[1] for row in rows)
        fit = [cv.resize(cv.copyMakeBorder(row, 0, 0, 0, width - row.shape[1], cv.BORDER_CONSTANT,
                                           value=(255, 255, 255)), None, fx=0.5, fy=0.5, interpolation=cv.INTER_AREA)
               for row in rows]
        image_io.write_image(sheet, np.vstack(fit))
    return tried, refused, above_chin


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--garments-per-person', type=int, default=2)
    parser.add_argument('--sheet', help='write a picture sheet of the first --crops people here (PNG)')
    parser.add_argument('--crops', type=int, default=8, help='people on the sheet')
    parser.add_argument('--out', help='also write every result into this folder')
    parser.add_argument('--gmm', help='GMM ONNX (with --tom; default: the pair virtual_try_on.py loads)')
    parser.add_argument('--tom', help='TOM ONNX')
    parser.add_argument('--half-body', type=int, default=0, metavar='N', help='also N waist-up and chest-up test photos')
    parser.add_argument('--half-body-sheet', help='write their picture sheet here')
    args = parser.parse_args(argv)
    command_line.setup_logging(quiet=True)
    people, garments = images(os.path.join(REALWORLD, 'person')), images(os.path.join(REALWORLD, 'garment'))
    tryon = load_tryon(TryOnModels(gmm=args.gmm, tom=args.tom), cv.dnn.DNN_BACKEND_OPENCV, cv.dnn.DNN_TARGET_CPU)
    refused, above_chin, changed, times, rows = [], 0, [], [], []
    for i, person_path in enumerate(people):
        person = image_io.read_image(person_path, 'person photo')
        start = time.perf_counter()
        try:
            analysis = tryon.analyse(person)
        except (errors.RuntimeFailure, errors.UsageError) as err:
            refused.append('%s: %s' % (os.path.basename(person_path), errors.error_line(err)))
            continue
        chin = chin_in_photo(analysis)
        for j in range(args.garments_per_person):
            cloth_path = garments[(i * args.garments_per_person + j) % len(garments)]
            cloth = image_io.read_image(cloth_path, 'garment photo')
            result = tryon.infer(analysis, cloth)
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
            difference = np.any(result != person, axis=2)
            above_chin += int(difference[:max(chin, 0)].sum())
            changed.append(difference.mean())
            if args.out:
                os.makedirs(args.out, exist_ok=True)
                image_io.write_image(os.path.join(args.out, '%s_%s.png' % tuple(
                    os.path.splitext(os.path.basename(p))[0] for p in (person_path, cloth_path))), result)
            if args.sheet and j == 0 and len(rows) < args.crops:
                rows.append(row_of(person, cloth, result, analysis))
    print('%d people, %d garments: %d refused%s' % (len(people), len(garments), len(refused),
                                                    ''.join('\n  ' + line for line in refused)))
    if times:
        print('%d try-ons: changed pixels above the chin %d; photo changed %.1f %% (median), %.1f %% (max); '
              'time per try-on median %.0f ms, p95 %.0f ms (first garment includes the analysis)'
              % (len(changed), above_chin, 100 * np.median(changed), 100 * np.max(changed),
                 1e3 * np.median(times), 1e3 * np.percentile(times, 95)))
    if args.half_body:
        tried, half_refused, half_above = half_body(tryon, args.half_body, args.half_body_sheet)
        print('half-body: %d photos (waist-up and chest-up), %d refused, changed pixels above the chin %d%s'
              % (tried, len(half_refused), half_above, ''.join('\n  ' + line for line in half_refused)))
    if args.sheet and rows:
        width = max(row.shape[1] for row in rows)
        rows = [cv.copyMakeBorder(row, 0, 8, 0, width - row.shape[1], cv.BORDER_CONSTANT, value=(255, 255, 255))
                for row in rows]
        image_io.write_image(args.sheet, np.vstack(rows))
        print('picture sheet: %s' % args.sheet)
    return 0


if __name__ == '__main__':
    sys.exit(main())
