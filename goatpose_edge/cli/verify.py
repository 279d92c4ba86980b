"""``goatpose verify``: the heatmaps of two artefacts compared (``export.parity.verify_runners``)."""

from goatpose_edge.cli.common import add_trust_argument, io_none, positive_float

NAME = "verify"
HELP = "compare the heatmaps of two artefacts (.pth, .onnx)"
OUTPUT_FLAGS = ()
io_plan = io_none


def add_arguments(parser) -> None:
    from goatpose_edge.compare import tolerance

    default = tolerance("export")
    parser.add_argument("reference", metavar="A", help="reference artefact")
    parser.add_argument("test", metavar="B", help="artefact under test")
    parser.add_argument("--model", help="model name for a .pth that does not record it")
    parser.add_argument("--image", action="append", default=[], metavar="IMG[@x,y,w,h]",
                        help="person photo (and box) to compare on, besides seeded random input; repeatable")
    parser.add_argument("--tolerance", type=positive_float, default=default.max_rel,
                        help="max abs error / max|A| (default {})".format(default.text()))
    add_trust_argument(parser)


def run(args) -> int:
    from goatpose_edge.export.parity import check, verify_runners
    from goatpose_edge.runtime import load_runner

    options = {"model_name": args.model, "trusted": args.trust_checkpoint}  # for a checkpoint; others record it
    with load_runner(args.reference, **options) as reference, load_runner(args.test, **options) as test:
        reports = verify_runners(reference, test, args.image, args.tolerance)
    for report in reports:
        print("{} vs {}: {}".format(reference.backend, test.backend, report.line()))
    check(reports, "{} vs {}".format(args.reference, args.test))
    return 0
