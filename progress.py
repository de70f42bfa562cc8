"""The one progress display of every long job here (dataset mode, training, model downloads): a line on
stderr with what is done, the rate and the time left, rewritten in place on a terminal, a new line every
`interval_file` seconds elsewhere (logs stay short), and the last state at close(); and the peak memory
that a batch job's summary line reports."""
import sys
import time


def mib(n):
    return '%.1f MiB' % (n / (1 << 20))


class Progress:
    """total: the amount to do (None or 0: unknown); what: the unit counted ('pairs', 'steps'), or
    'bytes' for a download, which shows MiB and a percentage; label: a prefix (a file name);
    initial: done before this run (a resumed job), not counted in the rate; enabled=False: silent.
    update(done) or the callback form progress(done, total) report; skip(done) reports an item found done
    before this run (counted, not in the rate); close() ends the line. A state already shown is not shown
    again, and with nothing done in this run no rate is shown."""

    def __init__(self, total, what='pairs', enabled=True, stream=None, interval=0.5, interval_file=10.0,
                 initial=0, label=None):
        self.total, self.what, self.enabled, self.label = total, what, enabled, label
        self.initial = initial
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, 'isatty') and self.stream.isatty()
        self.interval = interval if self.tty else interval_file
        self.start = time.monotonic()
        self.last = None  # nothing shown yet: the first report is shown at once
        self.shown = None  # the count of the line last shown
        self.width = 0
        self.done = initial

    def __call__(self, done, total=None):
        if total:
            self.total = total
        if self.last is None and self.what == 'bytes':
            self.initial = done  # a resumed download: the bytes already there are not in the rate
        self.update(done)

    def skip(self, done, count=1):
        """`count` items, the last of which brings the count to `done`, were found done before this run (a
        result already written): counted, but not in the rate."""
        self.initial += count
        self.update(done)

    def _text(self, done, now):
        if self.what != 'bytes' and done <= self.initial:  # nothing done in this run: no rate to show
            text = '%d/%s %s, %d done before this run' % (done, self.total if self.total else '?', self.what,
                                                          self.initial)
            return '%s: %s' % (self.label, text) if self.label else text
        rate = (done - self.initial) / max(now - self.start, 1e-9)
        left = (self.total - done) / rate if self.total and rate > 0 else None
        left_text = '?' if left is None else '%d:%02d' % divmod(round(left), 60)
        if self.what == 'bytes':
            amount = ('%3d%% (%s of %s)' % (100 * done // self.total, mib(done), mib(self.total)) if self.total
                      else mib(done))
            text = '%s, %s/s, %s left' % (amount, mib(rate), left_text)
        else:
            text = '%d/%s %s, %.2f %s/s, %s left' % (done, self.total if self.total else '?', self.what, rate,
                                                    self.what, left_text)
        return '%s: %s' % (self.label, text) if self.label else text

    def update(self, done, force=False):
        self.done = done
        now = time.monotonic()
        if not self.enabled or (not force and self.last is not None and (
                done == self.shown or (now - self.last < self.interval and not (self.total and done >= self.total)))):
            return
        self.last, self.shown = now, done
        line = self._text(done, now)
        if self.tty:
            self.stream.write('\r' + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + '\n')
        self.stream.flush()

    def close(self, done=None):
        """Show the final state (done, else the last reported) and end a terminal's line."""
        if not self.enabled:
            return
        done = self.done if done is None else done
        if done != self.shown:
            self.update(done, force=True)  # the last state is not on screen yet
        if self.tty:
            self.stream.write('\n')
            self.stream.flush()


def peak_memory_text():
    """This process's peak resident memory, for a batch job's summary line ('612 MB', or 'unknown'
    where the platform has no getrusage)."""
    try:
        import resource  # Unix only
    except ImportError:
        return 'unknown'
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return '%d MB' % (peak / (1 << 20 if sys.platform == 'darwin' else 1 << 10))
