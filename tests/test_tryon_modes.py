"""The three uses of virtual_try_on.py (issue 11): full resolution, many garments per person, CP-VTON's
dataset mode. References are independent of the code under test: a copy of the 256x192 chain as it was
before full resolution existed, a float64 TPS solved here with scipy's map_coordinates for the sampling,
the photo's own pixels, and the single-pair command for the dataset mode."""
import io
import os
import subprocess
import sys

import cv2 as cv
import numpy as np
import pytest
from scipy import ndimage

import blazepose
import human_parsing
import openpose
from cp_vton import CpVton, crop_to_ratio, grid_sample, pose_map, resize_to_model, to_image, to_unit_range
from full_resolution import FEATHER, edit_region
from garment_mask import cloth_mask
from progress import Progress
from tryon_pipeline import VirtualTryOn, keypoints_to_model, labels_to_model
from conftest import REPO_DIR, SHARED_DATA

pytestmark = pytest.mark.filterwarnings('ignore::synthetic_models.SyntheticModelWarning')  # seeded models, on purpose
SCRIPT = os.path.join(REPO_DIR, 'virtual_try_on.py')
TEST_DIR = os.path.join(SHARED_DATA, 'viton', 'test')
PAIRS = [line.split() for line in open(os.path.join(SHARED_DATA, 'viton', 'test_pairs.txt'))][:12]


def stem(name):
    return os.path.splitext(name)[0]


def dataset_pair(index):
    person_name, cloth_name = PAIRS[index]
    return {
        'person': os.path.join(TEST_DIR, 'image', person_name),
        'cloth': os.path.join(TEST_DIR, 'cloth', cloth_name),
        'labels': os.path.join(TEST_DIR, 'image-parse', stem(person_name) + '.png'),
        'keypoints': os.path.join(TEST_DIR, 'pose', stem(person_name) + '_keypoints.json'),
    }


def run_cli(*args):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope='module')
def tryon(synthetic_dir):
    return VirtualTryOn(CpVton(os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'),
                               os.path.join(synthetic_dir, 'cp_vton_tom.onnx')))


def model_args(synthetic_dir):
    return ['--gmm', os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'),
            '--tom', os.path.join(synthetic_dir, 'cp_vton_tom.onnx')]


def enlarge_and_pad(image, scale, size, value, interpolation):
    """The photo scaled by `scale` and centred on a canvas of size (w, h) filled with `value`."""
    big = cv.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
    left, top = (size[0] - big.shape[1]) // 2, (size[1] - big.shape[0]) // 2
    canvas = np.full((size[1], size[0]) + big.shape[2:], value, big.dtype)
    canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
    return canvas, (left, top)


def legacy_infer(cp_vton, person, cloth, keypoints, labels):
    """VirtualTryOn.infer as it was before this issue (256x192 only, keypoints and labels given): a copy,
    so that --model-size is checked against the old code path, not against itself."""
    crop, box = crop_to_ratio(person)
    keypoints = keypoints_to_model(keypoints, box)
    labels = labels_to_model(labels, box, person.shape)
    return cp_vton.infer(labels, resize_to_model(crop), pose_map(keypoints), cloth)


# ---------------------------------------------------------------------------- --model-size: today's output
@pytest.mark.parametrize('index, scale, size', [(0, 1, None), (3, 3, (800, 1000)), (5, 3, (1200, 800))])
def test_model_size_is_the_old_256x192_chain(tryon, index, scale, size):
    pair = dataset_pair(index)
    person, cloth = cv.imread(pair['person']), cv.imread(pair['cloth'])
    labels = human_parsing.read_parsing(pair['labels'])
    keypoints = openpose.read_keypoints_json(pair['keypoints'])
    if size:   # a photo of another size and aspect ratio, so the crop and the rescaling take part
        person, (left, top) = enlarge_and_pad(person, scale, size, 200, cv.INTER_CUBIC)
        labels, _ = enlarge_and_pad(labels, scale, size, 0, cv.INTER_NEAREST)
        keypoints[:, 0] = np.where(keypoints[:, 2] > 0, keypoints[:, 0] * scale + left, 0)
        keypoints[:, 1] = np.where(keypoints[:, 2] > 0, keypoints[:, 1] * scale + top, 0)
    expected = legacy_infer(tryon.cp_vton, person, cloth, keypoints, labels)
    assert expected.shape == (256, 192, 3)
    assert np.array_equal(tryon.infer(person, cloth, keypoints, labels, full_resolution=False), expected)
    analysis = tryon.analyse(person, keypoints, labels)
    assert np.array_equal(tryon.infer(analysis, cloth, full_resolution=False), expected)


# ---------------------------------------------------------------------------- full resolution
def tps_at(theta, x, y, grid_size=5):
    """CP-VTON's TPS solved in float64 for one theta and evaluated at normalised points (x, y)."""
    axis = np.linspace(-1, 1, grid_size)
    px, py = np.repeat(axis, grid_size), np.tile(axis, grid_size)
    n = px.size

    def u(d2):
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.nan_to_num(d2 * np.log(d2))
    system = np.block([[u((px[:, None] - px) ** 2 + (py[:, None] - py) ** 2), np.column_stack([np.ones(n), px, py])],
                       [np.column_stack([np.ones(n), px, py]).T, np.zeros((3, 3))]])
    out = []
    for target in (px + theta[:n], py + theta[n:]):
        coef = np.linalg.solve(system, np.concatenate([target, np.zeros(3)]))
        value = coef[n] + coef[n + 1] * x + coef[n + 2] * y
        for i in range(n):
            value = value + coef[i] * u((x - px[i]) ** 2 + (y - py[i]) ** 2)
        out.append(value)
    return out


def model_frame(size, model_size):
    """Model-frame coordinate of each pixel of a crop side (cv.resize's half-pixel centres)."""
    return (np.arange(size) + 0.5) * model_size / size - 0.5


@pytest.fixture(scope='module')
def big_photos(tmp_path_factory):
    """VITON photos enlarged 3x and padded to other aspect ratios, as PNG, with their parsing and keypoints
    carried along: (photo path, labels path, keypoints path, cloth path (the cloth enlarged 3x too), pad box)."""
    directory = tmp_path_factory.mktemp('big')
    made = []
    for index, size in ((1, (1000, 768)), (4, (576, 1000))):
        pair = dataset_pair(index)
        person, (left, top) = enlarge_and_pad(cv.imread(pair['person']), 3, size, (40, 160, 90), cv.INTER_CUBIC)
        labels, _ = enlarge_and_pad(human_parsing.read_parsing(pair['labels']), 3, size, 0, cv.INTER_NEAREST)
        keypoints = openpose.read_keypoints_json(pair['keypoints'])
        keypoints[:, 0] = np.where(keypoints[:, 2] > 0, keypoints[:, 0] * 3 + left, 0)
        keypoints[:, 1] = np.where(keypoints[:, 2] > 0, keypoints[:, 1] * 3 + top, 0)
        cloth = cv.resize(cv.imread(pair['cloth']), None, fx=3, fy=3, interpolation=cv.INTER_CUBIC)
        paths = [str(directory / ('%d_%s' % (index, name))) for name in ('person.png', 'labels.png', 'kp.json', 'cloth.png')]
        cv.imwrite(paths[0], person)
        cv.imwrite(paths[1], labels)
        with open(paths[2], 'w') as f:
            f.write('{"people": [{"pose_keypoints": %s}]}' % keypoints.ravel().tolist())
        cv.imwrite(paths[3], cloth)
        made.append(paths + [(left, top, 576, 768)])
    return made


@pytest.mark.parametrize('which', [0, 1])
def test_full_resolution_keeps_the_photo_outside_the_edit_region(synthetic_dir, big_photos, tmp_path, which):
    photo_path, labels_path, keypoints_path, cloth_path, (left, top, width, height) = big_photos[which]
    out = tmp_path / 'full.png'
    result = run_cli('-i', photo_path, '-c', cloth_path, '-o', out, '--labels', labels_path,
                     '--keypoints', keypoints_path, *model_args(synthetic_dir))
    assert result.returncode == 0, result.stderr
    photo, output = cv.imread(photo_path), cv.imread(str(out))
    assert output.shape == photo.shape
    changed = (output != photo).any(axis=2)
    # the padding around the enlarged photo is background, far from any edit: bit-identical
    person_area = np.zeros(changed.shape, bool)
    person_area[top:top + height, left:left + width] = True
    assert not changed[~person_area].any()
    # the head (hat, hair, sunglasses, face), away from its outline by more than the soft edge plus one
    # model pixel (3 photo pixels): bit-identical
    labels = human_parsing.read_parsing(labels_path)
    head = cv.erode(np.isin(labels, (1, 2, 4, 13)).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert head.sum() > 2000
    assert not changed[head].any()
    # and the try-on did change the garment area
    garment = np.isin(labels, (5, 14, 15))
    assert changed[garment].mean() > 0.5


def test_full_resolution_samples_the_original_cloth(tryon, big_photos):
    """Deep inside the region the result is TOM's composition of the *original* cloth sampled with the TPS
    at the photo's resolution: checked against a float64 TPS evaluated at every photo pixel and scipy's
    bilinear sampling, and shown to be far from the 256x192 warped cloth scaled up."""
    photo_path, labels_path, keypoints_path, cloth_path, (left, top, width, height) = big_photos[0]
    photo, cloth = cv.imread(photo_path), cv.imread(cloth_path)
    analysis = tryon.analyse(photo, openpose.read_keypoints_json(keypoints_path),
                             human_parsing.read_parsing(labels_path))
    assert analysis.box == (left, top, width, height)
    grid, warped, tom_output = tryon.render(analysis, cloth)
    result = VirtualTryOn.composite(analysis, cloth, grid, tom_output)

    cloth_tensor = to_unit_range(resize_to_model(cloth))[None]
    theta = tryon.cp_vton.predict_theta(cloth_tensor, analysis.agnostic)[0].astype(np.float64)
    mx, my = np.meshgrid(model_frame(width, 192), model_frame(height, 256))
    gx, gy = tps_at(theta, mx * 2 / 191 - 1, my * 2 / 255 - 1)
    cloth_x = ((gx + 1) / 2 * 191 + 0.5) * cloth.shape[1] / 192 - 0.5
    cloth_y = ((gy + 1) / 2 * 255 + 0.5) * cloth.shape[0] / 256 - 0.5
    sampled = np.stack([ndimage.map_coordinates(cloth[..., c].astype(np.float64), [cloth_y, cloth_x], order=1,
                                                mode='nearest') for c in range(3)], -1)
    rendered = (np.tanh(tom_output[0, :3].astype(np.float64)) + 1) * 127.5
    mask = 1 / (1 + np.exp(-tom_output[0, 3].astype(np.float64)))
    up = lambda a: ndimage.map_coordinates(a, [my, mx], order=1, mode='nearest')  # noqa: E731
    mask_up = up(mask)
    expected = sampled * mask_up[..., None] + np.stack([up(rendered[2 - c]) for c in range(3)], -1) * (1 - mask_up[..., None])
    scaled_up = cv.resize(to_image(warped[0]), (width, height), interpolation=cv.INTER_LINEAR).astype(np.float64)
    scaled_up_expected = scaled_up * mask_up[..., None] + (expected - sampled * mask_up[..., None])

    region = edit_region(analysis.labels, grid_sample(cloth_mask(resize_to_model(cloth))
                                                      [None, None].astype(np.float32), grid)[0, 0], mask)
    deep = cv.erode(cv.resize(region.astype(np.uint8), (width, height), interpolation=cv.INTER_NEAREST),
                    np.ones((3 * 3 + 2 * FEATHER + 1,) * 2, np.uint8)) > 0
    deep &= mask_up > 0.5   # where the cloth, not TOM's rendering, makes the pixel
    assert deep.sum() > 5000
    got = result[top:top + height, left:left + width].astype(np.float64)
    error = np.abs(got - expected)[deep]
    error_scaled_up = np.abs(scaled_up_expected - expected)[deep]
    assert np.median(error) <= 1.0 and np.percentile(error, 99) <= 6, (np.median(error), np.percentile(error, 99))
    assert error.mean() * 3 < error_scaled_up.mean(), (error.mean(), error_scaled_up.mean())


def test_cloth_mask_fills_holes_and_follows_the_background():
    cloth = np.full((120, 90, 3), 250, np.uint8)
    cloth[20:100, 15:75] = (30, 60, 200)
    cloth[40:60, 30:50] = 250              # a white print inside the garment
    expected = np.zeros((120, 90), np.uint8)
    expected[20:100, 15:75] = 1
    assert np.array_equal(cloth_mask(cloth), expected)
    dark = np.where(cloth == 250, np.uint8(10), cloth)   # the same garment on a dark background
    dark[20:100, 15:75] = (30, 60, 200)
    assert np.array_equal(cloth_mask(dark), expected)


# ---------------------------------------------------------------------------- many garments
class Counting:
    """Counts the calls of a real network's infer()."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def infer(self, image, **evidence):
        self.calls += 1
        return self.model.infer(image, **evidence)

    def keypoints_and_mask(self, image):
        self.calls += 1
        return self.model.keypoints_and_mask(image)


@pytest.mark.skipif(not human_parsing.TENSORFLOW_IMPORTER, reason='OpenCV 5.1+: no TensorFlow importer for JPPNet')
def test_analysis_is_computed_once_per_person(synthetic_dir, blazepose_model):
    pose = Counting(blazepose.BlazePose(blazepose_model))
    parsing = Counting(human_parsing.JppNet(os.path.join(synthetic_dir, 'lip_jppnet_384.pb')))
    cp_vton = CpVton(os.path.join(synthetic_dir, 'cp_vton_gmm.onnx'), os.path.join(synthetic_dir, 'cp_vton_tom.onnx'))
    chain = VirtualTryOn(cp_vton, pose, parsing)
    person = cv.imread(dataset_pair(0)['person'])
    analysis = chain.analyse(person)
    clothes = [cv.imread(dataset_pair(i)['cloth']) for i in range(3)]
    results = [chain.infer(analysis, cloth, full_resolution=False) for cloth in clothes]
    assert (pose.calls, parsing.calls) == (1, 1)
    # the same results as analysing again for each garment (the old way)
    for cloth, result in zip(clothes, results):
        assert np.array_equal(chain.infer(person, cloth, full_resolution=False), result)
    assert (pose.calls, parsing.calls) == (4, 4)


def test_cli_many_garments_into_a_directory(synthetic_dir, tmp_path):
    pair = dataset_pair(2)
    folder = tmp_path / 'clothes'
    folder.mkdir()
    for i in (3, 4):
        os.symlink(dataset_pair(i)['cloth'], folder / os.path.basename(dataset_pair(i)['cloth']))
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    out = tmp_path / 'out'   # created
    result = run_cli('-i', pair['person'], '-c', pair['cloth'], folder, '-o', out, '--model-size',
                     '--labels', pair['labels'], '--keypoints', pair['keypoints'], *model_args(synthetic_dir))
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'broken.png' in errors[0] and 'Traceback' not in result.stderr
    names = sorted(os.listdir(out))
    person_stem = stem(os.path.basename(pair['person']))
    assert names == sorted('%s_%s_tryon.png' % (person_stem, stem(os.path.basename(p)))
                           for p in [pair['cloth'], dataset_pair(3)['cloth'], dataset_pair(4)['cloth']])
    # each equals the single-garment command's file
    single = tmp_path / 'single.png'
    assert run_cli('-i', pair['person'], '-c', dataset_pair(3)['cloth'], '-o', single, '--model-size',
                   '--labels', pair['labels'], '--keypoints', pair['keypoints'],
                   *model_args(synthetic_dir)).returncode == 0
    batch_file = out / ('%s_%s_tryon.png' % (person_stem, stem(os.path.basename(dataset_pair(3)['cloth']))))
    assert batch_file.read_bytes() == single.read_bytes()


# ---------------------------------------------------------------------------- dataset mode
def make_dataroot(directory, count):
    """CP-VTON's layout for `count` shared test pairs (symlinks), plus a pair whose photo is broken and
    one whose keypoints are missing."""
    for sub in ('image', 'cloth', 'image-parse', 'pose'):
        (directory / sub).mkdir(parents=True)
    lines = []
    for person_name, cloth_name in PAIRS[:count]:
        for sub, name in (('image', person_name), ('cloth', cloth_name), ('image-parse', stem(person_name) + '.png'),
                          ('pose', stem(person_name) + '_keypoints.json')):
            os.symlink(os.path.join(TEST_DIR, sub, name), directory / sub / name)
        lines.append('%s %s' % (person_name, cloth_name))
    person_name, cloth_name = PAIRS[count]
    data = open(os.path.join(TEST_DIR, 'image', person_name), 'rb').read()
    (directory / 'image' / 'broken_0.jpg').write_bytes(data[:200])
    os.symlink(os.path.join(TEST_DIR, 'cloth', cloth_name), directory / 'cloth' / cloth_name)
    os.symlink(os.path.join(TEST_DIR, 'image-parse', stem(person_name) + '.png'), directory / 'image-parse' / 'broken_0.png')
    os.symlink(os.path.join(TEST_DIR, 'pose', stem(person_name) + '_keypoints.json'),
               directory / 'pose' / 'broken_0_keypoints.json')
    os.symlink(os.path.join(TEST_DIR, 'image', person_name), directory / 'image' / 'nopose_0.jpg')
    os.symlink(os.path.join(TEST_DIR, 'image-parse', stem(person_name) + '.png'), directory / 'image-parse' / 'nopose_0.png')
    lines[3:3] = ['broken_0.jpg %s' % cloth_name, 'nopose_0.jpg %s' % cloth_name]
    pairs = directory / 'pairs.txt'
    pairs.write_text('\n'.join(lines) + '\n')
    return pairs


def test_dataset_mode(synthetic_dir, tmp_path):
    count = 10
    pairs = make_dataroot(tmp_path / 'data', count)
    out = tmp_path / 'results'
    args = ['--dataroot', tmp_path / 'data', '--pairs', pairs, '-o', out, '--save-warped'] + model_args(synthetic_dir)
    first = run_cli(*args)
    assert first.returncode == 1, first.stderr
    errors = [line for line in first.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 2 and 'Traceback' not in first.stderr, first.stderr
    assert 'broken_0.jpg' in errors[0] and 'not a readable image' in errors[0]
    assert 'nopose_0.jpg' in errors[1] and 'keypoints file not found' in errors[1]
    assert '%d/%d pairs' % (count + 2, count + 2) in first.stderr and 'pairs/s' in first.stderr
    written = sorted(os.listdir(out))
    assert len(written) == 2 * count and not [n for n in written if 'broken' in n or 'nopose' in n]
    for name in written:
        assert cv.imread(str(out / name)).shape == (256, 192, 3)
    stamps = {name: os.stat(out / name).st_mtime_ns for name in written}

    # a rerun skips every finished pair (and reports the bad ones again)
    again = run_cli(*args)
    assert again.returncode == 1 and '%d skipped as done' % count in again.stderr, again.stderr
    assert {name: os.stat(out / name).st_mtime_ns for name in written} == stamps
    assert 'SYNTHETIC' not in again.stderr   # no model was even loaded

    # each result equals the single-pair command with --model-size --labels --keypoints
    for index in (0, 7):
        pair = dataset_pair(index)
        single = tmp_path / ('single%d.png' % index)
        result = run_cli('-i', pair['person'], '-c', pair['cloth'], '-o', single, '--model-size',
                         '--labels', pair['labels'], '--keypoints', pair['keypoints'], *model_args(synthetic_dir))
        assert result.returncode == 0, result.stderr
        name = '%s_%s_tryon.png' % (stem(PAIRS[index][0]), stem(PAIRS[index][1]))
        assert (out / name).read_bytes() == single.read_bytes()


def test_dataset_mode_overwrite_and_usage(synthetic_dir, tmp_path):
    pairs = make_dataroot(tmp_path / 'data', 1)
    pairs.write_text(pairs.read_text().splitlines()[0] + '\n')
    out = tmp_path / 'results'
    args = ['--dataroot', tmp_path / 'data', '--pairs', pairs, '-o', out] + model_args(synthetic_dir)
    assert run_cli(*args).returncode == 0
    name = os.listdir(out)[0]
    stamp = os.stat(out / name).st_mtime_ns
    assert run_cli(*args, '--overwrite').returncode == 0
    assert os.stat(out / name).st_mtime_ns != stamp
    missing = run_cli('--dataroot', tmp_path / 'data', '-o', out)
    assert missing.returncode == 2 and 'error: dataset mode needs' in missing.stderr


def test_progress_line():
    stream = io.StringIO()
    progress = Progress(10, 'pairs', stream=stream, interval_file=0)
    for done in range(1, 11):
        progress.update(done)
    progress.close(10)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith('1/10 pairs, ') and 'pairs/s' in lines[0] and lines[0].endswith(' left')
    assert lines[-1].startswith('10/10 pairs') and lines[-1].endswith('0:00 left')
    quiet = io.StringIO()
    silent = Progress(10, stream=quiet, enabled=False)
    silent.update(5, force=True)
    silent.close(10)
    assert quiet.getvalue() == ''


def test_dataset_mode_progress_once_and_no_rate_for_skips(tmp_path):
    """Issue 29: the final progress line was printed twice, and a rerun that only skips showed '31291
    pairs/s' (skipped pairs counted in the rate). Two pairs with the shipped models, run twice."""
    pairs = tmp_path / 'pairs.txt'
    pairs.write_text(''.join('%s %s\n' % tuple(pair) for pair in PAIRS[:2]))
    args = ['--dataroot', TEST_DIR, '--pairs', pairs, '-o', tmp_path / 'out']
    first, again = run_cli(*args), run_cli(*args)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    progress = [line for line in first.stderr.splitlines() if line.startswith('2/2 pairs')]
    assert len(progress) == 1 and 'pairs/s' in progress[0], first.stderr
    lines = [line for line in again.stderr.splitlines() if ' pairs' in line and not line.startswith('info:')]
    assert lines == ['1/2 pairs, 1 done before this run', '2/2 pairs, 2 done before this run'], again.stderr
    assert '2 skipped as done' in again.stderr


def test_progress_counts_skips_outside_the_rate():
    stream = io.StringIO()
    progress = Progress(4, 'pairs', stream=stream, interval_file=0)
    progress.skip(1)
    progress.skip(2)
    progress.start -= 10  # began 10 s ago: two pairs done in this run make 0.20 pairs/s, four 0.40
    progress.update(4)
    progress.update(4)
    progress.close(4)
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ['1/4 pairs, 1 done before this run', '2/4 pairs, 2 done before this run']
    assert len(lines) == 3 and lines[2] == '4/4 pairs, 0.20 pairs/s, 0:00 left', lines


def test_edit_region_stays_on_the_person_below_the_neck():
    """Whatever the networks output (here a warped garment and a composition mask of 1 everywhere), the
    region is below the chin and within BODY_MARGIN (4) pixels of the parsed person. Hand-built parsing."""
    labels = np.zeros((256, 192), np.uint8)
    labels[10:20, 80:112] = 2           # hair
    labels[20:60, 80:112] = 13          # face: the chin is row 59
    labels[60:200, 60:132] = 5          # upper clothes
    labels[200:250, 70:122] = 9         # pants
    everywhere = np.ones((256, 192), np.float32)
    region = edit_region(labels, everywhere, everywhere)
    rows, cols = np.nonzero(region)
    assert rows.min() == 60 and rows.max() == 249 + 4
    assert cols.min() == 60 - 4 and cols.max() == 131 + 4
    assert region[60:200, 60:132].all() and not region[:, :56].any() and not region[:, 136:].any()
    # no face in the parsing: the neck keypoint's row bounds it
    labels[labels == 13] = 0
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[1] = (96, 70.6, 0.9)
    region = edit_region(labels, everywhere, everywhere, keypoints)
    assert np.flatnonzero(region.any(axis=1))[0] == 70
