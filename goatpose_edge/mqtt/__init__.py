"""Results off the device over MQTT: the publisher sink of ``goatpose video --publish`` (``publisher``), its on-disk
spool (``spool``), the topic layout (``topics``), the broker URL and the paho-mqtt compatibility point (``client``),
and ``goatpose listen`` (``listener``). Device side: paho-mqtt and the standard library, Python 3.6."""
