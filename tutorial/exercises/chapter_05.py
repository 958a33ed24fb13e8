"""Chapter 05's exercises (05_broadcast/README.md, "Now you try")."""
from . import events, exercise, fresh_app


def sid_of(chapter, client):
    return chapter.socketio.server.manager.sid_from_eio_sid(client.eio_sid, "/")


@exercise("Tell the others who is typing")
def typing(chapter):
    app = fresh_app(chapter)
    ana, bob, cy = (chapter.socketio.test_client(app) for _ in range(3))
    for client in (ana, bob, cy):
        client.get_received()
    ana.emit("typing")
    heard = {name: events(client, "typing") for name, client in (("bob", bob), ("cy", cy), ("ana", ana))}
    assert heard["bob"] or heard["ana"], "nobody got a 'typing' event after Ana sent 'typing'"
    assert not heard["ana"], "Ana, who is typing, got her own 'typing' event: leave the sender out"
    assert heard["bob"] and heard["cy"], "not every other client got the 'typing' event"
    assert heard["bob"][0] == {"sid": sid_of(chapter, ana)}, (
        f"the others got 'typing' {heard['bob'][0]!r}, not {{'sid': <Ana's sid>}}")


@exercise("Count the listeners out loud")
def listeners(chapter):
    app = fresh_app(chapter)
    ana = chapter.socketio.test_client(app)
    bob = chapter.socketio.test_client(app)
    counts = [event.get("count") for event in events(ana, "listeners")]
    assert counts, "Ana got no 'listeners' event when she and Bob connected"
    assert counts[-1] == 2, f"after Bob connected Ana was told 'listeners' {counts}, ending in 2"
    bob.disconnect()
    counts = [event.get("count") for event in events(ana, "listeners")]
    assert counts == [1], f"after Bob left Ana was told 'listeners' {counts}, not [1]"
