"""The try-on pasted into the person photo at the photo's own resolution: only where the garment changes
(the old upper garment, the arms, the new garment's cover, never the head), with a soft edge; the rest of the
photo is returned unchanged."""
import cv2 as cv
import numpy as np

from cp_vton import HEIGHT, WIDTH, sigmoid, tanh, to_image
import photo_kept
from lip_labels import Lip

# full-resolution compositing with CP-VTON's TOM: LIP classes the try-on replaces (the garment and both arms);
# the head classes it never touches are photo_kept.HEAD_LABELS
EDIT_LABELS = photo_kept.GARMENT_LABELS + photo_kept.ARM_LABELS
BODY_MARGIN = 4  # model pixels the new garment may reach beyond the parsed person
FEATHER = 3  # soft edge of the pasted region, in photo pixels


def edit_region(labels, warped_mask, composition_mask, keypoints=None):
    """(256, 192) bool: where the try-on may change the photo. The old upper garment and the arms (from the
    parsing) and the area the new garment covers (warped-cloth mask times TOM's composition mask), never the
    head; and whatever the networks output, only on the person: within BODY_MARGIN pixels of the parsed
    body and below the chin (photo_kept.chin_row)."""
    labels = np.asarray(labels)
    covered = warped_mask * composition_mask > 0.5
    region = (np.isin(labels, EDIT_LABELS) | covered) & ~np.isin(labels, photo_kept.HEAD_LABELS)
    margin = cv.getStructuringElement(cv.MORPH_ELLIPSE, (2 * BODY_MARGIN + 1, 2 * BODY_MARGIN + 1))
    region &= cv.dilate((labels != Lip.BACKGROUND).astype(np.uint8), margin) > 0
    region[:photo_kept.chin_row(labels, keypoints)] = False
    return region


def kept_edit_region(labels, hole, coverage, keypoints=None):
    """(256, 192) bool: where a photo-kept TOM's try-on replaces the photo at full resolution:
    photo_kept.paint_mask (the old garment, and the new garment's coverage, inside the hole), the old garment
    one model pixel wider (a 256x192 parsing's edge falls a few photo pixels inside the garment's: without it a
    rim of the old garment survives), never the head or above the chin."""
    old = np.isin(labels, photo_kept.GARMENT_LABELS).astype(np.uint8)
    old = (cv.dilate(old, np.ones((3, 3), np.uint8)) > 0) & hole
    region = old | photo_kept.paint_mask(labels, hole, coverage)
    region &= ~np.isin(labels, photo_kept.HEAD_LABELS)
    region[:photo_kept.chin_row(labels, keypoints)] = False
    return region


def _upsample_matrix(left, top, size, model_size):
    """warpAffine matrix (with WARP_INVERSE_MAP) from pixels of a crop of size (w, h), offset by (left, top),
    to the model frame that cv.resize made of the crop (half-pixel centres, as resize_to_model)."""
    (w, h), (model_w, model_h) = size, model_size
    scale_x, scale_y = model_w / w, model_h / h
    return np.array([[scale_x, 0, (left + 0.5) * scale_x - 0.5],
                     [0, scale_y, (top + 0.5) * scale_y - 0.5]], np.float64)


def _upsample(small, matrix, size):
    return cv.warpAffine(small, matrix, size, flags=cv.INTER_LINEAR | cv.WARP_INVERSE_MAP,
                         borderMode=cv.BORDER_REPLICATE)


def compose_full_resolution(photo, box, cloth, grid, tom_output, region, feather=FEATHER, strip_rows=512,
                            rendered=None, composition=None):
    """Paste the try-on into the photo at its own resolution.

    Inside `region` (256x192 bool, upsampled to the crop and given a soft edge of `feather` pixels), the
    original cloth photo is sampled with the TPS grid upsampled to the crop's size, TOM's rendered person
    and composition mask are upsampled, and the two are composed as CP-VTON composes them; elsewhere the
    photo's pixels are returned unchanged. Works on the region's bounding box in strips of rows, so memory
    stays bounded. rendered (BGR uint8) and composition (float32), both 256x192, replace the TOM's own
    where given (uncovered.paint's)."""
    x, y, w, h = box
    result = photo.copy()
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if not len(rows):
        return result
    # the region's bounding box in the crop: its model pixels, one more on each side (linear upsampling
    # reaches that far), and the soft edge
    top = max(int(np.floor((rows[0] - 1) * h / HEIGHT)) - feather, 0)
    bottom = min(int(np.ceil((rows[-1] + 2) * h / HEIGHT)) + feather, h)
    left = max(int(np.floor((cols[0] - 1) * w / WIDTH)) - feather, 0)
    right = min(int(np.ceil((cols[-1] + 2) * w / WIDTH)) + feather, w)
    size = (right - left, bottom - top)
    # the region at full resolution: linear upsampling thresholded at one half (a smooth outline, no
    # model-pixel stairs), then a box blur: exactly 0 beyond `feather` pixels of it, so those stay untouched
    inside = _upsample(region.astype(np.uint8) * np.uint8(255), _upsample_matrix(left, top, (w, h), (WIDTH, HEIGHT)), size)
    inside = cv.threshold(inside, 127, 255, cv.THRESH_BINARY)[1]
    alpha = cv.blur(inside, (2 * feather + 1, 2 * feather + 1), borderType=cv.BORDER_REPLICATE)
    del inside

    if rendered is None:
        rendered = to_image(tanh(tom_output[0, :3]))  # as CpVton.compose saves it: BGR uint8
    if composition is None:
        composition = sigmoid(tom_output[0, 3])
    # the cloth at the crop's scale at most (the model frame shows cloth and person at one scale), so that
    # sampling it does not alias
    cloth_h, cloth_w = cloth.shape[:2]
    if cloth_h > h or cloth_w > w:
        cloth = cv.resize(cloth, (min(cloth_w, w), min(cloth_h, h)), interpolation=cv.INTER_AREA)
        cloth_h, cloth_w = cloth.shape[:2]
    # grid value g in [-1, 1] -> model-cloth pixel (g + 1) / 2 * (W - 1) (align_corners=True) -> pixel of this
    # cloth image, whose 192x256 resize the GMM saw (half-pixel centres). Linear, so it commutes with the
    # upsampling: the map is made at 256x192 and upsampled as cv.remap's two-channel map.
    cloth_map = np.empty((HEIGHT, WIDTH, 2), np.float32)
    for axis, model_side, side in ((0, WIDTH, cloth_w), (1, HEIGHT, cloth_h)):
        model_pixel = (grid[0, ..., axis] + 1) * (0.5 * (model_side - 1))
        cloth_map[..., axis] = (model_pixel + 0.5) * (side / model_side) - 0.5

    for start in range(0, size[1], strip_rows):
        stop = min(start + strip_rows, size[1])
        # only the columns of this strip that the soft region reaches
        reached = np.flatnonzero(alpha[start:stop].any(axis=0))
        if not len(reached):
            continue
        first, last = int(reached[0]), int(reached[-1]) + 1
        matrix = _upsample_matrix(left + first, top + start, (w, h), (WIDTH, HEIGHT))
        strip = (last - first, stop - start)
        warped = cv.remap(cloth, _upsample(cloth_map, matrix, strip), None, cv.INTER_LINEAR,
                          borderMode=cv.BORDER_REPLICATE)
        mask = _upsample(composition, matrix, strip)
        tryon = cv.blendLinear(warped, _upsample(rendered, matrix, strip), mask, 1 - mask)
        weight = alpha[start:stop, first:last].astype(np.float32)
        target = result[y + top + start:y + top + stop, x + left + first:x + left + last]
        # (tryon * weight + photo * (255 - weight)) / (255 + 1e-5), rounded: where weight is 0, the photo's value
        target[...] = cv.blendLinear(tryon, target, weight, 255 - weight)
    return result
