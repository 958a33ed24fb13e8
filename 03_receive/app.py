"""03 · Receive: unnamed and named events, several arguments, on_event, acknowledgements (notes: 接收消息)."""
import os
import secrets

from flask import Flask, render_template, request
from flask_socketio import SocketIO, emit

socketio = SocketIO()

MAX_TEXT = 500


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"))
    app.config.from_prefixed_env()
    app.config.update(settings)
    use_secret_key(app)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"])

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode)

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
        event = request.event["message"]
        return reject(event, f"wrong number of arguments for '{event}': see the events table in README.md")
    raise error


def text_problem(text, name="the message"):
    """What is wrong with a text from a client, or None."""
    if not isinstance(text, str) or not text.strip():
        return f"{name} must be a non-empty string"
    if len(text) > MAX_TEXT:
        return f"{name} is longer than {MAX_TEXT} characters"
    return None


def value_problem(value):
    """What is wrong with a value of one of the types the notes list, or None."""
    # bool is a subclass of int in Python, but JSON true/false is not an integer.
    if not isinstance(value, (str, bytes, int, dict, list)) or isinstance(value, bool):
        return "send a string, bytes, an integer or a JSON object or array"
    if len(repr(value)) > MAX_TEXT:
        return f"the value is longer than {MAX_TEXT} characters when printed"
    return None


def described(value):
    """What the server received, as Python sees it: the namespace, the type and the value."""
    return {"namespace": request.namespace, "type": type(value).__name__, "repr": repr(value)}


@socketio.on("message")
def handle_message(message=None):
    """Receive an unnamed string message: what the client's send() emits."""
    if problem := text_problem(message):
        return reject("message", problem)
    print(f"received message: {message!r}")  # repr: a newline in the text cannot forge log lines
    # No return value: a client that asked for an acknowledgement gets a callback with no arguments.


@socketio.on("json")
def handle_json(data=None):
    """Receive an unnamed JSON object: Flask-SocketIO's 'json' event, an ordinary event on the wire."""
    if not isinstance(data, dict):
        return reject("json", "send a JSON object")
    if problem := value_problem(data):
        return reject("json", problem)
    print(f"received json: {data!r}")
    return described(data)


@socketio.on("describe")
def describe(value=None):
    """Receive a string, bytes, an integer or JSON on one named event, and say what arrived."""
    if problem := value_problem(value):
        return reject("describe", problem)
    print(f"received {type(value).__name__}: {value!r}")
    return described(value)


@socketio.on("my event")
def handle_my_custom_event(*args):
    """Receive the notes' three arguments; answer the acknowledgement with two values."""
    # The notes' (arg1, arg2, arg3) would raise TypeError when a client sends two.
    if len(args) != 3 or any(text_problem(arg) for arg in args):
        return reject("my event", f"send three non-empty strings of at most {MAX_TEXT} characters")
    print("received args: " + " ".join(map(repr, args)))
    return "one", 1  # a tuple: the client's callback gets two arguments


def my_function_handler(*args):
    """Receive 'my event' on /test: same name as on /, another namespace, another handler."""
    # *args, not the notes' (data): a client used to '/' may still send three arguments.
    if len(args) != 1 or not isinstance(args[0], dict):
        return reject("my event", 'send one object like {"data": "hello"}')
    if problem := text_problem(args[0].get("data"), "'data'"):
        return reject("my event", problem)
    print(f"received on /test: {args[0]!r}")
    return described(args[0])


# Registered without the decorator: handy when the handler comes from elsewhere.
socketio.on_event("my event", my_function_handler, namespace="/test")


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
