"""The suite's waiting vocabulary: three ways to wait for something with a deadline, never a sleep.

- ``until(check)``: poll any condition (a log line, a process gone, a Redis key) until it holds;
- ``received_until(client, event)``: an in-process test client's events, up to and including ``event``;
- ``next_event(sio, event)``: the payload of the next ``event`` a live ``socketio.SimpleClient`` receives;
- ``received(client)``: what an in-process test client got since last asked, as (name, argument) pairs.
"""
import importlib.util
import itertools
import sys
import time

POLL = 0.01  # seconds between two looks: not synchronisation, the pause of a poll
_imports = itertools.count()


def until(check, timeout=5, what=None):
    """The first truthy value of ``check()``, polled until ``timeout`` seconds pass (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout}s: {what or check}"
        time.sleep(POLL)


def received_until(client, event, timeout=5):
    """Everything an in-process test client received, polled until it includes ``event`` (then returned)."""
    received = []

    def arrived():
        received.extend(client.get_received())
        return any(e["name"] == event for e in received)

    until(arrived, timeout, what=f"{event!r} among {received}")
    return received


def received(client, namespace="/"):
    """The events an in-process client got in ``namespace`` since last asked, as (name, first argument) pairs."""
    # The test client keeps a 'message' event's text as is, and other events' arguments in a list.
    return [(event["name"], event["args"] if event["name"] == "message" else event["args"][0])
            for event in client.get_received(namespace)]


def next_event(sio, event, timeout=5):
    """The payload of the next ``event`` a live client receives (None if it has none), skipping the others.

    Several arguments come back as a list.
    """
    deadline = time.monotonic() + timeout
    while True:
        name, *args = sio.receive(timeout=max(deadline - time.monotonic(), POLL))
        if name == event:
            return args[0] if len(args) == 1 else (args or None)


def load_chapter(folder):
    """Import a chapter's ``app.py`` as a new module, so every test starts from fresh state."""
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # its own modules (chapter 10's store), as when it runs from its folder
    name = f"chapter_{folder.name}_{next(_imports)}"
    spec = importlib.util.spec_from_file_location(name, folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Flask locates the chapter's templates through it
    spec.loader.exec_module(module)
    return module
