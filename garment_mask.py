"""The foreground of a garment photo: the garment on its plain background, as a mask."""
import cv2 as cv
import numpy as np


def cloth_mask(cloth, tolerance=16):
    """(H, W) uint8 {0, 1} foreground of a garment photographed on a plain background: the pixels that differ
    from the border's median colour by more than `tolerance` in a channel, with enclosed holes (a white
    print on the garment) filled, since only background reachable from the border is background."""
    border = np.concatenate([cloth[0], cloth[-1], cloth[:, 0], cloth[:, -1]])
    background = np.median(border, axis=0).astype(np.int16)
    differs = np.abs(cloth.astype(np.int16) - background).max(axis=2) > tolerance
    outside = cv.copyMakeBorder((~differs).astype(np.uint8), 1, 1, 1, 1, cv.BORDER_CONSTANT, value=1)
    cv.floodFill(outside, None, (0, 0), 2)
    return (outside[1:-1, 1:-1] != 2).astype(np.uint8)
