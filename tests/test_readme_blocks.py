"""Every ```python and ```bash block of the documentation runs, as written, on the shared sample photos, so that
a snippet cannot drift from the code (issue 29: README's Python API block used `clothes` without defining it).

A block that is not meant to run (a placeholder, a cluster manifest, hours of training, the suite itself) says
so on the line before its fence, with the reason:

    <!-- not run: REASON -->

A block without a marker is run, so a new block is tested by default. `<!-- run after set-up: REASON -->` runs a
block that begins with README's set-up, `python3 -m venv .venv && .venv/bin/pip install -e . && `, without it:
the suite runs inside that environment already.

Each block runs in a directory of its own that mirrors the checkout (a link to each of its entries; `.venv` is
the environment running this suite, when the project is installed there) beside a `shared/data` link to the
shared data, so `../shared/data/...` and `.venv/bin/...` resolve as in a checkout, and what a block writes
(result.png, tryons/) lands there, not in the checkout. Python blocks run with `.venv/bin/python -c`, shell
blocks with `bash -e -o pipefail -c`.
"""
import glob
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_DIR, SHARED_DATA

# the documentation whose blocks run: README and any page under docs/
MARKDOWN_FILES = [os.path.join(REPO_DIR, 'README.md')] + sorted(glob.glob(os.path.join(REPO_DIR, 'docs', '*.md')))
SETUP = 'python3 -m venv .venv && .venv/bin/pip install -e . && '
FENCE = re.compile(r'^```(\w*)\s*$')
MARKER = re.compile(r'^<!--\s*(not run|run after set-up)\s*:?\s*(.*?)\s*-->\s*$')


class Block:
    def __init__(self, path, line, language, marker, reason, code):
        self.path, self.line, self.language = path, line, language
        self.marker, self.reason, self.code = marker, reason, code

    @property
    def name(self):
        return '%s:%d' % (os.path.relpath(self.path, REPO_DIR), self.line)


def fenced_blocks(paths):
    """The ```python and ```bash blocks of the markdown files `paths`, each with the marker of the line before it."""
    blocks = []
    for path in paths:
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
        index = 0
        while index < len(lines):
            match = FENCE.match(lines[index])
            if not match:
                index += 1
                continue
            end = next((i for i in range(index + 1, len(lines)) if lines[i].startswith('```')), len(lines))
            marker = MARKER.match(lines[index - 1]) if index else None
            if match.group(1) in ('python', 'bash', 'sh', 'shell', 'console'):
                blocks.append(Block(path, index + 1, match.group(1), marker and marker.group(1),
                                    marker and marker.group(2), '\n'.join(lines[index + 1:end]) + '\n'))
            index = end + 1
    return blocks


BLOCKS = fenced_blocks(MARKDOWN_FILES)
RUN = [block for block in BLOCKS if block.marker != 'not run']


def test_blocks_are_found_and_every_skip_says_why():
    assert len(BLOCKS) >= 10 and len(RUN) >= 4
    for block in BLOCKS:
        assert block.marker is None or block.reason, '%s: a marker needs its reason' % block.name
        assert block.language in ('python', 'bash'), '%s: ```%s; write ```bash' % (block.name, block.language)


def environment():
    """The .venv a block's `.venv/bin/...` means: the one running this suite when the project is installed
    there (tests/run.sh runs the suite under each OpenCV of the matrix), else the checkout's."""
    if os.path.isfile(os.path.join(sys.prefix, 'bin', 'virtual-try-on')):
        return sys.prefix
    return os.path.join(REPO_DIR, '.venv')


def sandbox(tmp_path):
    checkout = tmp_path / 'checkout'
    checkout.mkdir()
    for entry in os.listdir(REPO_DIR):
        if entry not in ('.git', '.venv', 'result.png', 'tryons', 'results'):
            os.symlink(os.path.join(REPO_DIR, entry), str(checkout / entry))
    os.symlink(environment(), str(checkout / '.venv'))
    (tmp_path / 'shared').mkdir()
    os.symlink(SHARED_DATA, str(tmp_path / 'shared' / 'data'))
    return checkout


@pytest.mark.parametrize('block', RUN, ids=[block.name for block in RUN])
def test_block_runs(block, tmp_path):
    if not os.path.isfile(os.path.join(environment(), 'bin', 'virtual-try-on')):
        pytest.skip('the project is not installed in %s (pip install -e .)' % environment())
    checkout = sandbox(tmp_path)
    code = block.code
    if block.marker == 'run after set-up':
        assert code.startswith(SETUP), '%s no longer begins with the set-up %r' % (block.name, SETUP)
        code = code[len(SETUP):]
    if block.language == 'python':
        command = [str(checkout / '.venv' / 'bin' / 'python'), '-c', code]
    else:
        command = ['bash', '-e', '-o', 'pipefail', '-c', code]
    env = dict(os.environ)
    env.pop('OPENCV_TRYON_MODELS', None)
    done = subprocess.run(command, cwd=str(checkout), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600, env=env)
    report = '%s exited %d\n--- stdout\n%s--- stderr\n%s' % (block.name, done.returncode, done.stdout, done.stderr)
    assert done.returncode == 0, report
    assert 'Traceback' not in done.stderr and not re.search(r'^error:', done.stderr, re.M), report
    assert '[ WARN' not in done.stderr, report
    written = [name for name in os.listdir(str(checkout)) if not os.path.islink(str(checkout / name))]
    if re.search(r'(virtual-try-on|virtual_try_on\.py|imwrite)', code):
        assert written, '%s wrote no result' % block.name
