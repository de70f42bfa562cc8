"""bf16 against f32 on OpenVINO's CPU plugin, from the figures of two runs of tests/test_openvino.py
(TRYON_OPENVINO_FIGURES, one with TRYON_OPENVINO_PRECISION=f32, one with bf16): per network and output,
the max |difference| from the OpenCV backend in each precision, OpenVINO's median forward time in each
(first call apart: it compiles), and the speed-up of bf16.

    python3 benchmarks/openvino_bf16_report.py f32.json bf16.json
"""
import argparse
import json

import numpy as np


def median_ms(times):
    rest = times[1:] if len(times) > 1 else times
    return float(np.median(rest)) * 1000 if rest else float('nan')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('f32', help='figures of the f32 run (JSON)')
    parser.add_argument('bf16', help='figures of the bf16 run (JSON)')
    args = parser.parse_args(argv)
    runs = []
    for path in (args.f32, args.bf16):
        with open(path) as f:
            runs.append(json.load(f))
    print('\nOpenVINO CPU plugin, bf16 against f32 (in effect: %s, %s); max|diff| from the OpenCV backend, '
          'OpenVINO median forward ms' % (runs[0]['in_effect'], runs[1]['in_effect']))
    print('%-22s %-17s %10s %10s %9s %9s %8s' % ('network', 'output', 'f32 diff', 'bf16 diff',
                                                'f32 ms', 'bf16 ms', 'speed-up'))
    bf16 = {(row[0], row[1].split(',')[0]): row for row in runs[1]['figures']}
    for network, output, diff, _, ov_times, _ in runs[0]['figures']:
        other = bf16.get((network, output.split(',')[0]))
        if other is None:
            continue
        f32_ms, bf16_ms = median_ms(ov_times), median_ms(other[4])
        speed_up = '%.2fx' % (f32_ms / bf16_ms) if ov_times and other[4] else '-'
        print('%-22s %-17s %10.3g %10.3g %9s %9s %8s' % (
            network, output, diff, other[2], '%.1f' % f32_ms if ov_times else '-',
            '%.1f' % bf16_ms if other[4] else '-', speed_up))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
