"""Catalogues (issue 23): --batch gives the bytes of one try-on at a time, --shard K/N splits a list so that
N processes write every result once, a killed shard's rerun finishes its share, and ray_tryon.py writes
dataset mode's files. References: the single-pair command (one person, one garment, one process), a
hand-computed split, and the unsharded run."""
import os
import signal
import subprocess
import sys
import time

import cv2 as cv
import pytest

import shards
from dataset_mode import default_output_name
from conftest import REPO_DIR, SHARED_DATA

SCRIPT = os.path.join(REPO_DIR, 'virtual_try_on.py')
VITON = os.path.join(SHARED_DATA, 'viton')
TEST_DIR = os.path.join(VITON, 'test')
PAIRS = [tuple(line.split()) for line in open(os.path.join(VITON, 'test_pairs.txt'))][:12]


def run_cli(*args, script=SCRIPT, python=sys.executable):
    return subprocess.run([python, script] + [str(a) for a in args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope='module')
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('pairs') / 'pairs.txt'
    path.write_text(''.join('%s %s\n' % pair for pair in PAIRS))
    return str(path)


@pytest.fixture(scope='module')
def unsharded(pairs_file, tmp_path_factory):
    """Dataset mode over the 12 pairs, one at a time, in one process: the run every other must equal."""
    out = tmp_path_factory.mktemp('unsharded')
    result = run_cli('--dataroot', TEST_DIR, '--pairs', pairs_file, '-o', out, '--batch', 1)
    assert result.returncode == 0, result.stderr
    return out


def files(directory):
    return {name: open(os.path.join(directory, name), 'rb').read() for name in sorted(os.listdir(directory))}


def test_shard_blocks_hand_computed():
    items = list(range(10))
    assert [shards.take_shard(items, (k, 3)) for k in (1, 2, 3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert shards.take_shard(items, (1, 1)) == items and shards.take_shard(items, None) == items
    assert [shards.take_shard([0, 1], (k, 3)) for k in (1, 2, 3)] == [[], [0], [1]]  # more shards than items
    assert shards.parse_shard('2/3') == (2, 3) and shards.parse_shard(' 1 / 1 ') == (1, 1)


@pytest.mark.parametrize('text', ['0/3', '4/3', '1/0', 'x', '1-3'])
def test_bad_shard_is_one_line_exit_2(text, pairs_file, tmp_path):
    result = run_cli('--dataroot', TEST_DIR, '--pairs', pairs_file, '-o', tmp_path, '--shard', text)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and '--shard' in result.stderr


def test_bad_batch_is_one_line_exit_2(pairs_file, tmp_path):
    result = run_cli('--dataroot', TEST_DIR, '--pairs', pairs_file, '-o', tmp_path, '--batch', 0)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and '--batch' in result.stderr


def test_batched_dataset_mode_equals_single_pair_commands(unsharded, pairs_file, tmp_path):
    """--batch 5 (the TOM sees 5, 5, then 2 pairs) on one OpenCV thread writes the bytes that the single-pair
    command writes for each pair on its own (2 threads), and those of the one-at-a-time dataset run."""
    batched = tmp_path / 'batched'
    code = ('import sys, cv2 as cv; sys.path.insert(0, %r); cv.setNumThreads(1); import virtual_try_on as vto; '
            'sys.exit(vto.main(sys.argv[1:]))' % REPO_DIR)
    result = subprocess.run([sys.executable, '-c', code, '--dataroot', TEST_DIR, '--pairs', pairs_file,
                             '-o', str(batched), '--batch', '5'], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert files(batched) == files(unsharded) and len(files(batched)) == len(PAIRS)
    for person, cloth in PAIRS[:3]:
        stem = os.path.splitext(person)[0]
        single = tmp_path / ('%s_single.png' % stem)
        result = run_cli('-i', os.path.join(TEST_DIR, 'image', person), '-c', os.path.join(TEST_DIR, 'cloth', cloth),
                         '--labels', os.path.join(TEST_DIR, 'image-parse', stem + '.png'),
                         '--keypoints', os.path.join(TEST_DIR, 'pose', stem + '_keypoints.json'),
                         '--model-size', '-o', single)
        assert result.returncode == 0, result.stderr
        assert single.read_bytes() == (batched / default_output_name(person, cloth)).read_bytes()


def test_three_shards_write_the_unsharded_files_once(unsharded, pairs_file, tmp_path):
    """--shard 1/3 .. 3/3 as three concurrent processes into one directory: the union is the unsharded run,
    byte for byte, and every pair is written by exactly one shard (the written counts add up to 12)."""
    out = tmp_path / 'sharded'
    processes = [subprocess.Popen([sys.executable, SCRIPT, '--dataroot', TEST_DIR, '--pairs', pairs_file,
                                   '-o', str(out), '--shard', '%d/3' % k], stderr=subprocess.PIPE, text=True)
                 for k in (1, 2, 3)]
    logs = [process.communicate(timeout=900)[1] for process in processes]
    assert all(process.returncode == 0 for process in processes), logs
    written = [int(log.split(' written')[0].split()[-1]) for log in logs]
    assert written == [4, 4, 4], logs
    assert files(out) == files(unsharded)


def test_killed_shard_rerun_finishes_its_share(unsharded, pairs_file, tmp_path):
    """A shard killed (SIGKILL) after its first results, then rerun: its share is complete and equal to the
    unsharded run, the rerun skips what was finished, and no partial file is left under a result's name."""
    out = tmp_path / 'killed'
    out.mkdir()
    process = subprocess.Popen([sys.executable, SCRIPT, '--dataroot', TEST_DIR, '--pairs', pairs_file,
                                '-o', str(out), '--shard', '2/2'], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if len([name for name in os.listdir(out) if name.endswith('_tryon.png')]) >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    finished = sorted(name for name in os.listdir(out) if name.endswith('_tryon.png'))
    for name in finished:  # whatever the kill left under a result's name is a whole image
        assert cv.imread(str(out / name)) is not None and (out / name).read_bytes() == files(unsharded)[name]
    result = run_cli('--dataroot', TEST_DIR, '--pairs', pairs_file, '-o', out, '--shard', '2/2')
    assert result.returncode == 0, result.stderr
    assert '%d skipped as done' % len(finished) in result.stderr
    share = {default_output_name(*pair) for pair in PAIRS[6:]}
    results = {name: data for name, data in files(out).items() if name.endswith('_tryon.png')}
    assert results == {name: files(unsharded)[name] for name in share}


def test_catalogue_of_people_and_garments_in_shards(tmp_path):
    """-i two people -c three garments: six results, each the single-pair command's; --shard 1/2 and 2/2 write
    them between them, once."""
    people = [os.path.join(TEST_DIR, 'image', PAIRS[i][0]) for i in (0, 1)]
    clothes = [os.path.join(TEST_DIR, 'cloth', PAIRS[i][1]) for i in (2, 3, 4)]
    whole, split = tmp_path / 'whole', tmp_path / 'split'
    result = run_cli('-i', *people, '-c', *clothes, '-o', whole, '--model-size', '--batch', 2)
    assert result.returncode == 0, result.stderr
    assert len(files(whole)) == 6
    for k in (1, 2):
        result = run_cli('-i', *people, '-c', *clothes, '-o', split, '--model-size', '--shard', '%d/2' % k)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.split()) == 3  # each shard prints the three results it wrote
    assert files(split) == files(whole)
    single = tmp_path / 'single.png'
    result = run_cli('-i', people[1], '-c', clothes[0], '--model-size', '-o', single)
    assert result.returncode == 0, result.stderr
    assert single.read_bytes() == (whole / default_output_name(people[1], clothes[0])).read_bytes()


def test_ray_run_writes_dataset_modes_files(unsharded, pairs_file, tmp_path):
    """ray_tryon.py on a local Ray runtime (2 CPUs, 2 actors of 1 thread each): dataset mode's files."""
    pytest.importorskip('ray')
    out = tmp_path / 'ray'
    result = run_cli('--dataroot', TEST_DIR, '--pairs', pairs_file, '-o', out, '--actors', 2,
                     '--pairs-per-task', 4, script=os.path.join(REPO_DIR, 'ray_tryon.py'))
    assert result.returncode == 0, result.stderr
    assert '12 written' in result.stderr
    assert files(out) == files(unsharded)
