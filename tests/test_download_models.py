"""models/download_models.py against a real HTTP server on 127.0.0.1 (no internet).

The server misbehaves on request: it cuts a body half way, ignores Range, sends a web page or
the wrong bytes. Expected bytes and hashes come from the test's own payloads and hashlib.
"""
import hashlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile

import cv2 as cv
import pytest

import registry
from models import download_models as dm
from conftest import REPO_DIR

SCRIPT = os.path.join(REPO_DIR, 'models', 'download_models.py')


# ---------------------------------------------------------------------------- local HTTP server
class FileServer:
    """Serves in-memory files; `modes[path]` picks a misbehaviour:
    ok, cut_first (first answer stops half way), always_cut, ignore_range, html."""

    def __init__(self):
        self.files, self.modes, self.requests = {}, {}, []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.lstrip('/')
                ranged = self.headers.get('Range')
                owner.requests.append((path, ranged))
                data = owner.files.get(path)
                if data is None:
                    self.send_error(404, 'Not Found')
                    return
                mode = owner.modes.get(path, 'ok')
                first = sum(1 for p, _ in owner.requests if p == path) == 1
                cut = mode == 'always_cut' or (mode == 'cut_first' and first)
                start = 0
                if ranged and mode != 'ignore_range':
                    start = int(re.match(r'bytes=(\d+)-$', ranged).group(1))
                    self.send_response(206)
                    self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header('Content-Type', 'text/html' if mode == 'html' else 'application/octet-stream')
                self.send_header('Content-Length', str(len(body)))   # the full length, even when cut
                self.end_headers()
                if cut or mode == 'stall':
                    body = body[:len(body) // 2]
                if mode == 'stall':     # send half, then fall silent past the client's timeout
                    self.wfile.write(body)
                    self.wfile.flush()
                    time.sleep(1.5)
                    return
                view = memoryview(body)
                for offset in range(0, len(view), 1 << 20):
                    self.wfile.write(view[offset:offset + (1 << 20)])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return 'http://127.0.0.1:%d/%s' % (self.httpd.server_address[1], path)

    def seen(self, path):
        return [ranged for p, ranged in self.requests if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy_for_loopback(monkeypatch):
    # a proxy set in the environment must not swallow requests to the local server
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


def closed_port_url(name):
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()     # nothing listens there now: connection refused
    return 'http://127.0.0.1:%d/%s' % (port, name)


def make_entry(name, payload, **extra):
    entry = dict(name=name, size=len(payload), sha256=hashlib.sha256(payload).hexdigest(), urls=(),
                 licence='test', used_by='tests', source='test')
    entry.update(extra)
    return entry


def payload_of(size, seed=1):
    return (hashlib.sha256(b'%d' % seed).digest() * (size // 32 + 1))[:size]


def run_cli(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------------------- registry
PUBLISHED = {
    'cp_vton_gmm.onnx': (76272703, 'd05e68b1d2c520bf5727ee232b525f0f2bb3a0cfe7ef22894e9e4e0119d0d562'),
    'cp_vton_tom.onnx': (85426314, '04fb505e1cf978ce210d6643e467fff525cad88ab291b0f13b28ae868b821b6c'),
    'lip_jppnet_384.pb': (432186264, 'b695d5772e061ddba05937ae9eaaf845fbb38c0ee67ec4920111e617339a8375'),
    'pose_iter_440000.caffemodel': (209274056,
                                    'b4cf475576abd7b15d5316f1ee65eb492b5c9f5865e70a2e7882ed31fb682549'),
    'pose_landmark_full.tflite': (6440512, 'e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f'),
    'pose_detection.tflite': (2959046, '9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c'),
}


def test_registry_entries_are_complete():
    for name, entry in dm.MODELS.items():
        assert entry['name'] == name
        for field in ('description', 'licence', 'source', 'used_by'):
            assert entry[field].strip(), (name, field)
        assert all(re.match(r'https?://[^ ]+$', url) for url in entry.get('urls', ())), name
        if entry.get('produce'):
            assert entry.get('sha256') is None and entry.get('size') is None
            assert all(dep in dm.MODELS and dm.MODELS[dep]['sha256'] for dep in entry['inputs'])
        else:
            assert re.fullmatch(r'[0-9a-f]{64}', entry['sha256']), name
            assert isinstance(entry['size'], int) and entry['size'] > 0
            assert entry.get('urls') or entry.get('wheel') or entry.get('shipped'), name


def test_registry_is_the_yaml_file_and_the_downloader_reads_it():
    """models/models.yml, read here as plain text and with cv.FileStorage, is what the
    downloader and the loaders use: same entries, same order; every entry pinned or produced locally."""
    registry_path = os.path.join(REPO_DIR, 'models', 'models.yml')
    with open(registry_path) as f:
        text = f.read()
    ids = re.findall(r'^([A-Za-z0-9_]+):\s*$', text, flags=re.M)
    files = re.findall(r'^  file: "([^"]+)"$', text, flags=re.M)
    assert len(ids) == len(files) == len(dm.MODELS) and list(dm.MODELS) == files
    assert dm.MODELS is registry.model_registry()
    for model_id, name in zip(ids, files):
        entry = dm.MODELS[name]
        assert entry['id'] == model_id
        assert (entry.get('size') and entry.get('sha256')) or entry.get('produce'), name
    # the registry's published facts, read back independently of registry.py's reader
    storage = cv.FileStorage(registry_path, cv.FILE_STORAGE_READ)
    for model_id, name in zip(ids, files):
        node = storage.getNode(model_id)
        assert node.getNode('file').string() == name
        if not node.getNode('sha256').empty():
            assert node.getNode('sha256').string() == dm.MODELS[name]['sha256']
            assert int(node.getNode('size').real()) == dm.MODELS[name]['size']


def test_list_prints_every_registry_entry(tmp_path):
    result = run_cli('--list', '--dir', str(tmp_path))
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()]
    for name in dm.MODELS:
        assert name in listed, name


def test_runtime_scripts_do_not_edit_sys_path():
    for script in ('registry.py', 'dnn_backends.py', 'image_io.py', 'command_line.py', 'virtual_try_on.py', 'openpose.py', 'human_parsing.py', 'pil_bilinear.py'):
        with open(os.path.join(REPO_DIR, script)) as f:
            assert 'sys.path' not in f.read(), script


def test_registry_holds_the_published_sizes_and_hashes():
    for name, (size, sha) in PUBLISHED.items():
        assert (dm.MODELS[name]['size'], dm.MODELS[name]['sha256']) == (size, sha)
    wheel = dm.MODELS['pose_landmark_full.tflite']['wheel']
    assert wheel['requirement'] == 'mediapipe==0.10.21'
    assert wheel['member'] == 'mediapipe/modules/pose_landmark/pose_landmark_full.tflite'
    assert 'Apache-2.0' in dm.MODELS['pose_landmark_full.tflite']['licence']
    assert any('posefs1.perception.cs.cmu.edu' in u for u in dm.MODELS['pose_iter_440000.caffemodel']['urls'])
    assert all(u.endswith('dl=1') for u in dm.MODELS['cp_vton_gmm.onnx']['urls'] if 'www.dropbox.com' in u)
    # everything but the converted OpenPose (built locally) and the GMM/TOM trained here (in git)
    assert dm.downloadable_names() == [n for n, e in dm.MODELS.items()
                                       if n != 'openpose_pose_coco.onnx' and not e.get('shipped')]
    assert [n for n, e in dm.MODELS.items() if e.get('shipped')] == ['cp_vton_gmm_small.onnx', 'cp_vton_tom_small.onnx']


def test_prototxt_entry_matches_the_shared_copy(shared_data):
    path = os.path.join(shared_data, 'models', 'openpose_pose_coco.prototxt')
    with open(path, 'rb') as f:
        data = f.read()
    entry = dm.MODELS['openpose_pose_coco.prototxt']
    assert (len(data), hashlib.sha256(data).hexdigest()) == (entry['size'], entry['sha256'])


def test_produce_rule_points_at_the_converter(tmp_path):
    argv = dm.produce_command(dm.MODELS['openpose_pose_coco.onnx'], str(tmp_path))
    assert argv[0] == sys.executable and argv[1] == os.path.join(REPO_DIR, 'openpose_caffe.py')
    assert argv[argv.index('--prototxt') + 1] == os.path.join(str(tmp_path), 'openpose_pose_coco.prototxt')
    assert argv[argv.index('--caffemodel') + 1] == os.path.join(str(tmp_path), 'pose_iter_440000.caffemodel')
    assert argv[argv.index('-o') + 1] == os.path.join(str(tmp_path), 'openpose_pose_coco.onnx')


def test_share_links_become_direct_links():
    assert dm.direct_url('https://www.dropbox.com/s/abc/m.onnx?dl=0') == 'https://www.dropbox.com/s/abc/m.onnx?dl=1'
    assert dm.direct_url('https://drive.google.com/file/d/XYZ_1/view?usp=sharing') == \
        'https://drive.usercontent.google.com/download?id=XYZ_1&export=download&confirm=t'
    assert dm.direct_url('https://drive.google.com/uc?id=ABC&export=download') == \
        'https://drive.usercontent.google.com/download?id=ABC&export=download&confirm=t'
    assert dm.direct_url('http://127.0.0.1:8/x.bin') == 'http://127.0.0.1:8/x.bin'


# ---------------------------------------------------------------------------- downloads
def test_download_verifies_renames_and_reports_progress(server, tmp_path, capsys, caplog):
    caplog.set_level('INFO')
    payload = payload_of(3 * (1 << 20) + 123)
    server.files['tiny.bin'] = payload
    entry = make_entry('tiny.bin', payload)
    path = dm.download(entry, str(tmp_path), urls=[server.url('tiny.bin')], progress=True, timeout=5)
    assert path == str(tmp_path / 'tiny.bin')
    assert (tmp_path / 'tiny.bin').read_bytes() == payload
    assert os.listdir(tmp_path) == ['tiny.bin']      # no .part left
    err = capsys.readouterr().err
    assert 'tiny.bin: 100%' in err and 'saved and verified' in caplog.text
    assert len(err.splitlines()) <= 8                # not a line per chunk on a non-terminal


def test_terminal_progress_is_one_redrawn_line():
    class Tty:
        text = ''

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    stream = Tty()
    bar = dm.Progress(None, 'bytes', stream=stream, label='m.bin')
    for done in range(0, 101, 50):
        bar(done << 20, 100 << 20)
    bar.close()
    assert stream.text.count('\n') == 1 and stream.text.endswith('\n')
    assert '\r' in stream.text and '100%' in stream.text


def test_cut_connection_leaves_part_then_resumes_with_range(server, tmp_path):
    payload = payload_of(2 * (1 << 20) + 7, seed=2)
    server.files['cut.bin'] = payload
    server.modes['cut.bin'] = 'cut_first'
    entry = make_entry('cut.bin', payload)
    url = server.url('cut.bin')
    with pytest.raises(dm.DownloadError, match='connection closed after %d of %d bytes' % (
            len(payload) // 2, len(payload))):
        dm.download(entry, str(tmp_path), urls=[url], timeout=5, retries=0)
    part = tmp_path / 'cut.bin.part'
    assert part.stat().st_size == len(payload) // 2 and not (tmp_path / 'cut.bin').exists()

    dm.download(entry, str(tmp_path), urls=[url], timeout=5, retries=0)
    assert server.seen('cut.bin') == [None, 'bytes=%d-' % (len(payload) // 2)]
    assert (tmp_path / 'cut.bin').read_bytes() == payload and not part.exists()


def test_cut_connection_is_resumed_within_one_call(server, tmp_path):
    payload = payload_of(1 << 20, seed=3)
    server.files['m.bin'] = payload
    server.modes['m.bin'] = 'cut_first'
    dm.download(make_entry('m.bin', payload), str(tmp_path), urls=[server.url('m.bin')], timeout=5)
    assert server.seen('m.bin') == [None, 'bytes=%d-' % (len(payload) // 2)]
    assert (tmp_path / 'm.bin').read_bytes() == payload


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    payload = payload_of(1 << 20, seed=4)
    server.files['m.bin'] = payload
    server.modes['m.bin'] = 'ignore_range'
    (tmp_path / 'm.bin.part').write_bytes(b'x' * 1000)     # wrong bytes: appending would corrupt
    dm.download(make_entry('m.bin', payload), str(tmp_path), urls=[server.url('m.bin')], timeout=5)
    assert server.seen('m.bin') == ['bytes=1000-']
    assert (tmp_path / 'm.bin').read_bytes() == payload and not (tmp_path / 'm.bin.part').exists()


def test_silent_servers_time_out(server, tmp_path):
    payload = payload_of(1 << 20, seed=13)
    server.files['m.bin'] = payload
    server.modes['m.bin'] = 'stall'
    with pytest.raises(dm.DownloadError, match=r'timed out after 0.5 s at %d of %d bytes.*m.bin.part kept' % (
            len(payload) // 2, len(payload))):
        dm.download(make_entry('m.bin', payload), str(tmp_path), urls=[server.url('m.bin')], timeout=0.5,
                    retries=0)
    listener = socket.socket()      # accepts connections (backlog) but never answers
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    try:
        url = 'http://127.0.0.1:%d/m.bin' % listener.getsockname()[1]
        with pytest.raises(dm.DownloadError, match='timed out'):
            dm.download(make_entry('m.bin', payload), str(tmp_path), urls=[url], timeout=0.5)
    finally:
        listener.close()


def test_bad_stale_part_is_dropped_after_a_failed_check(server, tmp_path):
    payload = payload_of(1 << 20, seed=15)
    server.files['m.bin'] = payload
    (tmp_path / 'm.bin.part').write_bytes(b'x' * 1000)     # left by some other, wrong source
    dm.download(make_entry('m.bin', payload), str(tmp_path), urls=[server.url('m.bin')], timeout=5)
    assert server.seen('m.bin') == ['bytes=1000-', None]
    assert (tmp_path / 'm.bin').read_bytes() == payload and os.listdir(tmp_path) == ['m.bin']


def test_checksum_mismatch_removes_the_part(server, tmp_path):
    payload = payload_of(500000, seed=5)
    server.files['m.bin'] = payload_of(500000, seed=6)      # same size, other bytes
    with pytest.raises(dm.DownloadError, match='checksum mismatch'):
        dm.download(make_entry('m.bin', payload), str(tmp_path), urls=[server.url('m.bin')], timeout=5)
    assert os.listdir(tmp_path) == []


def test_wrong_length_and_web_pages_are_refused_before_downloading(server, tmp_path):
    payload = payload_of(1000)
    server.files['short.bin'] = payload[:999]
    server.files['page.bin'] = payload
    server.modes['page.bin'] = 'html'
    with pytest.raises(dm.DownloadError, match='offers 999 bytes, the registry expects 1000'):
        dm.download(make_entry('short.bin', payload), str(tmp_path), urls=[server.url('short.bin')], timeout=5)
    with pytest.raises(dm.DownloadError, match='web page instead of the file'):
        dm.download(make_entry('page.bin', payload), str(tmp_path), urls=[server.url('page.bin')], timeout=5)
    assert os.listdir(tmp_path) == []


def test_next_mirror_is_tried_after_a_failure(server, tmp_path, caplog):
    caplog.set_level('DEBUG')
    payload = payload_of(4096, seed=7)
    server.files['good/m.bin'] = payload
    urls = [closed_port_url('m.bin'), server.url('missing/m.bin'), server.url('good/m.bin')]
    dm.download(make_entry('m.bin', payload), str(tmp_path), urls=urls, timeout=5)
    assert (tmp_path / 'm.bin').read_bytes() == payload
    err = caplog.text    # the sources tried are debugging details (-v)
    assert 'cannot connect' in err and 'HTTP 404' in err and 'trying the next source' in err


def test_present_file_is_kept_and_wrong_file_fetched_again(server, tmp_path, caplog):
    caplog.set_level('INFO')
    payload = payload_of(4096, seed=8)
    entry = make_entry('m.bin', payload)
    (tmp_path / 'm.bin').write_bytes(payload)
    dm.download(entry, str(tmp_path), urls=[closed_port_url('m.bin')], timeout=5)
    assert 'already present' in caplog.text
    caplog.clear()

    (tmp_path / 'm.bin').write_bytes(payload[:-1] + b'!')
    server.files['m.bin'] = payload
    dm.download(entry, str(tmp_path), urls=[server.url('m.bin')], timeout=5)
    assert (tmp_path / 'm.bin').read_bytes() == payload
    assert 'fetching it again' in caplog.text


def test_local_mirror_by_file_url(tmp_path):
    payload = payload_of(70000, seed=14)
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / 'm.bin').write_bytes(payload)
    out = tmp_path / 'out'
    out.mkdir()
    dm.download(make_entry('m.bin', payload), str(out), urls=[(mirror / 'm.bin').as_uri()], timeout=5)
    assert (out / 'm.bin').read_bytes() == payload


def test_complete_part_is_checked_without_the_network(tmp_path):
    payload = payload_of(4096, seed=9)
    (tmp_path / 'm.bin.part').write_bytes(payload)
    dm.download(make_entry('m.bin', payload), str(tmp_path), urls=[closed_port_url('m.bin')], timeout=5)
    assert os.listdir(tmp_path) == ['m.bin']


# ---------------------------------------------------------------------------- CLI in a subprocess
def test_cli_unreachable_source_is_one_clean_error(tmp_path):
    url = closed_port_url('cp_vton_gmm.onnx')
    result = run_cli('cp_vton_gmm.onnx', '--dir', str(tmp_path), '--timeout', '5', '--url', 'cp_vton_gmm.onnx=' + url)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and url in errors[0] and 'cannot connect' in errors[0]
    assert os.listdir(tmp_path) == []


def test_cli_failed_run_is_one_line_per_model_and_a_summary(tmp_path):
    gmm_urls = [closed_port_url('a.onnx'), closed_port_url('b.onnx')]
    args = ['cp_vton_gmm.onnx', 'cp_vton_tom.onnx', 'openpose_pose_coco.prototxt', '--dir', str(tmp_path),
            '--timeout', '5', '--url', 'cp_vton_tom.onnx=' + closed_port_url('t.onnx'),
            '--url', 'openpose_pose_coco.prototxt=' + closed_port_url('p.prototxt')]
    args += ['--url=cp_vton_gmm.onnx=' + url for url in gmm_urls]
    result = run_cli(*args)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 3
    gmm_error = [line for line in errors if 'cp_vton_gmm.onnx' in line][0]
    assert 'its 2 sources failed' in gmm_error and not any(url in gmm_error for url in gmm_urls)
    assert '0 of 3 model(s) present' in result.stdout and '3 failed' in result.stdout
    assert 'openpose_pose_coco.onnx' not in result.stdout + result.stderr    # no advice that cannot work
    verbose = run_cli(*(args + ['-v']))
    assert all(url in verbose.stderr for url in gmm_urls)


def test_cli_checksum_mismatch_exits_1_and_leaves_nothing(server, tmp_path):
    entry = dm.MODELS['cp_vton_gmm.onnx']
    server.files['gmm'] = bytes(entry['size'])      # right size, wrong bytes
    result = run_cli('cp_vton_gmm.onnx', '--dir', str(tmp_path), '--url', 'cp_vton_gmm.onnx=' + server.url('gmm'))
    assert result.returncode == 1, result.stderr
    assert 'Traceback' not in result.stderr
    assert re.search(r'^error: .*checksum mismatch.*%s' % entry['sha256'], result.stderr, re.M)
    assert os.listdir(tmp_path) == []


def test_cli_usage_errors_exit_2(tmp_path):
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    for args, message in ((['no_such_model.onnx'], 'unknown model no_such_model.onnx'),
                          (['--dir', str(a_file)], 'not a directory'),
                          (['--synthetic', 'cp_vton_gmm.onnx'], 'takes no model names'),
                          (['--url', 'nothing'], '--url takes NAME=URL')):
        status = dm.run_main(dm.main, args)
        assert status == 2, args
    result = run_cli('no_such_model.onnx')
    assert result.returncode == 2 and result.stderr.strip().startswith('error: unknown model')


def test_cli_help_documents_exit_statuses():
    result = run_cli('--help')
    assert result.returncode == 0
    assert '0 all present' in result.stdout and '1 a download' in result.stdout and '2 usage error' in result.stdout


def test_list_shows_what_the_directory_holds(tmp_path, capsys):
    (tmp_path / 'pose_landmark_full.tflite').write_bytes(b'not a model')
    (tmp_path / 'cp_vton_tom.onnx.part').write_bytes(bytes(dm.MODELS['cp_vton_tom.onnx']['size'] // 2))
    assert dm.run_main(dm.main, ['--list', '--dir', str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows['pose_landmark_full.tflite'].rstrip().endswith('WRONG (size 11 bytes)')
    assert rows['cp_vton_tom.onnx'].rstrip().endswith('partial 50%')
    assert rows['cp_vton_gmm.onnx'].rstrip().endswith('missing')
    assert '76.3 MB' in rows['cp_vton_gmm.onnx'] and 'd05e68b1d2c5' in rows['cp_vton_gmm.onnx']


def test_synthetic_option_calls_the_builder(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(script, args, failure):  # tools/synthetic.py runs as a program of its own
        assert script == 'synthetic.py'
        calls.append(args[0])
        return os.path.join(args[0], 'a.onnx') + '\n'
    monkeypatch.setattr(dm, 'run_tool', fake)
    assert dm.run_main(dm.main, ['--synthetic', '--dir', str(tmp_path / 'syn')]) == 0
    assert calls == [str(tmp_path / 'syn')]
    assert 'NOT trained' in capsys.readouterr().out


# ---------------------------------------------------------------------------- what a plain run fetches
WHEEL_MEMBERS = ['pose_landmark_full.tflite', 'selfie_segmentation.tflite', 'pose_detection.tflite']
PUBLISHED_FILES = ['cp_vton_gmm.onnx', 'cp_vton_tom.onnx', 'lip_jppnet_384.pb', 'pose_iter_440000.caffemodel',
                   'openpose_pose_coco.prototxt']


def fake_fetch(monkeypatch, reachable):
    """dm.fetch replaced: the models of `reachable` succeed, any other is a DownloadError; returns the calls."""
    calls = []

    def fetch(names, directory=None, urls=None, progress=True, timeout=None):
        calls.append(list(names))
        if not set(names) <= set(reachable):
            raise dm.DownloadError('cannot download %s: its 2 sources failed (cannot connect)' % ', '.join(names))
        return [os.path.join(directory, name) for name in names]
    monkeypatch.setattr(dm, 'fetch', fetch)
    return calls


def test_plain_run_fetches_only_what_the_default_chain_needs(tmp_path, monkeypatch, capsys, caplog):
    """Issue 29: `tryon-models` tried the five published files too, and exited 1 where their hosts cannot be
    reached, although the try-on runs without them."""
    assert sorted(dm.default_chain_names()) == sorted(WHEEL_MEMBERS)
    assert sorted(dm.published_names()) == sorted(PUBLISHED_FILES)
    calls = fake_fetch(monkeypatch, WHEEL_MEMBERS)
    caplog.set_level('INFO', logger=dm.__name__)
    assert dm.run_main(dm.main, ['--dir', str(tmp_path)]) == 0
    assert calls == [WHEEL_MEMBERS]    # one wheel download; no published file tried
    out = capsys.readouterr()
    assert out.out == 'all 5 model(s) present and verified in %s\n' % tmp_path and 'error' not in out.err
    said = [record.getMessage() for record in caplog.records]
    assert 'cp_vton_gmm_small.onnx: shipped, verified' in said and 'cp_vton_tom_small.onnx: shipped, verified' in said
    assert any(line.startswith('optional, not fetched: %s (' % ', '.join(PUBLISHED_FILES))
               and line.endswith('tryon-models --published') for line in said), said


def test_published_files_are_optional_unless_named(tmp_path, monkeypatch, capsys, caplog):
    calls = fake_fetch(monkeypatch, WHEEL_MEMBERS)    # no published host answers
    assert dm.run_main(dm.main, ['--dir', str(tmp_path), '--published']) == 0
    assert calls == [WHEEL_MEMBERS] + [[name] for name in PUBLISHED_FILES]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert len(warnings) == 5 and all('(optional: the try-on runs without it): cannot download' in w for w in warnings)
    assert capsys.readouterr().out == ('all 5 model(s) present and verified in %s; 5 optional not had: %s\n'
                                       % (tmp_path, ', '.join(PUBLISHED_FILES)))
    # named, a published file is asked for: its failure is an error and exit status 1
    assert dm.run_main(dm.main, ['--dir', str(tmp_path), 'cp_vton_gmm.onnx']) == 1
    out = capsys.readouterr()
    assert out.err.startswith('error: cannot download cp_vton_gmm.onnx') and '0 of 1 model(s) present' in out.out


def test_a_damaged_shipped_model_fails_the_plain_run(tmp_path, monkeypatch, capsys):
    fake_fetch(monkeypatch, WHEEL_MEMBERS)
    (tmp_path / 'cp_vton_tom_small.onnx').write_bytes(b'not the shipped TOM')    # found in --dir first
    assert dm.run_main(dm.main, ['--dir', str(tmp_path)]) == 1
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and errors[0].startswith('error: cp_vton_tom_small.onnx (shipped in git) has size 19')
    assert '4 of 5 model(s) present in %s; 1 failed: cp_vton_tom_small.onnx' % tmp_path in out.out


# ---------------------------------------------------------------------------- wheel members
MEMBER = 'mediapipe/modules/pose_landmark/pose_landmark_full.tflite'


def write_wheel(path, files):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def wheel_entry(payload, requirement='mediapipe==0.10.21', member=MEMBER):
    return make_entry('pose_landmark_full.tflite', payload, wheel={'requirement': requirement, 'member': member})


def test_member_is_extracted_from_a_cached_wheel(tmp_path):
    payload = payload_of(300000, seed=10)
    cache = tmp_path / 'cache'
    cache.mkdir()
    write_wheel(cache / 'mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl',
                {MEMBER: payload, 'mediapipe/__init__.py': b''})
    out = tmp_path / 'models'
    out.mkdir()
    path = dm.fetch_from_wheel(wheel_entry(payload), str(out), cache_dir=str(cache))
    assert open(path, 'rb').read() == payload and os.listdir(out) == ['pose_landmark_full.tflite']


def test_wheel_member_with_wrong_hash_or_missing_is_an_error(tmp_path):
    payload = payload_of(300000, seed=11)
    cache = tmp_path / 'cache'
    cache.mkdir()
    write_wheel(cache / 'mediapipe-0.10.21-py3-none-any.whl', {MEMBER: payload[:-1] + b'?'})
    out = tmp_path / 'models'
    out.mkdir()
    with pytest.raises(dm.DownloadError, match='checksum mismatch'):
        dm.fetch_from_wheel(wheel_entry(payload), str(out), cache_dir=str(cache))
    with pytest.raises(dm.DownloadError, match='has no member mediapipe/modules/other.tflite'):
        dm.fetch_from_wheel(wheel_entry(payload, member='mediapipe/modules/other.tflite'), str(out),
                            cache_dir=str(cache))
    assert os.listdir(out) == []


def test_wheel_is_fetched_with_pip_download(tmp_path):
    # a minimal valid wheel on a local find-links directory: pip runs for real, offline
    payload = payload_of(200000, seed=12)
    links = tmp_path / 'links'
    links.mkdir()
    write_wheel(links / 'fakepose-1.0-py3-none-any.whl', {
        'fakepose/pose_landmark_full.tflite': payload,
        'fakepose-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: fakepose\nVersion: 1.0\n',
        'fakepose-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n'
                                        'Tag: py3-none-any\n',
        'fakepose-1.0.dist-info/RECORD': '',
    })
    out = tmp_path / 'models'
    out.mkdir()
    entry = wheel_entry(payload, requirement='fakepose==1.0', member='fakepose/pose_landmark_full.tflite')
    path = dm.fetch_from_wheel(entry, str(out), pip_args=['--no-index', '--find-links', str(links)])
    assert open(path, 'rb').read() == payload
    assert os.listdir(out) == ['pose_landmark_full.tflite']    # no copy of the wheel is kept

    with pytest.raises(dm.DownloadError, match='pip download fakepose==2.0 failed'):
        dm.fetch_from_wheel(wheel_entry(payload, requirement='fakepose==2.0'), str(tmp_path / 'other'),
                            pip_args=['--no-index', '--find-links', str(links)])


def test_fetch_rejects_unknown_names(tmp_path):
    with pytest.raises(dm.UsageError, match='unknown model nope.bin'):
        dm.fetch(['nope.bin'], str(tmp_path))
