"""tests/check_tree.py on this checkout (it must be clean) and on small git trees built to break each of its
three rules (each must be reported): a tree that only one machine can set up must fail here, not on a
newcomer's clone."""
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(REPO_DIR, 'tests', 'check_tree.py')
# the folders of issue #29's links, spelled in pieces so that this file names none of them
WORK = '/' + 'work'
HOME = '/' + 'home'
USERS, ROOT = '/' + 'Users', '/' + 'root'

pytestmark = pytest.mark.skipif(shutil.which('git') is None, reason='git is not installed')


def run_check(directory):
    done = subprocess.run([sys.executable, CHECK, str(directory)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    return done.returncode, done.stdout.splitlines(), done.stderr


def git(directory, *args):
    subprocess.run(['git', '-C', str(directory)] + list(args), check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)


def make_repo(path, files):
    """A git repository at `path` with this checkout's .gitignore and `files` ({name: text}), all tracked."""
    path.mkdir()
    git(path, 'init', '-q')
    shutil.copy(os.path.join(REPO_DIR, '.gitignore'), str(path / '.gitignore'))
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, 'add', '-A')
    return path


def test_this_checkout_is_clean():
    if not os.path.isdir(os.path.join(REPO_DIR, '.git')) and not os.path.isfile(os.path.join(REPO_DIR, '.git')):
        pytest.skip('not a git checkout (an installed copy)')
    status, lines, err = run_check(REPO_DIR)
    assert (status, lines) == (0, []), '\n'.join(lines) + err


def test_a_clean_tree_passes(tmp_path):
    repo = make_repo(tmp_path / 'clean', {'README.md': 'python3 tools/train.py --work DIR\n--work ../tryon-train\n'
                                                       'pip install /path/to/checkout\n/tmp/landmarks\n'
                                                       '%s/USER/checkout\n' % HOME,
                                          'a.py': 'x = 1\n'})
    os.symlink('a.py', str(repo / 'inside_link'))
    git(repo, 'add', 'inside_link')
    assert run_check(repo)[:2] == (0, [])


def test_links_to_absolute_paths_or_out_of_the_checkout_fail(tmp_path):
    repo = make_repo(tmp_path / 'links', {'a.py': 'x = 1\n'})
    (repo / 'sub').mkdir()
    os.symlink(WORK + '/wt21/.venv', str(repo / 'venv_link'))  # the link of issue 29 (dangling here)
    os.symlink('/tmp', str(repo / 'tmp_link'))
    os.symlink('../../outside', str(repo / 'sub' / 'up_link'))
    os.symlink('../a.py', str(repo / 'sub' / 'fine_link'))  # inside the checkout: allowed
    git(repo, 'add', '-f', 'venv_link', 'tmp_link', 'sub/up_link', 'sub/fine_link')
    status, lines, _ = run_check(repo)
    assert status == 1
    assert sorted(lines) == sorted([
        'check_tree: venv_link: symlink to an absolute path, %s/wt21/.venv (it exists only on the machine '
        'that made it)' % WORK,
        'check_tree: tmp_link: symlink to an absolute path, /tmp (it exists only on the machine that made it)',
        'check_tree: sub/up_link: symlink out of the checkout, to ../../outside'])


def test_the_issue_29_tree_fails(tmp_path):
    """The tree of commit bc46a2b: .venv committed as a link under the old `.venv/` rule."""
    repo = make_repo(tmp_path / 'issue29', {'a.py': 'x = 1\n'})
    (repo / '.gitignore').write_text('.venv/\n')
    os.symlink(WORK + '/wt21/.venv', str(repo / '.venv'))
    git(repo, 'add', '-A')  # `.venv/` matches a directory only: add -A takes the link, as it did
    status, lines, _ = run_check(repo)
    assert status == 1 and len(lines) == 1 and lines[0].startswith('check_tree: .venv: symlink to an absolute path')


def test_tracked_files_the_gitignore_ignores_fail(tmp_path):
    repo = make_repo(tmp_path / 'ignored', {'a.py': 'x = 1\n'})
    for name in ('.venv', 'models/lip_jppnet_384.pb', 'common.pyc'):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text('data\n')
        git(repo, 'add', '-f', name)
    (repo / 'models' / 'cp_vton_gmm_small.onnx').write_text('model\n')  # negated in .gitignore: allowed
    git(repo, 'add', 'models/cp_vton_gmm_small.onnx')
    status, lines, _ = run_check(repo)
    assert status == 1
    assert sorted(lines) == sorted("check_tree: %s: tracked, but the checkout's ignore rules (.gitignore) ignore it"
                                   % name for name in ('.venv', 'models/lip_jppnet_384.pb', 'common.pyc'))


def test_files_naming_a_folder_of_the_machine_fail(tmp_path):
    repo = make_repo(tmp_path / 'paths', {
        'README.md': 'results in %s/notes23/closing.md\n--work %s/tryon-train\n' % (WORK, WORK),
        'run.py': "VENV = '%s/wt21/.venv'\nDATA = \"%s/someone/x\"\n" % (WORK, HOME),
        'docs/mac.md': 'see %s/ana/data and %s/.cache/x\n' % (USERS, ROOT),
        'ok.md': 'docker: -v /data:/data, --cache /tmp/landmarks, %s/<you>/checkout, /path/to/x\n' % HOME})
    (repo / 'blob.bin').write_bytes(b'\0' + (WORK + '/wt21/x').encode())  # binary: not read
    git(repo, 'add', 'blob.bin')
    status, lines, _ = run_check(repo)
    assert status == 1
    found = sorted(re.match(r'check_tree: (\S+): names a folder of the machine it was made on, (\S+) \(', line).groups()
                   for line in lines)
    assert found == sorted([('README.md:1', WORK + '/notes23'), ('README.md:2', WORK + '/tryon-train'),
                            ('docs/mac.md:1', USERS + '/ana'), ('docs/mac.md:1', ROOT + '/.cache'),
                            ('run.py:1', WORK + '/wt21'), ('run.py:2', HOME + '/someone')]), lines


def test_not_a_checkout_is_a_usage_error(tmp_path):
    status, lines, err = run_check(tmp_path)
    assert status == 2 and lines == [] and err.startswith('check_tree: error:')
