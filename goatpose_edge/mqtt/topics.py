"""The topic layout, versioned (``v1``), shared by the publisher and ``goatpose listen``::

    PREFIX/v1/DEVICE/STREAM/frame   QoS 1          one per frame: the JSONL record + device, stream, run, seq, ...
    PREFIX/v1/DEVICE/STREAM/track   QoS 1          a followed person's start and end
    PREFIX/v1/DEVICE/STREAM/meta    QoS 1, retained source, resolution, fps, model, keypoint names, skeleton
    PREFIX/v1/DEVICE/status         QoS 1, retained online (with the streams) / offline (also the last will)
    PREFIX/v1/DEVICE/stats          QoS 0          every few seconds: fps, persons/s, drops, queue, spool, messages

A device id and a stream name are single topic levels: no ``/``, ``+``, ``#`` or control characters.
"""

import re
from typing import Optional, Tuple

#: the layout's version, a topic level (a consumer subscribes to the version it understands)
VERSION = "v1"

#: the kinds of message per stream, and per device
STREAM_KINDS = ("frame", "track", "meta")
DEVICE_KINDS = ("status", "stats")

_LEVEL = re.compile(r"[^/+#\x00-\x1f\x7f]+")


def valid_level(text: str) -> bool:
    return bool(_LEVEL.fullmatch(text or ""))


class Topics:
    """The topics of one device under ``prefix``."""

    def __init__(self, prefix: str, device: str):
        self.prefix, self.device = prefix, device
        self.base = "{}/{}/{}".format(prefix, VERSION, device)

    def stream(self, stream, kind: str) -> str:
        return "{}/{}/{}".format(self.base, stream, kind)

    @property
    def status(self) -> str:
        return self.base + "/status"

    @property
    def stats(self) -> str:
        return self.base + "/stats"


def subscription(prefix: str, device: Optional[str] = None) -> str:
    """What a consumer subscribes to: every device's messages (or one device's) under ``prefix``."""
    return "{}/{}/{}/#".format(prefix, VERSION, device or "+")


def parse_topic(prefix: str, topic: str) -> Optional[Tuple[str, Optional[str], str]]:
    """(device, stream or None, kind) of a topic of this layout under ``prefix``; None for anything else."""
    head = "{}/{}/".format(prefix, VERSION)
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) == 2 and parts[1] in DEVICE_KINDS:
        return parts[0], None, parts[1]
    if len(parts) == 3 and parts[2] in STREAM_KINDS:
        return parts[0], parts[1], parts[2]
    return None
