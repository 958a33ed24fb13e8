"""03 · Receive: unnamed and named events, several arguments, on_event, acknowledgements (notes: 接收消息)."""
import os

from flask import Flask, render_template, request
from flask_socketio import SocketIO

from groundwork import protect, reject

socketio = SocketIO()


@socketio.on("message")
def message(text):
    """Receive an unnamed string message: what the client's send() emits."""
    try:
        checked_text(text)
    except ValueError as error:
        return reject("message", str(error))
    print(f"received message: {text!r}")  # repr: a newline in the text cannot forge log lines
    # No return value: a client that asked for an acknowledgement gets a callback with no arguments.


@socketio.on("json")
def json(data):
    """Receive an unnamed JSON object: Flask-SocketIO's 'json' event, an ordinary event on the wire."""
    try:
        if not isinstance(data, dict):
            raise ValueError("send a JSON object")
        checked_value(data)
    except ValueError as error:
        return reject("json", str(error))
    print(f"received json: {data!r}")
    return described(data)


@socketio.on("describe")
def describe(value):
    """Receive a string, bytes, an integer or JSON on one named event, and say what arrived."""
    try:
        checked_value(value)
    except ValueError as error:
        return reject("describe", str(error))
    print(f"received {type(value).__name__}: {value!r}")
    return described(value)


@socketio.on("my event")
def my_event(arg1, arg2, arg3):
    """Receive the notes' three arguments; answer the acknowledgement with two values."""
    try:
        for arg in (arg1, arg2, arg3):
            checked_text(arg, "each argument")
    except ValueError as error:
        return reject("my event", str(error))
    print(f"received args: {arg1!r} {arg2!r} {arg3!r}")
    return "one", 1  # a tuple: the client's callback gets two arguments


def my_function_handler(data):
    """Receive 'my event' on /test: same name as on /, another namespace, another handler."""
    try:
        if not isinstance(data, dict):
            raise ValueError('send one object like {"data": "hello"}')
        checked_text(data.get("data"), "'data'")
    except ValueError as error:
        return reject("my event", str(error))
    print(f"received on /test: {data!r}")
    return described(data)


# Registered without the decorator, under the notes' name: handy when the handler comes from elsewhere.
socketio.on_event("my event", my_function_handler, namespace="/test")


def described(value):
    """What the server received, as Python sees it: the namespace, the type and the value."""
    return {"namespace": request.namespace, "type": type(value).__name__, "repr": repr(value)}


MAX_TEXT = 500


def checked_text(text, name="the message"):
    """``text`` if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return text


def checked_value(value):
    """``value`` if it is of one of the types the notes list and short when printed, else ValueError."""
    # bool is a subclass of int in Python, but JSON true/false is not an integer.
    if not isinstance(value, (str, bytes, int, dict, list)) or isinstance(value, bool):
        raise ValueError("send a string, bytes, an integer or a JSON object or array")
    if len(repr(value)) > MAX_TEXT:
        raise ValueError(f"the value is longer than {MAX_TEXT} characters when printed")
    return value


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
