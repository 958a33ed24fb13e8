"""Chapter 04's own live client: one that answers the server's acknowledgements.

``socketio.SimpleClient`` acknowledges every event at once with no arguments, so it
cannot show what a client answers, nor a client that never answers.
"""
import queue
import threading

import pytest
import socketio


class AnsweringClient:
    """A real ``socketio.Client`` that records every event and answers acks from ``answers``.

    Events named in ``silent`` are never answered: their handler holds on until ``close``.
    """

    def __init__(self, url, answers, silent):
        self.answers = answers
        self.silent = silent
        self.events = queue.Queue()
        self.released = threading.Event()
        self.sio = socketio.Client()
        self.sio.on("*", self.record)
        self.sio.connect(url, transports=["websocket"], wait_timeout=5)

    def record(self, event, *args):
        """Keep the event for ``receive``; what this returns is the client's acknowledgement."""
        self.events.put([event, *args])
        if event in self.silent:
            self.released.wait()  # python-socketio runs each handler in its own thread
        return self.answers.get(event)

    def emit(self, event, data):
        self.sio.emit(event, data)

    def receive(self, timeout=5):
        """The next event, as ``[name, *args]``, waiting at most ``timeout`` seconds."""
        return self.events.get(timeout=timeout)

    def close(self):
        """Let held handlers go, then disconnect."""
        self.released.set()
        self.sio.disconnect()


@pytest.fixture
def answering(server):
    """Connect live clients that answer the server's acknowledgements as told."""
    clients = []

    def answering(answers=None, silent=()):
        client = AnsweringClient(server.url, answers or {}, silent)
        clients.append(client)
        return client

    yield answering
    for client in clients:
        client.close()
