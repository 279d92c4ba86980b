"""``goatpose env``: where this runs: Jetson L4T, power mode, clocks, TensorRT, fast FP16/INT8 (``bench.env``)."""

import json

from goatpose_edge.cli.common import io_none

NAME = "env"
HELP = "where this runs: Jetson L4T, power mode, clocks, TensorRT, fast FP16/INT8"
OUTPUT_FLAGS = ()
io_plan = io_none


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="the full environment record as JSON")


def run(args) -> int:
    from goatpose_edge.bench.env import describe, environment, tensorrt_record

    record = environment(gpu=False)
    trt = tensorrt_record()
    if args.json:
        record["tensorrt"] = trt
        print(json.dumps(record, indent=2))
    else:
        print("\n".join(describe(record, trt)))
    return 0
