#!/usr/bin/env python3
"""The web demo under measurement, on localhost only: warm latency through HTTP (another garment for a cached
person; a new person), throughput with 1, 2 and 4 concurrent clients, and a bounded load test (clients x
requests, mixed new people, new garments and bad uploads, then an overload burst) whose every good answer is
compared with the bytes the command line writes for the pair. Prints medians, p95, counts and the server's peak
memory. Needs the [web] extra (.venvweb).

    .venvweb/bin/python benchmarks/benchmark_web.py [--requests 60] [--clients 4] [--per-client 25]

A new person is the same 1024x768 JPEG with a JPEG comment of its own: other bytes (so the server's analysis
cache, keyed by the upload's SHA-256, misses), the same pixels (so the CLI's reference is the same).
"""
import argparse
import concurrent.futures
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests')
sys.path.insert(0, TESTS_DIR)  # the web tests' server helper
from web_support import REPO_DIR, Server, file_field, png_bomb, web_missing  # noqa: E402

SHARED = os.environ.get('TRYON_SHARED_DATA') or os.path.join(os.path.dirname(REPO_DIR), 'shared', 'data')
PEOPLE = [os.path.join(SHARED, 'realworld', 'person', name) for name in
          ('049447_0.jpg', '051962_0.jpg', '053700_0.jpg', '01861_00.jpg')]
GARMENTS_DIR = os.path.join(SHARED, 'realworld', 'garment')


def with_comment(jpeg, text):
    """The JPEG with a COM segment after SOI: other bytes, the same pixels."""
    comment = text.encode()
    return jpeg[:2] + b'\xff\xfe' + (len(comment) + 2).to_bytes(2, 'big') + comment + jpeg[2:]


def stats(seconds):
    ms = 1000 * np.asarray(seconds)
    return 'median %.0f ms, p95 %.0f ms, min %.0f, max %.0f (n=%d)' % (
        np.median(ms), np.percentile(ms, 95), ms.min(), ms.max(), len(ms))


def load_average():
    return '%.2f %.2f %.2f' % os.getloadavg()


class Counter:
    def __init__(self):
        self.lock, self.counts, self.problems = threading.Lock(), {}, []

    def add(self, key, problem=None):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if problem:
                self.problems.append(problem)


def timed(server, fields):
    start = time.monotonic()
    status, headers, body = server.post(fields, timeout=600)
    return time.monotonic() - start, status, headers, body


def cli_references(people, garment_ids, out_dir):
    """{(person, garment id): PNG bytes} from the command line's catalogue mode (-i people -c garments -o dir)."""
    garments = [os.path.join(GARMENTS_DIR, name) for name in garment_ids]
    subprocess.run([sys.executable, os.path.join(REPO_DIR, 'virtual_try_on.py'), '-q', '-i'] + people + ['-c']
                   + garments + ['-o', out_dir], check=True, stdout=subprocess.DEVNULL, timeout=3600)
    stem = lambda path: os.path.splitext(os.path.basename(path))[0]  # noqa: E731
    return {(person, name): open(os.path.join(out_dir, '%s_%s_tryon.png' % (stem(person), stem(name))), 'rb').read()
            for person in people for name in garment_ids}


def latency(server, args, garment_ids):
    """End-to-end HTTP latency, and the worker's own time (X-Tryon-Ms) beside it: the difference is what HTTP,
    the upload checks and the queue add."""
    person = open(PEOPLE[0], 'rb').read()
    for name in garment_ids[:4]:   # warm: the person analysed, the first garments decoded
        timed(server, {'person': ('p.jpg', person), 'garment_id': name})
    for what, fields in (
            ('another garment for a cached person (1024x768 photo, garment_id of a 1024x768 garment)',
             lambda n: {'person': ('p.jpg', person), 'garment_id': garment_ids[4 + n % (len(garment_ids) - 4)]}),
            ('a new person (1024x768 photo: pose, parsing, agnostic, then the try-on)',
             lambda n: {'person': ('p.jpg', with_comment(person, 'new %d' % n)), 'garment_id': garment_ids[0]})):
        total, worker = [], []
        for number in range(args.requests):
            seconds, status, headers, _ = timed(server, fields(number))
            assert status == 200, status
            total.append(seconds)
            worker.append(float(headers['x-tryon-ms']) / 1000)
        print('%s:\n  through HTTP: %s\n  in the worker: %s; load %s' % (what, stats(total), stats(worker),
                                                                       load_average()))


def throughput(server, args, garment_ids):
    person = open(PEOPLE[0], 'rb').read()
    for clients in (1, 2, 4):
        total = args.requests

        def client(number):
            for request in range(number, total, clients):
                status = timed(server, {'person': ('p.jpg', person),
                                        'garment_id': garment_ids[request % len(garment_ids)]})[1]
                assert status == 200, status
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        seconds = time.monotonic() - start
        print('throughput, %d client(s), another garment for a cached person: %.2f try-ons/s (%d in %.1f s); load %s'
              % (clients, total / seconds, total, seconds, load_average()))


def load_test(server, args, references, garment_ids):
    """clients x per_client mixed requests, then a burst past the queue; every answer checked."""
    photos = {person: open(person, 'rb').read() for person in PEOPLE}
    bad = [({'garment_id': garment_ids[0], 'person': ('notes.jpg', b'not an image\n' * 40)}, 415),
           ({'garment_id': garment_ids[0], 'person': ('bomb.png', png_bomb(12000, 12000))}, 413),
           ({'garment_id': '../../etc/passwd', 'person': ('p.jpg', photos[PEOPLE[0]])}, 400),
           ({'garment_id': 'missing.jpg', 'person': ('p.jpg', photos[PEOPLE[0]])}, 404),
           ({'garment': file_field(PEOPLE[1]), 'person': file_field(os.path.join(GARMENTS_DIR, garment_ids[0]))}, 422)]
    counter = Counter()

    def check(fields, expected, reference, label):
        try:
            status, headers, body = server.post(fields, timeout=600)
        except OSError as err:
            counter.add('errors', '%s: %s' % (label, err))
            return
        if status == 503:
            counter.add('503' if headers.get('retry-after') else 'errors', None if headers.get('retry-after')
                        else '%s: 503 without Retry-After' % label)
        elif reference is not None:
            counter.add('answered' if status == 200 and body == reference else 'errors',
                        None if status == 200 and body == reference else '%s: %d, not the CLI bytes' % (label, status))
        else:
            counter.add('4xx' if status == expected else 'errors',
                        None if status == expected else '%s: %d, expected %d' % (label, status, expected))

    def client(number):
        rng = random.Random(number)
        for request in range(args.per_client):
            draw = rng.random()
            person, name = rng.choice(PEOPLE), rng.choice(garment_ids)
            if draw < 0.15:
                fields, expected = rng.choice(bad)
                check(fields, expected, None, 'bad upload')
                continue
            data = photos[person]
            if draw < 0.4:   # a new person: bytes never seen, the same pixels
                data = with_comment(data, 'client %d request %d' % (number, request))
            check({'person': ('p.jpg', data), 'garment_id': name}, 200, references[(person, name)],
                  '%s + %s' % (os.path.basename(person), name))

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client, range(args.clients)))
    print('load test, %d clients x %d requests in %.1f s: %s; load %s' % (
        args.clients, args.per_client, time.monotonic() - start, counter.counts, load_average()))
    # the burst: more new people at once than the queue holds
    problems, burst = list(counter.problems), Counter()
    counter.counts, counter.problems = burst.counts, burst.problems
    person = PEOPLE[0]
    with concurrent.futures.ThreadPoolExecutor(args.burst) as pool:
        list(pool.map(lambda n: check({'person': ('p.jpg', with_comment(photos[person], 'burst %d' % n)),
                                       'garment_id': garment_ids[0]}, 200, references[(person, garment_ids[0])],
                                      'burst'), range(args.burst)))
    print('overload burst, %d new people at once (queue %d): %s' % (args.burst, args.queue, burst.counts))
    return problems + burst.problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=60, help='requests per latency figure (default: %(default)s)')
    parser.add_argument('--clients', type=int, default=4, help='load test clients (default: %(default)s)')
    parser.add_argument('--per-client', type=int, default=25,
                        help='load test requests per client (default: %(default)s)')
    parser.add_argument('--burst', type=int, default=24,
                        help='concurrent requests of the overload burst (default: %(default)s)')
    parser.add_argument('--queue', type=int, default=8, help="the server's --queue (default: %(default)s)")
    parser.add_argument('--workers', type=int, default=1, help="the server's --workers (default: %(default)s)")
    parser.add_argument('--skip', nargs='*', default=[], choices=['latency', 'throughput', 'load'],
                        help='parts to leave out')
    args = parser.parse_args()
    if web_missing():
        sys.exit('error: %s' % web_missing())
    garment_ids = sorted(name for name in os.listdir(GARMENTS_DIR) if name.endswith('.jpg'))
    print('%d cores, load before %s; OpenCV in the server: see /api/health' % (os.cpu_count(), load_average()))
    with tempfile.TemporaryDirectory(prefix='tryon-bench-web-') as work:
        references = None
        if 'load' not in args.skip:
            start = time.monotonic()
            references = cli_references(PEOPLE, garment_ids[:6], work)
            print('CLI references: %d try-ons in %.1f s' % (len(references), time.monotonic() - start))
        server = Server(['--garments', GARMENTS_DIR, '--workers', str(args.workers), '--queue', str(args.queue)],
                        os.path.join(work, 'server.log'))
        try:
            print('server: %s; peak memory after start %.0f MB' % (server.health(), server.peak_rss_mb()))
            if 'latency' not in args.skip:
                latency(server, args, garment_ids)
            if 'throughput' not in args.skip:
                throughput(server, args, garment_ids)
            problems = []
            if 'load' not in args.skip:
                problems = load_test(server, args, references, garment_ids[:6])
            print('server alive: %s; peak memory (VmHWM) %.0f MB' % (server.health()['status'], server.peak_rss_mb()))
        finally:
            server.stop()
        for problem in problems[:10]:
            print('problem:', problem)
        if problems or 'Traceback' in server.text():
            sys.exit('error: %d problems (see above)%s' % (len(problems), '; a traceback in the server log'
                                                           if 'Traceback' in server.text() else ''))


if __name__ == '__main__':
    main()
