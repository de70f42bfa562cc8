"""A stage's training (CP-VTON's train.py loop): the model, optimizer, schedule and checkpoint of a stage, the
training and held-out validation steps, and what the TOM needs of the trained GMM (BatchNorm statistics
recalibrated, the warps of every pair)."""
import csv
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

import cp_vton
from progress import Progress
from tools.cpvton_training.data import batch_indices, tom_person_flags
from tools.cpvton_training.losses import gmm_losses, tom_losses
from tools.cpvton_training.networks import TpsWarp, autocast, channels_last


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

