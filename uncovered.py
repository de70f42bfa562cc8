"""What the try-on paints where the old garment was and the new one does not lie: skin in the person's own
tone on the body, the photo's background off it.

Where the old garment covered the body and the new one does not (a long sleeve under a short-sleeved
garment, a high neckline under a low one), the photo has no skin to keep and the TOM paints it. Trained on
few people, it paints an average: a pale, almost white blur. Here those pixels take the colour of the
person's visible skin (face, arms and legs outside the repainted region: their median in CIE Lab), and keep
the TOM's shading as a variation around it, darkened towards the limb's outline as a rounded body is. Pixels
of the old garment off the body (a loose garment's folds, the band along its outer edge that a slightly
smaller new garment leaves) take the photo's surroundings (cv.inpaint), not skin and not the TOM's grey.

Applied to the TOM's 256x192 rendered person before the full-resolution paste (tryon_pipeline), never to the
new garment: only where the warped garment, as the TOM composes it, does not lie. (The TOM's coverage output
is wider: trained on VITON, where garments cover the torso, it covers the torso whatever the garment.)"""
import cv2 as cv
import numpy as np

from coco_parts import found_point
from lip_labels import Lip
import photo_kept

# LIP classes whose pixels are the person's bare skin
SKIN_LABELS = (Lip.FACE, Lip.LEFT_ARM, Lip.RIGHT_ARM, Lip.LEFT_LEG, Lip.RIGHT_LEG)
MIN_REFERENCE_PIXELS = 20  # fewer visible skin pixels than this: no reliable tone, the TOM's paint stays
SHADING_GAIN = 0.5         # share of the TOM's own lightness variation kept on the made skin
EDGE_DARKENING = 18.0      # Lab lightness taken off at a limb's outline, fading inwards
EDGE_WIDTH = 0.12          # of the shoulder width: how far from the outline the darkening reaches
NECK_THICKNESS = 0.25      # of the shoulder width: the neck, from the neck keypoint up to the chin
ARM_WIDENING = 4           # model pixels the arm capsules are widened by on each side
EDGE_SOFTNESS = 1.0        # model pixels: sigma of the Gaussian that softens the made skin's outline
GARMENT_LIKENESS = 25.0    # CIE Lab distance (8-bit scale) within which the TOM's paint is the garment's colour
GARMENT_COLOURS = 4          # k-means clusters of the warped garment's colours
MAIN_COLOUR_SHARE = 0.4      # a cluster holding this share of the garment is one of its main colours
MAIN_COLOUR_LIKENESS = 12.0  # CIE Lab distance to a main colour within which the paint is the garment
GARMENT_COLOUR_SIGMA = 4.0  # model pixels: the garment's local colour is its Gaussian-weighted mean
BACKGROUND_MARGIN = 0.05   # of the shoulder width: old-garment pixels this close to the background are background
INPAINT_RADIUS = 5         # model pixels cv.inpaint looks around


def garment_cover(tryon, warp_cover, coverage):
    """(H, W) bool: where the new garment lies. The warped garment as the TOM composes it (`warp_cover`), and
    beyond it the TOM's coverage (> 1/2) where the try-on (`tryon`, BGR uint8) there has the colour of the
    nearest warped-garment pixel (within GARMENT_LIKENESS): a garment the warp misses by a little, which the
    TOM paints on; or within MAIN_COLOUR_LIKENESS of one of the garment's main colours (k-means, a cluster of at
    least MAIN_COLOUR_SHARE): a plain garment the warp squeezed, which the TOM paints in its colour. Not its
    pale, torso-wide guess around a garment shorter or narrower than VITON's, whose paint matches neither."""
    if not warp_cover.any():
        return warp_cover
    lab = cv.cvtColor(tryon, cv.COLOR_BGR2Lab).astype(np.float32)
    # the garment's local colour (its print averaged: a Gaussian over its own pixels only) at each pixel's
    # nearest warped-garment pixel (labels number the zero pixels in raster order)
    weight = cv.GaussianBlur(warp_cover.astype(np.float32), (0, 0), GARMENT_COLOUR_SIGMA)
    local = cv.GaussianBlur(lab * warp_cover[..., None], (0, 0), GARMENT_COLOUR_SIGMA) / np.maximum(weight, 1e-6)[..., None]
    _, nearest = cv.distanceTransformWithLabels((~warp_cover).astype(np.uint8), cv.DIST_L2, 5,
                                                labelType=cv.DIST_LABEL_PIXEL)
    difference = np.linalg.norm(lab - local[warp_cover][nearest - 1], axis=2)
    # or any of the garment's main colours, closely (a plain garment the warp squeezed: its colour is that)
    pixels = lab[warp_cover]
    k = min(GARMENT_COLOURS, len(pixels))
    # started from lightness quantiles, not at random: the same garment always gives the same colours
    start = (np.argsort(np.argsort(pixels[:, 0], kind='stable')) * k // len(pixels)).astype(np.int32)[:, None]
    _, assigned, centres = cv.kmeans(pixels, k, start, (cv.TERM_CRITERIA_EPS + cv.TERM_CRITERIA_MAX_ITER, 20, 0.5),
                                     1, cv.KMEANS_USE_INITIAL_LABELS)
    shares = np.bincount(assigned.ravel(), minlength=k) / len(pixels)
    main = centres[shares >= MAIN_COLOUR_SHARE]
    if not len(main):  # a print of many colours, none the garment's own
        return warp_cover | ((coverage > 0.5) & (difference < GARMENT_LIKENESS))
    to_main = np.min(np.linalg.norm(lab[..., None, :] - main, axis=-1), axis=-1)
    return warp_cover | ((coverage > 0.5) & ((difference < GARMENT_LIKENESS) | (to_main < MAIN_COLOUR_LIKENESS)))


def reference_tone(person, labels, region):
    """Median CIE Lab (float32, OpenCV's 8-bit scale) of the person's visible skin: LIP face, arm and leg
    pixels outside the repainted region, one pixel in from their outline; None where fewer than
    MIN_REFERENCE_PIXELS."""
    skin = (np.isin(labels, SKIN_LABELS) & ~region).astype(np.uint8)
    skin = cv.erode(skin, np.ones((3, 3), np.uint8)) > 0
    if np.count_nonzero(skin) < MIN_REFERENCE_PIXELS:
        return None
    lab = cv.cvtColor(person, cv.COLOR_BGR2Lab)[skin].astype(np.float32)
    return np.median(lab, axis=0)


def body_zone(labels, keypoints, region, cover):
    """(H, W) bool: the pixels of the repainted region (bool) where skin must be made: those on the body (the
    arm capsules widened, the torso between neck, shoulders and hips, the neck up to the chin, not within
    BACKGROUND_MARGIN of the background) that the new garment (`cover`, bool) leaves bare."""
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 3)
    height, width = labels.shape
    span = photo_kept.shoulder_width(keypoints)
    # the arms wider than the hole's capsules: a sleeve's whole width is the arm under it
    body = cv.dilate(photo_kept.arm_capsules(keypoints, (height, width)).astype(np.uint8),
                     cv.getStructuringElement(cv.MORPH_ELLIPSE, (2 * ARM_WIDENING + 1,) * 2))
    pixel = lambda point: tuple(int(round(v)) for v in point)  # noqa: E731
    points = [p for p in (found_point(keypoints, n) for n in ('Neck', 'RShoulder', 'LShoulder', 'RHip', 'LHip'))
              if p is not None]
    if len(points) >= 3:
        cv.fillConvexPoly(body, cv.convexHull(np.round(np.array(points)).astype(np.int32)), 1)
    neck = found_point(keypoints, 'Neck')
    if neck is not None:
        cv.line(body, pixel(neck), (pixel(neck)[0], photo_kept.chin_row(labels, keypoints)), 1,
                max(int(round(NECK_THICKNESS * span)), 3))
        # the tops of the shoulders, neck to shoulder, as thick as the arms
        arm = max(int(round(photo_kept.ARM_THICKNESS * span)), 3) + 2 * ARM_WIDENING
        for shoulder in (found_point(keypoints, n) for n in ('RShoulder', 'LShoulder')):
            if shoulder is not None:
                cv.line(body, pixel(neck), pixel(shoulder), 1, arm)
    # the old garment's outer edge borders the background: there a smaller new garment shows background
    off_background = cv.distanceTransform((labels != Lip.BACKGROUND).astype(np.uint8), cv.DIST_L2, 3)
    return (body > 0) & region & ~cover & (off_background > max(BACKGROUND_MARGIN * span, 2.0))


def skin_weight(zone, region, cover):
    """(H, W) float32 in [0, 1]: 1 on body_zone, fading out over about 2 EDGE_SOFTNESS beyond it (upsampled
    several times over, a hard model-pixel outline shows as stairs), only in the region, never on the new
    garment."""
    soft = np.minimum(2 * cv.GaussianBlur(zone.astype(np.float32), (0, 0), EDGE_SOFTNESS), 1)
    return np.where(zone, np.float32(1), soft * (region & ~cover))


def paint(rendered, composition, person, labels, keypoints, region, cover):
    """The TOM's rendered person (BGR uint8, 256x192) and composition mask (float32) with what it makes
    outside the new garment replaced -> (rendered, composition). On body_zone, skin (Lab lightness = the
    reference's + SHADING_GAIN x the TOM's deviation from its own median there - EDGE_DARKENING towards the
    zone's outline; a and b the reference's; the TOM's paint kept where the person shows too little skin to
    measure), and no garment there (the composition mask lowered by skin_weight); elsewhere in the region and
    off the new garment, the person photo inpainted from outside the region. Unchanged on the new garment and
    outside the region."""
    labels = np.asarray(labels)
    result = rendered.copy()
    off_body = region & ~cover
    if off_body.any():
        surroundings = cv.inpaint(person, region.astype(np.uint8), INPAINT_RADIUS, cv.INPAINT_TELEA)
        result[off_body] = surroundings[off_body]
    zone = body_zone(labels, keypoints, region, cover)
    if not zone.any():
        return result, composition
    weight = skin_weight(zone, region, cover)
    composition = composition * (1 - weight)
    tone = reference_tone(person, labels, region)
    if tone is None:
        return result, composition
    lab = cv.cvtColor(rendered, cv.COLOR_BGR2Lab).astype(np.float32)
    lightness = lab[..., 0]
    deviation = lightness - np.median(lightness[zone])
    # distance to the zone's outline, in shoulder widths: 0 at the edge, 1 from EDGE_WIDTH inwards
    reach = max(EDGE_WIDTH * photo_kept.shoulder_width(np.asarray(keypoints, np.float32).reshape(-1, 3)), 1.0)
    inside = np.minimum(cv.distanceTransform(zone.astype(np.uint8), cv.DIST_L2, 3) / reach, 1.0)
    skin = np.empty_like(lab)
    skin[..., 0] = tone[0] + SHADING_GAIN * deviation - EDGE_DARKENING * (1 - inside) ** 2
    skin[..., 1], skin[..., 2] = tone[1], tone[2]
    made = cv.cvtColor(np.clip(np.round(skin), 0, 255).astype(np.uint8), cv.COLOR_Lab2BGR)
    weight = weight[..., None]
    return np.round(made * weight + result * (1 - weight)).astype(np.uint8), composition
