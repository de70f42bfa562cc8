"""The training losses: CP-VTON's L1 and (1 - SSIM), CP-VTON+'s grid regularity (GIC), and for the
photo-kept TOM the edge, composition-mask and coverage terms inside the hole."""
import torch
import torch.nn.functional as F

import photo_kept
from tools.cpvton_training.networks import autocast, channels_last

HOLE = photo_kept.PERSON_CHANNELS - 1  # the person tensor's last channel: the hole the try-on fills


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
    region = data['person_tensor'][:, HOLE:HOLE + 1]
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

