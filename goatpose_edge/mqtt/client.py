"""The broker address and the one compatibility point with paho-mqtt: 1.6.1 (the last release for Python 3.6, the
TX2's JetPack 4.6) and 2.x (newer Pythons) differ in how a client is made and in their callbacks' arguments.

    url = parse_broker_url("mqtt://pose@broker.lan:1883/site-a")     # scheme, user, host, port, prefix
    client = new_client("goatpose-jetson-1", url, TlsFiles(), on_connect=..., on_disconnect=..., on_publish=...)

``new_client`` returns a paho ``Client`` (MQTT 3.1.1) whose callbacks are ours with plain arguments:
``on_connect(rc: int)``, ``on_disconnect(rc: int)``, ``on_publish(mid: int)``, ``on_message(topic, payload: bytes)``.
The password comes from ``GOATPOSE_MQTT_PASSWORD`` (never the command line: it would show in ``ps``).
"""

import os
import re
import ssl
import time
from typing import Callable, Optional, Tuple

from goatpose_edge.errors import GoatPoseError

#: where the password comes from
PASSWORD_VARIABLE = "GOATPOSE_MQTT_PASSWORD"

#: the default topic prefix
DEFAULT_PREFIX = "goatpose"

#: CONNACK return codes of MQTT 3.1.1 that will not fix themselves by retrying
CONNACK_REFUSALS = {1: "the broker does not speak MQTT 3.1.1", 2: "the client id was refused",
                    4: "bad user name or password", 5: "not authorised"}


class BrokerError(GoatPoseError):
    """A broker URL, login or TLS setting that cannot work."""


def refusal(code: Optional[int]) -> str:
    """What a refused login's CONNACK code means, with what to check for a bad login."""
    return CONNACK_REFUSALS.get(code, "code {}".format(code)) + (
        " (check the user in the URL and the password in {})".format(PASSWORD_VARIABLE) if code in (4, 5) else "")


def wait_for_answer(cond, answer: Callable[[], Tuple[bool, Optional[int]]], timeout_s: float
                    ) -> Tuple[bool, Optional[int]]:
    """Wait until the broker answered the login or ``timeout_s`` passed: ``answer()`` is (connected, refused CONNACK
    code or None), read under ``cond``, which the client's ``on_connect`` notifies (paho's thread)."""
    with cond:
        deadline = time.monotonic() + timeout_s
        connected, refused = answer()
        while not connected and refused is None and time.monotonic() < deadline:
            cond.wait(max(0.0, deadline - time.monotonic()))
            connected, refused = answer()
    return connected, refused


def connect_and_wait(client, url: "BrokerUrl", keepalive: int, cond, answer: Callable[[], Tuple[bool, Optional[int]]],
                     timeout_s: float) -> None:
    """Connect a ``new_client`` client, start its loop and wait for the login's answer (``wait_for_answer``); a
    broker that cannot be reached, refuses the login or stays silent is one ``BrokerError`` line, the loop stopped.
    For the clients that need the broker now (listen, dashboard); the publisher spools while it is away."""
    try:
        client.connect(url.host, url.port, keepalive=keepalive)
    except (OSError, ValueError) as exc:
        raise BrokerError("cannot reach the broker {}: {}".format(url.describe(), getattr(
            exc, "strerror", None) or exc)) from None
    client.loop_start()
    try:
        connected, refused = wait_for_answer(cond, answer, timeout_s)
    except BaseException:  # Ctrl-C while waiting: no connection left behind
        client.disconnect()
        client.loop_stop()
        raise
    if not connected:
        client.disconnect()
        client.loop_stop()
        raise BrokerError("broker {} {}".format(url.describe(), "refused the login: " + refusal(refused)
                                                if refused is not None
                                                else "did not answer within {:g} s".format(timeout_s)))


class BrokerUrl:
    """``mqtt://[USER@]HOST[:PORT][/PREFIX]`` or ``mqtts://...`` (TLS, port 8883 by default)."""

    def __init__(self, scheme: str, host: str, port: int, user: Optional[str], prefix: str):
        self.scheme, self.host, self.port, self.user, self.prefix = scheme, host, port, user, prefix

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def describe(self) -> str:
        return "{}://{}{}:{}/{}".format(self.scheme, self.user + "@" if self.user else "", self.host, self.port,
                                        self.prefix)


def parse_broker_url(text: str, option: str = "--publish") -> BrokerUrl:
    """The parts of a broker URL, or one ``BrokerError`` line saying what is wrong."""
    match = re.fullmatch(r"(mqtts?)://(?:([^@/:\s]+)@)?(\[[0-9a-fA-F:]+\]|[^@/:\s\[\]]+)(?::(\d+))?(?:/(.*))?",
                         text or "")
    if not match:
        raise BrokerError("{} {!r}: expected mqtt://[USER@]HOST[:PORT][/PREFIX] or mqtts://... (the password comes "
                          "from {})".format(option, text, PASSWORD_VARIABLE))
    scheme, user, host, port, prefix = match.groups()
    port_number = int(port) if port else (8883 if scheme == "mqtts" else 1883)
    if not 0 < port_number < 65536:
        raise BrokerError("{} {}: port {} is outside 1..65535".format(option, text, port_number))
    prefix = (prefix or DEFAULT_PREFIX).strip("/")
    from goatpose_edge.mqtt.topics import valid_level

    if not prefix or not all(valid_level(part) for part in prefix.split("/")):
        raise BrokerError("{} {}: the topic prefix {!r} must be non-empty levels without + or #".format(
            option, text, prefix))
    return BrokerUrl(scheme, host.strip("[]"), port_number, user, prefix)


class TlsFiles:
    """``--mqtt-ca``, ``--mqtt-cert``, ``--mqtt-key``: the CA that signs the broker's certificate (None: the
    system's), and this device's certificate and key for brokers that require one."""

    def __init__(self, ca: Optional[str] = None, cert: Optional[str] = None, key: Optional[str] = None):
        self.ca, self.cert, self.key = ca, cert, key

    def check(self, url: BrokerUrl) -> None:
        given = [(flag, path) for flag, path in (("--mqtt-ca", self.ca), ("--mqtt-cert", self.cert),
                                                 ("--mqtt-key", self.key)) if path]
        if given and not url.tls:
            raise BrokerError("{} given with {}: TLS needs an mqtts:// URL".format(given[0][0], url.describe()))
        if bool(self.cert) != bool(self.key):
            raise BrokerError("--mqtt-cert and --mqtt-key go together (this device's certificate and its key)")
        for flag, path in given:
            if not os.path.isfile(path):
                raise BrokerError("{} {}: not found".format(flag, path))


def paho_version() -> str:
    try:
        import paho.mqtt
    except ImportError:
        raise BrokerError("publishing needs paho-mqtt: pip install 'paho-mqtt==1.6.1' on Python 3.6 (JetPack 4.6), "
                          "'paho-mqtt>=2' elsewhere") from None
    return paho.mqtt.__version__


#: paho 2.x reports an MQTT 3.1.1 CONNACK refusal as the MQTT 5 reason code: back to 3.1.1's
_CONNACK_FROM_V5 = {132: 1, 133: 2, 136: 3, 134: 4, 135: 5}


def _code(value) -> int:
    """A paho 1.x int or a 2.x ReasonCode as the MQTT 3.1.1 CONNACK / disconnect code."""
    code = int(getattr(value, "value", value) or 0)
    return _CONNACK_FROM_V5.get(code, code) if hasattr(value, "value") else code


def new_client(client_id: str, url: BrokerUrl, tls: TlsFiles, on_connect: Callable[[int], None] = lambda rc: None,
               on_disconnect: Callable[[int], None] = lambda rc: None,
               on_publish: Callable[[int], None] = lambda mid: None,
               on_message: Optional[Callable[[str, bytes], None]] = None, environ=None, clean_session: bool = True):
    """A paho client for ``url`` with our callbacks (see the module docstring); not connected yet. ``clean_session``
    False: the broker keeps this client id's subscriptions and queues its QoS 1 messages while it is away."""
    version = paho_version()
    import paho.mqtt.client as mqtt

    if int(version.split(".")[0]) >= 2:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                             protocol=mqtt.MQTTv311)
        client.on_connect = lambda c, u, flags, rc, props=None: on_connect(_code(rc))
        client.on_disconnect = lambda c, u, flags, rc, props=None: on_disconnect(_code(rc))
        client.on_publish = lambda c, u, mid, rc=None, props=None: on_publish(mid)
    else:
        client = mqtt.Client(client_id=client_id, clean_session=clean_session, protocol=mqtt.MQTTv311)
        client.on_connect = lambda c, u, flags, rc: on_connect(_code(rc))
        client.on_disconnect = lambda c, u, rc: on_disconnect(_code(rc))
        client.on_publish = lambda c, u, mid: on_publish(mid)
    if on_message is not None:
        client.on_message = lambda c, u, message: on_message(message.topic, message.payload)
    environ = os.environ if environ is None else environ
    if url.user:
        client.username_pw_set(url.user, environ.get(PASSWORD_VARIABLE))
    if url.tls:
        tls.check(url)
        try:
            client.tls_set(ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key, cert_reqs=ssl.CERT_REQUIRED)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise BrokerError("TLS for {}: {}".format(url.describe(), exc)) from exc
    else:
        tls.check(url)
    client.reconnect_delay_set(min_delay=1, max_delay=30)  # backoff while the broker is away
    return client
