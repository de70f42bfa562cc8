"""Labels from class scores resized to a photo's size: the argmax over classes of the scores resized
bilinearly (half-pixel centres, as cv.resize INTER_LINEAR), exactly as the float32 reference maths give it,
at cv.resize speed and in strips of rows (bounded memory on a 12 MP photo).

Scores are resized with cv.resize (a fast approximation of the reference maths below) and every pixel
whose two best classes are closer than the approximation's error bound is recomputed with the reference
maths, so the labels are exactly those of the reference. human_parsing.merge_flipped (JPPNet's image +
mirror merge) and mediapipe_parsing (label maps) use it.
"""
import functools

import cv2 as cv
import numpy as np


_UNIT_ROUNDOFF = 2.0 ** -24            # float32
STRIP_PIXELS = 1 << 20                  # output pixels per strip: bounded memory on big photos
EXACT_CHUNK = 1 << 15                   # pixels per chunk of the exact recomputation


@functools.lru_cache(maxsize=32)
def _bilinear_taps(source_size, target_size):
    """Half-pixel-centred bilinear taps (as cv.resize INTER_LINEAR): first index, second index and
    weight of the second, for each target position; clamped at the borders."""
    scale = source_size / target_size
    position = (np.arange(target_size) + 0.5) * scale - 0.5
    position = np.clip(position, 0, source_size - 1)
    first = np.floor(position).astype(np.intp)
    second = np.minimum(first + 1, source_size - 1)
    weight = (position - first).astype(np.float32)
    for array in (first, second, weight):
        array.setflags(write=False)
    return first, second, weight


def check_size(size):
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError('size must be positive (width, height), got %s' % (size,))
    return width, height


@functools.lru_cache(maxsize=32)
def _resize_weight_error(source_size, size):
    """How far the weights of cv.resize (INTER_LINEAR, float32, (h, w) -> size = (width, height)) are
    from the exact bilinear weights: (rows, columns), each the largest sum over source lines of
    |cv.resize's weight - exact weight| for an output line. Measured, not assumed: cv.resize maps
    one-hot patterns onto its own weights, and patterns of period 4 keep apart the weights of sources
    less than 4 lines apart. Every output pixel is compared, so no row or tile can differ unseen."""
    height, width = source_size
    out_width, out_height = size
    errors = []
    for axis, n, m in ((0, height, out_height), (1, width, out_width)):
        position = np.clip((np.arange(m) + 0.5) * (n / m) - 0.5, 0, n - 1)
        first = np.floor(position).astype(np.intp)
        second = np.minimum(first + 1, n - 1)
        weight = position - first
        total = np.zeros(m if axis == 0 else (1, m))
        for k in range(4):
            exact = np.where(first % 4 == k, 1 - weight, 0) + np.where(second % 4 == k, weight, 0)
            pattern = (np.arange(n) % 4 == k).astype(np.float32)
            probe = np.ascontiguousarray(np.broadcast_to(pattern[:, None] if axis == 0 else pattern, source_size))
            measured = cv.resize(probe, size, interpolation=cv.INTER_LINEAR).astype(np.float64)
            difference = np.abs(measured - (exact[:, None] if axis == 0 else exact[None, :]))
            total = total + (difference.max(axis=1) if axis == 0 else difference.max(axis=0, keepdims=True))
        errors.append(float(np.max(total)))
    return tuple(errors)


def _exact_labels(corner_scores, rows, cols, source_size, size):
    """Reference maths at the output pixels (rows, cols): the scores' bilinear resize to size =
    (width, height), rows first then columns, in float32, and the first argmax over classes.
    corner_scores(r, c) gives the (C, n) scores at source pixels (r, c)."""
    row0, row1, row_weight = _bilinear_taps(source_size[0], size[1])
    col0, col1, col_weight = _bilinear_taps(source_size[1], size[0])
    r0, r1, wy = row0[rows], row1[rows], row_weight[rows]
    c0, c1, wx = col0[cols], col1[cols], col_weight[cols]
    with np.errstate(invalid='ignore', over='ignore'):  # inf * 0: NaN, which argmax takes
        left = corner_scores(r0, c0) * (1 - wy) + corner_scores(r1, c0) * wy
        right = corner_scores(r0, c1) * (1 - wy) + corner_scores(r1, c1) * wy
        return (left * (1 - wx) + right * wx).argmax(axis=0).astype(np.uint8)


def resized_argmax(items, size, corner_scores):
    """argmax over classes of the sum of score items resized bilinearly to size = (width, height),
    in strips of at most STRIP_PIXELS output pixels. The items are added at the source's size (exact
    float32 sums, as the reference does), then resized with cv.resize.

    items: (scores (C, h, w) float32, channel order or None, mirrored) triples, at most one mirrored:
    class c of the sum is scores[order[c]] of each item, flipped left/right when mirrored.
    corner_scores(r, c) gives the (C, n) scores that the reference maths resize, at source pixels
    (r, c): the labels equal _exact_labels at every pixel.
    cv.resize differs from those maths by its weights (measured by _resize_weight_error) and a few
    float32 roundings per pass, so where the two best classes of the cv.resize result are further
    apart than twice a bound on that difference the argmax is the same; the other pixels (near ties,
    and all of them when a score is not finite) are recomputed with _exact_labels."""
    width, height = size
    channels, source_height, source_width = items[0][0].shape
    row0, row1, row_weight = _bilinear_taps(source_height, height)
    # |cv.resize - exact| <= (row + column weight error + 10 u) * max |sum of the items|; the reference
    # maths are within 12 u of exact: the bound below is more than twice the total, for safety
    slack = 256 * _UNIT_ROUNDOFF
    labels = np.empty((height, width), np.uint8)
    rows_per_strip = height if height * width <= STRIP_PIXELS else max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows_per_strip):
        bottom = min(top + rows_per_strip, height)
        whole = top == 0 and bottom == height
        lo, hi = (0, source_height) if whole else (int(row0[top]), int(row1[bottom - 1]) + 1)
        shape = (bottom - top, width)
        resized, best, smaller = (np.empty(shape, np.float32) for _ in range(3))
        runner_up = np.full(shape, -np.inf, np.float32)
        strip = np.zeros(shape, np.uint8)
        greater = np.empty(shape, bool)
        window, flipped = (np.empty((hi - lo, source_width), np.float32) for _ in range(2))
        if whole:
            weight_error = sum(_resize_weight_error((source_height, source_width), size))
        else:
            horizontal = np.empty((hi - lo, width), np.float32)
            first, second = row0[top:bottom] - lo, row1[top:bottom] - lo
            weight = row_weight[top:bottom, None]
            # the rows are NumPy's (the reference's float32 weights); the columns cv.resize's, whose
            # weights do not depend on the number of rows: measured on a few
            probe_rows = min(hi - lo, 16)
            weight_error = sum(_resize_weight_error((probe_rows, source_width), (width, probe_rows)))
        relative_error = 8 * weight_error + slack
        magnitude = 0.0
        for c in range(channels):
            merged = None  # the items' sum at the source's size: exact float32 additions
            for scores, order, mirrored in items:
                plane = scores[c if order is None else order[c], lo:hi]
                if mirrored:
                    plane = cv.flip(plane, 1, dst=flipped)
                # NumPy for the arithmetic: OpenCV takes an array of <= 4 numbers for a Scalar
                merged = plane if merged is None else np.add(merged, plane, out=window)
            magnitude = max(magnitude, cv.norm(merged, cv.NORM_INF))
            if whole:
                cv.resize(merged, (width, height), dst=resized, interpolation=cv.INTER_LINEAR)
            else:  # columns with cv.resize (rows kept as they are), rows with the strip's own taps
                cv.resize(merged, (width, hi - lo), dst=horizontal, interpolation=cv.INTER_LINEAR)
                np.multiply(horizontal[first], 1 - weight, out=resized)
                resized += horizontal[second] * weight
            if c == 0:
                best[...] = resized
                continue
            np.greater(resized, best, out=greater)
            np.copyto(strip, c, where=greater)
            np.minimum(best, resized, out=smaller)
            np.maximum(runner_up, smaller, out=runner_up)
            np.maximum(best, resized, out=best)
        if np.isfinite(magnitude) and magnitude < 1e30:
            tolerance = 2 * (relative_error * magnitude + 1e-30)
            near_tie = np.flatnonzero(~(best - runner_up > tolerance))
        else:
            near_tie = np.arange(strip.size)
        for start in range(0, near_tie.size, EXACT_CHUNK):
            index = near_tie[start:start + EXACT_CHUNK]
            strip.flat[index] = _exact_labels(corner_scores, top + index // width, index % width,
                                              (source_height, source_width), size)
        labels[top:bottom] = strip
    return labels


def argmax_resized(scores, size):
    """argmax over classes of (C, h, w) scores resized bilinearly (half-pixel centres, as cv.resize
    INTER_LINEAR) to size = (width, height); exactly the float32 maths of _exact_labels.

    Works in strips of rows so a 12 MP photo needs tens of MB, not C x 12 MP floats."""
    width, height = check_size(size)
    scores = np.ascontiguousarray(scores, np.float32)
    return resized_argmax([(scores, None, False)], (width, height), lambda r, c: scores[:, r, c])


def resize_labels(labels, size):
    """A label map resized to size = (width, height) with smooth borders: the labels it holds, one-hot,
    resized bilinearly, argmax (strips of rows: bounded memory for a 12 MP photo)."""
    present = np.unique(labels)
    one_hot = (labels[None] == present[:, None, None]).astype(np.float32)
    return present[argmax_resized(one_hot, size)]
