"""OpenPose's 18 COCO body parts: their order, index by name, and the 17 limbs of its skeleton.

Every pose estimator here (openpose.OpenPose, blazepose.BlazePose) reports keypoints in this order.
"""

COCO_PARTS = ('Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist',
              'RHip', 'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar')
PART_INDEX = {name: i for i, name in enumerate(COCO_PARTS)}
# limbs drawn by openpose.draw_skeleton (the 17 connections of OpenPose's COCO skeleton)
COCO_PAIRS = tuple((PART_INDEX[a], PART_INDEX[b]) for a, b in (
    ('Neck', 'RShoulder'), ('Neck', 'LShoulder'), ('RShoulder', 'RElbow'), ('RElbow', 'RWrist'),
    ('LShoulder', 'LElbow'), ('LElbow', 'LWrist'), ('Neck', 'RHip'), ('RHip', 'RKnee'),
    ('RKnee', 'RAnkle'), ('Neck', 'LHip'), ('LHip', 'LKnee'), ('LKnee', 'LAnkle'), ('Neck', 'Nose'),
    ('Nose', 'REye'), ('REye', 'REar'), ('Nose', 'LEye'), ('LEye', 'LEar')))
