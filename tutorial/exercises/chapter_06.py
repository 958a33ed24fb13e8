"""Chapter 06's exercises (06_rooms/README.md, "Now you try")."""
from . import events, exercise, fresh_app


def rooms_of(chapter, client):
    server = chapter.socketio.server
    return set(server.manager.get_rooms(server.manager.sid_from_eio_sid(client.eio_sid, "/"), "/"))


@exercise("A room per team")
def team_room(chapter):
    app = fresh_app(chapter)
    ana = chapter.socketio.test_client(app, auth={"username": "ana", "team": "red"})
    assert ana.is_connected(), "a connection with auth {username: 'ana', team: 'red'} was refused"
    assert "team:red" in rooms_of(chapter, ana), (
        f"Ana, of team red, is in the rooms {sorted(rooms_of(chapter, ana))}, not in 'team:red'")
    bob = chapter.socketio.test_client(app, auth={"username": "bob"})
    assert bob.is_connected(), "a connection without a team was refused: a team is optional"


@exercise("A notification to a whole team")
def team_message(chapter):
    app = fresh_app(chapter)
    ana, bob, cy = (chapter.socketio.test_client(app, auth={"username": name, "team": team})
                    for name, team in (("ana", "red"), ("bob", "red"), ("cy", "blue")))
    for client in (ana, bob, cy):
        client.get_received()
    ana.emit("team message", {"text": "standup in 5"})
    got = events(bob, "team message")
    assert got, "Bob, in Ana's team, got no 'team message' after Ana sent one"
    assert got[0] == {"from": "ana", "text": "standup in 5"}, (
        f"Bob got {got[0]!r}, not {{'from': 'ana', 'text': 'standup in 5'}}")
    assert not events(cy, "team message"), "Cy, of team blue, got team red's message"
