"""The garment photo must show a garment: one in which nothing stands out from the background (a plain-colour
picture, a blank page, a flat colour with sensor noise) is refused, as a person photo without a person is,
instead of a torso painted in that flat colour."""
import cv2 as cv
import numpy as np

from errors import RuntimeFailure
from cp_vton import resize_to_model
from garment_mask import cloth_mask

# the least share of the garment photo that must stand out from the border's colour: the shared VITON and
# real-world garments have 1.6 % (a white top on white) to 81 %, a flat colour with noise of standard
# deviation 20 grey levels 0.002 %
MIN_FOREGROUND = 0.005
SMOOTHING = 1.5  # Gaussian sigma, in pixels of the 256x192 garment: sensor noise is not a garment


def garment_share(cloth):
    """The share of the garment photo (BGR uint8, any size) that cloth_mask finds as foreground, measured at
    the model's 256x192 on the photo lightly smoothed: 0.0 for a plain colour."""
    small = cv.GaussianBlur(resize_to_model(cloth), (0, 0), SMOOTHING)
    return float(cloth_mask(small).mean())


def check_garment(cloth, what='garment photo'):
    """RuntimeFailure (exit status 1, one error line) when no garment stands out from the photo's background:
    less than MIN_FOREGROUND of it differs from the colour of its border (garment_share)."""
    share = garment_share(cloth)
    if share < MIN_FOREGROUND:
        raise RuntimeFailure('no garment found: nothing in the %s stands out from its plain background (%.1f %% '
                             'of it does, at least %.1f %% is needed); give a photo of the garment on a plain '
                             'background' % (what, 100 * share, 100 * MIN_FOREGROUND))
    return share
