"""01 · Setup: install Flask-SocketIO, configure it, run it (notes: 安装, 导入模块并配置)."""
import json
import os

from flask import Flask, render_template
from flask_socketio import SocketIO, emit

from groundwork import protect

socketio = SocketIO()


@socketio.on("connect")
def connect():
    """Greet every new connection: proof that the server can talk first."""
    emit("greeting", {"text": "Hello from Flask-SocketIO!", "async_mode": socketio.async_mode})


def installed_client_version(app):
    """The Socket.IO JavaScript client's version, as set-up installed it from package-lock.json."""
    manifest = os.path.join(app.root_path, "..", "node_modules", "socket.io-client", "package.json")
    with open(manifest, encoding="utf-8") as file:
        return json.load(file)["version"]


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
        return render_template("index.html", async_mode=socketio.async_mode,
                               client_version=installed_client_version(app))

    return app


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
