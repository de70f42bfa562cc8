"""Pillow's BILINEAR resize, reproduced bit for bit in vectorised NumPy.

CP-VTON blurs the body-shape mask with two PIL BILINEAR resizes (down by 16 and back up);
cv.resize INTER_LINEAR gives a different mask, so the try-on pipeline uses this instead.
``resize(image, size)`` returns exactly
``np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))``.

What is reproduced (read in Pillow 13.0.0's sources and tested pixel for pixel against it):
  * src/libImaging/Resample.c: ``precompute_coeffs`` (triangle filter of support 1 widened by the
    down-scale factor, centre ``(i + 0.5) * scale``, bounds rounded by truncation, weights
    normalised by their sequential sum, all in C doubles), ``normalize_coeffs_8bpc`` (22-bit
    fixed point, rounded half up), the 8-bit passes (accumulator starts at ``1 << 21``,
    ``>> 22``, clipped to 0..255) and ``ImagingResampleInner`` (a pass only along an axis whose
    size changes; horizontal pass first, on just the rows the vertical pass reads, except that
    Pillow >= 13 goes vertical first when the height drops by more than twice as many pixels
    as the width: the installed Pillow's order is followed, see vertical_pass_first).
  * src/_imaging.c ``_resize`` and src/PIL/Image.py ``Image.resize``: an unchanged size is a
    plain copy; "RGBA" and "LA" are resampled premultiplied ("RGBa" / "La") and converted
    back; ``reducing_gap`` defaults to None (no reduce step).
  * src/libImaging/Convert.c ``rgbA2rgba`` / ``lA2la`` (premultiply with MULDIV255) and
    ``rgba2rgbA`` / ``la2lA`` (un-premultiply with a truncating division, alpha 0 and 255 kept).

Each pass is one sparse (scipy CSR) product of the fixed-point weights with the image in float64:
every product and partial sum is an integer below 2**31, which float64 holds exactly, so the
sums equal Pillow's int32 loop whatever the order of addition.
"""
import argparse
import functools
import numbers
import sys

import cv2 as cv
import numpy as np

import command_line
import errors
import image_io

PRECISION_BITS = 32 - 8 - 2
_HALF = float(1 << (PRECISION_BITS - 1))
_UNIT = float(1 << PRECISION_BITS)


def _pillow_major_version():
    try:
        import PIL  # optional here: without Pillow, the newest pass order (Pillow >= 13) is taken
        return int(PIL.__version__.split('.')[0])
    except (ImportError, AttributeError, ValueError):
        return None


# Follow the pass order of the installed Pillow (13's when Pillow is absent or unreadable).
_PILLOW_MAJOR = _pillow_major_version()
VERTICAL_FIRST_ON_TALL_SHRINK = _PILLOW_MAJOR is None or _PILLOW_MAJOR >= 13


@functools.lru_cache(maxsize=128)
def filter_band(in_size, out_size):
    """1-D bilinear coefficients of Pillow's precompute_coeffs + normalize_coeffs_8bpc.

    Returns (columns, weights, first, last): for output i, input pixel columns[i, k] is weighted
    by weights[i, k] (fixed point as float64, 0 beyond the filter); rows first..last-1 are
    the only input pixels used. Arrays are read-only because they are cached.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(np.ceil(support)) * 2 + 1

    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size)
    count = xmax - xmin

    taps = np.arange(ksize)
    columns = xmin[:, None] + taps
    inside = taps < count[:, None]
    # (x + xmin - center + 0.5) * ss, evaluated in the same order as the C code
    distance = np.abs(((columns.astype(np.float64) - center[:, None]) + 0.5) * (1.0 / filterscale))
    weights = np.where(inside & (distance < 1.0), 1.0 - distance, 0.0)
    # Pillow adds the weights one after another; cumsum keeps that order (np.sum would not)
    total = np.cumsum(weights, axis=1)[:, -1:]
    weights = np.divide(weights, total, out=weights, where=total != 0.0)
    # (int)(0.5 + k * (1 << 22)): the C rounds negative weights the other way, but the
    # triangle filter has none
    fixed = np.trunc(0.5 + weights * _UNIT)

    first, last = int(xmin[0]), int(xmin[-1] + count[-1])
    # drop taps no output uses; padding taps (weight 0) point at a used pixel
    used = int(count.max())
    columns, fixed = np.minimum(columns[:, :used], last - 1), fixed[:, :used]
    for array in (columns, fixed):
        array.flags.writeable = False
    return columns, fixed, first, last


@functools.lru_cache(maxsize=128)
def filter_matrix(in_size, out_size, cropped=False):
    """filter_band as a sparse (out_size, in_size) CSR matrix of fixed-point weights; with
    `cropped`, only the columns of input rows first..last-1 (the rows Pillow keeps between
    the horizontal and the vertical pass)."""
    from scipy import sparse  # first use only: importing it takes a while

    columns, fixed, first, last = filter_band(in_size, out_size)
    offset, width = (first, last - first) if cropped else (0, in_size)
    rows = np.broadcast_to(np.arange(out_size)[:, None], columns.shape)
    # COO -> CSR sums duplicates; the padding taps add 0 to a used pixel
    matrix = sparse.coo_matrix((fixed.ravel(), (rows.ravel(), (columns - offset).ravel())),
                               shape=(out_size, width)).tocsr()
    matrix.eliminate_zeros()
    return matrix


def _descale(sums):
    """Pillow's clip8() in place on fresh sums: add the rounding half, shift by PRECISION_BITS
    (a power-of-two scaling, exact in float64), clip to 0..255."""
    sums += _HALF
    sums *= 1.0 / _UNIT
    np.floor(sums, out=sums)
    return np.clip(sums, 0.0, 255.0, out=sums)


def _pass(matrix, lines):
    """One 1-D pass along the first axis of `lines` (n, ...): a sparse product over rows of
    integers in float64 (exact), then Pillow's rounding."""
    sums = matrix @ lines.reshape(lines.shape[0], -1)
    return _descale(sums).reshape((matrix.shape[0],) + lines.shape[1:])


def _horizontal_pass(planes, out_width):
    """Horizontal pass of (rows, width, channels) pixels (uint8 or float): the image is
    transposed (and converted to float64 in the same copy) so the pass runs along rows."""
    columns_first = np.ascontiguousarray(planes.transpose(1, 0, 2), dtype=np.float64)
    resampled = _pass(filter_matrix(planes.shape[1], out_width), columns_first)
    return resampled.transpose(1, 0, 2)


def vertical_pass_first(in_width, in_height, out_width, out_height):
    """True when both passes run and the vertical one comes first.

    ImagingResampleInner in Pillow >= 13 runs the vertical pass first when the height drops by
    more than twice as many pixels as the width does; Pillow <= 12 always starts with the
    horizontal pass. The order changes the rounding of the intermediate image, so it follows
    the installed Pillow (VERTICAL_FIRST_ON_TALL_SHRINK)."""
    if not VERTICAL_FIRST_ON_TALL_SHRINK:
        return False
    height_drop = in_height - out_height
    return height_drop > 0 and height_drop > 2 * (in_width - out_width) and out_width != in_width


def _premultiply(colour, alpha):
    """Convert.c rgbA2rgba / lA2la: MULDIV255(colour, alpha); uint16 holds every step."""
    product = colour.astype(np.uint16) * alpha + 128
    return ((product >> 8) + product) >> 8


def _unpremultiply(colour, alpha):
    """Convert.c rgba2rgbA / la2lA: 255 * colour // alpha clipped, alpha 0 and 255 unchanged."""
    colour = colour.astype(np.uint32)
    divided = np.minimum(255 * colour // np.maximum(alpha, 1), 255)
    return np.where((alpha == 0) | (alpha == 255), colour, divided)


def _check_size(size):
    try:
        width, height = size
    except (TypeError, ValueError):
        raise ValueError('size must be (width, height), got %r' % (size,))
    for value in (width, height):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise ValueError('size must hold two integers, got %r' % (size,))
        if value < 1:
            raise ValueError('size must be at least 1x1, got %r' % (size,))
    return int(width), int(height)


def resize(image, size):
    """Resize like ``Image.fromarray(image).resize(size, Image.BILINEAR)``, bit for bit.

    image: uint8 array (H, W) or (H, W, C) with C in 1..4 (C == 2 is Pillow's "LA",
           C == 4 its "RGBA", both resampled with premultiplied alpha as Pillow does;
           C == 1 is treated as "L" and keeps its channel axis).
    size:  (width, height) of the result, both >= 1.
    Returns a new uint8 array (height, width) or (height, width, C).
    Raises ValueError for any other dtype, shape or size.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError('image must be a NumPy uint8 array, got %s' % type(image).__name__)
    if image.dtype != np.uint8:
        raise ValueError('image must be uint8, got %s' % image.dtype)
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise ValueError('image must be (H, W) or (H, W, C) with C in 1..4, got shape %s'
                         % (image.shape,))
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError('image is empty: shape %s' % (image.shape,))
    out_width, out_height = _check_size(size)
    in_height, in_width = image.shape[:2]
    if (out_width, out_height) == (in_width, in_height):
        return image.copy()  # _imaging.c: same size is a crop of the whole image

    channels = 1 if image.ndim == 2 else image.shape[2]
    pixels = image.reshape(in_height, in_width, channels)
    has_alpha = channels in (2, 4)
    if has_alpha:  # Image.resize works on "RGBa" / "La"
        pixels = pixels.copy()
        pixels[:, :, :-1] = _premultiply(pixels[:, :, :-1], pixels[:, :, -1:].astype(np.uint16))

    # (rows, columns, channels) arrays; float64 ones hold integer pixel values
    need_horizontal, need_vertical = out_width != in_width, out_height != in_height
    if vertical_pass_first(in_width, in_height, out_width, out_height):
        planes = _pass(filter_matrix(in_height, out_height), pixels.astype(np.float64))
        planes = _horizontal_pass(planes, out_width)
    else:
        if need_vertical:  # the horizontal pass only resamples the rows the vertical one reads
            first, last = filter_band(in_height, out_height)[2:]
            pixels = pixels[first:last]
        if need_horizontal:
            planes = np.ascontiguousarray(_horizontal_pass(pixels, out_width))
        else:
            planes = pixels.astype(np.float64)
        if need_vertical:
            planes = _pass(filter_matrix(in_height, out_height, cropped=True), planes)

    result = planes.astype(np.uint8, order='C')
    if has_alpha:
        alpha = result[:, :, -1:].astype(np.uint32)
        result[:, :, :-1] = _unpremultiply(result[:, :, :-1], alpha)
    return result[:, :, 0] if image.ndim == 2 else result


# ---------------------------------------------------------------------------- demo
def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Resize an image exactly like Pillow BILINEAR '
                    '(as CP-VTON does for its body-shape mask).')
    parser.add_argument('input', help='image file')
    parser.add_argument('--width', type=int, required=True, help='output width in pixels')
    parser.add_argument('--height', type=int, required=True, help='output height in pixels')
    parser.add_argument('--gray', action='store_true', help='resize as one greyscale channel ("L")')
    parser.add_argument('--output', '-o', required=True, help='output image file')
    args = parser.parse_args(argv)
    if args.width < 1 or args.height < 1:
        raise errors.UsageError('--width and --height must be at least 1')
    image = image_io.read_image(args.input)
    if args.gray:
        image = cv.cvtColor(image, cv.COLOR_BGR2GRAY)
    image_io.write_image(args.output, resize(image, (args.width, args.height)))
    print('%s: %dx%d -> %dx%d'
          % (args.output, image.shape[1], image.shape[0], args.width, args.height))
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
