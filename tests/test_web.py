"""The web demo's HTTP API (web_demo.py): a good pair answers with the bytes the command line writes (its own
output file, an independent path); every bad upload is a 4xx JSON line and the server keeps serving; a
decompression bomb is refused from its header; a garment id never leaves the garments folder; a full queue
answers 503 with Retry-After. One server per module (its own process, a free localhost port). Skipped where
the [web] extra is not installed, unless TRYON_REQUIRE_WEB=1 (CI's newest-OpenCV venv)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import cv2 as cv
import numpy as np
import pytest

import image_io
from conftest import REPO_DIR, SHARED_DATA, VITON_CLOTHES, VITON_PERSONS
from web_support import Server, file_field, free_port, png_bomb, post, web_missing

MAX_BYTES, MAX_PIXELS = 3_000_000, 4_000_000


def require_web():
    missing = web_missing()
    if missing:
        if os.environ.get('TRYON_REQUIRE_WEB') == '1':
            pytest.fail('TRYON_REQUIRE_WEB=1 but %s' % missing)
        pytest.skip(missing)


@pytest.fixture(scope='module')
def garments(tmp_path_factory):
    """A garments folder of two VITON garments, and a symbolic link in it to a file outside (never an id)."""
    folder = tmp_path_factory.mktemp('garments')
    for path in VITON_CLOTHES[:2]:
        shutil.copy(path, folder / os.path.basename(path))
    outside = tmp_path_factory.mktemp('outside') / 'secret.jpg'
    shutil.copy(VITON_CLOTHES[2], outside)
    os.symlink(outside, folder / 'link.jpg')
    return folder


@pytest.fixture(scope='module')
def server(garments, tmp_path_factory):
    require_web()
    log = tmp_path_factory.mktemp('web_log') / 'server.log'
    running = Server(['--garments', str(garments), '--max-bytes', str(MAX_BYTES), '--max-pixels', str(MAX_PIXELS),
                      '--workers', '1', '--queue', '4', '--cache', '4'], str(log))
    yield running
    running.stop()


def cli_result(tmp_path, person, cloth, *options):
    """What `virtual-try-on -i person -c cloth -o out.png` writes: the reference, run as a user runs it."""
    out = tmp_path / ('cli_%d.png' % len(list(tmp_path.iterdir())))
    result = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'virtual_try_on.py'), '-q', '-i', person, '-c',
                             cloth, '-o', str(out)] + list(options), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


def error_of(status, headers, body, expected):
    assert status == expected, (status, body[:300])
    assert headers.get('content-type', headers.get('Content-Type')) == 'application/json'
    reply = json.loads(body)
    assert reply['status'] == expected and '\n' not in reply['error'] and 'Traceback' not in reply['error']
    return reply['error']


def test_good_pair_answers_with_the_cli_bytes(server, garments, tmp_path):
    person, cloth = VITON_PERSONS[0], VITON_CLOTHES[0]
    expected = cli_result(tmp_path, person, cloth)
    expected_small = cli_result(tmp_path, person, cloth, '--model-size')
    assert expected != expected_small
    status, headers, body = server.post({'person': file_field(person), 'garment': file_field(cloth)})
    assert status == 200 and headers['content-type'] == 'image/png' and float(headers['x-tryon-ms']) > 0
    assert body == expected
    # the same person again (its analysis cached), the garment by its id in the folder, and model size
    status, _, body = server.post({'person': file_field(person), 'garment_id': os.path.basename(cloth)})
    assert status == 200 and body == expected
    for option in ({'model_size': 'true'}, {'full_resolution': 'false'}):
        status, _, body = server.post(dict({'person': file_field(person), 'garment': file_field(cloth)}, **option))
        assert status == 200 and body == expected_small, option
    assert server.health()['cached_people'] == 1


def test_a_real_photo_answers_with_the_cli_bytes(server, tmp_path):
    """A 1024x768 photo and a shop garment: the photo's resolution, the CLI's bytes."""
    person = os.path.join(SHARED_DATA, 'realworld', 'person', '049447_0.jpg')
    cloth = os.path.join(SHARED_DATA, 'realworld', 'garment', '049805_1.jpg')
    status, _, body = server.post({'person': file_field(person), 'garment': file_field(cloth)})
    assert status == 200
    assert cv.imdecode(np.frombuffer(body, np.uint8), cv.IMREAD_UNCHANGED).shape == cv.imread(person).shape
    assert body == cli_result(tmp_path, person, cloth)


def test_bad_input_is_a_4xx_json_line_and_the_server_keeps_serving(server, garments, tmp_path):
    person, cloth = file_field(VITON_PERSONS[0]), file_field(VITON_CLOTHES[0])
    text = ('notes.jpg', b'this is not an image\n' * 10)
    jpeg = cv.imencode('.jpg', cv.imread(VITON_PERSONS[1]))[1].tobytes()
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1100, 3), np.uint8)   # 3.3 MB as PNG, 1.1 MP
    cases = [
        ({'person': text, 'garment': cloth}, 415, 'not an image'),
        ({'person': person, 'garment': text}, 415, 'not an image'),
        ({'person': ('cut.jpg', jpeg[:len(jpeg) // 3]), 'garment': cloth}, 400, 'not a readable image'),
        ({'person': ('empty.jpg', b''), 'garment': cloth}, 400, 'empty'),
        ({'person': ('big.png', cv.imencode('.png', noise)[1].tobytes()), 'garment': cloth}, 413, 'MB'),
        ({'person': ('bomb.png', png_bomb(12000, 12000)), 'garment': cloth}, 413, 'more pixels than the 4.0 MP'),
        ({'person': person, 'garment': ('bomb.png', png_bomb(2500, 2000))}, 413, 'more pixels than the 4.0 MP'),
        ({'garment': cloth}, 400, 'no person photo'),
        ({'person': person}, 400, 'no garment'),
        ({'person': person, 'garment': cloth, 'garment_id': os.path.basename(VITON_CLOTHES[0])}, 400, 'not both'),
        ({'person': person, 'garment_id': '../x'}, 400, 'file name of a garment'),
        ({'person': person, 'garment_id': '../' + os.path.basename(garments) + '/' + os.path.basename(
            VITON_CLOTHES[0])}, 400, 'file name of a garment'),
        ({'person': person, 'garment_id': 'link.jpg'}, 404, 'no garment'),          # a link out of the folder
        ({'person': person, 'garment_id': 'missing.jpg'}, 404, 'no garment'),
        ({'person': person, 'garment': cloth, 'full_resolution': 'no', 'model_size': 'no'}, 400, 'contradict'),
        ({'person': person, 'garment': cloth, 'model_size': 'maybe'}, 400, 'true or false'),
        ({'person': cloth, 'garment': cloth}, 422, 'no person found'),             # a garment photo as the person
        ({'person': person, 'garment': ('grey.png', cv.imencode('.png', np.full((256, 192, 3), 128, np.uint8))[1]
                                        .tobytes())}, 422, 'no garment found'),    # nothing stands out
        ({'person': ('tiny.png', cv.imencode('.png', np.zeros((20, 600, 3), np.uint8))[1].tobytes()),
          'garment': cloth}, 400, 'too small'),
    ]
    before = server.peak_rss_mb()
    for fields, expected, words in cases:
        message = error_of(*server.post(fields), expected)
        assert words in message, (fields.keys(), message)
    # the bombs were refused from their headers: 144 MP decoded would be 430 MB more at the peak
    assert server.peak_rss_mb() - before < 100
    # not a multipart form, a body past the limit, another method
    request = urllib.request.Request(server.url + '/api/tryon', b'{}', {'Content-Type': 'application/json'})
    try:
        urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as err:
        error_of(err.code, dict(err.headers), err.read(), 415)
    # a body that says it is past the limit is refused before it is read (the client may still be sending)
    with socket.create_connection(('127.0.0.1', server.port), timeout=30) as connection:
        connection.sendall(b'POST /api/tryon HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; '
                           b'boundary=x\r\nContent-Length: 100000000\r\n\r\n')
        reply = b''
        while not reply.endswith(b'}'):
            chunk = connection.recv(65536)
            assert chunk, reply
            reply += chunk
        reply = reply.decode()
    assert reply.startswith('HTTP/1.1 413') and 'more than the 6.1 MB this server takes' in reply, reply
    # still serving, with the right answer
    status, _, body = server.post({'person': person, 'garment': cloth})
    assert status == 200 and body[:8] == b'\x89PNG\r\n\x1a\n'
    health = server.health()
    assert health['status'] == 'ok' and health['garments'] == 2 and health['workers'] == 1
    assert 'Traceback' not in server.text()


def test_uploads_decode_as_the_cli_reads_files(tmp_path):
    """tryon_service.decode_image (bytes) against image_io.read_image (a file) for the kinds read_image converts."""
    import tryon_service
    photo = cv.imread(VITON_PERSONS[0])
    grey = cv.cvtColor(photo, cv.COLOR_BGR2GRAY)
    alpha = np.dstack([photo, np.linspace(0, 255, photo.shape[1], dtype=np.uint8)[None].repeat(photo.shape[0], 0)])
    for name, image in (('colour.jpg', photo), ('grey.png', grey), ('deep.png', photo.astype(np.uint16) * 256 + 3),
                        ('alpha.png', alpha), ('colour.webp', photo), ('colour.bmp', photo)):
        path = str(tmp_path / name)
        cv.imwrite(path, image)
        data = open(path, 'rb').read()
        tryon_service.check_upload(data, name)
        assert np.array_equal(tryon_service.decode_image(data, name), image_io.read_image(path)), name


def test_garment_ids_are_the_folder_files_only(garments):
    import tryon_service
    listed = tryon_service.list_garments(str(garments))
    assert sorted(listed) == sorted(os.path.basename(p) for p in VITON_CLOTHES[:2])   # not link.jpg
    assert tryon_service.list_garments(None) == {} and tryon_service.list_garments(str(garments / 'nope')) == {}


class BlockedTryOn:
    """A stand-in VirtualTryOn whose try-on waits for `release`: the one worker stays busy."""

    def __init__(self, release, started):
        self.release, self.started = release, started

    def analyse(self, photo):
        return photo

    def infer(self, analysis, cloth, full_resolution=True):
        self.started.set()
        assert self.release.wait(60)
        return np.zeros((4, 4, 3), np.uint8)


def test_a_full_queue_answers_503_with_retry_after():
    require_web()
    import uvicorn
    import tryon_service
    import web_demo
    release, started = threading.Event(), threading.Event()
    service = tryon_service.TryOnService(lambda: BlockedTryOn(release, started), workers=1, queue_size=1)
    server = uvicorn.Server(uvicorn.Config(web_demo.create_app(service), host='127.0.0.1', port=free_port(),
                                           log_level='warning'))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = 'http://127.0.0.1:%d' % server.config.port
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fields = {'person': file_field(VITON_PERSONS[0]), 'garment': file_field(VITON_CLOTHES[0])}
    answers = []
    try:
        first = threading.Thread(target=lambda: answers.append(post(url + '/api/tryon', fields, 60)))
        first.start()
        assert started.wait(30)                      # the worker holds the first try-on
        second = threading.Thread(target=lambda: answers.append(post(url + '/api/tryon', fields, 60)))
        second.start()
        while service.queued() < 1:                  # the second waits in the queue of one
            assert time.monotonic() < deadline
            time.sleep(0.05)
        status, headers, body = post(url + '/api/tryon', fields, 30)
        assert 'busy' in error_of(status, headers, body, 503)
        assert int(headers['retry-after']) >= 1
        release.set()
        first.join(60)
        second.join(60)
        assert sorted(answer[0] for answer in answers) == [200, 200]
        with urllib.request.urlopen(url + '/api/health', timeout=10) as response:
            health = json.loads(response.read())
        assert health['busy'] == 1 and health['done'] == 2
    finally:
        release.set()
        server.should_exit = True
        thread.join(30)


@pytest.mark.parametrize('options, words', [
    (['--garments', '/no/such/folder'], 'garments folder not found'),
    (['--port', '70000'], '--port must be at most 65535'),
    (['--workers', '0'], '--workers must be at least 1'),
])
def test_bad_command_line_is_one_error_line(options, words):
    result = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'web_demo.py')] + options, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and words in lines[0], result.stderr


def test_the_runtime_never_imports_gradio():
    """Only web_demo.py imports Gradio (and FastAPI, uvicorn); every other module runs without the [web] extra."""
    modules = sorted(name[:-3] for name in os.listdir(REPO_DIR) if name.endswith('.py') and name != 'web_demo.py')
    code = ('import sys; sys.path.insert(0, %r)\nfor name in %r: __import__(name)\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("gradio", "fastapi", "uvicorn", "starlette")))'
            % (REPO_DIR, modules))
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]', result.stdout
