"""OpenPose's 18 COCO body parts: their order, index by name, and the 17 limbs of its skeleton.

Every pose estimator here (openpose.OpenPose, blazepose.BlazePose) reports keypoints in this order.
"""
from enum import IntEnum

import numpy as np


class CocoPart(IntEnum):
    """A keypoint's row in the (18, 3) keypoints: keypoints[CocoPart.NECK]."""
    NOSE = 0
    NECK = 1
    R_SHOULDER = 2
    R_ELBOW = 3
    R_WRIST = 4
    L_SHOULDER = 5
    L_ELBOW = 6
    L_WRIST = 7
    R_HIP = 8
    R_KNEE = 9
    R_ANKLE = 10
    L_HIP = 11
    L_KNEE = 12
    L_ANKLE = 13
    R_EYE = 14
    L_EYE = 15
    R_EAR = 16
    L_EAR = 17


COCO_PARTS = ('Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist',
              'RHip', 'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar')
PART_INDEX = {name: i for i, name in enumerate(COCO_PARTS)}
# limbs drawn by openpose.draw_skeleton (the 17 connections of OpenPose's COCO skeleton)
COCO_PAIRS = tuple((PART_INDEX[a], PART_INDEX[b]) for a, b in (
    ('Neck', 'RShoulder'), ('Neck', 'LShoulder'), ('RShoulder', 'RElbow'), ('RElbow', 'RWrist'),
    ('LShoulder', 'LElbow'), ('LElbow', 'LWrist'), ('Neck', 'RHip'), ('RHip', 'RKnee'),
    ('RKnee', 'RAnkle'), ('Neck', 'LHip'), ('LHip', 'LKnee'), ('LKnee', 'LAnkle'), ('Neck', 'Nose'),
    ('Nose', 'REye'), ('REye', 'REar'), ('Nose', 'LEye'), ('LEye', 'LEar')))


def found_point(keypoints, name):
    """(x, y) float64 of the named part in (18, 3) keypoints, or None where the pose did not find it."""
    k = keypoints[PART_INDEX[name]]
    return np.asarray(k[:2], np.float64) if k[2] > 0 else None


def shoulder_span(keypoints):
    """Distance between the shoulders; twice neck-shoulder when one shoulder is found; None without either
    (or without the neck for one)."""
    neck, right, left = (found_point(keypoints, n) for n in ('Neck', 'RShoulder', 'LShoulder'))
    if right is not None and left is not None:
        return float(np.hypot(*(right - left)))
    one = right if right is not None else left
    if one is not None and neck is not None:
        return 2 * float(np.hypot(*(one - neck)))
    return None
