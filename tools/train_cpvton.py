#!/usr/bin/env python3
"""Train CP-VTON's GMM and TOM on VITON's training pairs, on the CPU, and export them for cv.dnn.

Tooling, not runtime: it needs PyTorch (`pip install -e .[train]`); the try-on never imports it. The
inputs are built by the runtime's own code (cp_vton.cloth_agnostic and photo_kept.person_tensor: Pillow-exact shape blur, PIL
pose squares, head; to_unit_range; tps_grid's basis), so what the networks see here is what they see in use.

    python3 tools/train_cpvton.py --data ../shared/data/viton --work ../tryon-train --out models/

runs every stage in order, each resumable (a finished stage is skipped, an interrupted one resumes from
its last checkpoint, exactly):
  cache   VITON's person, parsing, keypoints, cloth and cloth-mask of every training pair, decoded once
          into uint8 arrays in the work directory (cv.imread, as the runtime reads photos)
  gmm     GMM: L1 between the TPS-warped cloth and the person's garment on white (CP-VTON), L1 between
          the warped cloth-mask and the garment region, and CP-VTON+'s grid-regularity loss
  warps   the trained GMM's TPS parameters of every training pair (TOM's input, as in CP-VTON)
  tom     TOM: L1 + (1 - SSIM) of the composed result against the photo, L1 of the composition mask
          against the warped cloth-mask
  export  ONNX (opset 11, standard operators, free batch, fp16 weights cast to float32 on load), checked
          in cv.dnn against PyTorch

Every choice is a flag; the resolved flags are stored in WORK/config.json and a resumed run must match
them, except that --gmm-steps and --tom-steps may be raised to train a finished run further (from its
checkpoints; config.json lists the lengths it had before, so the shipped files are reproduced by running
the same commands in order). Losses go to WORK/<stage>_loss.csv, held-out validation to WORK/<stage>_val.csv; checkpoints
(model, optimizer, step) are written atomically to WORK/<stage>.pt every --checkpoint-minutes. The
order of the samples is a function of the seed and the step, so a resumed run sees the same batches.
"""
import argparse
import csv
import json
import os
import sys
import time

import cv2 as cv
import numpy as np

if not __package__:  # run as a script: make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import command_line  # noqa: E402
import cp_vton  # noqa: E402
import dataset_mode  # noqa: E402
import errors  # noqa: E402
import human_parsing  # noqa: E402
import image_io  # noqa: E402
import openpose  # noqa: E402
import registry  # noqa: E402
from progress import Progress  # noqa: E402
import gmm_rewrite  # noqa: E402
import photo_kept  # noqa: E402
from garment_mask import cloth_mask  # noqa: E402
from coco_parts import PART_INDEX as PART  # noqa: E402

HEIGHT, WIDTH = cp_vton.HEIGHT, cp_vton.WIDTH
CLOTH_LABELS = (5, 6, 7)  # upper clothes, dress, coat: the garment the GMM learns to match (CP-VTON)
STAGES = ('cache', 'gmm', 'warps', 'tom', 'export')


# ---------------------------------------------------------------------------- networks
def _norm(kind, channels):
    return nn.BatchNorm2d(channels) if kind == 'batch' else nn.InstanceNorm2d(channels)


class FeatureExtraction(nn.Sequential):
    """CP-VTON's FeatureExtraction (n_layers 3): four 4x4 stride-2 convolutions (ngf .. 8 ngf), two 3x3."""

    def __init__(self, in_channels, ngf):
        layers, channels = [], in_channels
        for out in (ngf, 2 * ngf, 4 * ngf, 8 * ngf):
            layers += [nn.Conv2d(channels, out, 4, 2, 1), nn.ReLU(True), nn.BatchNorm2d(out)]
            channels = out
        layers += [nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(True), nn.BatchNorm2d(channels),
                   nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(True)]
        super().__init__(*layers)


def l2_normalise(x):
    """CP-VTON's FeatureL2Norm."""
    return x / torch.sqrt((x * x).sum(1, keepdim=True) + 1e-6)


def correlation(a, b):
    """CP-VTON's FeatureCorrelation as a matrix product (standard ONNX: Transpose, Reshape, MatMul):
    (n, c, h, w) x 2 -> (n, w*h, h, w), the same layout as the published graph's Correlation node."""
    _, c, h, w = a.shape
    a = a.transpose(2, 3).reshape(-1, c, w * h)
    b = b.reshape(-1, c, h * w).transpose(1, 2)
    return torch.matmul(b, a).reshape(-1, h, w, w * h).permute(0, 3, 1, 2)


class GMM(nn.Module):
    """CP-VTON's geometric matching module: agnostic (22 ch) + cloth (3 ch) -> 50 TPS offsets in [-1, 1].
    width: channels relative to CP-VTON's (1.0: ngf 64 and a 512-256-128-64 regressor)."""

    def __init__(self, width=0.5):
        super().__init__()
        ngf = int(64 * width)
        self.extraction_a = FeatureExtraction(22, ngf)
        self.extraction_b = FeatureExtraction(3, ngf)
        c1, c2, c3, c4 = (int(c * width) for c in (512, 256, 128, 64))
        cells = (HEIGHT // 16) * (WIDTH // 16)
        self.regression = nn.Sequential(
            nn.Conv2d(cells, c1, 4, 2, 1), nn.BatchNorm2d(c1), nn.ReLU(True),
            nn.Conv2d(c1, c2, 4, 2, 1), nn.BatchNorm2d(c2), nn.ReLU(True),
            nn.Conv2d(c2, c3, 3, 1, 1), nn.BatchNorm2d(c3), nn.ReLU(True),
            nn.Conv2d(c3, c4, 3, 1, 1), nn.BatchNorm2d(c4), nn.ReLU(True))
        self.linear = nn.Linear(c4 * (HEIGHT // 64) * (WIDTH // 64), 2 * cp_vton.GRID_SIZE ** 2)
        nn.init.zeros_(self.linear.weight)  # start from the identity warp
        nn.init.zeros_(self.linear.bias)

    def forward(self, agnostic, cloth):
        a = l2_normalise(self.extraction_a(agnostic))
        b = l2_normalise(self.extraction_b(cloth))
        x = self.regression(correlation(a, b))
        return torch.tanh(self.linear(torch.flatten(x, 1)))


class UnetBlock(nn.Module):
    """One level of CP-VTON's U-Net (UnetSkipConnectionBlock, bilinear upsampling + 3x3 convolution).
    The outermost level has no normalisation on its output: the composition mask must be free to
    move (CP-VTON's normalises all four channels, and its mask loss stays flat)."""

    def __init__(self, outer, inner, input_channels, submodule=None, outermost=False):
        super().__init__()
        self.outermost = outermost
        down = [nn.Conv2d(input_channels, inner, 4, 2, 1)]
        if not outermost:
            down = [nn.LeakyReLU(0.2, True)] + down + ([nn.InstanceNorm2d(inner)] if submodule else [])
        inner_out = inner if submodule is None else 2 * inner
        up = [nn.ReLU(True), nn.Upsample(scale_factor=2, mode='bilinear'), nn.Conv2d(inner_out, outer, 3, 1, 1)]
        if not outermost:
            up.append(nn.InstanceNorm2d(outer))
        self.model = nn.Sequential(*down, *([submodule] if submodule else []), *up)

    def forward(self, x):
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], 1)


class TOM(nn.Module):
    """CP-VTON's try-on module: U-Net with 6 downsamplings, 25 -> 4 channels (rendered person before tanh,
    composition mask before sigmoid); on the photo-kept representation 30 -> 5 (and the new garment's
    coverage before sigmoid: photo_kept.py). width: channels relative to CP-VTON's (ngf 64)."""

    def __init__(self, width=0.5, in_channels=25, out_channels=4):
        super().__init__()
        ngf = int(64 * width)
        channels = [ngf, 2 * ngf, 4 * ngf, 8 * ngf, 8 * ngf, 8 * ngf]
        block = None
        for level in range(len(channels) - 1, 0, -1):
            block = UnetBlock(channels[level - 1], channels[level], channels[level - 1], block)
        self.unet = UnetBlock(out_channels, channels[0], in_channels, block, outermost=True)

    def forward(self, x):
        return self.unet(x)


class TpsWarp(nn.Module):
    """cp_vton.tps_grid and grid_sample in PyTorch: the same basis (CP-VTON's TpsGridGen), PyTorch's
    grid_sample (bilinear, border, align_corners=True), which the runtime's grid_sample reproduces."""

    def __init__(self):
        super().__init__()
        basis, control = cp_vton.tps_basis(HEIGHT, WIDTH, cp_vton.GRID_SIZE)
        self.register_buffer('basis', torch.from_numpy(basis.astype(np.float32)))      # (H*W, K)
        self.register_buffer('control', torch.from_numpy(control.astype(np.float32)))  # (2, K)

    def grid(self, theta):
        points = theta.float().reshape(-1, 2, self.control.shape[1]) + self.control    # (N, 2, K)
        grid = torch.einsum('pk,nck->npc', self.basis, points)
        return grid.reshape(-1, HEIGHT, WIDTH, 2)

    @staticmethod
    def sample(image, grid):
        return F.grid_sample(image, grid, mode='bilinear', padding_mode='border', align_corners=True)


def grid_regularity(grid):
    """CP-VTON+'s grid-regularity (GIC) loss: how unevenly the grid's x steps from a point to its left and
    right neighbours, and its y to the ones above and below, summed over the grid, divided (as CP-VTON+
    does) by N * H * W."""
    x, y = grid[..., 0], grid[..., 1]
    centre_x, centre_y = x[:, 1:-1, 1:-1], y[:, 1:-1, 1:-1]
    horizontal = ((x[:, 1:-1, :-2] - centre_x).abs() - (x[:, 1:-1, 2:] - centre_x).abs()).abs()
    vertical = ((y[:, :-2, 1:-1] - centre_y).abs() - (y[:, 2:, 1:-1] - centre_y).abs()).abs()
    return (horizontal.sum() + vertical.sum()) / (grid.shape[0] * grid.shape[1] * grid.shape[2])


def ssim(a, b):
    """SSIM with an 11x11 gaussian window (sigma 1.5) per channel, of images in [-1, 1] (data range 2),
    averaged over pixels and channels: the common implementation (Wang et al. 2004; skimage's
    gaussian_weights=True, use_sample_covariance=False)."""
    x = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-x * x / (2 * 1.5 ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None]).expand(a.shape[1], 1, 11, 11).to(a)
    blur = lambda t: F.conv2d(t, window, groups=a.shape[1])  # noqa: E731 (valid region, as skimage crops)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean()


# ---------------------------------------------------------------------------- data
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


# ---------------------------------------------------------------------------- training
class Stage:
    """One network's training: model, optimizer, schedule, checkpoint, logs."""

    def __init__(self, name, model, config, work):
        self.name, self.model, self.config, self.work = name, model, config, work
        self.steps, self.batch = config[name + '_steps'], config['batch']
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config['lr'], betas=(0.5, 0.999))
        self.step = 0
        self.path = os.path.join(work, name + '.pt')
        if os.path.isfile(self.path):
            state = torch.load(self.path, map_location='cpu', weights_only=False)
            model.load_state_dict(state['model'])
            self.optimizer.load_state_dict(state['optimizer'])
            self.step = state['step']
            torch.set_rng_state(state['torch_rng'])

    def learning_rate(self, step):
        """Constant for the first half, then linear to zero (CP-VTON's intended schedule; its decay never runs)."""
        half = self.steps // 2
        return self.config['lr'] * min(1.0, (self.steps - step) / max(self.steps - half, 1))

    def save(self):
        state = {'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(), 'step': self.step,
                 'torch_rng': torch.get_rng_state(), 'config': self.config}
        temporary = self.path + '.tmp'
        torch.save(state, temporary)
        os.replace(temporary, self.path)

    @property
    def done(self):
        return self.step >= self.steps


def log_row(path, row):
    """Append a row to a CSV log, writing the header with the first row."""
    new = not os.path.isfile(path)
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def autocast(config):
    return torch.autocast('cpu', dtype=torch.bfloat16, enabled=config['bf16'])


def channels_last(x):
    """PyTorch's CPU convolutions run 1.5x faster on channels-last tensors (measured on the TOM here)."""
    return x.contiguous(memory_format=torch.channels_last)


def gmm_losses(model, warp, data, config):
    with autocast(config):
        theta = model(channels_last(data['agnostic']), channels_last(data['cloth']))
    grid = warp.grid(theta)
    warped = warp.sample(data['cloth'], grid)
    # the person's garment on white, as CP-VTON's im_c
    target = data['person'] * data['garment'] + (1 - data['garment'])
    l1 = (warped - target).abs().mean()
    # the warped cloth-mask against the garment region: the shape, also of a white garment on white
    mask_l1 = (warp.sample(data['cloth_mask'], grid) - data['garment']).abs().mean()
    regularity = grid_regularity(grid)
    loss = l1 + config['gmm_mask_weight'] * mask_l1 + config['gic_weight'] * regularity
    return {'loss': loss, 'l1': l1, 'mask_l1': mask_l1, 'gic': regularity}, grid


def _region_mean(x, region):
    """Mean of x (N, C, H, W) over the pixels where region (N, 1, H, W) is 1."""
    return (x * region).sum() / (region.sum() * x.shape[1]).clamp(min=1)


def tom_losses_photo_kept(model, data, config):
    """The photo-kept TOM: the result is the photo outside the hole and the try-on inside it; L1, (1 - SSIM)
    and the L1 of its horizontal and vertical differences (edges) against the photo, the composition mask
    against the warped cloth-mask and the coverage (binary cross-entropy) against the garment's parsing,
    both inside the hole."""
    with autocast(config):
        out = model(channels_last(torch.cat([data['person_tensor'], data['warped'], data['warped_mask']], 1)))
    out = out.float()
    rendered, mask = torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:4])
    region = data['person_tensor'][:, 25:26]
    result = data['person'] * (1 - region) + (data['warped'] * mask + rendered * (1 - mask)) * region
    target = data['person']
    l1 = _region_mean((result - target).abs(), region)
    structure = 1 - ssim(result, target)
    edges = (_region_mean(((result[..., 1:] - result[..., :-1]) - (target[..., 1:] - target[..., :-1])).abs(),
                          region[..., 1:]) +
             _region_mean(((result[..., 1:, :] - result[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])).abs(),
                          region[..., 1:, :]))
    mask_l1 = _region_mean((mask - data['warped_mask']).abs(), region)
    coverage = _region_mean(F.binary_cross_entropy_with_logits(out[:, 4:5], data['garment'], reduction='none'), region)
    loss = (l1 + config['ssim_weight'] * structure + config['edge_weight'] * edges
            + config['mask_weight'] * mask_l1 + config['coverage_weight'] * coverage)
    covered = (out[:, 4:5] > 0) & (region > 0.5)
    garment = (data['garment'] > 0.5) & (region > 0.5)
    iou = ((covered & garment).sum((1, 2, 3)).float() / (covered | garment).sum((1, 2, 3)).float().clamp(min=1)).mean()
    return {'loss': loss, 'l1': l1, 'ssim': 1 - structure, 'edges': edges, 'mask_l1': mask_l1,
            'coverage': coverage, 'coverage_iou': iou}, result, mask


def tom_losses(model, data, config):
    if config['representation'] == photo_kept.PHOTO_KEPT:
        return tom_losses_photo_kept(model, data, config)
    with autocast(config):
        out = model(channels_last(torch.cat([data['agnostic'], data['warped']], 1)))
    out = out.float()
    rendered, mask = torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:])
    result = data['warped'] * mask + rendered * (1 - mask)
    l1 = (result - data['person']).abs().mean()
    structure = 1 - ssim(result, data['person'])
    mask_l1 = (mask - data['warped_mask']).abs().mean()
    loss = l1 + config['ssim_weight'] * structure + config['mask_weight'] * mask_l1
    return {'loss': loss, 'l1': l1, 'ssim': 1 - structure, 'mask_l1': mask_l1}, result, mask


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


def recalibrate_batch_norm(model, samples, pool, config, batches=200):
    """Every BatchNorm's running statistics recomputed for the final weights: the plain average over
    `batches` training batches (train mode, no gradient) instead of the exponential average gathered while
    the weights moved, which leaves the eval-mode network (the exported one) off its training behaviour."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for b in range(batches):
            data = samples.batch(batch_indices(b, config['batch'], pool, config['seed'] + 1))
            with autocast(config):
                model(channels_last(data['agnostic']), channels_last(data['cloth']))
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def final_gmm(stage, samples, train_pool, val_pool):
    """The trained GMM with recalibrated BatchNorm statistics, kept in WORK/gmm_final.pt; its held-out
    figures are the last row of gmm_val.csv."""
    path = os.path.join(stage.work, 'gmm_final.pt')
    if os.path.isfile(path):
        stage.model.load_state_dict(torch.load(path, map_location='cpu', weights_only=False))
    else:
        recalibrate_batch_norm(stage.model, samples, train_pool, stage.config)
        row = {'step': '%d (BatchNorm recalibrated)' % stage.step}
        row.update({k: '%.5f' % v for k, v in validate('gmm', stage.model, samples, val_pool, stage.config).items()})
        log_row(os.path.join(stage.work, 'gmm_val.csv'), row)
        torch.save(stage.model.state_dict(), path + '.tmp')
        os.replace(path + '.tmp', path)
    stage.model.eval()
    return stage.model


def compute_warps(model, samples, work, batch=16):
    path = os.path.join(work, 'gmm_theta.npy')
    if os.path.isfile(path):
        return path
    model.eval()
    theta = np.empty((samples.count, 2 * cp_vton.GRID_SIZE ** 2), np.float32)
    bar = Progress(samples.count, 'pairs')
    with torch.no_grad():
        for start in range(0, samples.count, batch):
            indices = np.arange(start, min(start + batch, samples.count))
            data = samples.batch(indices)
            theta[indices] = model(data['agnostic'], data['cloth']).float().numpy()
            bar.update(indices[-1] + 1)
    bar.close(samples.count)
    np.save(path + '.tmp.npy', theta)
    os.replace(path + '.tmp.npy', path)
    return path


def validate(name, model, samples, pool, config, warps=None):
    """Mean held-out figures: GMM L1 and IoU of the warped cloth-mask against the garment region; TOM L1 and SSIM."""
    model.eval()
    sums, count = {}, 0
    warp = TpsWarp()
    with torch.no_grad():
        for start in range(0, len(pool), config['batch']):
            indices = pool[start:start + config['batch']]
            data = samples.batch(indices, tom_person_flags(name, config, None, len(indices)))
            if name == 'gmm':
                losses, grid = gmm_losses(model, warp, data, config)
                mask = warp.sample(data['cloth_mask'], grid) > 0.5
                garment = data['garment'] > 0.5
                inter = (mask & garment).sum((1, 2, 3)).float()
                union = (mask | garment).sum((1, 2, 3)).float().clamp(min=1)
                figures = {'l1': losses['l1'].item(), 'iou': (inter / union).mean().item()}
            else:
                losses, _, _ = tom_losses(model, warps.add(data, indices), config)
                figures = {key: losses[key].item() for key in ('l1', 'ssim', 'mask_l1', 'coverage_iou') if key in losses}
            for key, value in figures.items():
                sums[key] = sums.get(key, 0.0) + value * len(indices)
            count += len(indices)
    model.train()
    return {key: value / count for key, value in sums.items()}


def tom_person_flags(stage_name, config, step, count):
    """For the photo-kept TOM, which samples of a batch lose their hips (a half-body photo): a fixed function
    of the seed and the step (a resumed run draws the same), none in validation (step None); None where no
    person tensor is needed."""
    if stage_name != 'tom' or config['representation'] != photo_kept.PHOTO_KEPT:
        return None
    if step is None:
        return np.zeros(count, bool)
    return np.random.default_rng([config['seed'], 7, step]).random(count) < config['drop_hips']


def train(stage, samples, train_pool, val_pool, warps=None):
    """Run a stage from its current step to its last, checkpointing every few minutes."""
    config, model = stage.config, stage.model
    model.train()
    warp = TpsWarp()
    bar = Progress(stage.steps, 'steps', initial=stage.step)
    last_save = time.monotonic()
    loss_log = os.path.join(stage.work, stage.name + '_loss.csv')
    val_log = os.path.join(stage.work, stage.name + '_val.csv')
    sums, logged_steps, started = {}, 0, time.monotonic()
    last = stage.steps if config['pause_after'] is None else min(stage.steps, stage.step + config['pause_after'])
    while stage.step < last:
        step = stage.step
        for group in stage.optimizer.param_groups:
            group['lr'] = stage.learning_rate(step)
        indices = batch_indices(step, stage.batch, train_pool, config['seed'])
        data = samples.batch(indices, tom_person_flags(stage.name, config, step, len(indices)))
        if stage.name == 'gmm':
            losses, _ = gmm_losses(model, warp, data, config)
        else:
            losses, _, _ = tom_losses(model, warps.add(data, indices), config)
        stage.optimizer.zero_grad(set_to_none=True)
        losses['loss'].backward()
        stage.optimizer.step()
        stage.step = step + 1
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + value.item()
        logged_steps += 1
        if stage.step % config['log_every'] == 0 or stage.done:
            row = {'step': stage.step, 'samples': stage.step * stage.batch, 'lr': '%.3g' % stage.learning_rate(step)}
            row.update({key: '%.5f' % (value / logged_steps) for key, value in sums.items()})
            row['seconds'] = '%.1f' % (time.monotonic() - started)
            log_row(loss_log, row)
            sums, logged_steps = {}, 0
        if stage.step % config['val_every'] == 0 or stage.done:
            row = {'step': stage.step}
            row.update({key: '%.5f' % value for key, value in validate(stage.name, model, samples, val_pool,
                                                                        config, warps).items()})
            log_row(val_log, row)
            print('%s step %d: validation %s' % (stage.name, stage.step, row), file=sys.stderr)
        if time.monotonic() - last_save > 60 * config['checkpoint_minutes'] or stage.step == last:
            stage.save()
            last_save = time.monotonic()
        bar.update(stage.step)
    bar.close(stage.step)
    model.eval()
    return stage.done


# ---------------------------------------------------------------------------- export
def _fp16_weights(model):
    """Round every floating parameter and buffer to fp16 precision (what the exported file stores)."""
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.dtype == torch.float32:
                tensor.copy_(tensor.half().float())


def _inline_identities(onnx_model):
    """The exporter shares equal weights through Identity nodes (BatchNorm scales of 1, say); older
    OpenCV importers (4.6) fail on an Identity of a constant: give each its own copy of the weight."""
    from onnx import numpy_helper
    graph = onnx_model.graph
    initializers = {t.name: t for t in graph.initializer}
    for node in [n for n in graph.node if n.op_type == 'Identity' and n.input[0] in initializers]:
        graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(initializers[node.input[0]]),
                                                         node.output[0]))
        graph.node.remove(node)


def _decompose_instance_norm(onnx_model):
    """Each InstanceNormalization as (x - mean) / sqrt(var + eps), the means over width then over height.
    OpenCV 4.x's own instance norm is 2e-3 off PyTorch on the trained TOM (one pass over the whole plane in
    float32); this form is within 5e-5 of it on OpenCV 4.14, 5.0 and 5.1. Scale and bias are applied only
    where they are not 1 and 0 (the exporter writes them as constants)."""
    from onnx import helper, numpy_helper
    graph = onnx_model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                      if n.op_type == 'Constant' and n.attribute and n.attribute[0].name == 'value'})
    nodes = []
    for node in graph.node:
        if node.op_type != 'InstanceNormalization':
            nodes.append(node)
            continue
        x, scale, bias = node.input
        epsilon = next((a.f for a in node.attribute if a.name == 'epsilon'), 1e-5)
        name = node.name or node.output[0]
        part = lambda suffix: '%s/%s' % (name, suffix)  # noqa: E731
        graph.initializer.append(numpy_helper.from_array(np.array(epsilon, np.float32), part('epsilon')))
        nodes += [helper.make_node('ReduceMean', [x], [part('row_mean')], axes=[3], keepdims=1, name=part('row_mean')),
                  helper.make_node('ReduceMean', [part('row_mean')], [part('mean')], axes=[2], keepdims=1,
                                   name=part('mean')),
                  helper.make_node('Sub', [x, part('mean')], [part('centred')], name=part('centred')),
                  helper.make_node('Mul', [part('centred'), part('centred')], [part('squared')], name=part('squared')),
                  helper.make_node('ReduceMean', [part('squared')], [part('row_var')], axes=[3], keepdims=1,
                                   name=part('row_var')),
                  helper.make_node('ReduceMean', [part('row_var')], [part('var')], axes=[2], keepdims=1,
                                   name=part('var')),
                  helper.make_node('Add', [part('var'), part('epsilon')], [part('var_eps')], name=part('var_eps')),
                  helper.make_node('Sqrt', [part('var_eps')], [part('std')], name=part('std'))]
        trivial = (scale in constants and bias in constants and np.all(constants[scale] == 1)
                   and np.all(constants[bias] == 0))
        normalised = node.output[0] if trivial else part('normalised')
        nodes.append(helper.make_node('Div', [part('centred'), part('std')], [normalised], name=part('normalised')))
        if not trivial:
            for what, value in (('scale', scale), ('bias', bias)):
                graph.initializer.append(numpy_helper.from_array(
                    constants[value].astype(np.float32).reshape(1, -1, 1, 1), part(what)))
            nodes += [helper.make_node('Mul', [normalised, part('scale')], [part('scaled')], name=part('scaled')),
                      helper.make_node('Add', [part('scaled'), part('bias')], [node.output[0]], name=part('bias'))]
    used = {name for node in nodes for name in node.input}
    nodes = [n for n in nodes if n.op_type != 'Constant' or n.output[0] in used]
    del graph.node[:]
    graph.node.extend(nodes)


def _store_fp16(onnx_model):
    """Large float32 initializers stored as float16, each followed by a Cast to float32: half the bytes,
    standard ONNX, read by cv.dnn on OpenCV 4.x and 5.x."""
    from onnx import TensorProto, helper, numpy_helper
    graph = onnx_model.graph
    initializers, casts = [], []
    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        if array.dtype == np.float32 and array.size > 64:
            half = numpy_helper.from_array(array.astype(np.float16), tensor.name + '.fp16')
            initializers.append(half)
            casts.append(helper.make_node('Cast', [half.name], [tensor.name], to=TensorProto.FLOAT,
                                          name=tensor.name + '.cast'))
        else:
            initializers.append(tensor)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def export_onnx(model, inputs, input_names, path, metadata):
    """Export an eval-mode model with fp16-rounded weights to ONNX at `path` (atomically): opset 11,
    free batch dimension, fp16 storage. Returns the PyTorch output on `inputs` (the reference)."""
    import io
    import onnx
    model.eval()
    _fp16_weights(model)
    with torch.no_grad():
        reference = model(*inputs).numpy()
    buffer = io.BytesIO()
    axes = {name: {0: 'batch'} for name in input_names + ['output']}
    torch.onnx.export(model, tuple(inputs), buffer, input_names=input_names, output_names=['output'],
                      opset_version=11, dynamo=False, dynamic_axes=axes, do_constant_folding=True)
    onnx_model = onnx.load_from_string(buffer.getvalue())
    _inline_identities(onnx_model)
    _decompose_instance_norm(onnx_model)
    _store_fp16(onnx_model)
    onnx_model.producer_name = 'opencv-tryon tools/train_cpvton.py'
    onnx.helper.set_model_props(onnx_model, metadata)
    onnx.checker.check_model(onnx_model)
    image_io.write_bytes(path, onnx_model.SerializeToString())
    return reference


def check_in_cv_dnn(path, inputs, input_names, reference):
    """Largest difference between cv.dnn's output of the ONNX file and PyTorch's reference."""
    net = cv.dnn.readNetFromONNX(path)
    for name, value in zip(input_names, inputs):
        net.setInput(value.numpy(), name)
    return float(np.abs(net.forward() - reference).max())


def export_models(config, gmm, tom, samples, out_dir, work):
    """Write the trained GMM and TOM into out_dir under the shipped names (cp_vton_gmm_small.onnx,
    cp_vton_tom_small.onnx, never the published pair's); check them in cv.dnn."""
    indices = np.arange(min(2, samples.count))
    data = Warps(os.path.join(work, 'gmm_theta.npy')).add(
        samples.batch(indices, tom_person_flags('tom', config, None, len(indices))), indices)
    settings = {key: value for key, value in config.items() if key not in _RUN_ONLY}
    # the data folder relative to the checkout: a file that ships names no folder of the machine it was made on
    settings['data'] = os.path.relpath(settings['data'], os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    described = {'description': 'CP-VTON %s trained by tools/train_cpvton.py on VITON train pairs',
                 'training': json.dumps(settings, sort_keys=True), gmm_rewrite.STANDARD_OPS_KEY: 'true'}
    if config['representation'] == photo_kept.PHOTO_KEPT:
        tom_input = torch.cat([data['person_tensor'], data['warped'], data['warped_mask']], 1)
    else:
        tom_input = torch.cat([data['agnostic'], data['warped']], 1)
    results = {}
    for name, model, inputs, names in (
            ('gmm', gmm, [data['agnostic'], data['cloth']], list(gmm_rewrite.GMM_INPUTS)),
            ('tom', tom, [tom_input], ['input'])):
        path = os.path.join(out_dir, cp_vton.OWN_GMM_FILE if name == 'gmm' else cp_vton.OWN_TOM_FILE)
        metadata = dict(described, description=described['description'] % name.upper())
        if name == 'tom':
            metadata[photo_kept.REPRESENTATION_KEY] = config['representation']
        reference = export_onnx(model, inputs, names, path, metadata)
        results[name] = (path, check_in_cv_dnn(path, inputs, names, reference))
    return results


# ---------------------------------------------------------------------------- command line
def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                       '..', 'shared', 'data', 'viton'),
                        help='VITON root holding train/ and train_pairs.txt')
    parser.add_argument('--work', required=True, help='work directory for cache, checkpoints and logs '
                                                      '(outside the repository)')
    parser.add_argument('--out', help='directory for the exported ONNX files (default: WORK/export)')
    parser.add_argument('--limit', type=int, help='use only the first N training pairs (tests)')
    parser.add_argument('--val', type=int, default=200, help='held-out pairs (the last N of the list)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--width', type=float, default=0.5, help='channels relative to CP-VTON (1.0 = ngf 64)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--lr', type=float, default=2e-4, help='Adam learning rate (betas 0.5, 0.999)')
    parser.add_argument('--gmm-steps', type=int, default=4000)
    parser.add_argument('--tom-steps', type=int, default=3000)
    parser.add_argument('--gic-weight', type=float, default=40.0, help='grid-regularity loss weight (CP-VTON+)')
    parser.add_argument('--gmm-mask-weight', type=float, default=1.0,
                        help='GMM warped cloth-mask L1 weight (against the garment region)')
    parser.add_argument('--ssim-weight', type=float, default=1.0, help='TOM (1 - SSIM) loss weight')
    parser.add_argument('--mask-weight', type=float, default=1.0, help='TOM composition-mask L1 weight')
    parser.add_argument('--representation', choices=(photo_kept.PHOTO_KEPT, photo_kept.CP_VTON),
                        default=photo_kept.PHOTO_KEPT, help="the TOM's person representation (photo_kept.py); "
                        "cp-vton: CP-VTON's 25 -> 4 channels")
    parser.add_argument('--edge-weight', type=float, default=1.0,
                        help='photo-kept TOM: L1 of the horizontal and vertical differences (edges)')
    parser.add_argument('--coverage-weight', type=float, default=1.0,
                        help="photo-kept TOM: the new garment's coverage (binary cross-entropy) weight")
    parser.add_argument('--drop-hips', type=float, default=0.15,
                        help='photo-kept TOM: share of training samples shown without hips (half-body photos)')
    parser.add_argument('--no-bf16', dest='bf16', action='store_false', help='train in float32')
    parser.add_argument('--threads', type=int, default=2, help='PyTorch threads')
    parser.add_argument('--log-every', type=int, default=25)
    parser.add_argument('--val-every', type=int, default=500)
    parser.add_argument('--checkpoint-minutes', type=float, default=3.0)
    parser.add_argument('--stop-after', choices=STAGES, help='stop after this stage')
    parser.add_argument('--pause-after', type=int, metavar='STEPS',
                        help='stop a training stage after this many steps of this run (checkpointed; '
                             'run the same command again to go on)')
    return parser


# flags that do not change the result: a resumed run may differ in these
_RUN_ONLY = ('work', 'out', 'threads', 'stop_after', 'pause_after', 'log_every', 'checkpoint_minutes')
# flags a run may raise to train its stages further
_EXTENDABLE = ('gmm_steps', 'tom_steps')


def load_config(args):
    """The run's settings; the ones that change the result are stored in WORK/config.json, and a resumed
    run must give the same."""
    config = dict(vars(args), data=os.path.abspath(args.data))
    fixed = {key: value for key, value in config.items() if key not in _RUN_ONLY}
    path = os.path.join(args.work, 'config.json')
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
        fixed['extended_from'] = stored.get('extended_from', [])
        changed = sorted(k for k in (set(stored) | set(fixed)) - {'extended_from'} if stored.get(k) != fixed.get(k))
        if changed and all(k in _EXTENDABLE and fixed[k] > stored[k] for k in changed):
            # a longer run of the same training: the stages go on from their checkpoints, the learning
            # rate following the longer schedule; the lengths it was run with before are kept
            fixed['extended_from'].append({k: stored[k] for k in _EXTENDABLE})
            image_io.write_bytes(path, json.dumps(fixed, indent=1, sort_keys=True).encode())
        elif changed:
            raise errors.UsageError('%s was written with other settings (%s); use another --work'
                                    % (path, ', '.join(changed)))
    else:
        image_io.write_bytes(path, json.dumps(fixed, indent=1, sort_keys=True).encode())
    return dict(config, extended_from=fixed.get('extended_from', []))


def main(argv=None):
    args, status = command_line.parse_cli(build_parser(), argv)
    if args is None:
        return status
    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    config = load_config(args)
    torch.manual_seed(config['seed'])
    cache = build_cache(os.path.join(config['data'], 'train'), os.path.join(config['data'], 'train_pairs.txt'),
                        args.work, config['limit'])
    if args.stop_after == 'cache':
        return 0
    samples = Samples(cache)
    val = min(config['val'], samples.count - 1)
    train_pool, val_pool = np.arange(samples.count - val), np.arange(samples.count - val, samples.count)

    torch.manual_seed(config['seed'])
    gmm = Stage('gmm', GMM(config['width']).to(memory_format=torch.channels_last), config, args.work)
    if not gmm.done:  # the GMM trains further: its final weights and warps are made again after it
        for stale in ('gmm_final.pt', 'gmm_theta.npy'):
            if os.path.isfile(os.path.join(args.work, stale)):
                os.replace(os.path.join(args.work, stale), os.path.join(args.work, '%s.step%d' % (stale, gmm.step)))
    if not train(gmm, samples, train_pool, val_pool):
        return 0  # paused
    if args.stop_after == 'gmm':
        return 0
    warps = Warps(compute_warps(final_gmm(gmm, samples, train_pool, val_pool), samples, args.work))
    if args.stop_after == 'warps':
        return 0
    torch.manual_seed(config['seed'] + 1)
    channels = ((photo_kept.TOM_CHANNELS, 5) if config['representation'] == photo_kept.PHOTO_KEPT else (25, 4))
    tom = Stage('tom', TOM(config['width'], *channels).to(memory_format=torch.channels_last), config, args.work)
    if not train(tom, samples, train_pool, val_pool, warps):
        return 0  # paused
    if args.stop_after == 'tom':
        return 0
    out_dir = args.out or os.path.join(args.work, 'export')
    os.makedirs(out_dir, exist_ok=True)
    for name, (path, difference) in export_models(config, gmm.model, tom.model, samples, out_dir, args.work).items():
        print('%s: %s (%d bytes, sha256 %s), cv.dnn %s vs PyTorch: max |diff| %.3g'
              % (name, path, os.path.getsize(path), registry.sha256_of(path), cv.__version__, difference))
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
