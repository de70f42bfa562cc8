"""The whole try-on of one person photo: centre crop, pose, parsing, agnostic, GMM warp, TOM, and the
full-resolution composite; PersonAnalysis keeps what one person needs for every garment."""
import dataclasses
import logging
import os
from typing import Optional

import cv2 as cv
import numpy as np

import framing
import human_parsing
import openpose
import photo_kept
import registry
import uncovered
import synthetic_models
from coco_parts import PART_INDEX
from cp_vton import (GMM_FILE, HEIGHT, OWN_GMM_FILE, OWN_TOM_FILE, TOM_FILE, WIDTH, CpVton, crop_to_ratio,
                     blend, cloth_with_mask, grid_sample, resize_to_model, sigmoid, tanh, to_image)
from errors import RuntimeFailure
from full_resolution import FEATHER, compose_full_resolution, edit_region, kept_edit_region
from garment_check import check_garment
from model_roles import HumanParser, PoseEstimator

log = logging.getLogger(__name__)

ANALYSIS_HEIGHT = 512  # the person crop is shrunk to at most this height for pose and parsing


def has_torso(keypoints):
    """A person needs the neck and a shoulder for the try-on to know where the garment goes; the hips may be
    out of frame (a waist-up or chest-up photo)."""
    found = np.asarray(keypoints)[:, 2] > 0
    return bool(found[PART_INDEX['Neck']] and (found[PART_INDEX['RShoulder']] or found[PART_INDEX['LShoulder']]))


def _analysis_image(crop):
    """The crop at a bounded size for the pose and parsing networks: a 40 MP photo costs no more than a small one."""
    if crop.shape[0] <= ANALYSIS_HEIGHT:
        return crop
    return cv.resize(crop, (max(1, round(crop.shape[1] * ANALYSIS_HEIGHT / crop.shape[0])), ANALYSIS_HEIGHT),
                     interpolation=cv.INTER_AREA)


def keypoints_to_model(keypoints, box):
    """Keypoints in the original photo's pixels -> the 192x256 model frame of the crop `box`."""
    x, y, w, h = box
    result = np.array(keypoints, np.float32).reshape(-1, 3)
    found = result[:, 2] > 0
    result[:, 0] = np.where(found, (result[:, 0] - x) * (WIDTH / w), 0)
    result[:, 1] = np.where(found, (result[:, 1] - y) * (HEIGHT / h), 0)
    return result


def labels_to_model(labels, box, photo_shape):
    """LIP labels of the whole photo (at the photo's size, or any size with the same framing) -> the
    256x192 model frame of the crop `box`, nearest neighbour (labels are classes, not intensities)."""
    x, y, w, h = box
    scale_y, scale_x = labels.shape[0] / photo_shape[0], labels.shape[1] / photo_shape[1]
    top, left = int(round(y * scale_y)), int(round(x * scale_x))
    bottom = max(top + 1, int(round((y + h) * scale_y)))
    right = max(left + 1, int(round((x + w) * scale_x)))
    return cv.resize(np.ascontiguousarray(labels[top:bottom, left:right]), (WIDTH, HEIGHT),
                     interpolation=cv.INTER_NEAREST)


class PersonAnalysis:
    """What the try-on needs of one person photo, computed once and reused for every garment.

    photo: the photo as given (BGR uint8); box: its 256:192 centre crop (x, y, w, h); person: that crop at
    256x192; labels: (256, 192) LIP classes; keypoints: (18, 3) in the 256x192 frame; agnostic:
    CP-VTON's cloth-agnostic representation (1, 22, 256, 192)."""

    def __init__(self, photo, box, person, labels, keypoints, agnostic):
        self.photo, self.box, self.person = photo, box, person
        self.labels, self.keypoints, self.agnostic = labels, keypoints, agnostic


class VirtualTryOn:
    """The whole chain: crop -> pose -> parsing -> agnostic -> GMM warp -> TOM -> composite.

    pose: a model_roles.PoseEstimator (openpose.OpenPose, blazepose.BlazePose); parsing: a
    model_roles.HumanParser (human_parsing.JppNet, mediapipe_parsing.MediaPipeParsing). Either may be None
    when the caller passes keypoints / labels.

    For many garments on one person, analyse() once and pass the analysis to infer():
        analysis = tryon.analyse(person)
        results = [tryon.infer(analysis, cloth) for cloth in clothes]"""

    def __init__(self, cp_vton, pose: Optional[PoseEstimator] = None, parsing: Optional[HumanParser] = None):
        self.cp_vton, self.pose, self.parsing = cp_vton, pose, parsing

    def setBackendAndTarget(self, backend_id, target_id):
        for model in (self.cp_vton, self.pose, self.parsing):
            if model is not None:
                model.setBackendAndTarget(backend_id, target_id)

    def parse_at_model_size(self, image, keypoints=None, person_mask=None):
        """The parser's 256x192 labels of an image, from its scores resized to that size. keypoints,
        person_mask: the pose step's evidence, used by a parser that can (MediaPipeParsing: no pose run of
        its own); every parser takes infer(image, size=, keypoints=, person_mask=)."""
        return self.parsing.infer(image, size=(WIDTH, HEIGHT), keypoints=keypoints, person_mask=person_mask)

    def analyse(self, person, keypoints=None, labels=None):
        """person BGR uint8 of any size; keypoints (18, 3) and labels (H, W) of the whole person photo,
        estimated when None. Returns the PersonAnalysis: pose, parsing and agnostic, once per person."""
        crop, box = crop_to_ratio(person)
        analysis = _analysis_image(crop)
        photo_keypoints = person_mask = None
        if keypoints is None:
            photo_keypoints, person_mask = self.pose.keypoints_and_mask(analysis)
            if labels is None:
                # VITON's framing around the person (framing.py) where the centre crop frames them otherwise:
                # a full-length photo, a small person, a waist-up crop; the pose and parsing run again there
                scale = box[2] / analysis.shape[1]
                in_photo = np.array(photo_keypoints, np.float64).reshape(-1, 3)
                in_photo[:, :2] = in_photo[:, :2] * scale + (box[0], box[1])
                framed = framing.person_box(in_photo, (WIDTH, HEIGHT))
                if framed is not None and framing.differs(framed, box):
                    box = framing.integer_box(framed)
                    crop = framing.crop_padded(person, box)
                    analysis = _analysis_image(crop)
                    photo_keypoints, person_mask = self.pose.keypoints_and_mask(analysis)
            keypoints = keypoints_to_model(photo_keypoints, (0, 0, analysis.shape[1], analysis.shape[0]))
        else:
            keypoints = keypoints_to_model(keypoints, box)
        if not has_torso(keypoints):
            raise RuntimeFailure('no person found: pose found no neck and shoulders in the photo')
        if labels is None:
            # the pose's keypoints go with its mask only: a parser given keypoints alone would pair them
            # with a mask of its own pose network
            labels = self.parse_at_model_size(analysis, *((photo_keypoints, person_mask)
                                                          if person_mask is not None else ()))
        else:
            labels = labels_to_model(labels, box, person.shape)
        model_person = resize_to_model(crop)
        agnostic = self.cp_vton.prepare_person(labels, model_person, keypoints)
        return PersonAnalysis(person, box, model_person, labels, keypoints, agnostic)

    def render(self, analysis, cloth):
        """GMM + TOM of one garment on an analysed person: (grid, warped, tom_output), see CpVton.render.
        A garment photo in which no garment stands out from the background is a RuntimeFailure."""
        check_garment(cloth)
        return self.cp_vton.render(analysis.agnostic, cloth)

    def infer(self, person, cloth, keypoints=None, labels=None, full_resolution=True):
        """person: a PersonAnalysis from analyse(), or a BGR photo (analysed here, with keypoints / labels
        as in analyse()); cloth BGR uint8 of any size. Returns the photo at its own size with the garment
        on, or with full_resolution=False CP-VTON's 256x192 result of the photo's centre crop."""
        analysis = person if isinstance(person, PersonAnalysis) else self.analyse(person, keypoints, labels)
        grid, warped, tom_output = self.render(analysis, cloth)
        if not full_resolution:
            return CpVton.compose(tom_output, warped, analysis.person, analysis.labels, analysis.agnostic)
        return self.composite(analysis, cloth, grid, tom_output)

    @staticmethod
    def composite(analysis, cloth, grid, tom_output, feather=FEATHER):
        """The full-resolution result from one garment's GMM grid and TOM output (compose_full_resolution)."""
        if tom_output.shape[1] == 5:  # a photo-kept TOM: its hole and the new garment's coverage
            # the photo changes where the old garment was or the new one lies (uncovered.garment_cover: not
            # where the TOM's coverage, wider, guesses a garment of another colour); what is made where the
            # old garment was and the new one is not: the person's skin, the photo's background
            hole, composition = analysis.agnostic[0, 25] > 0.5, sigmoid(tom_output[0, 3])
            person_paint = tanh(tom_output[0, :3])
            warped = grid_sample(cloth_with_mask(cloth), grid)[0]
            tryon = to_image(blend(warped[:3], person_paint, composition))  # CpVton.compose's 256x192 try-on
            cover = uncovered.garment_cover(tryon, warped[3] * composition > 0.5, sigmoid(tom_output[0, 4]))
            region = kept_edit_region(analysis.labels, hole, cover, analysis.keypoints)
            rendered, composition = uncovered.paint(to_image(person_paint), composition, analysis.person,
                                                    analysis.labels, analysis.keypoints, region, cover)
            return compose_in_box(analysis, cloth, grid, tom_output, region, feather, rendered=rendered,
                                  composition=composition)
        composition = sigmoid(tom_output[0, 3])
        warped_mask = grid_sample(cloth_with_mask(cloth)[:, 3:], grid)[0, 0]
        region = edit_region(analysis.labels, warped_mask, composition, analysis.keypoints)
        return compose_in_box(analysis, cloth, grid, tom_output, region, feather, clip_chin=False)


def _synthetic_dir():
    return os.path.join(registry.models_dir(), 'synthetic')


def default_models(directory=None):
    """(GMM path, TOM path) when none is given: the published pair when both files are in the models
    directory (checked against models.yml), else the pair trained here on VITON and shipped in the
    package's models/ (OWN_GMM_FILE, OWN_TOM_FILE). The two always come as a pair: a TOM is trained on
    its own GMM's warps."""
    directory = directory or registry.models_dir()
    if all(os.path.isfile(os.path.join(directory, name)) for name in (GMM_FILE, TOM_FILE)):
        return tuple(registry.find_model(name, directory) for name in (GMM_FILE, TOM_FILE))
    shipped = os.path.join(registry.REPO_DIR, 'models')
    found = [directory if os.path.isfile(os.path.join(directory, name)) else shipped
             for name in (OWN_GMM_FILE, OWN_TOM_FILE)]
    log.debug('published %s + %s not both in %s: using %s + %s', GMM_FILE, TOM_FILE, directory,
              OWN_GMM_FILE, OWN_TOM_FILE)
    return tuple(registry.find_model(name, where) for name, where in zip((OWN_GMM_FILE, OWN_TOM_FILE), found))


@dataclasses.dataclass(frozen=True)
class TryOnModels:
    """The model files of a try-on; None: the default. gmm and tom come as a pair (default_models());
    pose_model: OpenPose .onnx/.caffemodel (pose_config: its .prototxt) or BlazePose .tflite, default
    OpenPose if present, else BlazePose; parsing_model: JPPNet, default the file if present, else
    MediaPipe's models; synthetic: the seeded random GMM and TOM (built on first use), NOT a try-on."""
    gmm: Optional[str] = None
    tom: Optional[str] = None
    pose_model: Optional[str] = None
    pose_config: Optional[str] = None
    parsing_model: Optional[str] = None
    synthetic: bool = False


def load_tryon(models=TryOnModels(), backend_id=cv.dnn.DNN_BACKEND_DEFAULT, target_id=cv.dnn.DNN_TARGET_CPU, *,
               need_pose=True, need_parsing=True):
    """The VirtualTryOn of `models` (a TryOnModels: files given, --synthetic, or default_models()); pose and
    parsing only when the caller has no keypoints / labels (need_pose, need_parsing)."""
    if models.synthetic:
        model_dir = _synthetic_dir()
        # a program of its own: the runtime imports no tooling
        synthetic_models.run_tool('synthetic.py', [model_dir, '--no-openpose'],
                                  'cannot write the synthetic models to %s' % model_dir)
        # the synthetic files share the published names, not their bytes
        defaults = tuple(registry.find_model(name, model_dir, verify=False) for name in (GMM_FILE, TOM_FILE))
    else:
        defaults = (None, None) if models.gmm and models.tom else default_models()
    with synthetic_models.SyntheticWarnings('try-on'):  # one warning naming every synthetic model
        cp_vton = CpVton(models.gmm or defaults[0], models.tom or defaults[1], backend_id, target_id)
        pose = parsing = None
        if need_pose:
            pose = openpose.create_pose_estimator(models.pose_model, backend_id=backend_id, target_id=target_id,
                                                  config=models.pose_config)
        if need_parsing:
            # JPPNet when its file is there, else MediaPipe's models (real, from the wheel), also with --synthetic
            parsing = human_parsing.create_parser(models.parsing_model, backend_id, target_id, pose=pose)
    return VirtualTryOn(cp_vton, pose, parsing)


def compose_in_box(analysis, cloth, grid, tom_output, region, feather=FEATHER, clip_chin=True, **overrides):
    """compose_full_resolution where the person's box may reach outside the photo (framing.py): the photo is
    padded to hold it and cropped back; no pixel above the chin changes, soft edge included."""
    photo, (x, y, w, h) = analysis.photo, analysis.box
    height, width = photo.shape[:2]
    top, bottom, left, right = max(-y, 0), max(y + h - height, 0), max(-x, 0), max(x + w - width, 0)
    if top or bottom or left or right:
        photo = cv.copyMakeBorder(photo, top, bottom, left, right, cv.BORDER_REPLICATE)
    result = compose_full_resolution(photo, (x + left, y + top, w, h), cloth, grid, tom_output, region, feather,
                                     **overrides)
    result = result[top:top + height, left:left + width]
    chin = y + int(np.floor(photo_kept.chin_row(analysis.labels, analysis.keypoints) * h / HEIGHT))
    if clip_chin and chin > 0:
        result[:chin] = analysis.photo[:chin]
    return result
