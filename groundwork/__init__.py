"""What every chapter stands on and no chapter teaches, in one call after ``socketio.init_app``::

    groundwork.protect(app, socketio)  # below the lesson: 01_setup/README.md, "What protect() does"

- **The chapter's own identity.** Sessions are signed with ``FLASK_SECRET_KEY``, else with a random key
  made on the first run and kept, readable by its owner only, in the chapter's ``instance/`` folder (never
  committed); the cookie's name and signature are the chapter's own. Browsers send a cookie to every port
  of a host, so without this one chapter's login (``/login`` as "publisher") would open a session in
  another chapter on the same machine, even where they share a key.
- **The wire guard** (``wire.py``, whose docstring lists every guard, the library behaviour it works
  around and its test): malformed packets, long-polling POSTs, client events named like Socket.IO's
  own (``connect``, ``disconnect``) and events with the wrong number of arguments are answered below
  the handlers, so no handler carries a check for them and none can forget one. Bursts, bytes and
  reconnections of real clients always pass.

Tested once, thoroughly, by ``tests/test_groundwork.py``; each chapter's check that it stands on this
is ``tests/test_security.py::test_the_chapter_stands_on_groundwork``.

Chapter 10's private Redis (``redis_server.py``) and the way it is served (``serving.py``) are here too:
what it needs to run on a laptop, not what it teaches. A package of its own, installed with the tutorial
(``pip install -e .``); a chapter taken elsewhere takes ``groundwork/`` with it.
"""
import os
import secrets

from flask.sessions import SecureCookieSessionInterface
from flask_socketio import emit

from .wire import MAX_PACKET, guard

__all__ = ["MAX_PACKET", "protect", "reject"]


def protect(app, socketio):
    """Give ``app`` its own session identity and guard ``socketio``'s wire (see this module's docstring)."""
    use_own_identity(app)
    guard(app, socketio)


def reject(event, problem):
    """Tell the sender only what was wrong (a ``bad_input`` event); the returned value answers an acknowledgement."""
    emit("bad_input", {"event": event, "error": problem})
    return {"error": problem}


def use_own_identity(app):
    """Sign sessions with the chapter's own key, cookie name and salt."""
    chapter = os.path.basename(app.root_path)  # "09_testing": the same under the hub as when run alone
    if app.config.get("SESSION_COOKIE_NAME", "session") == "session":
        app.config["SESSION_COOKIE_NAME"] = f"session_{chapter}"
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = kept_secret_key(app.instance_path)
    # The same key given to several chapters (one FLASK_SECRET_KEY for a classroom) still signs differently in each.
    app.session_interface = SecureCookieSessionInterface()  # the default one is shared by every Flask app
    app.session_interface.salt = f"cookie-session {chapter}"


def kept_secret_key(folder):
    """A random key made on the first run and kept in ``folder``/secret_key, readable by its owner only."""
    path = os.path.join(folder, "secret_key")
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(path):
        # Written whole under another name, then linked: of two processes starting at once, one key wins
        # and neither reads a half-written file.
        draft = f"{path}.{os.getpid()}"
        with open(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
            print(f" * Sessions are signed with a new random key, kept in {path}", flush=True)
        except FileExistsError:
            pass
        finally:
            os.remove(draft)
    os.chmod(path, 0o600)  # a key written by an older version was readable by every local user
    with open(path) as file:
        return file.read().strip()
