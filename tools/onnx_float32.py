#!/usr/bin/env python3
"""Write an ONNX model whose float16-stored weights (each followed by a Cast to float32, as
tools/train_cpvton.py exports cp_vton_gmm_small.onnx and cp_vton_tom_small.onnx) as plain float32.

    python3 tools/onnx_float32.py models/cp_vton_gmm_small.onnx cp_vton_gmm_small_fp32.onnx

The opencv-python wheels (4.14, 5.x) read the float16 files; older OpenCV builds do not (Debian 12's 4.6:
"Unsupported data type: FLOAT16"), so C++ applications on them load the converted files. The values are
the same: every float16 is exactly a float32.
"""
import argparse
import os
import sys

import numpy as np

if not __package__:  # run as a script: make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import command_line  # noqa: E402
import errors  # noqa: E402
import image_io  # noqa: E402


def to_float32(model):
    """Replace, in place, each float16 initializer that feeds only a Cast to float by the float32 tensor the
    Cast gives, and drop the Cast. Returns the number of weights converted."""
    from onnx import TensorProto, numpy_helper
    graph = model.graph
    halves = {t.name: t for t in graph.initializer if t.data_type == TensorProto.FLOAT16}
    casts = [node for node in graph.node if node.op_type == 'Cast' and node.input[0] in halves
             and any(a.name == 'to' and a.i == TensorProto.FLOAT for a in node.attribute)]
    for cast in casts:
        half = halves.pop(cast.input[0])
        graph.initializer.remove(half)
        graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(half).astype(np.float32),
                                                         cast.output[0]))
        graph.node.remove(cast)
    return len(casts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('input', help='ONNX model with float16 weights')
    parser.add_argument('output', help='ONNX model to write, with float32 weights')
    args = parser.parse_args(argv)
    import onnx
    if not os.path.isfile(args.input):
        raise errors.UsageError('model file not found: %s' % args.input)
    model = onnx.load(args.input)
    converted = to_float32(model)
    onnx.checker.check_model(model)
    image_io.write_bytes(args.output, model.SerializeToString())
    print('%s: %d float16 weight(s) stored as float32' % (args.output, converted))
    return 0


if __name__ == '__main__':
    sys.exit(command_line.run_main(main))
