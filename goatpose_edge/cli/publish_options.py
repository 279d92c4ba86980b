"""``goatpose video``'s MQTT options (``--publish`` and its company): defaults from ``mqtt.publisher.PublishOptions``,
checked before any work (a malformed URL, TLS files that do not go together: exit 2), and the publisher sink."""

from goatpose_edge.cli.common import UsageError


def add_publish_arguments(parser) -> None:
    from goatpose_edge.mqtt.client import PASSWORD_VARIABLE
    from goatpose_edge.mqtt.publisher import PublishOptions

    defaults = PublishOptions(url="")
    group = parser.add_argument_group("results off the device (MQTT)")
    group.add_argument("--publish", metavar="mqtt://[USER@]HOST[:PORT][/PREFIX]",
                       help="publish every frame's record to an MQTT broker (mqtts:// for TLS; the password from "
                       "{}); topics PREFIX/v1/DEVICE/STREAM/frame|track|meta, PREFIX/v1/DEVICE/status|stats".format(
                           PASSWORD_VARIABLE))
    group.add_argument("--device-id", metavar="ID", help="this device's topic level (default: the host name)")
    group.add_argument("--spool", metavar="DIR", help="where messages wait for the broker's acknowledgement "
                       "(default: ~/.cache/goatpose/spool/DEVICE); the next run sends what is left first")
    group.add_argument("--spool-max-mb", type=float, default=defaults.spool_max_mb, metavar="MB",
                       help="the spool's bound: beyond it the oldest messages are dropped and counted ({:g})".format(
                           defaults.spool_max_mb))
    group.add_argument("--mqtt-ca", metavar="CA.pem", help="mqtts://: the CA that signs the broker's certificate")
    group.add_argument("--mqtt-cert", metavar="CERT.pem", help="mqtts://: this device's certificate")
    group.add_argument("--mqtt-key", metavar="KEY.pem", help="mqtts://: this device's key")
    group.add_argument("--mqtt-keepalive", type=int, default=defaults.keepalive, metavar="S",
                       help="seconds: a device gone without a word is shown offline within 1.5 x this ({})".format(
                           defaults.keepalive))


def publish_options(args):
    """``PublishOptions`` from the arguments (None without --publish); a mistake is a ``UsageError``."""
    from goatpose_edge.mqtt.client import BrokerError
    from goatpose_edge.mqtt.publisher import PublishOptions

    flags = [f for f, v in (("--device-id", args.device_id), ("--spool", args.spool), ("--mqtt-ca", args.mqtt_ca),
                            ("--mqtt-cert", args.mqtt_cert), ("--mqtt-key", args.mqtt_key)) if v]
    if not args.publish:
        if flags:
            raise UsageError("{} need{} --publish mqtt://HOST".format(", ".join(flags), "s" if len(flags) == 1
                                                                       else ""))
        return None
    if args.mqtt_keepalive < 1:
        raise UsageError("--mqtt-keepalive must be >= 1 s, got {}".format(args.mqtt_keepalive))
    try:
        return PublishOptions(url=args.publish, device_id=args.device_id, spool=args.spool,
                              spool_max_mb=args.spool_max_mb, ca=args.mqtt_ca, cert=args.mqtt_cert,
                              key=args.mqtt_key, keepalive=args.mqtt_keepalive).check()
    except BrokerError as exc:
        raise UsageError(str(exc)) from None


def publish_sinks(args, log) -> list:
    """The publisher sink when --publish is given."""
    options = publish_options(args)
    if options is None:
        return []
    from goatpose_edge.mqtt.publisher import MqttPublisher

    return [MqttPublisher(options, log)]
