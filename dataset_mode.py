"""CP-VTON's test protocol over a dataset in its layout (--dataroot, --pairs): the dataset's parsing and
keypoints replace the networks, and every pair's 256x192 result is written."""
import logging
import os

import human_parsing
import image_io
import openpose
from batch_runner import TryOnItem, run_batch
from cp_vton import HEIGHT, WIDTH, CpVton, crop_to_ratio, to_image
from errors import UsageError
from garment_check import check_garment
from progress import Progress

log = logging.getLogger(__name__)

# try-ons through the TOM at once: 1, because on the CPU a batch is no faster (docs/catalogues.md)
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


def run_dataset(make_tryon, dataroot, pairs, out_dir, save_warped=False, overwrite=False, progress=True, batch=1):
    """CP-VTON's test protocol over a dataset in its layout (DIR/image, cloth, image-parse, pose/<stem>_keypoints.json):
    the dataset's parsing and keypoints replace the networks; each pair's 256x192 result is written as
    out_dir/<person>_<cloth>_tryon.png (and with save_warped the warped cloth as ..., written first) exactly
    as the single-pair command with --model-size --labels --keypoints writes it, atomically: a result under
    its name is whole. Existing results are skipped unless overwrite; a bad pair is logged on one line and
    skipped. `batch` pairs go through the TOM together (CpVton.render_many: the same bytes as one at a
    time). make_tryon() gives the VirtualTryOn, called on the first pair that needs it (a rerun over
    finished results loads no model). Runs batch_runner.run_batch; returns its BatchCounts."""
    image_io.make_directory(out_dir)
    items = []
    for number, (person_name, cloth_name) in enumerate(pairs, 1):
        outputs = [os.path.join(out_dir, default_output_name(person_name, cloth_name))]
        if save_warped:
            outputs.append(os.path.join(out_dir, warped_output_name(person_name, cloth_name)))
        items.append(TryOnItem(number, (person_name, cloth_name), outputs,
                               'pair %d (%s %s)' % (number, person_name, cloth_name)))

    def prepare(item, tryon):
        person_name, cloth_name = item.names
        stem = os.path.splitext(person_name)[0]
        person_path = os.path.join(dataroot, 'image', person_name)
        cloth_path = os.path.join(dataroot, 'cloth', cloth_name)
        person = image_io.read_image(person_path, 'person photo')
        cloth = image_io.read_image(cloth_path, 'cloth photo')
        check_size(crop_to_ratio(person)[0], 'person photo %s' % person_path, 'its 256:192 centre crop')
        check_size(cloth, 'cloth photo %s' % cloth_path, 'it')
        check_garment(cloth, 'cloth photo %s' % cloth_path)
        labels = human_parsing.read_parsing(os.path.join(dataroot, 'image-parse', stem + '.png'))
        keypoints = openpose.read_keypoints_json(os.path.join(dataroot, 'pose', stem + '_keypoints.json'))
        item.analysis, item.cloth = tryon().analyse(person, keypoints, labels), cloth

    def write(item, grid, warped, tom_output):
        if save_warped:
            image_io.write_image(item.outputs[1], to_image(warped[0]))
        image_io.write_image(item.outputs[0], CpVton.compose(tom_output, warped, item.analysis.person,
                                                             item.analysis.labels, item.analysis.agnostic))

    return run_batch(items, make_tryon, prepare, write, batch=batch, overwrite=overwrite,
                     progress=Progress(len(items), 'pairs') if progress else None)
