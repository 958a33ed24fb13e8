"""Chapter 02's own fixtures: clients that join /test under a name, at each level."""
import time

import pytest
import socketio


@pytest.fixture
def join(chapter, app):
    """Connect in-process test clients to /test under a name."""
    clients = []

    def join(name):
        client = chapter.socketio.test_client(app, namespace="/test", auth={"name": name})
        assert client.is_connected("/test"), f"{name} was refused"
        clients.append(client)
        return client

    yield join
    for client in clients:
        if client.is_connected("/test"):
            client.disconnect("/test")


@pytest.fixture
def live_join(connect):
    """Connect real clients to /test on the live server under a name, their welcome already read."""

    def live_join(name):
        sio = connect(namespace="/test", auth={"name": name})
        assert sio.receive(timeout=5)[0] == "my response"
        return sio

    return live_join


@pytest.fixture
def refusal(server):
    """Try to connect to /test with ``auth``; return what the client's connect_error received."""

    def refusal(auth):
        client = socketio.Client()
        received = []
        client.on("connect_error", received.append, namespace="/test")
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(server.url, namespaces=["/test"], auth=auth, transports=["websocket"], wait_timeout=5)
        client.disconnect()
        return received

    return refusal


def eventually(condition, failure, timeout=5):
    """Poll ``condition`` until it holds; fail with ``failure()`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure()
        time.sleep(0.05)  # not synchronisation: the pause between two polls
    return True


@pytest.fixture
def server_says(server):
    """Wait, up to five seconds, until the live server has printed a line containing ``text``."""

    def server_says(text):
        assert server.wait_for_output(text), f"the server never printed {text!r}:\n{server.output()}"
        return True

    return server_says


@pytest.fixture
def hung_up():
    """Wait, up to five seconds, until a live client has seen the server close its connection."""
    return lambda sio: eventually(lambda: not sio.connected, lambda: "the client is still connected")
