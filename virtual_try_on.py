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

import command_line
import dnn_backends
import human_parsing
import image_io
import openpose
from batch_runner import ITEM_ERRORS, StopBatch, TryOnItem, run_batch
from cp_vton import GMM_FILE, OWN_GMM_FILE, OWN_TOM_FILE, TOM_FILE, CpVton, crop_to_ratio
from dataset_mode import DEFAULT_BATCH, check_size, default_output_name, read_pairs, run_dataset
from errors import UsageError
from garment_check import check_garment
from progress import Progress, peak_memory_text
from shards import parse_shard, shard_bounds, take_shard
from tryon_pipeline import TryOnModels, VirtualTryOn, load_tryon

log = logging.getLogger(__name__)


def image_files(paths, what):
    """The photos named by -i or -c: files as given, folders expanded to their images, sorted."""
    result = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, name) for name in os.listdir(path)
                           if not name.startswith('.') and os.path.isfile(os.path.join(path, name))
                           and cv.haveImageReader(os.path.join(path, name)))
            if not found:
                raise UsageError('%s folder holds no images: %s' % (what, path))
            result.extend(found)
        else:
            result.append(path)
    return result


def check_display(environ=None, platform=None):
    """--show: a UsageError before any work when no window can open (Linux and other X11/Wayland systems with
    neither DISPLAY nor WAYLAND_DISPLAY set), instead of Qt's abort (exit 134) after the work."""
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    if platform.startswith(('win', 'darwin', 'cygwin')):
        return
    if not environ.get('DISPLAY') and not environ.get('WAYLAND_DISPLAY'):
        raise UsageError('--show needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set (no window can '
                         'open here); leave out --show and open the file written with -o')


def build_parser():
    parser = argparse.ArgumentParser(
        description='Virtual try-on (CP-VTON) with OpenCV dnn: dresses the person of --input in the garment(s) '
                    'of --cloth, at the photo\'s own resolution; or runs CP-VTON\'s test protocol over a '
                    'dataset (--dataroot, --pairs). Exit status: 0 done, 1 runtime failure (or a bad pair or '
                    'garment skipped), 2 bad usage or input.')
    parser.add_argument('-i', '--input', nargs='+', help='person photo(s), or folder(s) of them: several people '
                                                       'and garments make a catalogue, every person in every garment')
    parser.add_argument('-c', '--cloth', nargs='+', help='garment photo(s): on white, or cut-outs with alpha (laid '
                                                       'over white); or folder(s) of them')
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
                        help='with --dataroot or several try-ons: redo those whose results exist (default: '
                             'skip them, so that a rerun after a crash only does what is missing)')
    parser.add_argument('--batch', type=command_line.count_argument('--batch'), default=DEFAULT_BATCH,
                        help='try-ons that go through the TOM together (default: %(default)s; the same bytes '
                             'as one at a time; on the CPU a batch is not faster, see docs/catalogues.md)')
    parser.add_argument('--shard', type=parse_shard, metavar='K/N',
                        help='with --dataroot or several try-ons: do only shard K of N of the list (N processes '
                             'or machines, K = 1..N, together write every result once)')
    parser.add_argument('--threads', type=command_line.count_argument('--threads'), metavar='N',
                        help='OpenCV threads (default: OpenCV\'s choice, every core); 1 for each of N shard '
                             'processes on one N-core machine (the results do not depend on it)')
    parser.add_argument('--show', action='store_true', help='also show the result in a window (needs a display)')
    parser.add_argument('--gmm', help='GMM model (default: %s, the pair trained here and shipped in models/; the '
                                      'published %s when it and %s are both in the models directory)'
                                      % (OWN_GMM_FILE, GMM_FILE, TOM_FILE))
    parser.add_argument('--tom', help='TOM model (default: %s, shipped with %s; the published %s when both '
                                      'published files are in the models directory)'
                                      % (OWN_TOM_FILE, OWN_GMM_FILE, TOM_FILE))
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
    dnn_backends.add_backend_arguments(parser)
    command_line.add_verbosity_arguments(parser)
    return parser


def main(argv=None):
    args, status = command_line.parse_cli(build_parser(), argv)
    if args is None:
        return status
    backend_id, target_id = dnn_backends.backend_target(args.backend, args.target)
    if args.show:
        check_display()
    if args.threads:
        cv.setNumThreads(args.threads)
    if args.dataroot or args.pairs:
        return dataset_main(args, backend_id, target_id)
    if not args.input or not args.cloth:
        raise UsageError('the person photo (-i) and a garment (-c) are needed (or --dataroot with --pairs)')
    people, clothes = image_files(args.input, 'person'), image_files(args.cloth, 'cloth')
    several = (len(people) > 1 or len(clothes) > 1 or any(os.path.isdir(path) for path in args.input + args.cloth)
               or args.shard is not None
               or bool(args.output and (os.path.isdir(args.output) or args.output.endswith(('/', os.sep)))))
    if several:  # -o is a directory; a bad person or garment is reported and skipped
        return catalogue_main(args, people, clothes, backend_id, target_id)
    person = image_io.read_image(people[0], 'person photo')
    cloth = image_io.read_image(clothes[0], 'cloth photo')
    output = args.output or default_output_name(people[0], clothes[0])
    image_io.check_output_path(output)
    check_size(cloth, 'cloth photo %s' % clothes[0], 'it')
    check_garment(cloth, 'cloth photo %s' % clothes[0])
    check_size(crop_to_ratio(person)[0], 'person photo %s' % people[0], 'its 256:192 centre crop')
    keypoints, labels = read_evidence(args)
    tryon = load_tryon(model_files(args), backend_id, target_id, need_pose=keypoints is None,
                       need_parsing=labels is None)
    result = tryon.infer(tryon.analyse(person, keypoints, labels), cloth, full_resolution=not args.model_size)
    image_io.write_image(output, result)
    print(output)
    if args.show:
        cv.imshow('Virtual try-on', result)
        cv.waitKey()
    return 0


def model_files(args):
    """The TryOnModels of the command line's --gmm, --tom, --pose-model, --pose-config, --parsing-model
    and --synthetic."""
    return TryOnModels(gmm=args.gmm, tom=args.tom, pose_model=args.pose_model, pose_config=args.pose_config,
                       parsing_model=args.parsing_model, synthetic=args.synthetic)


def read_evidence(args):
    """(keypoints, labels) of --keypoints / --labels, None where not given."""
    keypoints = openpose.read_keypoints_json(args.keypoints) if args.keypoints else None
    labels = human_parsing.read_parsing(args.labels) if args.labels else None
    return keypoints, labels


def catalogue_main(args, people, clothes, backend_id, target_id):
    """Every person of -i in every garment of -c (or shard K/N of that list), results into the -o directory as
    <person>_<cloth>_tryon.png; each person analysed once (pose, parsing, agnostic), the try-ons `--batch` at a
    time through the TOM (batch_runner.run_batch). Finished results are skipped unless --overwrite; a bad
    person or garment is one error line and the rest goes on (exit status 1). With one person, its photo is
    checked first (exit 2), and its failure ends the run."""
    out_dir = args.output or '.'
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError('with several try-ons -o is a directory, and %s is a file' % out_dir)
    if len(people) > 1 and (args.keypoints or args.labels):
        raise UsageError('--keypoints and --labels describe one person photo; -i names %d' % len(people))
    if len(people) == 1:
        check_size(crop_to_ratio(image_io.read_image(people[0], 'person photo'))[0], 'person photo %s' % people[0],
                   'its 256:192 centre crop')
    keypoints, labels = read_evidence(args)
    tries = take_shard([(person, cloth) for person in people for cloth in clothes], args.shard)
    image_io.make_directory(out_dir)
    items = [TryOnItem(number, names, [os.path.join(out_dir, default_output_name(*names))],
                       'garment %s' % names[1] if len(people) == 1 else 'try-on %s + %s' % names)
             for number, names in enumerate(tries, 1)]
    analysed = {}  # the person analysed last, or its error: a person's try-ons are consecutive

    def prepare(item, tryon):
        person_path, cloth_path = item.names
        if person_path not in analysed:
            analysed.clear()
            try:
                person = image_io.read_image(person_path, 'person photo')
                check_size(crop_to_ratio(person)[0], 'person photo %s' % person_path, 'its 256:192 centre crop')
                analysed[person_path] = tryon().analyse(person, keypoints, labels)
            except ITEM_ERRORS as err:
                if len(people) == 1:
                    raise StopBatch(err)  # the one person of the run: its error ends it, as for a single try-on
                analysed[person_path] = err
        if isinstance(analysed[person_path], Exception):
            raise analysed[person_path]
        cloth = image_io.read_image(cloth_path, 'cloth photo')
        check_size(cloth, 'cloth photo %s' % cloth_path, 'it')
        check_garment(cloth, 'cloth photo %s' % cloth_path)
        item.analysis, item.cloth = analysed[person_path], cloth

    def write(item, grid, warped, tom_output):
        if args.model_size:
            result = CpVton.compose(tom_output, warped, item.analysis.person, item.analysis.labels,
                                    item.analysis.agnostic)
        else:
            result = VirtualTryOn.composite(item.analysis, item.cloth, grid, tom_output)
        image_io.write_image(item.outputs[0], result)
        print(item.outputs[0])

    def load():
        return load_tryon(model_files(args), backend_id, target_id, need_pose=keypoints is None,
                          need_parsing=labels is None)

    counts = run_batch(items, load, prepare, write, batch=args.batch, overwrite=args.overwrite,
                       progress=Progress(len(items), 'try-ons', enabled=log.isEnabledFor(logging.INFO)))
    log.info('%s; peak memory %s', counts.summary('try-ons'), peak_memory_text())
    return 1 if counts.failed else 0


def dataset_main(args, backend_id, target_id):
    """--dataroot/--pairs: CP-VTON's test protocol (dataset_mode.run_dataset). Exit status 1 when a pair was
    skipped. The progress line shows when this module's log shows info messages (not under -q)."""
    if not (args.dataroot and args.pairs and args.output):
        raise UsageError('dataset mode needs --dataroot, --pairs and -o (the output directory)')
    if args.input or args.cloth:
        raise UsageError('-i/-c and --dataroot/--pairs are two different modes; give one of them')
    if not os.path.isdir(args.dataroot):
        raise UsageError('dataset directory not found: %s' % args.dataroot)
    listed = read_pairs(args.pairs)
    pairs = take_shard(listed, args.shard)
    if args.shard:
        log.info('shard %d/%d: pairs %d-%d of %d', *args.shard, *shard_bounds(len(listed), *args.shard), len(listed))
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UsageError('output path is not a directory: %s' % args.output)
    image_io.make_directory(args.output)
    models = model_files(args)
    counts = run_dataset(lambda: load_tryon(models, backend_id, target_id, need_pose=False, need_parsing=False),
                         args.dataroot, pairs, args.output, args.save_warped, args.overwrite,
                         progress=log.isEnabledFor(logging.INFO), batch=args.batch)
    log.info('%s; peak memory %s', counts.summary('pairs'), peak_memory_text())
    return 1 if counts.failed else 0


def cli():
    """Console command `virtual-try-on`."""
    sys.exit(command_line.run_main(main))


if __name__ == '__main__':
    cli()
