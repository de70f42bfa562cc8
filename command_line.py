"""What every command line here shares: -q/-v and the 'level: message' lines on stderr, argparse's exit, and
run_main, which turns a failure into one line ``error: ...`` and an exit status (2 for usage and input
errors, 1 for runtime failures, 130 when interrupted).

Messages go through ``logging`` (one logger per module); only the command-line entry points install a
handler (setup_logging), so an application that imports the modules decides where they go."""
import logging
import sys

import cv2 as cv

from errors import RuntimeFailure, UsageError, error_line


class _LevelPrefixFormatter(logging.Formatter):
    def format(self, record):
        return '%s: %s' % (record.levelname.lower(), record.getMessage())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a message comes (a test or an embedding app may swap it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def add_verbosity_arguments(parser):
    """-q/--quiet and -v/--verbose, the same in every script."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('-q', '--quiet', action='store_true', help='print warnings and errors only')
    group.add_argument('-v', '--verbose', action='store_true', help='print debugging details too')


def count_argument(option):
    """An argparse type for `option`: a whole number of at least 1, else a one-line UsageError."""
    def count(text):
        if not text.strip().isdigit() or int(text) < 1:
            raise UsageError('%s expects a whole number of at least 1, got %r' % (option, text))
        return int(text)
    return count


def setup_logging(quiet=False, verbose=False):
    """The command-line scripts' handler: 'level: message' lines on stderr; info by default."""
    handler = _StderrHandler()
    handler.setFormatter(_LevelPrefixFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, '_tryon_cli', False)]:
        root.removeHandler(old)
    handler._tryon_cli = True
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


def parse_cli(parser, argv):
    """parse_args, then the logging set-up of -q/-v. Returns (args, None), or (None, status) when argparse
    exits (--help, a bad option: it printed the message itself)."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return None, exit_.code
    setup_logging(getattr(args, 'quiet', False), getattr(args, 'verbose', False))
    return args, None


def run_cli(build_parser, run, argv=None):
    """An entry script's main(argv): run(args), or argparse's exit status after --help or a bad option."""
    args, status = parse_cli(build_parser(), argv)
    return status if args is None else run(args)


def run_main(main, argv=None):
    """Run main(argv) and turn known failures into one line on stderr and an exit status."""
    try:
        status = main(argv)
    except UsageError as err:
        print('error: %s' % err, file=sys.stderr)
        return 2
    except RuntimeFailure as err:
        print('error: %s' % err, file=sys.stderr)
        return 1
    except cv.error as err:
        print('error: OpenCV: %s' % error_line(err, 'unknown failure'), file=sys.stderr)
        return 1
    except MemoryError:
        print('error: out of memory', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('error: interrupted', file=sys.stderr)
        return 130
    return status or 0
