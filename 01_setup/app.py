"""01 · Setup: install Flask-SocketIO, configure it, run it (notes: 安装, 导入模块并配置)."""
import json
import os
import secrets

from flask import Flask, render_template, request
from flask_socketio import SocketIO, emit

from wire_guard import MAX_PACKET, CheckedPacket, guard_the_wire

socketio = SocketIO()


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"))
    app.config.from_prefixed_env()
    app.config.update(settings)
    use_secret_key(app)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], serializer=CheckedPacket,
                      max_http_buffer_size=MAX_PACKET)
    guard_the_wire(app, socketio)

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode,
                               client_version=installed_client_version(app))

    return app


def use_secret_key(app):
    """Sign sessions with FLASK_SECRET_KEY, else with a random key made on the first run and kept in
    the instance folder (never committed): nobody else knows it, and a restart keeps sessions valid."""
    if app.config.get("SECRET_KEY"):
        return
    path = os.path.join(app.instance_path, "secret_key")
    os.makedirs(app.instance_path, exist_ok=True)
    try:
        with open(path, "x") as file:  # "x": if two processes start at once, one writes, both read
            file.write(secrets.token_hex(32))
        print(f" * Sessions are signed with a new random key, kept in {path}", flush=True)
    except FileExistsError:
        pass
    with open(path) as file:
        app.config["SECRET_KEY"] = file.read().strip()


def reject(event, problem):
    """Tell the sender only what was wrong; the returned value answers an acknowledgement."""
    emit("bad_input", {"event": event, "error": problem})
    return {"error": problem}


def forged(event):
    """Whether a client sent an ordinary event called ``event`` ("connect", "disconnect") to run this
    lifecycle handler on an open connection: the real ones run only while it opens or closes."""
    return socketio.server.manager.is_connected(request.sid, request.namespace)


@socketio.on_error_default
def wrong_arguments(error):
    """Answer an event sent with too few or too many arguments: calling its handler raised TypeError
    before the handler ran. Any other error is a bug, raised again so that the log shows it."""
    if isinstance(error, TypeError) and error.__traceback__.tb_next is None:
        return reject(request.event["message"], "wrong number of arguments: see the events table in README.md")
    raise error


def installed_client_version(app):
    """The Socket.IO JavaScript client's version, as set-up installed it from package-lock.json."""
    manifest = os.path.join(app.root_path, "..", "node_modules", "socket.io-client", "package.json")
    with open(manifest, encoding="utf-8") as file:
        return json.load(file)["version"]


@socketio.on("connect")
def connect():
    """Greet every new connection: proof that the server can talk first."""
    if forged("connect"):
        return reject("connect", "'connect' is sent by Socket.IO itself, not by a client")
    emit("greeting", {"text": "Hello from Flask-SocketIO!", "async_mode": socketio.async_mode})


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
