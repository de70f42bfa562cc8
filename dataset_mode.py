"""CP-VTON's test protocol over a dataset in its layout (--dataroot, --pairs): the dataset's parsing and
keypoints replace the networks, and every pair's 256x192 result is written."""
import logging
import os
import time

import cv2 as cv

import errors
import human_parsing
import image_io
import openpose
from errors import RuntimeFailure, UsageError
from cp_vton import HEIGHT, WIDTH, CpVton, crop_to_ratio, to_image
from progress import Progress, peak_memory_text
from shards import shard_bounds, take_shard
from tryon_pipeline import load_tryon

log = logging.getLogger(__name__)

# try-ons through the TOM at once: 1, because on the CPU a batch is no faster (README, 'Catalogues')
DEFAULT_BATCH = 1
MIN_SIZE = (HEIGHT // 4, WIDTH // 4)  # smallest (h, w) of the person crop and of the cloth photo


def check_size(image, what, part):
    """Refuse images with too few pixels to hold a person or a garment (a 1x1 photo, a thin strip)."""
    h, w = image.shape[:2]
    if h < MIN_SIZE[0] or w < MIN_SIZE[1]:
        raise UsageError('%s is too small: %s is %dx%d, at least %dx%d is needed'
                         % (what, part, w, h, MIN_SIZE[1], MIN_SIZE[0]))


def default_output_name(person_path, cloth_path):
    stem = lambda p: os.path.splitext(os.path.basename(p))[0]  # noqa: E731
    return '%s_%s_tryon.png' % (stem(person_path), stem(cloth_path))


def warped_output_name(person_path, cloth_path):
    return default_output_name(person_path, cloth_path)[:-len('_tryon.png')] + '_warped.png'


def read_pairs(path):
    """CP-VTON's pairs list: one '<person image> <cloth image>' per line -> [(person, cloth), ...]."""
    if not os.path.isfile(path):
        raise UsageError('pairs file not found: %s' % path)
    pairs = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise UsageError('pairs file %s, line %d: expected "<person> <cloth>", got %r'
                                 % (path, number, line.strip()))
            pairs.append(tuple(fields))
    if not pairs:
        raise UsageError('pairs file %s lists no pairs' % path)
    return pairs


class PendingTryOn:
    """One pair read and analysed, waiting for its batch: where its results go, its analysis and garment."""

    def __init__(self, number, names, output, warped_output, analysis, cloth):
        self.number, self.names, self.output, self.warped_output = number, names, output, warped_output
        self.analysis, self.cloth = analysis, cloth


def render_batch(tryon, pending, batch, write, on_failure):
    """GMM + TOM of the pending try-ons (CpVton.render_many, the TOM `batch` at a time), then
    write(item, grid, warped, tom_output) for each. A failure of the networks fails every item of the
    batch, a failure to write only its item; on_failure(item, err) reports each. Returns (written, failed)."""
    written = failed = 0
    try:
        rendered = tryon.cp_vton.render_many([item.analysis.agnostic for item in pending],
                                             [item.cloth for item in pending], batch)
    except (UsageError, RuntimeFailure, cv.error) as err:
        for item in pending:
            on_failure(item, err)
        return 0, len(pending)
    for item, (grid, warped, tom_output) in zip(pending, rendered):
        try:
            write(item, grid, warped, tom_output)
            written += 1
        except (UsageError, RuntimeFailure, cv.error) as err:
            failed += 1
            on_failure(item, err)
    return written, failed


def run_dataset(make_tryon, dataroot, pairs, out_dir, save_warped=False, overwrite=False, progress=True, batch=1):
    """CP-VTON's test protocol over a dataset in its layout (DIR/image, cloth, image-parse, pose/<stem>_keypoints.json):
    the dataset's parsing and keypoints replace the networks; each pair's 256x192 result is written as
    out_dir/<person>_<cloth>_tryon.png (and with save_warped the warped cloth as ..., written first) exactly
    as the single-pair command with --model-size --labels --keypoints writes it, atomically: a result under
    its name is whole. Existing results are skipped unless overwrite; a bad pair is logged on one line and
    skipped. `batch` pairs go through the TOM together (CpVton.render_many: the same bytes as one at a
    time). make_tryon() gives the VirtualTryOn, called on the first pair that needs it (a rerun over
    finished results loads no model). Returns (written, skipped, failed) counts."""
    os.makedirs(out_dir, exist_ok=True)
    tryon = None
    written = skipped = failed = 0
    bar = Progress(len(pairs), 'pairs', enabled=progress)
    pending = []

    def report(number, names, err):
        log.error('pair %d (%s %s) skipped: %s', number, *names, errors.error_line(err))

    def write(item, grid, warped, tom_output):
        if save_warped:
            image_io.write_image(item.warped_output, to_image(warped[0]))
        image_io.write_image(item.output, CpVton.compose(tom_output, warped))

    def flush(done):
        nonlocal written, failed
        if pending:
            counts = render_batch(tryon, pending, batch, write, lambda item, err: report(item.number, item.names, err))
            written, failed = written + counts[0], failed + counts[1]
            pending.clear()
        bar.update(done)

    for number, (person_name, cloth_name) in enumerate(pairs, 1):
        output = os.path.join(out_dir, default_output_name(person_name, cloth_name))
        warped_output = os.path.join(out_dir, warped_output_name(person_name, cloth_name))
        if not overwrite and os.path.exists(output) and (not save_warped or os.path.exists(warped_output)):
            skipped += 1
            bar.update(number)
            continue
        stem = os.path.splitext(person_name)[0]
        try:
            person_path = os.path.join(dataroot, 'image', person_name)
            cloth_path = os.path.join(dataroot, 'cloth', cloth_name)
            person = image_io.read_image(person_path, 'person photo')
            cloth = image_io.read_image(cloth_path, 'cloth photo')
            check_size(crop_to_ratio(person)[0], 'person photo %s' % person_path, 'its 256:192 centre crop')
            check_size(cloth, 'cloth photo %s' % cloth_path, 'it')
            labels = human_parsing.read_parsing(os.path.join(dataroot, 'image-parse', stem + '.png'))
            keypoints = openpose.read_keypoints_json(os.path.join(dataroot, 'pose', stem + '_keypoints.json'))
            if tryon is None:
                tryon = make_tryon()
            pending.append(PendingTryOn(number, (person_name, cloth_name), output, warped_output,
                                        tryon.analyse(person, keypoints, labels), cloth))
        except (UsageError, RuntimeFailure, cv.error) as err:
            failed += 1
            report(number, (person_name, cloth_name), err)
        if len(pending) >= batch:
            flush(number)
    flush(len(pairs))
    bar.close(len(pairs))
    return written, skipped, failed


def _make_directory(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError('cannot create output directory %s: %s' % (path, err.strerror or err))


def dataset_main(args, models, backend_id, target_id, progress=None):
    """--dataroot/--pairs: CP-VTON's test protocol (run_dataset) with the networks of `models` (a
    TryOnModels). Exit status 1 when a pair was skipped.
    The progress line shows when this module's log shows info messages (not under -q), or as told."""
    if progress is None:
        progress = log.isEnabledFor(logging.INFO)
    if not (args.dataroot and args.pairs and args.output):
        raise UsageError('dataset mode needs --dataroot, --pairs and -o (the output directory)')
    if args.input or args.cloth:
        raise UsageError('-i/-c and --dataroot/--pairs are two different modes; give one of them')
    if not os.path.isdir(args.dataroot):
        raise UsageError('dataset directory not found: %s' % args.dataroot)
    listed = read_pairs(args.pairs)
    pairs = take_shard(listed, args.shard)
    if args.shard:
        log.info('shard %d/%d: pairs %d-%d of %d', *args.shard, *shard_bounds(len(listed), *args.shard), len(listed))
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UsageError('output path is not a directory: %s' % args.output)
    _make_directory(args.output)
    start = time.monotonic()
    written, skipped, failed = run_dataset(lambda: load_tryon(models, backend_id, target_id, need_pose=False, need_parsing=False),
                                           args.dataroot, pairs, args.output, args.save_warped, args.overwrite,
                                           progress, args.batch)
    seconds = time.monotonic() - start
    log.info('%d pairs: %d written, %d skipped as done, %d failed; %.1f s, %.2f pairs/s written; '
             'peak memory %s', len(pairs), written, skipped, failed, seconds,
             written / seconds if seconds > 0 else 0.0, peak_memory_text())
    return 1 if failed else 0
