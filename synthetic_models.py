"""The seeded random stand-ins of the networks (tools/synthetic*.py): building them as a program of its own
(the runtime imports no tooling), and the warning that a loaded model is one, collected per command line."""
import logging
import os
import subprocess
import sys
import warnings

from errors import RuntimeFailure
from registry import REPO_DIR

log = logging.getLogger(__name__)

# ONNX metadata key that marks the seeded random stand-ins built by tools/synthetic.py
SYNTHETIC_KEY = 'synthetic'


def run_tool(script, args, failure):
    """Run tools/<script> as a program of its own (the runtime imports no tooling; --synthetic builds this way):
    its stdout, or one RuntimeFailure line, `failure` and the last line the tool wrote on stderr."""
    try:
        result = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'tools', script)] + list(args),
                                capture_output=True, text=True)
    except OSError as err:
        raise RuntimeFailure('%s: %s' % (failure, err))
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise RuntimeFailure('%s: %s' % (failure, lines[-1] if lines else 'exit status %d' % result.returncode))
    return result.stdout


class SyntheticModelWarning(UserWarning):
    """A model with seeded random weights (tools/synthetic.py) was loaded: its output means nothing.
    Filter it like any warning: warnings.filterwarnings('ignore', category=SyntheticModelWarning)."""


def warn_synthetic(path, output_kind):
    """Warn (Python warnings, so applications can filter it) that `path` is a synthetic stand-in.
    The command-line scripts collect these and print one line naming every such file."""
    warnings.warn('%s holds SYNTHETIC seeded random weights; its output is not a %s'
                  % (os.path.basename(path), output_kind), SyntheticModelWarning, stacklevel=3)


class SyntheticWarnings:
    """Context of a command-line run: the SyntheticModelWarning of each loaded model is collected, and
    one warning naming every synthetic file is logged at the end of the block that loads them."""

    def __init__(self, output_kind='try-on'):
        self.output_kind = output_kind

    def __enter__(self):
        self._catcher = warnings.catch_warnings(record=True)
        self.caught = self._catcher.__enter__()
        warnings.simplefilter('always', SyntheticModelWarning)
        return self

    def __exit__(self, *exc):
        self._catcher.__exit__(*exc)
        files = []
        for item in self.caught:
            if issubclass(item.category, SyntheticModelWarning):
                name = str(item.message).split(' ', 1)[0]
                if name not in files:
                    files.append(name)
            else:
                warnings.showwarning(item.message, item.category, item.filename, item.lineno)
        if files:
            log.warning('%s %s SYNTHETIC seeded random weights: the output is NOT a %s',
                        ', '.join(files), 'holds' if len(files) == 1 else 'hold', self.output_kind)
        return False
