#!/usr/bin/env python3
"""Virtual try-on with OpenCV's dnn module: CP-VTON (Wang et al., ECCV 2018).

A person photo and a garment photo go in; an image of the person wearing the garment comes out.
Four networks are chained: pose (OpenPose COCO, or BlazePose), human parsing (LIP JPPNet), the
geometric matching module GMM (a thin-plate-spline warp of the cloth) and the try-on module TOM.

    python3 virtual_try_on.py -i person.jpg -c cloth.jpg [-o result.png]

The command line. The pieces live in modules of their own: cp_vton.py (CP-VTON's preprocessing and the
GMM + TOM networks), gmm_rewrite.py (the GMM's Correlation node as standard operators, cached),
onnx_facts.py (ONNX inputs and metadata without the weights), full_resolution.py (the composite at the
photo's size), tryon_pipeline.py (VirtualTryOn, the whole chain) and dataset_mode.py (--dataroot).
"""
import argparse
import logging
import os
import sys

import cv2 as cv

import common
import human_parsing
import openpose
from common import RuntimeFailure, UsageError
# the pieces README documents for use from Python, as `virtual_try_on.<name>`
from cp_vton import (GMM_FILE, GRID_SIZE, HEIGHT, KEPT_LABELS, OWN_GMM_FILE, OWN_TOM_FILE,  # noqa: F401
                     TOM_FILE, WIDTH, CpVton, blend, cloth_agnostic, crop_to_ratio, grid_sample, head_lookup,
                     pose_map, resize_to_model, sigmoid, tanh, to_image, to_unit_range, tps_grid)
from dataset_mode import (MIN_SIZE, Progress, _make_directory, check_size, dataset_main, default_output_name, read_pairs,  # noqa: F401
                          run_dataset, warped_output_name)
from full_resolution import FEATHER, cloth_mask, compose_full_resolution, edit_region  # noqa: F401
from gmm_rewrite import CACHE_ENV, GMM_CACHE_FORMAT, GMM_INPUTS, gmm_cache_dirs, load_gmm, replace_correlation  # noqa: F401
from onnx_facts import onnx_summary  # noqa: F401
from tryon_pipeline import (PersonAnalysis, VirtualTryOn, default_models, has_torso, keypoints_to_model,  # noqa: F401
                            labels_to_model, load_tryon)

log = logging.getLogger(__name__)


def cloth_files(paths):
    """The garment photos named by -c: files as given, folders expanded to their images, sorted."""
    result = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, name) for name in os.listdir(path)
                           if not name.startswith('.') and os.path.isfile(os.path.join(path, name))
                           and cv.haveImageReader(os.path.join(path, name)))
            if not found:
                raise UsageError('cloth folder holds no images: %s' % path)
            result.extend(found)
        else:
            result.append(path)
    return result


def build_parser():
    parser = argparse.ArgumentParser(
        description='Virtual try-on (CP-VTON) with OpenCV dnn: dresses the person of --input in the garment(s) '
                    'of --cloth, at the photo\'s own resolution; or runs CP-VTON\'s test protocol over a '
                    'dataset (--dataroot, --pairs). Exit status: 0 done, 1 runtime failure (or a bad pair or '
                    'garment skipped), 2 bad usage or input.')
    parser.add_argument('-i', '--input', help='person photo')
    parser.add_argument('-c', '--cloth', nargs='+', help='garment photo(s): on white, or cut-outs with alpha (laid over white); or folder(s) of them')
    parser.add_argument('-o', '--output', help='result image (default: <person>_<cloth>_tryon.png, printed); a '
                                               'directory (created if missing) with several garments, a folder, '
                                               'a path ending in / or --dataroot')
    parser.add_argument('--model-size', action='store_true',
                        help='write CP-VTON\'s 256x192 network output of the centre crop instead of the '
                             'full-resolution photo')
    parser.add_argument('--dataroot', help='dataset in CP-VTON\'s layout (image/, cloth/, image-parse/, pose/): '
                                           'try on every pair of --pairs with the dataset\'s parsing and '
                                           'keypoints, 256x192 results into the -o directory')
    parser.add_argument('--pairs', help='CP-VTON pairs list for --dataroot ("<person> <cloth>" per line)')
    parser.add_argument('--save-warped', action='store_true',
                        help='with --dataroot: also write the warped cloth as <person>_<cloth>_warped.png')
    parser.add_argument('--overwrite', action='store_true',
                        help='with --dataroot: redo pairs whose results exist (default: skip them)')
    parser.add_argument('--show', action='store_true', help='also show the result in a window')
    parser.add_argument('--gmm', help='GMM model (default: cp_vton_gmm.onnx in the models directory)')
    parser.add_argument('--tom', help='TOM model (default: cp_vton_tom.onnx in the models directory)')
    parser.add_argument('--pose-model', help='pose model: OpenPose .onnx/.caffemodel or BlazePose .tflite '
                                             '(default: OpenPose if present, else BlazePose)')
    parser.add_argument('--pose-config', help='OpenPose .prototxt, for a .caffemodel (OpenCV 4.x)')
    parser.add_argument('--parsing-model', help='LIP JPPNet model (default: lip_jppnet_384.pb)')
    parser.add_argument('--keypoints', help='OpenPose-style JSON of the person photo, instead of the pose network')
    parser.add_argument('--labels', help='LIP parsing of the person photo (grey label, palette or colour PNG), '
                                         'instead of the parsing network')
    parser.add_argument('--synthetic', action='store_true',
                        help='use the synthetic seeded-random GMM and TOM models (built on first use) to '
                             'see the pipeline run without the published files; the output is NOT a try-on')
    common.add_backend_arguments(parser)
    common.add_verbosity_arguments(parser)
    return parser


def main(argv=None):
    args, status = common.parse_cli(build_parser(), argv)
    if args is None:
        return status
    backend, target = common.backend_target(args.backend, args.target)
    if args.dataroot or args.pairs:
        return dataset_main(args, backend, target)
    if not args.input or not args.cloth:
        raise UsageError('the person photo (-i) and a garment (-c) are needed (or --dataroot with --pairs)')
    person = common.read_image(args.input, 'person photo')
    clothes = cloth_files(args.cloth)
    batch = (len(clothes) > 1 or any(os.path.isdir(path) for path in args.cloth)
             or bool(args.output and (os.path.isdir(args.output) or args.output.endswith(('/', os.sep)))))
    if batch:  # -o is a directory; a bad garment is reported and skipped
        out_dir = args.output or '.'
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise UsageError('with several garments -o is a directory, and %s is a file' % out_dir)
    else:
        cloth = common.read_image(clothes[0], 'cloth photo')
        output = args.output or default_output_name(args.input, clothes[0])
        common.check_output_path(output)
        check_size(cloth, 'cloth photo %s' % clothes[0], 'it')
    check_size(crop_to_ratio(person)[0], 'person photo %s' % args.input, 'its 256:192 centre crop')

    keypoints = labels = None
    if args.keypoints:
        keypoints = openpose.read_keypoints_json(args.keypoints)
    if args.labels:
        labels = human_parsing.read_parsing(args.labels)

    tryon = load_tryon(args, backend, target, keypoints is None, labels is None)
    analysis = tryon.analyse(person, keypoints, labels)  # pose, parsing and agnostic: once per person
    full_resolution = not args.model_size
    if not batch:
        result = tryon.infer(analysis, cloth, full_resolution=full_resolution)
        common.write_image(output, result)
        print(output)
        if args.show:
            cv.imshow('Virtual try-on', result)
            cv.waitKey()
        return 0

    _make_directory(out_dir)
    failed = 0
    for cloth_path in clothes:
        output = os.path.join(out_dir, default_output_name(args.input, cloth_path))
        try:
            cloth = common.read_image(cloth_path, 'cloth photo')
            check_size(cloth, 'cloth photo %s' % cloth_path, 'it')
            common.write_image(output, tryon.infer(analysis, cloth, full_resolution=full_resolution))
            print(output)
        except (UsageError, RuntimeFailure, cv.error) as err:
            failed += 1
            log.error('garment %s skipped: %s', cloth_path, common.error_line(err))
    return 1 if failed else 0


def cli():
    """Console command `virtual-try-on`."""
    sys.exit(common.run_main(main))


if __name__ == '__main__':
    cli()
