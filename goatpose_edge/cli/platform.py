"""``goatpose platform``: this machine's GPU, TensorRT version and fast precisions as JSON (``engines.builder``)."""

import json

from goatpose_edge.cli.common import io_none
from goatpose_edge.errors import GoatPoseError

NAME = "platform"
HELP = "GPU, TensorRT version and fast FP16/INT8 of this machine (JSON)"
OUTPUT_FLAGS = ()
io_plan = io_none


def add_arguments(parser) -> None:
    parser.add_argument("--require", action="append", choices=("fp16", "int8"), default=[],
                        help="exit 1 unless the GPU has this fast precision")


def run(args) -> int:
    from goatpose_edge.engines.builder import platform_caps

    caps = platform_caps()
    print(json.dumps({"gpu": caps.gpu_name, "compute_capability": list(caps.compute_capability),
                      "tensorrt": caps.tensorrt_version, "fast_fp16": caps.fast_fp16, "fast_int8": caps.fast_int8,
                      "dla_cores": caps.dla_cores, "precision_flags": caps.precision_flags}))
    if args.require:
        missing = [p for p in args.require if not getattr(caps, "fast_" + p)]
        if missing:
            raise GoatPoseError("{} has no fast {}".format(caps.describe(), "/".join(m.upper() for m in missing)))
    return 0
