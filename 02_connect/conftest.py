"""Chapter 02's own fixtures: clients that join /test under a name, at each level."""
import pytest
import socketio


@pytest.fixture
def client_named(chapter, app):
    """Connect in-process test clients to /test under a name (the root ``client``, with a name)."""
    clients = []

    def client_named(name):
        client = chapter.socketio.test_client(app, namespace="/test", auth={"name": name})
        assert client.is_connected("/test"), f"{name} was refused"
        clients.append(client)
        return client

    yield client_named
    for client in clients:
        if client.is_connected("/test"):
            client.disconnect("/test")


@pytest.fixture
def connect_named(connect):
    """Connect real clients to /test on the live server under a name (the root ``connect``), welcome read."""

    def connect_named(name):
        sio = connect(namespace="/test", auth={"name": name})
        assert sio.receive(timeout=5)[0] == "my response"
        return sio

    return connect_named


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
