#!/usr/bin/env python3
"""Dataset mode (--dataroot, --pairs) on Ray Data, for a cluster: the pairs become a ray.data dataset,
map_batches hands them to a pool of actors, each holding the loaded networks (loaded once per actor),
and every actor writes its pairs' results exactly as dataset mode does (same names, same bytes, finished
results skipped). An optional extra: pip install -e .[ray].

    python3 ray_tryon.py --dataroot DIR --pairs LIST -o OUT --actors 2            # a local Ray runtime
    python3 ray_tryon.py --dataroot DIR --pairs LIST -o OUT --address auto --actors 16   # a running cluster

On a cluster, DIR and OUT are paths every node sees (a shared file system), and this project is installed
on every node (its models ship in it)."""
import argparse
import logging
import os
import sys
import time

import cv2 as cv
import numpy as np

import command_line
import dataset_mode
import dnn_backends
import errors
import registry
from batch_runner import BatchCounts
from progress import peak_memory_text
from shards import parse_shard, take_shard
from tryon_pipeline import TryOnModels, load_tryon

try:
    import ray
except ImportError:  # the optional extra is missing: main() says so in one line
    ray = None

log = logging.getLogger(__name__)


class TryOnActor:
    """One Ray actor: the GMM and TOM of `models` (a TryOnModels), loaded once; __call__ runs dataset mode's
    per-pair work (dataset_mode.run_dataset) on one batch of pairs and returns its counts and the actor's
    peak memory. job: run_dataset's keyword arguments (dataroot, out_dir, save_warped, overwrite, batch)."""

    def __init__(self, models, job, backend_id, target_id, threads):
        cv.setNumThreads(threads)
        logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
        self.job = job
        self.tryon = load_tryon(models, backend_id, target_id, need_pose=False, need_parsing=False)

    def __call__(self, rows):
        pairs = list(zip(rows['person'], rows['cloth']))
        counts = dataset_mode.run_dataset(lambda: self.tryon, pairs=pairs, progress=False, **self.job)
        return {'written': np.array([counts.written]), 'skipped': np.array([counts.skipped]),
                'failed': np.array([counts.failed]),
                'peak_memory': np.array([peak_memory_text()]), 'pid': np.array([os.getpid()])}


def build_parser():
    parser = argparse.ArgumentParser(
        description='CP-VTON\'s dataset mode (virtual_try_on.py --dataroot) on Ray Data: an actor per worker '
                    'holds the networks; results are written as dataset mode writes them. Exit status: 0 done, '
                    '1 a pair failed, 2 bad usage.')
    parser.add_argument('--dataroot', required=True, help='dataset in CP-VTON\'s layout (as virtual_try_on.py)')
    parser.add_argument('--pairs', required=True, help='CP-VTON pairs list ("<person> <cloth>" per line)')
    parser.add_argument('-o', '--output', required=True, help='output directory (every node must see it)')
    parser.add_argument('--actors', type=int, default=2, help='actors in the pool (default: %(default)s)')
    parser.add_argument('--cpus-per-actor', type=int, default=1,
                        help='CPUs Ray reserves for each actor, and its OpenCV threads (default: %(default)s)')
    parser.add_argument('--pairs-per-task', type=int, default=8,
                        help='pairs handed to an actor at once (default: %(default)s)')
    parser.add_argument('--address', help='Ray cluster to join (e.g. auto, ray://head:10001); default: a '
                                          'local Ray runtime with --actors x --cpus-per-actor CPUs')
    parser.add_argument('--shard', type=parse_shard, metavar='K/N', help='only shard K of N of the pairs')
    parser.add_argument('--batch', type=command_line.count_argument('--batch'), default=dataset_mode.DEFAULT_BATCH,
                        help='TOM batch, as virtual_try_on.py')
    parser.add_argument('--save-warped', action='store_true', help='also write <person>_<cloth>_warped.png')
    parser.add_argument('--overwrite', action='store_true', help='redo pairs whose results exist')
    parser.add_argument('--gmm', help='GMM model (default: as virtual_try_on.py)')
    parser.add_argument('--tom', help='TOM model (default: as virtual_try_on.py)')
    dnn_backends.add_backend_arguments(parser)
    command_line.add_verbosity_arguments(parser)
    return parser


def run(args, backend_id, target_id):
    """The Ray Data run; returns the summed BatchCounts (without the time) and {actor pid: peak memory}."""
    pairs = take_shard(dataset_mode.read_pairs(args.pairs), args.shard)
    models = TryOnModels(gmm=args.gmm, tom=args.tom)
    job = dict(dataroot=os.path.abspath(args.dataroot), out_dir=os.path.abspath(args.output),
               save_warped=args.save_warped, overwrite=args.overwrite, batch=args.batch)
    os.makedirs(job['out_dir'], exist_ok=True)
    # the actors import this project's modules: from its checkout (or its installed package on a cluster)
    runtime_env = {'env_vars': {'PYTHONPATH': registry.REPO_DIR}}
    if args.address:
        ray.init(address=args.address, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=args.actors * args.cpus_per_actor, runtime_env=runtime_env,
                 include_dashboard=False)
    try:
        dataset = ray.data.from_items([{'person': person, 'cloth': cloth} for person, cloth in pairs])
        counts = dataset.map_batches(TryOnActor, batch_size=args.pairs_per_task,
                                     compute=ray.data.ActorPoolStrategy(size=args.actors),
                                     fn_constructor_args=(models, job, backend_id, target_id, args.cpus_per_actor),
                                     num_cpus=args.cpus_per_actor).take_all()
    finally:
        ray.shutdown()
    total = BatchCounts(**{name: sum(int(row[name]) for row in counts) for name in ('written', 'skipped', 'failed')})
    total.total = total.written + total.skipped + total.failed
    memory = {int(row['pid']): str(row['peak_memory']) for row in counts}
    return total, memory


def main(argv=None):
    args, status = command_line.parse_cli(build_parser(), argv)
    if args is None:
        return status
    if ray is None:
        raise errors.UsageError('Ray is not installed: pip install -e .[ray] (or pip install "ray[data]")')
    for name in ('actors', 'cpus_per_actor', 'pairs_per_task'):
        if getattr(args, name) < 1:
            raise errors.UsageError('--%s must be at least 1' % name.replace('_', '-'))
    if not os.path.isdir(args.dataroot):
        raise errors.UsageError('dataset directory not found: %s' % args.dataroot)
    backend_id, target_id = dnn_backends.backend_target(args.backend, args.target)
    start = time.monotonic()
    counts, memory = run(args, backend_id, target_id)
    counts.seconds = time.monotonic() - start
    log.info('%s; %d actors, peak memory per actor: %s', counts.summary('pairs'), len(memory),
             ', '.join(sorted(memory.values())) or '-')
    return 1 if counts.failed else 0


def cli():
    """Console command `virtual-try-on-ray`."""
    sys.exit(command_line.run_main(main))


if __name__ == '__main__':
    cli()
