"""``goatpose dashboard``: every device publishing poses (``goatpose video --publish``) on one page in a browser
(``mqtt.dashboard``)."""

import sys

from goatpose_edge.cli.common import UsageError, add_mqtt_tls_arguments, mqtt_broker, positive_float, positive_int
from goatpose_edge.cli.serve_options import add_access_arguments, serve_access
from goatpose_edge.fileio import IOPlan

NAME = "dashboard"
HELP = "a fleet's poses live in a browser: a tile per device and stream drawn from its MQTT messages (no video)"
OUTPUT_FLAGS = ()


def add_arguments(parser) -> None:
    from goatpose_edge.mqtt.dashboard import DashboardOptions

    defaults = DashboardOptions()
    parser.add_argument("broker", metavar="mqtt://HOST[:PORT][/PREFIX]",
                        help="the broker and topic prefix the devices publish to (mqtts:// for TLS; a user as "
                        "mqtt://USER@HOST, the password from GOATPOSE_MQTT_PASSWORD)")
    add_access_arguments(parser, "serve the page at http://HOST:PORT/, required", defaults.clients)
    parser.add_argument("--updates-per-s", type=positive_float, default=defaults.updates_per_s, metavar="N",
                        help="updates sent to each page per second, at most, each the newest of every tile "
                        "({:g})".format(defaults.updates_per_s))
    parser.add_argument("--max-tiles", type=positive_int, default=defaults.max_tiles, metavar="N",
                        help="device/stream tiles kept, at most; messages of more are skipped and counted "
                        "({})".format(defaults.max_tiles))
    add_mqtt_tls_arguments(parser)


def _plan(args):
    """(broker url, TLS files, DashboardOptions) of the arguments; ``UsageError`` for what cannot work."""
    from goatpose_edge.mqtt.dashboard import DashboardOptions

    url, tls = mqtt_broker(args)
    if args.serve is None:
        raise UsageError("--serve [HOST:]PORT is required: where the page is served, e.g. --serve 8080")
    host, port, token = serve_access(args)
    defaults = DashboardOptions()
    try:
        options = DashboardOptions(host, port, token, args.serve_clients or defaults.clients, args.updates_per_s,
                                   args.max_tiles).check()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return url, tls, options


def io_plan(args) -> IOPlan:
    _plan(args)
    return IOPlan()


def run(args) -> int:
    from goatpose_edge.mqtt.dashboard import Dashboard

    url, tls, options = _plan(args)
    dashboard = Dashboard(url, options, tls, log=lambda line: print(line, file=sys.stderr, flush=True))
    dashboard.open()
    try:
        dashboard.wait()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the normal way to stop a dashboard
        print("dashboard stopped", file=sys.stderr)
    return 0
