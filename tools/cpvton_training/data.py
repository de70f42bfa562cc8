"""VITON's training pairs as the networks' inputs (CP-VTON's cp_dataset.py): the decoded cache, the samples built
by the runtime's own functions, the batch order, the photo-kept TOM's half-body augmentation, and the GMM's
warps that the TOM trains on."""
import os

import cv2 as cv
import numpy as np
import torch

import cp_vton
import dataset_mode
import errors
import human_parsing
import image_io
import openpose
import photo_kept
from coco_parts import PART_INDEX as PART
from garment_mask import cloth_mask
from lip_labels import Lip
from progress import Progress
from tools.cpvton_training.networks import TpsWarp

HEIGHT, WIDTH = cp_vton.HEIGHT, cp_vton.WIDTH
# the garment the GMM learns to match (CP-VTON)
CLOTH_LABELS = (Lip.UPPER_CLOTHES, Lip.DRESS, Lip.COAT)

CACHE_ARRAYS = {  # name: (shape of one sample, dtype)
    'person': ((HEIGHT, WIDTH, 3), np.uint8), 'labels': ((HEIGHT, WIDTH), np.uint8),
    'cloth': ((HEIGHT, WIDTH, 3), np.uint8), 'cloth_mask': ((HEIGHT, WIDTH), np.uint8),
    'keypoints': ((18, 3), np.float32)}


def read_pair(dataroot, person_name, cloth_name):
    """One VITON pair as the runtime reads it: person and cloth BGR (cv.imread), LIP labels, OpenPose
    keypoints; the cloth-mask JPEG thresholded at 128 as CP-VTON does."""
    stem = os.path.splitext(person_name)[0]
    person = image_io.read_image(os.path.join(dataroot, 'image', person_name), 'person photo')
    cloth = image_io.read_image(os.path.join(dataroot, 'cloth', cloth_name), 'cloth photo')
    mask = cv.imread(os.path.join(dataroot, 'cloth-mask', cloth_name), cv.IMREAD_GRAYSCALE)
    if mask is None:
        raise errors.UsageError('cannot read the cloth-mask of %s' % cloth_name)
    labels = human_parsing.read_parsing(os.path.join(dataroot, 'image-parse', stem + '.png'))
    keypoints = openpose.read_keypoints_json(os.path.join(dataroot, 'pose', stem + '_keypoints.json'))
    for what, image in (('person', person), ('cloth', cloth), ('cloth-mask', mask), ('parsing', labels)):
        if image.shape[:2] != (HEIGHT, WIDTH):
            raise errors.UsageError('%s of %s is %dx%d, not %dx%d' % (what, person_name, image.shape[1],
                                                                    image.shape[0], WIDTH, HEIGHT))
    return {'person': person, 'labels': labels.astype(np.uint8), 'cloth': cloth,
            'cloth_mask': (mask >= 128).astype(np.uint8), 'keypoints': keypoints.astype(np.float32)}


def build_cache(dataroot, pairs_file, work, limit=None):
    """Decode every pair into WORK/cache/<name>.npy (uint8 arrays, memory-mapped in training); written
    into a temporary directory renamed when complete."""
    final = os.path.join(work, 'cache')
    if os.path.isfile(os.path.join(final, 'pairs.txt')):
        return final
    pairs = dataset_mode.read_pairs(pairs_file)[:limit]
    temporary = final + '.part'
    os.makedirs(temporary, exist_ok=True)
    arrays = {name: np.lib.format.open_memmap(os.path.join(temporary, name + '.npy'), 'w+', dtype,
                                               (len(pairs),) + shape)
              for name, (shape, dtype) in CACHE_ARRAYS.items()}
    bar = Progress(len(pairs), 'pairs')
    for i, (person_name, cloth_name) in enumerate(pairs):
        for name, value in read_pair(dataroot, person_name, cloth_name).items():
            arrays[name][i] = value
        bar.update(i + 1)
    bar.close(len(pairs))
    for array in arrays.values():
        array.flush()
    with open(os.path.join(temporary, 'pairs.txt'), 'w') as f:
        f.writelines('%s %s\n' % pair for pair in pairs)
    os.replace(temporary, final)
    return final


class Samples:
    """The cached training pairs as network inputs, built with the runtime's own functions."""

    def __init__(self, cache_dir):
        self.arrays = {name: np.load(os.path.join(cache_dir, name + '.npy'), mmap_mode='r') for name in CACHE_ARRAYS}
        self.count = len(self.arrays['person'])
        self.head_lut = cp_vton.head_lookup()

    def agnostic(self, i):
        a = self.arrays
        return cp_vton.cloth_agnostic(a['labels'][i], np.asarray(a['person'][i]), a['keypoints'][i], self.head_lut)[0]

    def person(self, i, drop_hips=False):
        """photo_kept.person_tensor of sample i (1, 26, H, W), as the runtime builds it; drop_hips: as if the
        hips, knees and ankles were out of frame (a half-body photo)."""
        a = self.arrays
        keypoints = np.array(a['keypoints'][i])
        if drop_hips:
            keypoints[[PART['RHip'], PART['RKnee'], PART['RAnkle'], PART['LHip'], PART['LKnee'], PART['LAnkle']]] = 0
        labels, person = a['labels'][i], np.asarray(a['person'][i])
        agnostic = cp_vton.cloth_agnostic(labels, person, keypoints, self.head_lut)
        return photo_kept.person_tensor(agnostic, cp_vton.to_unit_range(person), photo_kept.hole(labels, keypoints))[0]

    def batch(self, indices, drop_hips=None):
        """Tensors of a batch: agnostic (N, 22), cloth, person (N, 3, H, W) in [-1, 1], cloth_mask, and the
        garment region of the parsing (N, 1, H, W) in {0, 1}; with drop_hips (N bools), the photo-kept
        person tensors (N, 26) too."""
        a = self.arrays
        stack = lambda f: torch.from_numpy(np.stack([f(i) for i in indices]))  # noqa: E731
        extra = {}
        if drop_hips is not None:
            extra['person_tensor'] = torch.from_numpy(np.stack([self.person(i, d) for i, d in zip(indices, drop_hips)]))
            # the garment's foreground as the runtime finds it (garment_mask.cloth_mask), not VITON's mask file
            extra['cloth_foreground'] = stack(lambda i: cloth_mask(np.asarray(a['cloth'][i]))[None].astype(np.float32))
        return {**extra, 'agnostic': stack(self.agnostic),
                'cloth': stack(lambda i: cp_vton.to_unit_range(np.asarray(a['cloth'][i]))),
                'person': stack(lambda i: cp_vton.to_unit_range(np.asarray(a['person'][i]))),
                'cloth_mask': stack(lambda i: a['cloth_mask'][i][None].astype(np.float32)),
                'garment': stack(lambda i: np.isin(a['labels'][i], CLOTH_LABELS)[None].astype(np.float32))}


def batch_indices(step, batch, pool, seed):
    """The sample indices of training step `step` (0-based): a fixed function of the seed and the step.
    The pool (training indices) is shuffled anew each epoch by a generator seeded with (seed, epoch)."""
    per_epoch = len(pool)
    start = step * batch
    out = []
    while len(out) < batch:
        epoch, offset = divmod(start + len(out), per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(per_epoch)
        take = min(batch - len(out), per_epoch - offset)
        out.extend(pool[order[offset:offset + take]])
    return np.asarray(out)


def tom_person_flags(stage_name, config, step, count):
    """For the photo-kept TOM, which samples of a batch lose their hips (a half-body photo): a fixed function
    of the seed and the step (a resumed run draws the same), none in validation (step None); None where no
    person tensor is needed."""
    if stage_name != 'tom' or config['representation'] != photo_kept.PHOTO_KEPT:
        return None
    if step is None:
        return np.zeros(count, bool)
    return np.random.default_rng([config['seed'], 7, step]).random(count) < config['drop_hips']



class Warps:
    """The trained GMM's theta for every cached pair (CP-VTON trains TOM on the GMM's own warps)."""

    def __init__(self, path):
        self.theta = torch.from_numpy(np.load(path))
        self.warp = TpsWarp()

    def add(self, data, indices):
        grid = self.warp.grid(self.theta[indices])
        data['warped'] = self.warp.sample(data['cloth'], grid)
        data['warped_mask'] = self.warp.sample(data.get('cloth_foreground', data['cloth_mask']), grid)
        return data

