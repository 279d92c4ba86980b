"""A real Mosquitto broker for the tests, on a free loopback port (Debian package ``mosquitto``; ``make test``
installs it where it is missing and it can, as root). ``MOSQUITTO`` is None when it is not installed: the tests that
need it skip with one line naming the package."""

import os
import shutil
import signal
import socket
import subprocess
import time

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")
                                               if os.path.exists(p)), None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if os.path.exists("/usr/bin/mosquitto_passwd") else None)
MISSING = "mosquitto is not installed (Debian package mosquitto: make test installs it as root)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """One broker process: ``start``, ``kill(signal)``, ``restart``, ``stop``; persistence saved on every change
    (a SIGKILL loses nothing it acknowledged); ``users`` {name: password} turns anonymous access off."""

    def __init__(self, folder: str, port: int = None, users: dict = None, tls: "Certificates" = None):
        self.folder, self.port, self.users, self.tls = folder, port or free_port(), users, tls
        self.process = None
        os.makedirs(folder, exist_ok=True)
        lines = ["listener {} 127.0.0.1".format(self.port), "persistence true",
                 "persistence_location {}/".format(folder), "autosave_interval 1", "autosave_on_changes true",
                 "log_dest file {}".format(os.path.join(folder, "mosquitto.log"))]
        if tls is not None:
            lines += ["cafile {}".format(tls.ca), "certfile {}".format(tls.cert), "keyfile {}".format(tls.key)]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # as root it drops to user mosquitto, who cannot read
            lines.append("user root")                      # pytest's private temporary folders
        if users:
            passwd = os.path.join(folder, "passwd")
            open(passwd, "w").close()
            for name, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", passwd, name, password], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            lines += ["allow_anonymous false", "password_file {}".format(passwd)]
        else:
            lines.append("allow_anonymous true")
        self.config = os.path.join(folder, "mosquitto.conf")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return "{}://127.0.0.1:{}".format("mqtts" if self.tls else "mqtt", self.port)

    def start(self) -> "Mosquitto":
        self.process = subprocess.Popen([MOSQUITTO, "-c", self.config], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:  # a test helper waiting for a server to listen
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("mosquitto exited: see {}".format(os.path.join(self.folder, "mosquitto.log")))
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen on port {} within 10 s".format(self.port))

    def kill(self, signum=signal.SIGKILL) -> None:
        self.process.send_signal(signum)
        if signum in (signal.SIGKILL, signal.SIGTERM):
            self.process.wait(10)

    def restart(self) -> "Mosquitto":
        return self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)


OPENSSL = shutil.which("openssl")


class Certificates:
    """A CA and a broker certificate for 127.0.0.1 signed by it (openssl), in ``folder``."""

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        self.ca, self.cert, self.key = (os.path.join(folder, n) for n in ("ca.crt", "broker.crt", "broker.key"))
        ca_key, request = os.path.join(folder, "ca.key"), os.path.join(folder, "broker.csr")
        extensions = os.path.join(folder, "san.ext")
        with open(extensions, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        for command in (
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", self.ca, "-days", "2",
                 "-subj", "/CN=goatpose test CA"],
                ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", request, "-subj",
                 "/CN=127.0.0.1"],
                ["x509", "-req", "-in", request, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial", "-out",
                 self.cert, "-days", "2", "-extfile", extensions]):
            subprocess.run([OPENSSL] + command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
