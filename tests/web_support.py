"""The web demo's server for the tests and the benchmark: started once as its own process on a free localhost
port (web_demo.py, as a user starts it), waited for through GET /api/health, stopped at the end; and a
multipart POST with the standard library only, so that the tests need no HTTP client of their own."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def web_missing():
    """None when the [web] extra is installed, else what is missing."""
    try:
        import fastapi  # noqa: F401
        import gradio  # noqa: F401
        import uvicorn  # noqa: F401
        if not hasattr(gradio, 'Blocks'):
            raise ImportError('gradio is not installed whole')
    except ImportError as err:
        return 'the [web] extra is not installed (%s): pip install -e ".[web]"' % err
    return None


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Server:
    """web_demo.py in a process of its own: `url`, `process`; stop() ends it (and only it)."""

    def __init__(self, args, log_path, timeout=300):
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.log_path = log_path
        self.log = open(log_path, 'w')
        self.process = subprocess.Popen([sys.executable, os.path.join(REPO_DIR, 'web_demo.py'), '--port',
                                         str(self.port)] + list(args), stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=REPO_DIR)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError('web_demo.py exited with status %d:\n%s' % (self.process.returncode, self.text()))
            try:
                self.health()
                return
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError('web_demo.py did not answer in %d s:\n%s' % (timeout, self.text()))
                time.sleep(0.5)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def health(self):
        with urllib.request.urlopen(self.url + '/api/health', timeout=10) as response:
            return json.loads(response.read())

    def peak_rss_mb(self):
        """The server process's peak resident memory (VmHWM), in MB."""
        with open('/proc/%d/status' % self.process.pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
        return None

    def post(self, fields, path='/api/tryon', timeout=300):
        return post(self.url + path, fields, timeout)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def multipart(fields):
    """(body, content type) of a multipart/form-data form: {name: str, or (file name, bytes)}."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            head = ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: application/octet-stream\r\n\r\n' % (boundary, name, value[0]))
            parts.append(head.encode() + value[1] + b'\r\n')
        else:
            parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                          % (boundary, name, value)).encode())
    return b''.join(parts) + ('--%s--\r\n' % boundary).encode(), 'multipart/form-data; boundary=' + boundary


def post(url, fields, timeout=300):
    """POST a multipart form; (status, headers, body bytes), whatever the status."""
    body, content_type = multipart(fields)
    request = urllib.request.Request(url, body, {'Content-Type': content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def file_field(path):
    with open(path, 'rb') as f:
        return os.path.basename(path), f.read()


def png_bomb(width, height):
    """A grey PNG of width x height zeros: a few kB that claim width * height pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    packer, row, pixels = zlib.compressobj(9), bytes(width + 1), []
    for _ in range(height):
        pixels.append(packer.compress(row))
    pixels.append(packer.flush())
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', b''.join(pixels)) + chunk(b'IEND', b''))
