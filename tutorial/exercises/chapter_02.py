"""Chapter 02's exercises (02_connect/README.md, "Now you try")."""
from . import exercise, fresh_app, refusal

DEFAULT = "Connection rejected by server"  # what a client is told when the handler returns False


@exercise("Refuse a connection without a name, and say why")
def say_why(chapter):
    app = fresh_app(chapter)
    for auth in (None, {"nom": "Ana"}):
        refused = refusal(chapter, app, "/test", auth)
        sent = "no auth" if auth is None else f"auth {auth!r}"
        assert refused is not None, f"a connection to /test with {sent} was let in: it has no name"
        message = refused.get("message", "") if isinstance(refused, dict) else str(refused)
        assert message != DEFAULT, (f"a connection with {sent} is refused with the default {DEFAULT!r}: "
                                    "raise ConnectionRefusedError with a reason instead of returning False")
        assert "name" in message, f"the refusal {message!r} does not say that a name is needed"


@exercise("One connection per name")
def one_per_name(chapter):
    app = fresh_app(chapter)
    assert refusal(chapter, app, "/test", {"name": "Ana"}) is None, "the first connection named Ana was refused"
    refused = refusal(chapter, app, "/test", {"name": "Ana"})
    assert refused is not None, "a second connection named Ana was let in while the first is still connected"
    assert "Ana" in str(refused), f"the refusal {refused!r} does not say which name is taken"
    assert refusal(chapter, app, "/test", {"name": "Bob"}) is None, "Bob, a name nobody uses, was refused"
