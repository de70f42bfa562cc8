"""CP-VTON's networks in PyTorch (its networks.py): the GMM with its feature correlation, the TOM's U-Net, the
TPS warp of cp_vton.tps_grid; and how they run on the CPU here (bfloat16 autocast, channels-last)."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import cp_vton
import photo_kept

HEIGHT, WIDTH = cp_vton.HEIGHT, cp_vton.WIDTH


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
        self.extraction_a = FeatureExtraction(cp_vton.AGNOSTIC_CHANNELS, ngf)
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

    def __init__(self, width=0.5, in_channels=cp_vton.CP_VTON_TOM_CHANNELS, out_channels=4):
        super().__init__()
        ngf = int(64 * width)
        channels = [ngf, 2 * ngf, 4 * ngf, 8 * ngf, 8 * ngf, 8 * ngf]
        block = None
        for level in range(len(channels) - 1, 0, -1):
            block = UnetBlock(channels[level - 1], channels[level], channels[level - 1], block)
        self.unet = UnetBlock(out_channels, channels[0], in_channels, block, outermost=True)

    def forward(self, x):
        return self.unet(x)


def tom_channels(representation):
    """(input, output) channels of the TOM of a person representation (photo_kept.py): CP-VTON's 25 -> 4
    (rendered person, composition mask), photo-kept 30 -> 5 (and the new garment's coverage)."""
    if representation == photo_kept.PHOTO_KEPT:
        return photo_kept.TOM_CHANNELS, 5
    return cp_vton.CP_VTON_TOM_CHANNELS, 4


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



def autocast(config):
    return torch.autocast('cpu', dtype=torch.bfloat16, enabled=config['bf16'])


def channels_last(x):
    """PyTorch's CPU convolutions run 1.5x faster on channels-last tensors (measured on the TOM here)."""
    return x.contiguous(memory_format=torch.channels_last)

