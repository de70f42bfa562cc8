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
          through the runtime's cp_vton.CpVton, as users run it, against PyTorch

Every choice is a flag; the resolved flags are stored in WORK/config.json and a resumed run must match
them, except that --gmm-steps and --tom-steps may be raised to train a finished run further (from its
checkpoints; config.json lists the lengths it had before, so the shipped files are reproduced by running
the same commands in order). Losses go to WORK/<stage>_loss.csv, held-out validation to WORK/<stage>_val.csv; checkpoints
(model, optimizer, step) are written atomically to WORK/<stage>.pt every --checkpoint-minutes. The
order of the samples is a function of the seed and the step, so a resumed run sees the same batches.

This file is the command (its flags and the stages in order); the code is in tools/cpvton_training/, laid
out as CP-VTON's own: networks.py, data.py, losses.py, loop.py, settings.py, export.py.
"""
import argparse
import os
import sys

import cv2 as cv
import numpy as np

if not __package__:  # run as a script: make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import command_line  # noqa: E402
import photo_kept  # noqa: E402
import registry  # noqa: E402
from tools.cpvton_training.data import Samples, Warps, build_cache  # noqa: E402
from tools.cpvton_training.export import export_models  # noqa: E402
from tools.cpvton_training.loop import Stage, compute_warps, final_gmm, train  # noqa: E402
from tools.cpvton_training.networks import GMM, TOM, tom_channels  # noqa: E402
from tools.cpvton_training.settings import load_config  # noqa: E402

STAGES = ('cache', 'gmm', 'warps', 'tom', 'export')


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
    tom_model = TOM(config['width'], *tom_channels(config['representation']))
    tom = Stage('tom', tom_model.to(memory_format=torch.channels_last), config, args.work)
    if not train(tom, samples, train_pool, val_pool, warps):
        return 0  # paused
    if args.stop_after == 'tom':
        return 0
    out_dir = args.out or os.path.join(args.work, 'export')
    os.makedirs(out_dir, exist_ok=True)
    for name, (path, difference) in export_models(config, gmm.model, tom.model, samples, out_dir, args.work).items():
        print('%s: %s (%d bytes, sha256 %s), CpVton (cv.dnn %s) vs PyTorch: max |diff| %.3g'
              % (name, path, os.path.getsize(path), registry.sha256_of(path), cv.__version__, difference))
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))

