"""Where the networks look: a box around the person in VITON's framing, found from the pose.

The GMM and TOM were trained on VITON's photos, where a person fills 256x192 from the head to mid-thigh. A
full-length photo, a small person in a wide shot or a waist-up crop seen through the photo's centre crop
puts the person at another scale and place, and the garment lands wrong. The box here puts the neck and
the torso where VITON's median person has them (models.yml, cp_vton_gmm: framing), whatever the photo's
framing; parts of the box outside the photo are filled by repeating its edge."""
import cv2 as cv
import numpy as np

import registry
from coco_parts import found_point, shoulder_span

# a box within these of the centre crop's is the centre crop: VITON-framed photos keep CP-VTON's crop exactly
SAME_SCALE, SAME_PLACE = 0.15, 0.08


def viton_framing():
    """VITON's median person in the 192x256 frame (models.yml): neck (x, y), shoulder width, neck-to-hips."""
    facts = registry.model_registry()['cp_vton_gmm.onnx']['framing']
    return tuple(facts['neck']), float(facts['shoulder_width']), float(facts['torso'])


def person_box(keypoints, model_size):
    """(x, y, w, h) float box in the keypoints' frame that holds the person as VITON frames one, or None when
    the pose has no neck or no shoulder. The scale comes from the torso (neck to the hips' midpoint) when
    both hips are found, else from the shoulders (a half-body photo); the larger of the two when both are,
    so that a person turned sideways (narrow shoulders) or bent (short torso) is not enlarged."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 3)
    (neck_x, neck_y), shoulders_ref, torso_ref = viton_framing()
    neck, span = found_point(keypoints, 'Neck'), shoulder_span(keypoints)
    if neck is None or span is None:
        return None
    scales = [span / shoulders_ref]
    hips = [found_point(keypoints, name) for name in ('RHip', 'LHip')]
    if all(h is not None for h in hips):
        scales.append(np.hypot(*((hips[0] + hips[1]) / 2 - neck)) / torso_ref)
    scale = max(scales)
    if not scale > 0:
        return None
    width, height = model_size
    return (neck[0] - neck_x * scale, neck[1] - neck_y * scale, width * scale, height * scale)


def differs(box, reference):
    """Whether two (x, y, w, h) boxes differ by more than SAME_SCALE in size or SAME_PLACE of the width in place."""
    scale = box[2] / reference[2]
    shift = max(abs(box[0] - reference[0]), abs(box[1] - reference[1])) / reference[2]
    return abs(scale - 1) > SAME_SCALE or shift > SAME_PLACE


def integer_box(box):
    """A float box rounded to whole pixels (x, y, w, h), at least 1x1."""
    x, y = int(np.floor(box[0] + 0.5)), int(np.floor(box[1] + 0.5))
    return x, y, max(int(np.floor(box[2] + 0.5)), 1), max(int(np.floor(box[3] + 0.5)), 1)


def crop_padded(image, box):
    """image[y:y+h, x:x+w] for an integer box that may reach outside the image: the missing part repeats the
    image's edge (cv.BORDER_REPLICATE)."""
    x, y, w, h = box
    height, width = image.shape[:2]
    pad = (max(-y, 0), max(y + h - height, 0), max(-x, 0), max(x + w - width, 0))
    if any(pad):
        top, bottom, left, right = pad
        image = cv.copyMakeBorder(image, top, bottom, left, right, cv.BORDER_REPLICATE)
        x, y = x + left, y + top
    return image[y:y + h, x:x + w]
