"""06 · Rooms: join, leave and close rooms; notify one user in all their tabs (notes: 房间)."""
import os
import re

from flask import Flask, render_template, request, session
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room, leave_room, rooms, send

from groundwork import protect, reject

socketio = SocketIO()


@socketio.on("connect")
def connect(auth):
    """Admit only a named connection, and put it in its user's private room."""
    try:
        username = checked_username(auth.get("username") if isinstance(auth, dict) else None)
    except ValueError as error:
        raise ConnectionRefusedError(f"connect with auth {{username}}: {error}") from None
    # The identity is fixed here, once; every later event speaks with it, whatever its payload says.
    session["username"] = username
    join_room(private_room(username))
    emit("signed_in", {"username": username, "sid": request.sid})
    tell_rooms(request.sid)


@socketio.on("join")
def join(data):
    """Join a named room and announce it to everyone in that room (the notes' handler)."""
    try:
        room = checked_room(data)
    except ValueError as error:
        return reject("join", str(error))
    join_room(room)
    send(f"{session['username']} has entered the room.", to=room)
    tell_rooms(request.sid)


@socketio.on("leave")
def leave(data):
    """Leave a named room and tell the ones who stay (the notes' handler)."""
    try:
        room = checked_room(data, joined=True)
    except ValueError as error:
        return reject("leave", str(error))
    leave_room(room)
    send(f"{session['username']} has left the room.", to=room)
    tell_rooms(request.sid)


@socketio.on("close room")
def close_room(data):
    """Close a room one is in: tell its members, remove them all, then show each their rooms."""
    try:
        room = checked_room(data, joined=True)
    except ValueError as error:
        return reject("close room", str(error))
    members = [sid for sid, _ in socketio.server.manager.get_participants("/", room)]
    send(f"{session['username']} closed the room {room}.", to=room)
    socketio.close_room(room)
    for sid in members:
        tell_rooms(sid)


@socketio.on("room message")
def room_message(data):
    """Say something to the members of a room one is in."""
    try:
        room, text = checked_room(data, joined=True), checked_text(data.get("text"), "'text'")
    except ValueError as error:
        return reject("room message", str(error))
    emit("room message", {"room": room, "from": session["username"], "text": text}, to=room)
    return {"sent": True}


@socketio.on("private message")
def private_message(data):
    """Notify one user, in every tab they have open, through their private room."""
    try:
        if not isinstance(data, dict):
            raise ValueError("send an object like {\"to\": \"bob\", \"text\": \"hello\"}")
        to, text = checked_username(data.get("to")), checked_text(data.get("text"), "'text'")
    except ValueError as error:
        return reject("private message", str(error))
    emit("notification", {"from": session["username"], "text": text}, to=private_room(to))
    return {"sent": True}


def private_room(username):
    """The room the server puts every connection of ``username`` in: one address for all their tabs."""
    return f"user:{username}"


def tell_rooms(sid):
    """Tell one connection which rooms it is in now: its sid room, its private room, then the others."""
    in_order = sorted(rooms(sid=sid, namespace="/"), key=lambda room: (room != sid, room[:5] != "user:", room))
    emit("rooms", {"rooms": in_order}, to=sid)


MAX_TEXT = 500
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")  # ASCII only: no look-alikes from other scripts ("bоb")
RESERVED = {"admin", "administrator", "root", "system", "server", "support", "everyone", "nobody"}
ROOM = re.compile(r"[A-Za-z0-9_-]{1,30}")  # no ':' so a chosen name can never look like "user:bob"


def checked_text(text, name="the message"):
    """``text`` if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return text


def checked_username(name):
    """The user ``name`` stands for, case-folded (Bob is bob); a reserved name is refused."""
    if not isinstance(name, str) or not USERNAME.fullmatch(name):
        raise ValueError("a user name is 1-20 letters, digits, '-' or '_', starting with a letter or digit")
    if name.lower() in RESERVED:
        raise ValueError(f"{name.lower()!r} is a reserved name")
    return name.lower()


def checked_room(data, joined=False):
    """The room a ``{'username', 'room'}`` payload names; ``joined``: one the sender must be in."""
    if not isinstance(data, dict) or not isinstance(data.get("room"), str):
        raise ValueError("send an object with a 'room' string")
    room = data["room"]
    if room.startswith("user:"):
        raise ValueError("user:… rooms are private: the server alone puts each user in their own")
    if socketio.server.manager.is_connected(room, "/"):
        raise ValueError("that name is a connection's own sid room: nobody else may use it")
    if not ROOM.fullmatch(room):
        raise ValueError("a room name is 1-30 letters, digits, '-' or '_'")
    if data.get("username", session["username"]) != session["username"]:
        raise ValueError(f"you are connected as {session['username']}: you cannot speak for someone else")
    if joined and room not in rooms():
        raise ValueError(f"you are not in {room}")
    return room


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"))
    app.config.from_prefixed_env()
    app.config.update(settings)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"])
    protect(app, socketio)  # below the lesson: 01_setup/README.md, "What protect() does"

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode)

    return app


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
