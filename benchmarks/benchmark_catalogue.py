"""Throughput of dataset mode (the 395 paired VITON test pairs by default), each way of running it as its own
processes, from a cold start (models loaded, results written): one at a time, batched, N shards as N
processes, Ray Data with N actors. Prints pairs per second (from the median run), pairs per second per core,
the median and 95th percentile of the run's wall time, peak memory, and whether the files are byte for byte
those of the first run (one at a time).

    .venv/bin/python benchmarks/benchmark_catalogue.py [--pairs LIST] [--limit N] [--repeat 3] [--ray-python PY]

Every run writes into a fresh directory. Ray runs with --ray-python (an interpreter with ray installed, this
one by default) and is left out where none has it."""
import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
VITON = os.path.join(SHARED, 'viton')
PEAK = re.compile(r'peak memory(?: per actor)?:? ([^;\n]+)')


def has_ray(python):
    return subprocess.run([python, '-c', 'import ray'], capture_output=True).returncode == 0


def dataset_command(python, pairs, out, *extra):
    return [python, os.path.join(REPO_DIR, 'virtual_try_on.py'), '--dataroot', os.path.join(VITON, 'test'),
            '--pairs', pairs, '-o', out, *extra]


def run_mode(commands):
    """Start the commands together, wait for all; (seconds, peak memory texts). A failure stops the benchmark."""
    start = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for command in commands]
    logs = [process.communicate()[1] for process in processes]
    seconds = time.perf_counter() - start
    for process, log in zip(processes, logs):
        if process.returncode != 0:
            sys.exit('a run failed (exit %d): %s' % (process.returncode, log.strip().splitlines()[-1:]))
    return seconds, [match for log in logs for match in PEAK.findall(log)]


def same_files(directory, reference):
    names = sorted(os.listdir(reference))
    if sorted(os.listdir(directory)) != names:
        return False
    match, mismatch, errors = filecmp.cmpfiles(reference, directory, names, shallow=False)
    return not mismatch and not errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pairs', default=os.path.join(VITON, 'test_pairs_paired.txt'))
    parser.add_argument('--limit', type=int, default=0, help='first N pairs only (0: all)')
    parser.add_argument('--repeat', type=int, default=3, help='runs of each mode')
    parser.add_argument('--batch', type=int, default=8, help='the batched mode\'s --batch')
    parser.add_argument('--workers', type=int, default=2, help='shards (processes) and Ray actors')
    parser.add_argument('--ray-python', default=sys.executable, help='interpreter with ray installed')
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='tryon-catalogue-')
    pairs = args.pairs
    lines = [line for line in open(pairs) if line.strip()]
    if args.limit:
        pairs = os.path.join(work, 'pairs.txt')
        lines = lines[:args.limit]
        open(pairs, 'w').writelines(lines)
    python, n = sys.executable, args.workers
    modes = [
        ('one at a time (--batch 1)', lambda out: [dataset_command(python, pairs, out, '--batch', '1')]),
        ('batched (--batch %d)' % args.batch,
         lambda out: [dataset_command(python, pairs, out, '--batch', str(args.batch))]),
        ('%d shards as %d processes, 1 thread each' % (n, n),
         lambda out: [dataset_command(python, pairs, out, '--shard', '%d/%d' % (k, n), '--threads', '1')
                      for k in range(1, n + 1)]),
    ]
    if has_ray(args.ray_python):
        modes.append(('Ray Data, %d actors' % n, lambda out: [[
            args.ray_python, os.path.join(REPO_DIR, 'ray_tryon.py'), '--dataroot', os.path.join(VITON, 'test'),
            '--pairs', pairs, '-o', out, '--actors', str(n)]]))
    else:
        print('Ray: not installed for %s, left out' % args.ray_python)
    cores = os.cpu_count()
    print('%d pairs, %d runs of each mode, %d cores; cold start: models loaded in every run' % (len(lines), args.repeat, cores))
    print('| mode | pairs/s | pairs/s per core | run s median | run s p95 | peak memory | same files as the first run |')
    print('|---|---:|---:|---:|---:|---|---|')
    # the modes take turns, run by run, so that a change in the machine's load falls on all of them
    reference = os.path.join(work, 'reference')
    seconds = {name: [] for name, _ in modes}
    peaks = {name: [] for name, _ in modes}
    identical = {name: True for name, _ in modes}
    try:
        for run in range(args.repeat):
            for name, commands in modes:
                out = reference if not os.path.exists(reference) else os.path.join(work, 'run')
                elapsed, peak = run_mode(commands(out))
                seconds[name].append(elapsed)
                peaks[name] = peak
                if out != reference:
                    identical[name] = identical[name] and same_files(out, reference)
                    shutil.rmtree(out)
        for name, _ in modes:
            median = float(np.median(seconds[name]))
            print('| %s | %.2f | %.2f | %.1f | %.1f | %s | %s |' % (
                name, len(lines) / median, len(lines) / median / cores, median, np.percentile(seconds[name], 95),
                ' + '.join(peaks[name]) or '-', 'yes' if identical[name] else 'NO'), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
