"""One runner for a list of try-ons, the same for catalogue mode, dataset mode and each Ray actor: finished
results skipped, the networks loaded only when a try-on needs them, the try-ons through the TOM `batch` at a
time, results written atomically (image_io), one error line for each try-on that fails, a progress line,
and the counts for the summary line."""
import dataclasses
import logging
import os
import time

import cv2 as cv

from errors import RuntimeFailure, UsageError, error_line

log = logging.getLogger(__name__)

# the failures of one try-on: reported on one line, and the run goes on
ITEM_ERRORS = (UsageError, RuntimeFailure, cv.error)


class TryOnItem:
    """One try-on of the list: its number (from 1), its (person, cloth) names, the files it writes (all
    present: finished, skipped), the name an error line gives it, and once prepared its analysis and garment."""

    def __init__(self, number, names, outputs, label):
        self.number, self.names, self.outputs, self.label = number, names, outputs, label
        self.analysis = self.cloth = None


class StopBatch(Exception):
    """Raised by prepare() to end the whole run with `error` (raised in its place) instead of skipping one
    try-on: the one person of a catalogue, or networks that cannot be loaded."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


@dataclasses.dataclass
class BatchCounts:
    total: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0

    def summary(self, what):
        """'12 pairs: 10 written, 0 skipped as done, 2 failed; 3.1 s, 3.23 pairs/s written'."""
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        return ('%d %s: %d written, %d skipped as done, %d failed; %.1f s, %.2f %s/s written'
                % (self.total, what, self.written, self.skipped, self.failed, self.seconds, rate, what))


class LazyTryOn:
    """The VirtualTryOn of load_tryon(), loaded at the first call: a rerun over finished results, or over
    inputs that fail before the networks, loads no model. A failure to load ends the run (StopBatch)."""

    def __init__(self, load_tryon):
        self._load, self._tryon = load_tryon, None

    def __call__(self):
        if self._tryon is None:
            try:
                self._tryon = self._load()
            except ITEM_ERRORS as err:
                raise StopBatch(err)
        return self._tryon


def run_batch(items, load_tryon, prepare, write, batch=1, overwrite=False, progress=None):
    """Run the try-ons of `items` (TryOnItem) and return their BatchCounts.

    load_tryon(): the VirtualTryOn, called once, by the first prepare() that calls its `tryon` argument.
    prepare(item, tryon): reads the item's inputs and sets item.analysis and item.cloth; tryon() gives the
    networks. write(item, grid, warped, tom_output): writes the item's results. An ITEM_ERRORS failure of
    either is one error line '<item.label> skipped: <reason>' and the run goes on; StopBatch ends it.
    Unless overwrite, an item whose outputs all exist is skipped. The GMM and TOM run `batch` try-ons at
    a time (CpVton.render_many: the same bytes as one at a time). progress: a progress.Progress, or None."""
    tryon = LazyTryOn(load_tryon)
    counts = BatchCounts(total=len(items))
    pending = []
    start = time.monotonic()

    def report(item, err):
        counts.failed += 1
        log.error('%s skipped: %s', item.label, error_line(err))

    def flush():
        if pending:
            render_batch(tryon(), pending, batch, write, report, counts)
            pending.clear()

    for item in items:
        if not overwrite and item.outputs and all(os.path.exists(path) for path in item.outputs):
            counts.skipped += 1
            if progress is not None:
                progress.skip(item.number)  # not in the rate: a rerun that only skips shows no absurd rate
            continue
        try:
            prepare(item, tryon)
            pending.append(item)
        except StopBatch as stop:
            raise stop.error
        except ITEM_ERRORS as err:
            report(item, err)
        if len(pending) >= batch:
            flush()
        if progress is not None and not pending:
            progress.update(item.number)
    flush()
    if progress is not None:
        progress.close(len(items))
    counts.seconds = time.monotonic() - start
    return counts


def render_batch(tryon, pending, batch, write, report, counts):
    """GMM + TOM of the pending try-ons (CpVton.render_many, the TOM `batch` at a time), then
    write(item, grid, warped, tom_output) for each. A failure of the networks fails every item of the
    batch, a failure to write only its item; report(item, err) reports each."""
    try:
        rendered = tryon.cp_vton.render_many([item.analysis.agnostic for item in pending],
                                             [item.cloth for item in pending], batch)
    except ITEM_ERRORS as err:
        for item in pending:
            report(item, err)
        return
    for item, (grid, warped, tom_output) in zip(pending, rendered):
        try:
            write(item, grid, warped, tom_output)
            counts.written += 1
        except ITEM_ERRORS as err:
            report(item, err)

