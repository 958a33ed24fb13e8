"""04 · Send: reply with send() and emit(), to another namespace, and with acknowledgements (notes: 发送消息)."""
import os

from flask import Flask, render_template, request, session
from flask_socketio import SocketIO, call, emit, send
from socketio.exceptions import TimeoutError as NoAnswer  # not the built-in TimeoutError

from groundwork import protect, reject

socketio = SocketIO()

waiting = set()  # sids whose call() is still waiting for an answer


@socketio.on("message")
def message(text):
    """Echo an unnamed string message: send() answers with another unnamed message."""
    try:
        checked_text(text)
    except ValueError as error:
        return reject("message", str(error))
    send(text)


@socketio.on("json")
def json(data):
    """Echo an unnamed JSON message: send(..., json=True) answers on the 'json' event."""
    try:
        checked_object(data)
    except ValueError as error:
        return reject("json", str(error))
    send(data, json=True)


@socketio.on("my event")
def my_event(message):
    """Echo a named event with emit(), asking the client to confirm it got the reply."""
    try:
        checked_data(message)
    except ValueError as error:
        return reject("my event", str(error))
    emit("my response", message, callback=receipt)


def receipt(*answer):
    """Runs when the client calls its callback for 'my response': the client confirmed receipt."""
    answer = answer[0] if len(answer) == 1 else answer or None  # what call() would return
    try:
        if answer is not None:
            checked_text(answer, "the receipt")
    except ValueError as error:
        reject("my response", str(error))
        return
    # The notes' Python 2 `print 'message was received!'` is a syntax error in Python 3.
    print("message was received!", repr(answer))
    emit("receipt", {"answer": answer})


@socketio.on("connect", namespace="/chat")
def connect():
    """Remember this connection's sid on /chat: every namespace gives a client a different sid."""
    session["chat_sid"] = request.sid  # the Socket.IO session is shared by all namespaces of a connection


@socketio.on("disconnect", namespace="/chat")
def disconnect(reason):
    """Forget the /chat sid: answers for /chat have nowhere to go now."""
    session.pop("chat_sid", None)


@socketio.on("message to chat")
def message_to_chat(text):
    """Answer a message that arrived on / with an unnamed message on /chat."""
    try:
        checked_text(text)
        to = chat_sid()
    except ValueError as error:
        return reject("message to chat", str(error))
    send(text, namespace="/chat", to=to)


@socketio.on("my event to chat")
def my_event_to_chat(message):
    """Answer on /chat with three arguments: a tuple becomes several arguments."""
    try:
        checked_data(message)
        to = chat_sid()
    except ValueError as error:
        return reject("my event to chat", str(error))
    emit("my response", ("foo", "bar", message), namespace="/chat", to=to)


@socketio.on("ask me")
def ask_me(message):
    """Ask the sender a question with call() and wait, at most message["wait"] seconds, for its answer."""
    try:
        wait = checked_wait(message)
    except ValueError as error:
        return reject("ask me", str(error))
    waiting.add(request.sid)
    try:
        # call() blocks this handler only: every event runs in its own thread (or green thread).
        answer = call("question", {"text": "What is your answer?"}, timeout=wait)
    except NoAnswer:
        emit("call result", {"error": f"no answer within {wait} s"})
        return
    finally:
        waiting.discard(request.sid)
    try:
        if answer is not None:
            checked_text(answer, "the answer")
    except ValueError as error:
        return reject("question", str(error))
    emit("call result", {"answer": answer})


MAX_TEXT = 500
MAX_WAIT = 10  # seconds: a call() holds a server thread (or green thread) for that long


def checked_text(text, name="the message"):
    """``text`` if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return text


def checked_object(data):
    """``data`` if it is an object of at most MAX_TEXT characters when printed, else ValueError."""
    if not isinstance(data, dict) or len(repr(data)) > MAX_TEXT:
        raise ValueError(f"send an object of at most {MAX_TEXT} characters when printed")
    return data


def checked_data(message):
    """``message`` if it is a ``{"data": text}`` payload, else ValueError."""
    if not isinstance(message, dict):
        raise ValueError('send an object like {"data": "hello"}')
    checked_text(message.get("data"), "'data'")
    return message


def chat_sid():
    """This client's sid on /chat, where its answers go, or ValueError."""
    if "chat_sid" not in session:
        raise ValueError("connect to /chat first: the answer goes there")
    return session["chat_sid"]


def checked_wait(message):
    """The seconds in ``{"wait": seconds}`` (more than 0, at most MAX_WAIT), else ValueError."""
    wait = message.get("wait") if isinstance(message, dict) else None
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 < wait <= MAX_WAIT:
        raise ValueError(f"'wait' must be a number of seconds, more than 0 and at most {MAX_WAIT}")
    if request.sid in waiting:
        raise ValueError("the server is still waiting for your previous answer")
    return wait


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
