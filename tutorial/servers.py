"""Run a chapter's ``app.py`` as a real server process on a free local port."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from . import chapter_dir


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ChapterServer:
    """A chapter started as ``python app.py`` in its folder, as a learner would.

    ``start()`` returns once the page answers over HTTP (or raises with the
    server's output); ``stop()`` sends Ctrl-C to the whole process group and
    kills it if it lingers, so no process outlives the caller.
    """

    def __init__(self, chapter, async_mode="threading", port=None, env=None):
        self.folder = chapter_dir(str(chapter))
        self.async_mode = async_mode
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PORT": str(self.port), "ASYNC_MODE": async_mode,
                    "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = None
        self._log = None
        self._output = ""

    def start(self, timeout=30):
        """Start the process and wait, up to ``timeout`` seconds, until it serves."""
        self._log = tempfile.TemporaryFile(mode="w+", prefix=f"{self.folder.name}-")
        self.process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=self.folder, env=self.env,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.folder.name} exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)  # not synchronisation: the pause between two polls
        self.stop()
        raise TimeoutError(f"{self.folder.name} did not answer within {timeout}s:\n{self.output()}")

    def stop(self, timeout=10):
        """Stop as Ctrl-C would; kill the process group if it is still there after ``timeout``."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass  # it had exited already
        if self._log is not None:
            self._output = self.output()
            log, self._log = self._log, None
            log.close()

    def wait_for_output(self, text, timeout=5):
        """Whether the server prints ``text`` within ``timeout`` seconds (a poll on its log)."""
        deadline = time.monotonic() + timeout
        while text not in self.output() and time.monotonic() < deadline:
            time.sleep(0.05)  # not synchronisation: the pause between two polls
        return text in self.output()

    def output(self):
        """Everything the server printed so far (its log)."""
        return self.output_after(0).decode(errors="replace")

    def output_after(self, offset):
        """The bytes the server printed after the first ``offset``.

        Read with ``pread``: the process shares this file's position, so a seek here would
        make its next line land at the start of the file.
        """
        try:
            return os.pread(self._log.fileno(), os.fstat(self._log.fileno()).st_size, offset)
        except (AttributeError, ValueError, OSError):  # stopped: its log was kept, the file closed
            return self._output.encode()[offset:]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
