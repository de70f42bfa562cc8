#!/usr/bin/env python3
"""Checks of a git checkout's tracked files that a green run on the machine that made them cannot show:

    python3 tests/check_tree.py [DIR]        (DIR: the checkout, default: the one holding this file)

1. no tracked symlink whose target is absolute or leads out of the checkout (it resolves only on the
   machine where it was made; a fresh clone elsewhere gets a dangling link, or one into someone's folder);
2. no tracked file that the checkout's own ignore rules (.gitignore, with git's standard exclusions) would
   ignore (it was added by force or before the rule, and a fresh clone's setup meets it);
3. no tracked text file that names a folder of the machine it was made on: an absolute path that starts
   with /work/, /home/, /root/, /Users/, /mnt/ or /media/ (/tmp/ and container paths such as /data/ are the
   same on every machine and are allowed). A path with a placeholder as its first folder (/home/USER/...,
   /home/<you>/..., /path/to/...) is allowed; an option is documented with a metavar (--work DIR) or a
   relative example (--work ../tryon-train), never with the author's folder. Binary files (not UTF-8, or
   holding a NUL byte) are not read.

Prints one line per problem ('check_tree: PATH: what') and exits 1; exit 0 and nothing printed when the
tree is clean; exit 2 when DIR is not a git checkout. Used by .ci/run before anything else and by
tests/test_tree_guards.py. Only the standard library and git are needed.
"""
import os
import posixpath
import re
import subprocess
import sys

# an absolute path into one of the folders where machines keep people's and jobs' files
MACHINE_PATH = re.compile(r'(?<![\w.~/-])/(?:work|home|root|Users|mnt|media)/([^\s/\'"`)\]},;:]*)')
PLACEHOLDER = re.compile(r'^(?:[A-Z_]+|<[^>]*>|\$\w+|\$\{\w+\}|\.\.\.|you|your[-_]?\w*|user(?:name)?)$')


def git(directory, *args):
    return subprocess.run(('git', '-C', directory) + args, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE).stdout


def tracked_entries(directory):
    """[(mode, object id, path)] of the index (git ls-files -s -z)."""
    entries = []
    for record in git(directory, 'ls-files', '-s', '-z').split(b'\0'):
        if record:
            info, path = record.split(b'\t', 1)
            mode, object_id = info.split()[:2]
            entries.append((mode.decode(), object_id.decode(), path.decode('utf-8', 'surrogateescape')))
    return entries


def link_problems(directory, entries):
    problems = []
    for mode, object_id, path in entries:
        if mode != '120000':
            continue
        target = git(directory, 'cat-file', 'blob', object_id).decode('utf-8', 'surrogateescape')
        if target.startswith('/') or re.match(r'^[A-Za-z]:[\\/]', target):
            problems.append('%s: symlink to an absolute path, %s (it exists only on the machine that made it)'
                            % (path, target))
        elif posixpath.normpath(posixpath.join(posixpath.dirname(path), target)).split('/')[0] == '..':
            problems.append('%s: symlink out of the checkout, to %s' % (path, target))
    return problems


def ignored_problems(directory):
    listed = git(directory, 'ls-files', '--cached', '--ignored', '--exclude-standard', '-z')
    return ['%s: tracked, but the checkout\'s ignore rules (.gitignore) ignore it' % path
            for path in listed.decode('utf-8', 'surrogateescape').split('\0') if path]


def machine_paths(text):
    """The machine folders `text` names (see the module's rule), in order of appearance."""
    found = []
    for match in MACHINE_PATH.finditer(text):
        first = match.group(1)
        if first and not PLACEHOLDER.match(first) and match.group(0) not in found:
            found.append(match.group(0))
    return found


def machine_path_problems(directory, entries):
    problems = []
    for mode, object_id, path in entries:
        if mode not in ('100644', '100755'):
            continue
        try:
            with open(os.path.join(directory, path), 'rb') as f:
                data = f.read()
        except OSError:
            continue  # deleted in the work tree: nothing a clone would get from here
        if b'\0' in data:
            continue
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for found in machine_paths(line):
                problems.append('%s:%d: names a folder of the machine it was made on, %s (use a relative path or '
                                'a placeholder such as DIR)' % (path, number, found))
    return problems


def check(directory):
    """Every problem of the checkout at `directory`, one line each (empty: clean)."""
    entries = tracked_entries(directory)
    return link_problems(directory, entries) + ignored_problems(directory) + machine_path_problems(directory, entries)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    directory = argv[0] if argv else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        top = git(directory, 'rev-parse', '--show-toplevel').decode().strip()
    except (subprocess.CalledProcessError, OSError) as err:
        print('check_tree: error: %s is not a git checkout (%s)' % (directory, err), file=sys.stderr)
        return 2
    problems = check(top)
    for problem in problems:
        print('check_tree: %s' % problem)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
