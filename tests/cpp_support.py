"""Building the C++ try-on (cpp/) and talking to its test helper, for tests/test_cpp.py and
benchmarks/compare_cpp.py. The helper's file formats are described at the head of cpp/test_virtual_try_on.cpp."""
import os
import shutil
import subprocess

import numpy as np

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPP_DIR = os.path.join(REPO_DIR, 'cpp')


class BuildUnavailable(Exception):
    """No C++ compiler, CMake or OpenCV development files on this machine."""


def build(build_dir, jobs=2, timeout=900):
    """Configure and build cpp/ into build_dir (incremental when it was built before). Returns
    (cli, helper) paths. BuildUnavailable when the toolchain or OpenCV's CMake package is missing;
    RuntimeError when the code does not build."""
    if not shutil.which('cmake') or not (shutil.which('c++') or shutil.which('g++')):
        raise BuildUnavailable('cmake or a C++ compiler is not installed (apt-get install cmake g++ libopencv-dev)')
    os.makedirs(build_dir, exist_ok=True)
    configure = subprocess.run(['cmake', '-S', CPP_DIR, '-B', build_dir, '-DCMAKE_BUILD_TYPE=Release'],
                               capture_output=True, text=True, timeout=timeout)
    if configure.returncode != 0:
        if 'OpenCV' in configure.stderr and ('Could not find' in configure.stderr or 'not found' in configure.stderr):
            raise BuildUnavailable('OpenCV development files are not installed (apt-get install libopencv-dev)')
        raise RuntimeError('cmake configure failed:\n' + configure.stdout + configure.stderr)
    compiled = subprocess.run(['cmake', '--build', build_dir, '-j', str(jobs)], capture_output=True, text=True,
                              timeout=timeout)
    if compiled.returncode != 0:
        raise RuntimeError('C++ build failed:\n' + compiled.stdout[-5000:] + compiled.stderr[-5000:])
    return os.path.join(build_dir, 'virtual_try_on'), os.path.join(build_dir, 'test_virtual_try_on')


def write_blob(path, array):
    array = np.ascontiguousarray(array, np.float32)
    with open(path, 'wb') as f:
        f.write(np.array([array.ndim] + list(array.shape), np.int32).tobytes())
        f.write(array.tobytes())


def read_blob(path):
    data = open(path, 'rb').read()
    ndim = int(np.frombuffer(data[:4], np.int32)[0])
    shape = np.frombuffer(data[4:4 + 4 * ndim], np.int32)
    return np.frombuffer(data[4 + 4 * ndim:], np.float32).reshape(shape)


def resize_with_cpp(helper, cases, work_dir, pillow_major):
    """pilBilinearResize of every (image, (width, height)) case by the C++ helper -> list of arrays
    shaped like Pillow's results ((H, W) for 2-D input, (H, W, C) otherwise)."""
    cases_path, out_path = os.path.join(work_dir, 'resize_cases.bin'), os.path.join(work_dir, 'resize_out.bin')
    with open(cases_path, 'wb') as f:
        f.write(np.int32(len(cases)).tobytes())
        for image, (width, height) in cases:
            channels = 1 if image.ndim == 2 else image.shape[2]
            f.write(np.array([image.shape[0], image.shape[1], channels, width, height], np.int32).tobytes())
            f.write(np.ascontiguousarray(image).tobytes())
    subprocess.run([helper, 'resize', cases_path, out_path, str(pillow_major)], check=True, timeout=600)
    data = np.fromfile(out_path, np.uint8)
    results, offset = [], 0
    for image, (width, height) in cases:
        shape = (height, width) + image.shape[2:]
        size = int(np.prod(shape))
        results.append(data[offset:offset + size].reshape(shape))
        offset += size
    assert offset == data.size, 'the helper wrote %d bytes, expected %d' % (data.size, offset)
    return results


def read_pairs(shared_data):
    with open(os.path.join(shared_data, 'viton', 'test_pairs.txt')) as f:
        return [tuple(line.split()) for line in f if line.strip()]


def pair_files(shared_data, person, cloth):
    """(person, cloth, keypoints JSON, parsing PNG) paths of a VITON test pair."""
    root = os.path.join(shared_data, 'viton', 'test')
    stem = os.path.splitext(person)[0]
    return (os.path.join(root, 'image', person), os.path.join(root, 'cloth', cloth),
            os.path.join(root, 'pose', stem + '_keypoints.json'), os.path.join(root, 'image-parse', stem + '.png'))


def python_try_on(try_on, shared_data, person, cloth):
    """The Python API's 256x192 try-on of a pair with the dataset's keypoints and parsing
    (tryon_pipeline.VirtualTryOn.infer with keypoints=, labels= and full_resolution=False: the network size,
    which is what --model-size writes)."""
    import cv2 as cv
    import human_parsing
    import openpose
    person_path, cloth_path, keypoints_path, labels_path = pair_files(shared_data, person, cloth)
    return try_on.infer(cv.imread(person_path), cv.imread(cloth_path),
                        keypoints=openpose.read_keypoints_json(keypoints_path),
                        labels=human_parsing.read_parsing(labels_path), full_resolution=False)
