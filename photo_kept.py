"""The person representation of our own TOM ('photo-kept'): the photo itself outside a region to repaint,
and the rule for which pixels of that region the result may change.

CP-VTON's TOM sees only the head and the lower body (cloth_agnostic) and repaints the whole upper body, so
bare arms, hands and background come back as a blur. Ours sees the photo everywhere except a hole that
covers whatever a new upper garment might cover (the old garment and the arms, dilated, the torso and the
arms along the pose: a hole that does not trace the old garment's outline exactly, so the new garment's shape
comes from the warped cloth, not from the old one), with the hands kept; it outputs, beside CP-VTON's rendered
person and composition mask, the new garment's coverage. The result then changes only where the old garment
was or the new one lies (paint_mask); bare arms, hands, background and the head keep the photo's pixels.

The TOM's input is 30 channels at 256x192: the person tensor of person_tensor() (26: CP-VTON's agnostic,
the kept photo, the hole), the warped cloth (3) and the warped cloth's mask (1). Its output is 5 channels:
rendered person (3, before tanh), composition mask and coverage (before sigmoid). The ONNX metadata key
REPRESENTATION_KEY names the representation; a TOM without it is CP-VTON's (25 -> 4)."""
import cv2 as cv
import numpy as np

from coco_parts import PART_INDEX, found_point, shoulder_span

from lip_labels import Lip

REPRESENTATION_KEY = 'person_representation'
CP_VTON, PHOTO_KEPT = 'cp-vton', 'photo-kept'
PERSON_CHANNELS = 26       # agnostic (22) + kept photo (3) + hole (1)
TOM_CHANNELS = PERSON_CHANNELS + 4  # + warped cloth (3) + its mask (1)

# the garment a try-on replaces; the arms; the head, never repainted
GARMENT_LABELS = (Lip.UPPER_CLOTHES, Lip.DRESS, Lip.COAT)
ARM_LABELS = (Lip.LEFT_ARM, Lip.RIGHT_ARM)
HEAD_LABELS = (Lip.HAT, Lip.HAIR, Lip.SUNGLASSES, Lip.FACE)
FACE_LABEL = Lip.FACE

# the hole's geometry, relative to the shoulder width in the 256x192 frame (78 px on VITON's median person)
HOLE_DILATION = 5          # model pixels the old garment and arms are dilated by
ARM_THICKNESS = 0.4        # of the shoulder width: the arm capsules along shoulder-elbow-wrist
HAND_RADIUS = 0.15         # of the shoulder width: the disc around a wrist whose arm pixels stay (the hand)
TORSO_LENGTH = 1.5         # of the shoulder width: neck to hips when the hips are out of frame (VITON median)


def shoulder_width(keypoints):
    """coco_parts.shoulder_span, at least 8 px; VITON's median (78 px at 256x192) when it has none."""
    span = shoulder_span(keypoints)
    return 78.0 if span is None else max(span, 8.0)


def chin_row(labels, keypoints=None):
    """First row of the body below the head: the row under the lowest face pixel, else the neck keypoint's
    row, else 0. Nothing above it is ever repainted."""
    face_rows = np.flatnonzero((np.asarray(labels) == FACE_LABEL).any(axis=1))
    if len(face_rows):
        return int(face_rows[-1]) + 1
    if keypoints is not None and keypoints[PART_INDEX['Neck']][2] > 0:
        return int(np.clip(np.floor(keypoints[PART_INDEX['Neck']][1]), 0, len(labels)))
    return 0


def arm_capsules(keypoints, shape):
    """(H, W) bool: lines ARM_THICKNESS shoulder widths thick along shoulder-elbow-wrist of each arm."""
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 3)
    capsules = np.zeros(shape, np.uint8)
    thickness = max(int(round(ARM_THICKNESS * shoulder_width(keypoints))), 3)
    for side in ('R', 'L'):
        chain = [found_point(keypoints, side + part) for part in ('Shoulder', 'Elbow', 'Wrist')]
        for a, b in zip(chain, chain[1:]):
            if a is not None and b is not None:
                cv.line(capsules, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), 1, thickness)
    return capsules.astype(bool)


def hole(labels, keypoints):
    """(H, W) bool: the region the TOM repaints. The old garment and the arms dilated by HOLE_DILATION, the
    torso polygon (shoulders to hips, hips estimated from the shoulders when out of frame) and capsules along
    the arms, less the head, the hands (arm pixels near a wrist) and everything above the chin."""
    labels = np.asarray(labels)
    height, width = labels.shape
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 3)
    region = np.isin(labels, GARMENT_LABELS + ARM_LABELS).astype(np.uint8)
    size = 2 * HOLE_DILATION + 1
    region = cv.dilate(region, cv.getStructuringElement(cv.MORPH_ELLIPSE, (size, size)))
    span = shoulder_width(keypoints)
    neck = found_point(keypoints, 'Neck')
    shoulders = [p for p in (found_point(keypoints, n) for n in ('RShoulder', 'LShoulder')) if p is not None]
    hips = [p for p in (found_point(keypoints, n) for n in ('RHip', 'LHip')) if p is not None]
    if neck is not None and shoulders:
        if len(hips) < 2:  # out of frame: straight below the shoulders, a torso's length down
            hips = [(x, neck[1] + TORSO_LENGTH * span) for x, _ in shoulders]
        polygon = np.array(shoulders + hips[::-1] if len(shoulders) == 2 else shoulders + hips, np.float32)
        cv.fillConvexPoly(region, cv.convexHull(np.round(polygon).astype(np.int32)), 1)
    region = region.astype(bool) | arm_capsules(keypoints, (height, width))
    for side in ('R', 'L'):
        wrist = found_point(keypoints, side + 'Wrist')
        if wrist is not None:
            disc = np.zeros((height, width), np.uint8)
            cv.circle(disc, tuple(int(round(v)) for v in wrist), max(int(round(HAND_RADIUS * span)), 2), 1, -1)
            region &= ~((disc > 0) & np.isin(labels, ARM_LABELS))
    region &= ~np.isin(labels, HEAD_LABELS)
    region[:chin_row(labels, keypoints)] = False
    return region


def person_tensor(agnostic, person_rgb, region):
    """(1, 26, H, W) float32: CP-VTON's agnostic (1, 22, H, W), the person (3, H, W) in [-1, 1] with the hole
    set to 0 (grey), the hole as 1/0. The GMM reads its first 22 channels."""
    out = np.empty((1, PERSON_CHANNELS) + agnostic.shape[2:], np.float32)
    out[0, :22] = agnostic[0]
    out[0, 22:25] = np.where(region, np.float32(0), person_rgb)
    out[0, 25] = region
    return out


def paint_mask(labels, region, coverage):
    """(H, W) bool: the pixels the result takes from the try-on: inside the hole, where the old garment was
    (it must go) or the new garment lies (coverage > 1/2); everywhere else the photo's own pixels."""
    return region & (np.isin(labels, GARMENT_LABELS) | (coverage > 0.5))
