"""The two failures every script reports as one line ``error: ...`` on stderr, and that line.

UsageError is bad usage or bad input (exit status 2), RuntimeFailure a failure of the work itself
(exit status 1), ModelLoadError the RuntimeFailure of a model that cannot be loaded; command_line.run_main
turns them into the line and the status."""
import cv2 as cv


class UsageError(Exception):
    """Bad command line or bad input file: exit status 2."""


class RuntimeFailure(Exception):
    """The input was fine but the work failed (model, backend, no person): exit status 1."""


class ModelLoadError(RuntimeFailure):
    """A model file is there but cannot be loaded (truncated, not the network expected, or this OpenCV cannot
    read it): exit status 1, for every network alike. A model file that is missing is a UsageError."""


def error_line(err, empty='unknown error'):
    """One line for a failure: the last line of an OpenCV error's message, else str(err)."""
    if not isinstance(err, cv.error):
        return str(err)
    lines = (err.err or str(err)).strip().splitlines()
    return lines[-1] if lines else empty
