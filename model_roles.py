"""The roles a network plays in the try-on, as the interfaces every network of a role has (typing.Protocol:
a class fits by its methods, without inheriting). VirtualTryOn takes any PoseEstimator and any HumanParser.

A network that cannot be loaded raises errors.ModelLoadError (exit status 1), whatever its role; a model
file that is not there is an errors.UsageError (exit status 2) naming the command that fetches it."""
from typing import Optional, Protocol, Tuple

import numpy as np


class DnnModel(Protocol):
    def setBackendAndTarget(self, backend_id: int, target_id: int) -> None:
        """Run on this cv.dnn backend and target from the next call on."""


class PoseEstimator(DnnModel, Protocol):
    """openpose.OpenPose, blazepose.BlazePose."""

    def infer(self, image_bgr: np.ndarray) -> np.ndarray:
        """(18, 3) keypoints (x, y, confidence) in the image's pixels, in coco_parts.CocoPart order;
        a part not found has confidence 0."""

    def keypoints_and_mask(self, image_bgr: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """infer()'s keypoints and the person mask (float32 [0, 1], the image's size), or None for a
        network that has none (OpenPose)."""


class HumanParser(DnnModel, Protocol):
    """human_parsing.JppNet, mediapipe_parsing.MediaPipeParsing."""

    def infer(self, image_bgr: np.ndarray, size: Optional[Tuple[int, int]] = None,
              keypoints: Optional[np.ndarray] = None, person_mask: Optional[np.ndarray] = None) -> np.ndarray:
        """uint8 lip_labels.Lip labels at size = (width, height) (default: the image's). keypoints and
        person_mask: a PoseEstimator's keypoints_and_mask() of the same image, used by a parser that can
        (MediaPipeParsing runs no pose network of its own then); the others ignore them."""
