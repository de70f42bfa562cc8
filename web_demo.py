#!/usr/bin/env python3
"""Virtual try-on in a browser: a Gradio page and a plain HTTP API in one server that keeps the networks warm.

    python3 web_demo.py [--garments DIR] [--host 127.0.0.1] [--port 7860] [--workers N]

The page (/) takes a person photo (upload or webcam) and a garment (upload, or a click in the gallery of
--garments) and shows the result at the photo's resolution beside the photo, with a download; "Try every
garment" dresses the person in each garment of the gallery. The HTTP API, for a shop's own stack:

    curl -F person=@person.jpg -F garment=@cloth.jpg http://127.0.0.1:7860/api/tryon -o result.png
    curl -F person=@person.jpg -F garment_id=000048_1.jpg http://127.0.0.1:7860/api/tryon -o result.png
    curl http://127.0.0.1:7860/api/health

The PNG is the bytes `virtual-try-on -i P -c G -o out.png` writes for the pair (with the same model
options). Needs the [web] extra: pip install -e .[web]
"""
import os

# before anything imports cv2, Gradio or huggingface_hub: OpenCV's own decoder limit (read once, when cv2
# loads), and no analytics, update checks or telemetry
os.environ.setdefault('OPENCV_IO_MAX_IMAGE_PIXELS', str(100_000_000))
for _name, _value in (('GRADIO_ANALYTICS_ENABLED', 'False'), ('HF_HUB_DISABLE_TELEMETRY', '1'),
                      ('HF_HUB_OFFLINE', '1'), ('GRADIO_RUN_HISTORY', 'False')):
    os.environ.setdefault(_name, _value)

import argparse  # noqa: E402
import atexit  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cv2 as cv  # noqa: E402

import command_line  # noqa: E402
import dnn_backends  # noqa: E402
import errors  # noqa: E402
import registry  # noqa: E402
import tryon_service  # noqa: E402
from errors import RuntimeFailure, UsageError  # noqa: E402
from tryon_pipeline import TryOnModels, load_tryon  # noqa: E402
from tryon_service import BadUpload, Busy, TryOnService, list_garments  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_PORT = 7860
DEFAULT_GARMENTS = os.path.join(os.path.dirname(registry.REPO_DIR), 'shared', 'data', 'viton', 'test', 'cloth')
OPENCV_MAX_PIXELS = int(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])
GALLERY_SIZE = 24
KEPT_RESULTS = 256  # result files of the page kept in the server's folder at once
# the model options of the try-on command that this server takes and passes on as they are
MODEL_OPTIONS = ('gmm', 'tom', 'pose_model', 'pose_config', 'parsing_model')


def model_files(args):
    """The TryOnModels of this server's model options, as the try-on command passes them."""
    return TryOnModels(synthetic=args.synthetic, **{name: getattr(args, name) for name in MODEL_OPTIONS})


def default_workers():
    """One worker per two cores: each forward already uses OpenCV's threads (at most 4 workers)."""
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def error_status(err):
    """(HTTP status, one line) of a failure: 4xx for the caller's input, 422 for a photo with no person,
    503 busy, 500 for the rest (the line only; the traceback goes to the server's log)."""
    if isinstance(err, BadUpload):
        return err.status, str(err)
    if isinstance(err, Busy):
        return 503, str(err)
    if isinstance(err, UsageError):
        return 400, str(err)
    if isinstance(err, RuntimeFailure):
        return 422, str(err)
    if isinstance(err, cv.error):
        return 500, 'OpenCV: %s' % errors.error_line(err)
    if isinstance(err, MemoryError):
        return 503, 'out of memory'
    log.error('try-on failed', exc_info=err)
    return 500, 'internal error (%s); the server log has the details' % type(err).__name__


def flag(value, name):
    """A form field read as a yes/no option: 1/0, true/false, yes/no, on/off."""
    text = str(value).strip().lower()
    if text in ('1', 'true', 'yes', 'on'):
        return True
    if text in ('0', 'false', 'no', 'off', ''):
        return False
    raise BadUpload('%s must be true or false, got %r' % (name, value))


def full_resolution_option(form):
    """full_resolution (default true) and model_size (the CLI's --model-size: false) are one choice."""
    full = flag(form['full_resolution'], 'full_resolution') if 'full_resolution' in form else None
    small = flag(form['model_size'], 'model_size') if 'model_size' in form else None
    if full is not None and small is not None and full == small:
        raise BadUpload('full_resolution=%s and model_size=%s contradict each other' % (full, small))
    return full if full is not None else not small if small is not None else True


# ---------------------------------------------------------------------------- the HTTP API
def create_app(service, page=None, max_bytes=tryon_service.DEFAULT_MAX_BYTES):
    """The FastAPI app: POST /api/tryon, GET /api/health, and the Gradio page at / when `page` is given
    ((blocks, mount options)). No /docs: FastAPI's docs page loads its scripts from a CDN."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.formparsers import MultiPartException, MultiPartParser
    from starlette.datastructures import UploadFile

    app = FastAPI(title='Virtual try-on', docs_url=None, redoc_url=None, openapi_url=None)
    body_limit = 2 * max_bytes + 64 * 1024   # two images and the form's own bytes

    def failure(status, message, headers=None):
        return JSONResponse({'error': message, 'status': status}, status, headers=headers)

    class TooLarge(Exception):
        pass

    async def limited(stream):
        total = 0
        async for chunk in stream:
            total += len(chunk)
            if total > body_limit:
                raise TooLarge()
            yield chunk

    async def read_form(request):
        """The multipart form as {name: bytes or str}, refused (413) past the body limit while it streams in."""
        length = request.headers.get('content-length')
        if length and length.isdigit() and int(length) > body_limit:
            raise BadUpload('request of %.1f MB: more than the %.1f MB this server takes'
                            % (int(length) / 1e6, body_limit / 1e6), 413)
        if not request.headers.get('content-type', '').startswith('multipart/form-data'):
            raise BadUpload('POST a multipart/form-data form: person=@photo and garment=@photo or garment_id=NAME',
                            415)
        try:
            form = await MultiPartParser(request.headers, limited(request.stream()), max_files=2, max_fields=8,
                                         max_part_size=4096).parse()
        except TooLarge:
            raise BadUpload('request larger than the %.1f MB this server takes' % (body_limit / 1e6), 413)
        except MultiPartException as err:
            raise BadUpload('bad multipart form: %s' % err.message)
        fields = {}
        for name, value in form.multi_items():
            fields[name] = await value.read() if isinstance(value, UploadFile) else value
        await form.close()
        return fields

    def prepare(form):
        if 'person' not in form or isinstance(form['person'], str):
            raise BadUpload('no person photo: send the file as person=@photo')
        person = service.person(form['person'])
        if 'garment' in form and 'garment_id' in form:
            raise BadUpload('send either garment=@photo or garment_id=NAME, not both')
        if 'garment_id' in form:
            cloth = service.garment_by_id(form['garment_id'])
        elif 'garment' in form and not isinstance(form['garment'], str):
            cloth = service.garment(form['garment'])
        else:
            raise BadUpload('no garment: send garment=@photo or garment_id=NAME (GET /api/health lists the count)')
        return person, cloth, full_resolution_option(form)

    @app.post('/api/tryon')
    async def tryon(request: Request):
        try:
            form = await read_form(request)
            person, cloth, full = await run_in_threadpool(prepare, form)
            job = service.submit(person, cloth, full)
            png = await asyncio.wrap_future(job)
        except Busy as err:
            return failure(503, str(err), {'Retry-After': str(err.retry_after)})
        except Exception as err:
            return failure(*error_status(err))
        return Response(png, media_type='image/png', headers={'X-Tryon-Ms': '%.1f' % (1000 * job.seconds)})

    @app.get('/api/health')
    async def health():
        return {'status': 'ok', 'workers': service.workers, 'queued': service.queued(),
                'queue_size': service.jobs.maxsize, 'cached_people': len(service.analyses),
                'garments': len(service.garments), 'done': service.counts['done'],
                'failed': service.counts['failed'], 'busy': service.counts['busy'], 'opencv': cv.__version__}

    if page is not None:
        import gradio as gr
        blocks, options = page
        app = gr.mount_gradio_app(app, blocks, path='/', **options)
    return app


# ---------------------------------------------------------------------------- the page
def read_payload(payload, what):
    """The bytes of a Gradio file payload (the dict of an un-preprocessed Image), BadUpload when there is none."""
    path = payload.get('path') if isinstance(payload, dict) else None
    if not path:
        raise BadUpload('no %s: upload one first' % what)
    with open(path, 'rb') as f:
        return f.read()


def create_page(service, gallery_ids, work_dir):
    """The Gradio Blocks of the page. Uploads reach the handlers unconverted (preprocess=False): the bytes
    are checked and decoded by the service as the API's are, never by Pillow at the photo's size."""
    import gradio as gr

    written = collections.deque()

    def save(png, name):
        """The result as a file for the page (Gradio copies it into its own cache, which delete_cache bounds);
        only the last KEPT_RESULTS stay here."""
        fd, path = tempfile.mkstemp(prefix=name + '-', suffix='.png', dir=work_dir)
        with os.fdopen(fd, 'wb') as f:
            f.write(png)
        written.append(path)
        while len(written) > KEPT_RESULTS:
            old = written.popleft()
            if os.path.exists(old):
                os.remove(old)
        return path

    def message(err):
        status, line = error_status(err)
        return '**error:** %s' % line

    def one(person_payload, garment_payload, model_size):
        try:
            person = service.person(read_payload(person_payload, 'person photo'))
            cloth = service.garment(read_payload(garment_payload, 'garment'))
            start = time.monotonic()
            path = save(service.submit(person, cloth, not model_size).result(), 'tryon')
        except Exception as err:
            return gr.update(value=None), gr.update(value=None, visible=False), message(err)
        return ((person_payload['path'], path), gr.update(value=path, visible=True),
                'Done in %d ms' % round(1000 * (time.monotonic() - start)))

    def every(person_payload, model_size):
        results = []
        try:
            person = service.person(read_payload(person_payload, 'person photo'))
            if not gallery_ids:
                raise BadUpload('no garments folder: start the server with --garments DIR', 404)
            for garment_id in gallery_ids:
                png = service.submit(person, service.garment_by_id(garment_id), not model_size).result()
                results.append((save(png, 'tryon'), garment_id))
                yield results, 'Tried %d of %d garments' % (len(results), len(gallery_ids))
        except Exception as err:
            yield results, message(err)

    def pick(event: gr.SelectData):
        return service.garment_path(gallery_ids[event.index])

    theme = gr.themes.Default(font=['system-ui', 'sans-serif'], font_mono=['ui-monospace', 'monospace'])
    with gr.Blocks(title='Virtual try-on', analytics_enabled=False, delete_cache=(600, 3600)) as blocks:
        gr.Markdown('## Virtual try-on (CP-VTON with OpenCV dnn)\nA person photo and a garment: the person '
                    'wearing the garment, at the photo\'s resolution.')
        with gr.Row():
            with gr.Column():
                person = gr.Image(label='Person photo', sources=['upload', 'webcam'], type='filepath',
                                  image_mode=None, elem_id='person', height=360)
                garment = gr.Image(label='Garment', sources=['upload'], type='filepath', image_mode=None,
                                   elem_id='garment', height=240)
                model_size = gr.Checkbox(label='CP-VTON\'s 256x192 output instead of the photo\'s size',
                                         value=False, elem_id='model-size')
                with gr.Row():
                    run = gr.Button('Try on', variant='primary', elem_id='run')
                    run_all = gr.Button('Try every garment', elem_id='run-all')
            with gr.Column():
                status = gr.Markdown('', elem_id='message')
                result = gr.ImageSlider(label='Before / after', type='filepath', image_mode=None,
                                        elem_id='result', interactive=False, height=480)
                download = gr.DownloadButton('Download the result (PNG)', visible=False, elem_id='download')
        gallery = gr.Gallery([(path, name) for name, path in ((i, service.garment_path(i)) for i in gallery_ids)],
                             label='Garments (click one to use it)', columns=8, height=260, allow_preview=False,
                             elem_id='garments', interactive=False)
        results = gr.Gallery(label='Every garment on this person', columns=6, elem_id='every', interactive=False)
        run.click(one, [person, garment, model_size], [result, download, status], preprocess=False,
                  concurrency_limit=service.workers)
        run_all.click(every, [person, model_size], [results, status], preprocess=False,
                      concurrency_limit=service.workers)
        gallery.select(pick, None, garment)
    return blocks, theme


# ---------------------------------------------------------------------------- the command line
def build_parser():
    parser = argparse.ArgumentParser(
        description='Virtual try-on in a browser: a Gradio page (/) and an HTTP API (POST /api/tryon, GET '
                    '/api/health) in one server; the networks load once at start. Needs the [web] extra.')
    parser.add_argument('--garments', default=DEFAULT_GARMENTS if os.path.isdir(DEFAULT_GARMENTS) else None,
                        help='folder of garment photos: the page\'s gallery and the API\'s garment_id '
                             '(default: the shared VITON test garments when present)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default: %(default)s, this machine only; 0.0.0.0 for every '
                             'interface)')
    parser.add_argument('--port', type=int, default=DEFAULT_PORT, help='port (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=default_workers(),
                        help='try-ons run at once, each with its own copy of the networks (default: one per two '
                             'cores, here %(default)s)')
    parser.add_argument('--queue', type=int, default=tryon_service.DEFAULT_QUEUE,
                        help='try-ons that may wait; past that a request gets 503 with Retry-After '
                             '(default: %(default)s)')
    parser.add_argument('--cache', type=int, default=tryon_service.DEFAULT_CACHE,
                        help='person analyses (pose, parsing, agnostic) kept in memory (default: %(default)s)')
    parser.add_argument('--max-bytes', type=int, default=tryon_service.DEFAULT_MAX_BYTES,
                        help='largest image upload in bytes (default: %(default)s)')
    parser.add_argument('--max-pixels', type=int, default=tryon_service.DEFAULT_MAX_PIXELS,
                        help='largest image in pixels, refused from its header before decoding '
                             '(default: %(default)s)')
    parser.add_argument('--gallery-size', type=int, default=GALLERY_SIZE,
                        help='garments shown in the page\'s gallery and tried by "Try every garment" (the '
                             'first of the folder; the API takes every one; default: %(default)s)')
    parser.add_argument('--threads', type=int, metavar='N',
                        help='OpenCV threads (default: the cores shared among the workers)')
    parser.add_argument('--gmm', help='GMM model (default: as virtual-try-on)')
    parser.add_argument('--tom', help='TOM model (default: as virtual-try-on)')
    parser.add_argument('--pose-model', help='pose model (default: as virtual-try-on)')
    parser.add_argument('--pose-config', help='OpenPose .prototxt, for a .caffemodel (OpenCV 4.x)')
    parser.add_argument('--parsing-model', help='LIP JPPNet model (default: as virtual-try-on)')
    parser.add_argument('--synthetic', action='store_true',
                        help='the synthetic seeded-random GMM and TOM: the output is NOT a try-on')
    dnn_backends.add_backend_arguments(parser)
    command_line.add_verbosity_arguments(parser)
    return parser


def check_arguments(args):
    for name, low in (('port', 0), ('workers', 1), ('queue', 1), ('cache', 0), ('max_bytes', 1),
                      ('max_pixels', 1), ('gallery_size', 0), ('threads', 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise UsageError('--%s must be at least %d, got %d' % (name.replace('_', '-'), low, value))
    if args.port > 65535:
        raise UsageError('--port must be at most 65535, got %d' % args.port)
    if args.max_pixels > OPENCV_MAX_PIXELS:
        raise UsageError('--max-pixels %d is above OpenCV\'s limit here, OPENCV_IO_MAX_IMAGE_PIXELS=%d'
                         % (args.max_pixels, OPENCV_MAX_PIXELS))
    if args.garments and not os.path.isdir(args.garments):
        raise UsageError('garments folder not found: %s' % args.garments)


def check_port(host, port):
    """RuntimeFailure now, before the networks load, when host:port cannot be listened on."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise RuntimeFailure('cannot listen on %s:%d: %s' % (host, port, err.strerror or err))


def main(argv=None):
    args, status = command_line.parse_cli(build_parser(), argv)
    if args is None:
        return status
    check_arguments(args)
    try:
        import gradio
        import uvicorn
        if not hasattr(gradio, 'Blocks'):   # the leftovers of an uninstalled gradio import as an empty package
            raise ImportError('gradio is not installed whole')
    except ImportError as err:
        raise UsageError('the web demo needs the [web] extra (%s): pip install -e ".[web]"' % err)
    backend_id, target_id = dnn_backends.backend_target(args.backend, args.target)
    check_port(args.host, args.port)
    cv.setNumThreads(args.threads or max(1, (os.cpu_count() or 1) // args.workers))
    tryon_service.set_decoder_limits(args.max_pixels)
    garments = list_garments(args.garments)
    if args.garments and not garments:
        raise UsageError('garments folder holds no images: %s' % args.garments)
    models = model_files(args)
    service = TryOnService(lambda: load_tryon(models, backend_id, target_id), args.workers, args.queue,
                           args.cache, args.max_bytes, args.max_pixels, garments)
    work_dir = tempfile.mkdtemp(prefix='tryon-web-')
    atexit.register(shutil.rmtree, work_dir, True)
    gallery_ids = list(garments)[:args.gallery_size]
    blocks, theme = create_page(service, gallery_ids, work_dir)
    blocks.queue(max_size=args.queue, default_concurrency_limit=args.workers)
    page = (blocks, dict(allowed_paths=[os.path.abspath(args.garments)] if args.garments else [],
                         max_file_size=args.max_bytes, theme=theme, footer_links=[], run_history=False,
                         ssr_mode=False, mcp_server=False, show_error=False))
    app = create_app(service, page, args.max_bytes)
    if args.host not in ('127.0.0.1', 'localhost', '::1'):
        log.warning('listening on %s: anyone who can reach this machine can use the page and the API (there is no '
                    'authentication; put a proxy with one in front)', args.host)
    log.info('%d worker(s) ready, %d garments; serving http://%s:%d/ (POST /api/tryon, GET /api/health)',
             args.workers, len(garments), args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level='warning')
    return 0


def cli():
    """Console command `virtual-try-on-web`."""
    sys.exit(command_line.run_main(main))


if __name__ == '__main__':
    cli()
