"""``goatpose video --serve [HOST:]PORT``: the live view's options (``video.live``), kept apart from the video
command's own so that other outputs can add theirs beside them; ``add_access_arguments`` and ``serve_access`` are the
part ``goatpose dashboard`` shares (address, token, client limit).

``add_serve_arguments(parser)`` adds them, ``check_serve_usage(args)`` refuses their mistakes (exit 2, from the
command's ``check_usage``), ``serve_sinks(args)`` is the sinks they ask for (none without ``--serve``).
"""

import os
import sys
from typing import List, Optional, Tuple

from goatpose_edge.cli.common import UsageError, positive_float, positive_int

SERVE_FLAGS = ("--serve-token", "--serve-width", "--serve-fps", "--serve-clients")


def add_access_arguments(parser, serve_help: str, clients: int) -> None:
    """--serve, --serve-token, --serve-clients: what every page served from the standard library takes (``web``)."""
    from goatpose_edge.web import TOKEN_ENV

    parser.add_argument("--serve", metavar="[HOST:]PORT", help=serve_help + " (HOST 127.0.0.1; any other address "
                        "needs --serve-token)")
    parser.add_argument("--serve-token", metavar="TOKEN",
                        help="--serve: the token every request must carry (?token= or Authorization: Bearer); "
                        "default ${} (an environment variable keeps it out of the process list)".format(TOKEN_ENV))
    parser.add_argument("--serve-clients", type=positive_int, metavar="N",
                        help="--serve: requests served at once, at most ({})".format(clients))


def serve_access(args, environ=None) -> Tuple[str, int, Optional[str]]:
    """(host, port, token) of --serve and --serve-token (else ``GOATPOSE_SERVE_TOKEN``); ``UsageError`` for a
    malformed address or a token with a control character."""
    from goatpose_edge.web import TOKEN_ENV, check_token, parse_address

    environ = os.environ if environ is None else environ
    token = args.serve_token if args.serve_token is not None else environ.get(TOKEN_ENV)
    try:
        host, port = parse_address(args.serve)
    except ValueError as exc:
        raise UsageError("--serve {}".format(exc)) from None
    try:
        if token is not None:
            check_token(token, "--serve-token" if args.serve_token is not None else TOKEN_ENV)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return host, port, token


def add_serve_arguments(parser) -> None:
    from goatpose_edge.video.live import LiveOptions

    defaults = LiveOptions()
    add_access_arguments(parser, "show every stream's overlay and figures live in a browser at http://HOST:PORT/",
                         defaults.clients)
    parser.add_argument("--serve-width", type=positive_int, metavar="PX",
                        help="--serve: streamed overlays at most PX wide ({})".format(defaults.width))
    parser.add_argument("--serve-fps", type=positive_float, metavar="FPS",
                        help="--serve: streamed overlays per second per stream, at most ({:g})".format(defaults.fps))


def serve_options(args, environ=None):
    """``LiveOptions`` from the arguments (None without ``--serve``); ``UsageError`` for a malformed address, a bad
    token, a non-loopback address without one, or ``--serve-*`` without ``--serve``."""
    from goatpose_edge.video.live import LiveOptions

    given = [flag for flag in SERVE_FLAGS if getattr(args, flag[2:].replace("-", "_")) is not None]
    if args.serve is None:
        if given:
            raise UsageError("{} set{} the live view: add --serve [HOST:]PORT".format(
                ", ".join(given), "s" if len(given) == 1 else ""))
        return None
    defaults = LiveOptions()
    host, port, token = serve_access(args, environ)
    try:
        return LiveOptions(host, port, token, args.serve_width or defaults.width, args.serve_fps or defaults.fps,
                           args.serve_clients or defaults.clients).check()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_serve_usage(args) -> None:
    serve_options(args)


def serve_sinks(args) -> List:
    """The live view ``--serve`` asks for, as a sink for ``video.app.run_video`` (none without it)."""
    from goatpose_edge.video.live import LiveView

    options = serve_options(args)  # type: Optional[object]
    if options is None:
        return []
    return [LiveView(options, log=lambda line: print(line, file=sys.stderr))]
