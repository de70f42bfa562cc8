#!/usr/bin/env python3
"""Write CP-VTON's GMM with its custom `Correlation` node rewritten into standard ONNX ops.

    python3 tools/convert_gmm.py cp_vton_gmm.onnx cp_vton_gmm_std.onnx

The result needs no custom layer anywhere: OpenCV 4.x/5.x (Python or C++, any backend), onnxruntime.
gmm_rewrite.py does the same rewrite in memory when CpVton loads, so this file is only needed outside it.
"""
import argparse
import os
import sys

if not __package__:  # run as a script (python3 tools/convert_gmm.py): make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import command_line  # noqa: E402
import errors  # noqa: E402
import gmm_rewrite  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('input', help='GMM ONNX with the Correlation node (e.g. models/cp_vton_gmm.onnx)')
    parser.add_argument('output', help='standard-op ONNX to write')
    args = parser.parse_args(argv)
    import onnx
    model = gmm_rewrite.load_onnx(args.input, 'GMM')
    replaced = gmm_rewrite.replace_correlation(model)
    onnx.checker.check_model(model)
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        raise errors.UsageError('output directory does not exist: %s' % os.path.dirname(args.output))
    tmp = args.output + '.part'
    onnx.save(model, tmp)
    os.replace(tmp, args.output)
    print('%s: %d Correlation node(s) rewritten into standard ops' % (args.output, replaced))
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
