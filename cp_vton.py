"""CP-VTON (Wang et al., ECCV 2018): its preprocessing reproduced exactly, and CpVton, the GMM and TOM
networks on the cloth-agnostic person representation.

The body shape is blurred by Pillow's BILINEAR resize (pil_bilinear.py), the pose map is PIL's rectangle
drawing, the warp is PyTorch 0.4's grid_sample (bilinear, border padding, align_corners=True)."""
import concurrent.futures
import functools

import cv2 as cv
import numpy as np

import dnn_backends
import dnn_engines
import photo_kept
import pil_bilinear
import registry
import synthetic_models
from errors import ModelLoadError, UsageError
from garment_mask import cloth_mask
from gmm_rewrite import GMM_INPUTS, check_gmm, load_gmm, read_onnx_file
from lip_labels import Lip
from onnx_facts import is_synthetic, onnx_summary

GMM_FILE, TOM_FILE = 'cp_vton_gmm.onnx', 'cp_vton_tom.onnx'
# the GMM and TOM trained here on VITON (tools/train_cpvton.py), shipped in models/: the default when the
# published pair is not in the models directory
OWN_GMM_FILE, OWN_TOM_FILE = 'cp_vton_gmm_small.onnx', 'cp_vton_tom_small.onnx'
# CP-VTON's fine_height, fine_width: the input of both networks (models.yml)
HEIGHT, WIDTH = registry.model_input(GMM_FILE, 'height'), registry.model_input(GMM_FILE, 'width')
GRID_SIZE = 5
# LIP classes kept from the person photo in the agnostic "head" channels: Hat, Hair, Sunglasses, Face,
# and (as OpenCV's trained GMM/TOM expect) Pants and Skirt
KEPT_LABELS = (Lip.HAT, Lip.HAIR, Lip.SUNGLASSES, Lip.FACE, Lip.PANTS, Lip.SKIRT)
# CP-VTON's cloth-agnostic person representation: body shape (1), kept regions of the photo (3), pose (18);
# the GMM reads it, CP-VTON's TOM reads it with the warped cloth (3)
AGNOSTIC_CHANNELS = 22
CP_VTON_TOM_CHANNELS = AGNOSTIC_CHANNELS + 3


# ---------------------------------------------------------------------------- geometry
def crop_to_ratio(image, ratio=HEIGHT / WIDTH):
    """Centre crop to height / width = ratio. Returns (crop, (x, y, w, h)) with the box in `image`.

    The kept side is whole; the other is the integer closest to side * ratio (or / ratio), so that
    a 256x192 photo is returned untouched and no off-by-one creeps in."""
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise UsageError('empty image')
    if height > width * ratio:
        w, h = width, min(height, int(np.floor(width * ratio + 0.5)))
    else:
        w, h = min(width, int(np.floor(height / ratio + 0.5))), height
    if w < 1 or h < 1:
        raise UsageError('image of %dx%d is too small to crop to %.4g:1' % (width, height, ratio))
    x, y = (width - w) // 2, (height - h) // 2
    return image[y:y + h, x:x + w], (x, y, w, h)


def tps_basis(height, width, grid_size):
    """Matrix M (H*W, K) such that the TPS of CpVton's TpsGridGen maps control points Q (K,) to
    the warped x (or y) of every output pixel: x' = M @ Q. K = grid_size**2."""
    axis = np.linspace(-1.0, 1.0, grid_size)
    control_x = np.repeat(axis, grid_size)   # point k at x = axis[k // grid_size]
    control_y = np.tile(axis, grid_size)     # and y = axis[k % grid_size]
    n = grid_size * grid_size

    def kernel(d2):
        # U(r^2) = r^2 log r^2, with U(0) = 0
        return np.where(d2 == 0, 0.0, d2 * np.log(np.where(d2 == 0, 1.0, d2)))

    d2 = (control_x[:, None] - control_x[None]) ** 2 + (control_y[:, None] - control_y[None]) ** 2
    p = np.stack([np.ones(n), control_x, control_y], axis=1)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n], system[:n, n:], system[n:, :n] = kernel(d2), p, p.T
    system_inv = np.linalg.inv(system)[:, :n]  # only the columns that multiply Q (the rest see zeros)

    grid_x, grid_y = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    gx, gy = grid_x.reshape(-1, 1), grid_y.reshape(-1, 1)
    u = kernel((gx - control_x) ** 2 + (gy - control_y) ** 2)            # (H*W, K)
    affine = np.concatenate([np.ones_like(gx), gx, gy], axis=1)           # (H*W, 3)
    basis = u @ system_inv[:n] + affine @ system_inv[n:]
    return basis, np.stack([control_x, control_y])


@functools.lru_cache(maxsize=None)
def _tps_quadrant(height, width, grid_size):
    """The top-left quadrant of the TPS basis, stored (K, h, w), the control points, and the orders of
    the control points that give the other quadrants. The output grid and the control grid are both
    symmetric about x = 0 and about y = 0, and a TPS commutes with mirroring: at pixel (row, W-1-col)
    the grid is the quadrant's maths on the control points mirrored in x. A call then reads a quarter
    of the basis (1.2 MB at 256x192, against 4.9 MB: it no longer stays in the cache between calls)."""
    basis, control = tps_basis(height, width, grid_size)
    rows, cols = (height + 1) // 2, (width + 1) // 2
    quadrant = basis.reshape(height, width, -1)[:rows, :cols]
    k = np.arange(grid_size * grid_size)
    column, row = k // grid_size, k % grid_size       # point k at x = axis[k // n], y = axis[k % n]
    # a side of one pixel sits at -1, not on the axis of symmetry: no mirror there
    mirror_x = (grid_size - 1 - column) * grid_size + row if width > 1 else k
    mirror_y = column * grid_size + (grid_size - 1 - row) if height > 1 else k
    orders = np.stack([k, mirror_x, mirror_y, mirror_x[mirror_y]])
    return (np.ascontiguousarray(quadrant.transpose(2, 0, 1), np.float32),
            control.astype(np.float32), orders)


def tps_grid(theta, height=HEIGHT, width=WIDTH, grid_size=GRID_SIZE):
    """CP-VTON's TpsGridGen: theta (N, 2*K) -> sampling grid (N, H, W, 2) of (x, y) in [-1, 1].

    theta[:, :K] offsets the x of the control points, theta[:, K:] their y. The grid is linear in
    theta, so the basis is computed once per size and a call is a single matrix product: one quadrant
    of the basis times the control points in four mirrored orders, each result mirrored into place."""
    quadrant, control, orders = _tps_quadrant(height, width, grid_size)
    count, rows, cols = quadrant.shape
    theta = np.asarray(theta, np.float32).reshape(-1, 2, count)
    points = theta + control                                  # (N, 2, K)
    n = len(points)
    # (K, 4 * N * 2) in column order: einsum's loop then runs down contiguous columns (20x faster
    # than the row-ordered copy); without optimize, einsum stays on the calling thread: a thread pool
    # (BLAS's or cv.gemm's) only adds a wait for its threads, milliseconds when the cores are busy
    mirrored = np.asfortranarray(points[:, :, orders].transpose(3, 2, 0, 1).reshape(count, -1))
    planes = np.einsum('kp,kq->pq', quadrant.reshape(count, -1), mirrored, optimize=False).T  # rows contiguous
    planes = planes.reshape(4, n, 2, rows, cols)
    grid = np.empty((n, height, width, 2), np.float32)
    pairs = grid.view(np.complex64)[..., 0]  # an (x, y) pair as one 8-byte item: mirrored copies move pairs
    # each order's quadrant is the top-left corner of the grid seen mirrored the same way
    for part, view in enumerate((pairs, pairs[:, :, ::-1], pairs[:, ::-1], pairs[:, ::-1, ::-1])):
        for b in range(n):
            view[b, :rows, :cols] = cv.merge(list(planes[part, b])).view(np.complex64)[..., 0]
    return grid


def grid_sample(image, grid):
    """torch.nn.functional.grid_sample(image, grid, mode='bilinear', padding_mode='border',
    align_corners=True), the behaviour of the PyTorch 0.4 that CP-VTON was trained with, in float32
    as PyTorch computes it.

    image (N, C, H, W) float32, grid (N, Ho, Wo, 2) of (x, y) in [-1, 1] -> (N, C, Ho, Wo); sides below
    32767 pixels (cv.remap's limit)."""
    image = np.asarray(image, np.float32)
    n, c, h, w = image.shape
    grid = np.asarray(grid, np.float32)
    out_h, out_w = grid.shape[1:3]
    out = np.empty((n, c, out_h, out_w), np.float32)
    for b in range(n):  # batch loop only; everything per pixel is vectorised
        # align_corners=True: -1 and 1 are the centres of the corner pixels; border padding: clamp
        x = np.clip((grid[b, ..., 0] + np.float32(1)) * np.float32(0.5 * (w - 1)), 0, w - 1)
        y = np.clip((grid[b, ..., 1] + np.float32(1)) * np.float32(0.5 * (h - 1)), 0, h - 1)
        # the left/top neighbour, kept one short of the last pixel so the right/bottom one exists
        # (at the last pixel its weight is then exactly 1; a 1-pixel side reads its pixel twice)
        x0 = np.minimum(np.floor(x), np.float32(max(w - 2, 0)))
        y0 = np.minimum(np.floor(y), np.float32(max(h - 2, 0)))
        fx, fy = x - x0, y - y0
        x1, y1 = np.minimum(x0 + 1, np.float32(w - 1)), np.minimum(y0 + 1, np.float32(h - 1))
        for first in range(0, c, 4):  # cv.remap gathers up to 4 interleaved channels at once
            planes = list(image[b, first:first + 4])
            pixels, wx, wy = cv.merge(planes), cv.merge([fx] * len(planes)), cv.merge([fy] * len(planes))
            corner = lambda mx, my: cv.remap(pixels, mx, my, cv.INTER_NEAREST)  # noqa: E731 (integer maps)
            left, right = corner(x0, y0), corner(x1, y0)
            top = cv.add(left, cv.multiply(cv.subtract(right, left), wx))
            left, right = corner(x0, y1), corner(x1, y1)
            bottom = cv.add(left, cv.multiply(cv.subtract(right, left), wx))
            result = cv.add(top, cv.multiply(cv.subtract(bottom, top), wy))
            out[b, first:first + len(planes)] = np.moveaxis(result.reshape(out_h, out_w, -1), 2, 0)
    return out


def pose_map(keypoints, height=HEIGHT, width=WIDTH, radius=5, out=None):
    """CP-VTON's pose channels: keypoints (18, 3) of (x, y, confidence) in pixels -> (18, H, W) float32,
    +1 on the square [int(x - r), int(x + r)] x [int(y - r), int(y + r)] (PIL's rectangle: truncated,
    inclusive, clipped), -1 elsewhere. A missing point (confidence 0, or x <= 1 or y <= 1) stays -1.
    out: a (18, H, W) float32 array to draw into (the agnostic's pose channels), returned."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 3)
    maps = np.empty((len(keypoints), height, width), np.float32) if out is None else out
    maps.fill(-1)
    found = (keypoints[:, 2] > 0) & (keypoints[:, 0] > 1) & (keypoints[:, 1] > 1)
    lo = np.trunc(keypoints[:, :2] - radius).astype(np.int64)
    hi = np.trunc(keypoints[:, :2] + radius).astype(np.int64)
    x0, y0 = np.maximum(lo[:, 0], 0), np.maximum(lo[:, 1], 0)
    x1, y1 = np.minimum(hi[:, 0], width - 1), np.minimum(hi[:, 1], height - 1)
    for k in np.flatnonzero(found & (x0 <= x1) & (y0 <= y1)):  # one slice per keypoint
        maps[k, y0[k]:y1[k] + 1, x0[k]:x1[k] + 1] = 1.0
    return maps


# ToTensor + Normalize(0.5, 0.5) of each 8-bit value, computed once in the same float32 steps
_UNIT_RANGE = (np.arange(256, dtype=np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)


def to_unit_range(image_bgr, out=None):
    """BGR uint8 (H, W, 3) -> RGB float32 (3, H, W) in [-1, 1], as ToTensor + Normalize(0.5, 0.5)."""
    return np.take(_UNIT_RANGE, image_bgr[..., ::-1].transpose(2, 0, 1), out=out)


def _exp(x):
    """e**x of a float32 array with cv.exp (vectorised; within 4e-7 relative of np.exp, at a fifth of its time)."""
    x = np.ascontiguousarray(x, np.float32)
    return cv.exp(x.reshape(-1, x.shape[-1] if x.ndim else 1)).reshape(x.shape)


def tanh(x):
    """tanh of a float32 array, as 1 - 2 / (e**2x + 1): within 2e-7 of np.tanh, three times faster."""
    return np.float32(1) - np.float32(2) / (_exp(np.multiply(x, np.float32(2), dtype=np.float32)) + np.float32(1))


def sigmoid(x):
    """1 / (1 + e**-x) of a float32 array (TOM's composition mask)."""
    return np.float32(1) / (np.float32(1) + _exp(np.negative(x, dtype=np.float32)))


def blend(warped, rendered, mask):
    """CP-VTON's composition: warped (3, H, W) * mask (H, W) + rendered (3, H, W) * (1 - mask)."""
    return warped * mask + rendered * (np.float32(1) - mask)


def to_image(tensor_rgb):
    """(3, H, W) in [-1, 1] -> BGR uint8, as CP-VTON saves results: (x + 1) / 2 * 255, clamped, truncated."""
    scaled = np.clip((tensor_rgb + 1) * 0.5 * 255, 0, 255).astype(np.uint8)
    return cv.merge([scaled[2], scaled[1], scaled[0]])


def resize_to_model(image, interpolation=None):
    """Resize a BGR image to 192x256 (area when shrinking, linear when enlarging); no-op at that size."""
    if image.shape[:2] == (HEIGHT, WIDTH):
        return image
    if interpolation is None:
        interpolation = cv.INTER_AREA if image.shape[0] > HEIGHT else cv.INTER_LINEAR
    return cv.resize(image, (WIDTH, HEIGHT), interpolation=interpolation)


def cloth_agnostic(labels, person, pose, head_lut):
    """CP-VTON's cloth-agnostic person representation, as the GMM and TOM see it in training and in use.

    labels (256, 192) LIP classes, person BGR uint8 256x192, pose: the (18, 256, 192) maps of pose_map, or the
    (18, 3) keypoints in the model frame to draw them from; head_lut: (256,) bool, True for the labels kept
    from the photo -> (1, 22, 256, 192) float32: blurred body shape, kept regions of the person, pose."""
    labels = np.asarray(labels)
    if labels.shape != (HEIGHT, WIDTH) or person.shape[:2] != (HEIGHT, WIDTH):
        raise ValueError('labels and person must be %dx%d' % (WIDTH, HEIGHT))
    agnostic = np.empty((1, AGNOSTIC_CHANNELS, HEIGHT, WIDTH), np.float32)
    shape = np.where(labels > 0, np.uint8(255), np.uint8(0))
    shape = pil_bilinear.resize(pil_bilinear.resize(shape, (WIDTH // 16, HEIGHT // 16)), (WIDTH, HEIGHT))
    np.take(_UNIT_RANGE, shape, out=agnostic[0, 0])  # the (v / 255 - 0.5) / 0.5 of every 8-bit v
    head = agnostic[0, 1:4]
    to_unit_range(person, out=head)
    np.copyto(head, np.float32(-1), where=~head_lut[labels.astype(np.uint8)])
    pose = np.asarray(pose)
    if pose.shape[-1] == 3 and pose.ndim == 2:
        pose_map(pose, out=agnostic[0, 4:])
    else:
        agnostic[0, 4:] = pose
    return agnostic


def head_lookup(kept_labels=KEPT_LABELS):
    """(256,) bool lookup table of the LIP labels the agnostic keeps from the photo."""
    lut = np.zeros(256, bool)
    lut[np.asarray(kept_labels)] = True
    return lut


def cloth_with_mask(cloth):
    """(1, 4, 256, 192) float32: the garment photo (BGR, any size) at the model's size in [-1, 1] RGB, and its
    mask (garment_mask.cloth_mask), to be warped together (grid_sample gathers 4 channels at once)."""
    model_cloth = resize_to_model(cloth)
    return np.concatenate([to_unit_range(model_cloth)[None], cloth_mask(model_cloth).astype(np.float32)[None, None]],
                          axis=1)


# ---------------------------------------------------------------------------- the try-on networks
class CpVton:
    """GMM + TOM of CP-VTON, on the cloth-agnostic person representation.

    gmm_path, tom_path: the published cp_vton_gmm.onnx / cp_vton_tom.onnx (or the synthetic stand-ins), or our
    own pair. The TOM's metadata names its person representation (photo_kept.REPRESENTATION_KEY): CP-VTON's
    (25 -> 4 channels, the published pair's, also when the key is absent) or photo-kept (30 -> 5, ours:
    photo_kept.py). prepare_person() builds what the TOM takes; compose() composes its output."""

    def __init__(self, gmm_path, tom_path, backend_id=cv.dnn.DNN_BACKEND_OPENCV, target_id=cv.dnn.DNN_TARGET_CPU,
                 kept_labels=KEPT_LABELS):
        self.gmm_path, self.tom_path = gmm_path, tom_path
        self.kept_labels = np.asarray(kept_labels)
        self._load(dnn_engines.dnn_engine(backend_id, target_id))
        self.setBackendAndTarget(backend_id, target_id)
        self.head_lut = head_lookup(self.kept_labels)

    def _load(self, engine):
        check_gmm(self.gmm_path)  # a missing, damaged or wrong GMM is reported before the TOM is read
        tom_inputs, tom_metadata = onnx_summary(self.tom_path, 'TOM')
        self.representation = tom_metadata.get(photo_kept.REPRESENTATION_KEY, photo_kept.CP_VTON)
        channels = {photo_kept.CP_VTON: CP_VTON_TOM_CHANNELS,
                    photo_kept.PHOTO_KEPT: photo_kept.TOM_CHANNELS}.get(self.representation)
        if channels is None:
            raise ModelLoadError('TOM model %s uses the person representation %r; this version knows %s and %s'
                                 % (self.tom_path, self.representation, photo_kept.CP_VTON, photo_kept.PHOTO_KEPT))
        if len(tom_inputs) != 1 or list(tom_inputs.values())[0][1:2] not in ([channels], [0]):
            raise ModelLoadError('TOM model %s has inputs %s; expected one input of %d channels'
                                 % (self.tom_path, tom_inputs, channels))
        self.tom_input = next(iter(tom_inputs))
        # a published-format TOM may fix its batch at 1; ours leaves it free (render_many batches it)
        self.tom_batch_free = list(tom_inputs.values())[0][:1] != [1]
        # the TOM is read while the GMM is (cv.dnn's readers release the GIL): a load costs the longer read,
        # not the sum; a GMM error is still the one reported
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            tom = pool.submit(read_onnx_file, self.tom_path, engine, 'TOM')
            self.gmm, gmm_synthetic, self.gmm_tanh_pending = load_gmm(self.gmm_path, engine, tanh_in_numpy=True)
            self.tom = tom.result()
        tom_synthetic = is_synthetic(tom_metadata)
        self.synthetic = gmm_synthetic or tom_synthetic
        if gmm_synthetic:
            synthetic_models.warn_synthetic(self.gmm_path, 'cloth warp')
        if tom_synthetic:
            synthetic_models.warn_synthetic(self.tom_path, 'try-on')
        self.engine = engine

    def setBackendAndTarget(self, backend_id, target_id):
        engine = dnn_engines.dnn_engine(backend_id, target_id)
        if engine != self.engine:
            self._load(engine)  # OpenCV 5: a non-CPU backend or target needs the classic engine
        self.backend_id, self.target_id = backend_id, target_id
        for net in (self.gmm, self.tom):
            dnn_backends.set_backend_target(net, backend_id, target_id, engine)

    def prepare_agnostic(self, labels, person, pose):
        """cloth_agnostic with this model's kept labels: (1, 22, 256, 192) float32."""
        return cloth_agnostic(labels, person, pose, self.head_lut)

    def prepare_person(self, labels, person, keypoints):
        """What the TOM takes of a person: CP-VTON's agnostic (1, 22, 256, 192), or for a photo-kept TOM the
        person tensor (1, 26, 256, 192) of photo_kept.person_tensor. keypoints (18, 3) in the model frame.
        The GMM reads the first 22 channels of either."""
        agnostic = self.prepare_agnostic(labels, person, keypoints)
        if self.representation != photo_kept.PHOTO_KEPT:
            return agnostic
        return photo_kept.person_tensor(agnostic, to_unit_range(person), photo_kept.hole(labels, keypoints))

    def predict_theta(self, cloth_tensor, agnostic):
        self.gmm.setInput(np.ascontiguousarray(agnostic[:, :AGNOSTIC_CHANNELS]), GMM_INPUTS[0])
        self.gmm.setInput(cloth_tensor, GMM_INPUTS[1])
        theta = self.gmm.forward().reshape(1, -1)
        return np.tanh(theta) if self.gmm_tanh_pending else theta

    def warp_cloth(self, cloth, agnostic):
        """cloth BGR uint8 -> warped cloth (1, 3, 256, 192) in [-1, 1] RGB, by the GMM's TPS (tom_input_of's)."""
        return self.tom_input_of(agnostic, cloth)[1]

    def try_on(self, agnostic, warped):
        """CP-VTON's TOM on concat(agnostic, warped) -> BGR uint8 256x192 result."""
        return self.compose(self.tom_forward(np.concatenate([agnostic, warped], axis=1)), warped)

    @staticmethod
    def compose(tom_output, warped, person=None, labels=None, person_input=None):
        """rendered = tanh, mask = sigmoid; result = warped * mask + rendered * (1 - mask), as BGR uint8.
        A photo-kept TOM's output (5 channels) needs the person (BGR 256x192), its labels and the person
        tensor (its hole): the result takes the try-on only where photo_kept.paint_mask says, the photo
        elsewhere."""
        result = to_image(blend(warped[0], tanh(tom_output[0, :3]), sigmoid(tom_output[0, 3])))
        if tom_output.shape[1] == 4:
            return result
        if person is None or labels is None or person_input is None:
            raise UsageError('a photo-kept TOM result needs the person, its labels and its person tensor')
        paint = photo_kept.paint_mask(labels, person_input[0, 25] > 0.5, sigmoid(tom_output[0, 4]))
        return np.where(paint[..., None], result, person)

    def infer(self, labels, person, keypoints, cloth):
        """The 256x192 try-on of a 256x192 person (BGR), its labels and keypoints (18, 3), with cloth BGR."""
        person_input = self.prepare_person(labels, person, keypoints)
        _, warped, tom_output = self.render(person_input, cloth)
        return self.compose(tom_output, warped, person, labels, person_input)

    def render(self, agnostic, cloth):
        """GMM and TOM for one garment, keeping what full-resolution compositing needs. cloth BGR uint8 of any
        size -> (grid (1, 256, 192, 2), warped (1, 3, 256, 192), TOM's raw output (1, 4, 256, 192));
        compose(tom_output, warped) is the 256x192 result of try_on(agnostic, warp_cloth(cloth, agnostic))."""
        return self.render_many([agnostic], [cloth])[0]

    def tom_input_of(self, agnostic, cloth):
        """The GMM's grid for one person and garment, the warped cloth (1, 3, 256, 192) and the TOM's input:
        concat(agnostic, warped) for CP-VTON's TOM, concat(person tensor, warped, warped cloth mask) for a
        photo-kept one (the cloth and its mask warped together: grid_sample gathers 4 channels at once)."""
        cloth_tensor = to_unit_range(resize_to_model(cloth))[None]
        grid = tps_grid(self.predict_theta(cloth_tensor, agnostic))
        if self.representation == photo_kept.PHOTO_KEPT:
            warped4 = grid_sample(cloth_with_mask(cloth), grid)
            return grid, warped4[:, :3], np.concatenate([agnostic, warped4], axis=1)
        warped = grid_sample(cloth_tensor, grid)
        return grid, warped, np.concatenate([agnostic, warped], axis=1)

    def tom_forward(self, inputs, batch=1):
        """The TOM's raw output (N, 4 or 5, 256, 192) of its inputs (N, C, 256, 192), forwarding up to `batch` of
        them at once where its batch dimension is free."""
        step = max(1, int(batch)) if self.tom_batch_free else 1
        outputs = []
        for start in range(0, len(inputs), step):
            self.tom.setInput(inputs[start:start + step], self.tom_input)
            outputs.append(self.tom.forward())
        return np.concatenate(outputs)

    def render_many(self, agnostics, clothes, batch=1):
        """render() of several (agnostic, cloth) pairs -> a list of (grid, warped, tom_output), the TOM
        forwarding up to `batch` pairs at once where its batch dimension is free. Each result equals
        render() of its pair alone, to the bit: the GMM still runs one pair at a time, because in a batch
        OpenCV 5's graph engine gives another theta (2e-7 off, a few pixels of a result; the first tensor
        to differ is the channel sum of its L2 norm), and the TOM's batched forward is checked equal by
        tests/test_batches.py."""
        if len(agnostics) != len(clothes):
            raise UsageError('%d agnostic representations for %d garments' % (len(agnostics), len(clothes)))
        prepared = [self.tom_input_of(agnostic, cloth) for agnostic, cloth in zip(agnostics, clothes)]
        grids, warped = [p[0] for p in prepared], [p[1] for p in prepared]
        tom_output = self.tom_forward(np.concatenate([p[2] for p in prepared]), batch)
        return [(grid, one_warped, tom_output[i:i + 1]) for i, (grid, one_warped) in enumerate(zip(grids, warped))]
