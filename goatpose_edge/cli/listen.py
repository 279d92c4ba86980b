"""``goatpose listen``: the other end of ``goatpose video --publish`` (``mqtt.listener``)."""

import sys

from goatpose_edge.cli.common import add_mqtt_tls_arguments, mqtt_broker
from goatpose_edge.fileio import IOPlan

NAME = "listen"
HELP = "subscribe to devices publishing poses (goatpose video --publish): live lines, JSONL archive per stream"
OUTPUT_FLAGS = ("--out",)


def add_arguments(parser) -> None:
    parser.add_argument("broker", metavar="mqtt://HOST[:PORT][/PREFIX]",
                        help="the broker and topic prefix the devices publish to (mqtts:// for TLS; a user as "
                        "mqtt://USER@HOST, the password from GOATPOSE_MQTT_PASSWORD)")
    parser.add_argument("--device", metavar="ID", help="only this device")
    parser.add_argument("--out", metavar="DIR", help="append each stream's frames to DIR/DEVICE/STREAM.jsonl, "
                        "every frame once (de-duplicated by run and seq)")
    parser.add_argument("--client-id", metavar="ID", help="this listener's MQTT client id; the broker keeps its session "
                        "and queues what arrives while it is away (default: goatpose-listen-HOST-PREFIX-DEVICE)")
    add_mqtt_tls_arguments(parser)


def io_plan(args) -> IOPlan:
    mqtt_broker(args)
    plan = IOPlan()
    if args.out:
        plan.write(args.out, "--out", folder=True, exist_ok=True)
    return plan


def run(args) -> int:
    from goatpose_edge.mqtt.listener import Listener

    url, tls = mqtt_broker(args)
    listener = Listener(url, device=args.device, out=args.out, tls=tls, client_id=args.client_id,
                        print_line=lambda line: print(line, flush=True))
    try:
        listener.run()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the normal way to stop a listener
        print("stopped", file=sys.stderr)
    return 0
