"""08 · Namespaces: event handlers as methods of a class, one class per namespace (notes: 基于类的命名空间)."""
import logging
import os

from flask import Flask, render_template, request
from flask_socketio import Namespace, SocketIO, emit

from groundwork import protect, reject

socketio = SocketIO()

log = logging.getLogger(__name__)


class TutorialNamespace(Namespace):
    """What the three namespaces below share, by inheritance: the greeting and the error handler."""

    def on_connect(self):
        """Tell the client its sid here: each namespace gives a connection a sid of its own."""
        emit("connected", {"namespace": self.namespace, "sid": request.sid})

    def on_disconnect(self, reason):
        """Tell the others in this namespace who left; ``include_self=False`` skips the leaver."""
        self.emit("left", {"namespace": self.namespace, "sid": request.sid}, include_self=False)

    def error(self, exc):
        """Any handler of this class raised: log the details, answer the acknowledgement plainly.

        It runs outside the request context (no ``request.sid``, no ``request.event``), so
        the return value, sent back as the acknowledgement, is its only way to the client.
        """
        log.error("a handler in %s failed", self.namespace, exc_info=exc)
        return {"error": "the server could not handle this event"}


class MyCustomNamespace(TutorialNamespace):
    """The notes' ``/test`` namespace: the event ``my_event`` runs the method ``on_my_event``."""

    def on_my_event(self, data):
        """Answer the sender only: the context function ``emit()`` replies, ``self.emit()`` would broadcast."""
        try:
            text = checked_text(data.get("data") if isinstance(data, dict) else None, "'data'").strip()
        except ValueError as error:
            return reject("my_event", str(error))
        emit("my_response", {"data": text})

    def on_which_handler(self, *ignored):
        """Never runs: the decorated ``which_handler`` below takes precedence (a test proves it)."""
        return {"handler": "class method"}

    def on_my_error_event(self, *ignored):
        """The notes' ``'my error event'``, renamed to be a method name: a deliberate bug for ``error()``."""
        raise RuntimeError("a deliberate bug: the kind of detail that must stay in the server log")


class ChatNamespace(TutorialNamespace):
    """``/chat``: messages for everyone in the chat."""

    def on_chat_message(self, data):
        """Relay a message with ``self.emit``: to this namespace, and to everyone in it unless ``room=``."""
        try:
            text = checked_text(data.get("text") if isinstance(data, dict) else None, "'text'").strip()
        except ValueError as error:
            return reject("chat_message", str(error))
        self.emit("chat_message", {"text": text, "from": request.sid})


class NotificationsNamespace(TutorialNamespace):
    """``/notifications``: short notices, sent as plain ``message`` events."""

    def on_notify(self, data):
        """Pass a notice to everyone in ``/notifications`` with ``self.send`` (a ``message`` event)."""
        try:
            text = checked_text(data.get("text") if isinstance(data, dict) else None, "'text'").strip()
        except ValueError as error:
            return reject("notify", str(error))
        self.send(text)


@socketio.on("which_handler", namespace="/test")
def which_handler(*ignored):
    """Say who answered: a decorated handler wins over ``MyCustomNamespace.on_which_handler``."""
    return {"handler": "decorator"}


socketio.on_namespace(MyCustomNamespace("/test"))
socketio.on_namespace(ChatNamespace("/chat"))
socketio.on_namespace(NotificationsNamespace("/notifications"))


MAX_TEXT = 500


def checked_text(text, name="the message"):
    """``text`` if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return text


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
