"""Notifications kept in Redis: who the users are, each user's numbered notifications, what they have read.

The server (``app.py``) and the command-line publisher (``publish.py``) both write
through ``store_and_publish``, the only way a notification enters the system:
it is stored first, then announced on the ``notifications`` channel.

Keys (``<name>`` is a user name):

- ``users``: a set of every name that ever logged in (the known recipients);
- ``notifications:<name>:seq``: a counter, so a user's notifications are numbered 1, 2, 3…;
- ``notifications:<name>``: a stream of the notifications, entry id ``<number>-0``,
  capped at ``KEEP`` entries;
- ``notifications:<name>:read``: the highest number the user marked as read.
"""
import json
import re
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

CHANNEL = "notifications"  # the notes' idea: anyone may PUBLISH here (through store_and_publish)
# Flask-SocketIO's message queue. Name it: Flask-SocketIO defaults to "flask-socketio" and a bare
# python-socketio RedisManager to "socketio", and processes on different channels never hear each other.
SOCKETIO_CHANNEL = "notifications-socketio"
KEEP = 1000  # per user; older notifications are trimmed and cannot be replayed
MAX_TEXT = 500
NAME = re.compile(r"[\w.-]{1,32}")

# Store, then announce, in one atomic step: nobody can be told about a
# notification that is not stored, or miss one stored between the two.
STORE_AND_PUBLISH = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
local id = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], id .. '-0', 'from', ARGV[2], 'text', ARGV[3], 'at', ARGV[4])
if ARGV[6] == '1' then
  redis.call('PUBLISH', KEYS[4], cjson.encode({id = id, to = ARGV[1], from = ARGV[2], text = ARGV[3], at = tonumber(ARGV[4])}))
end
return id
"""


class UnknownRecipient(ValueError):
    """The recipient never logged in, so nobody would ever read the notification."""


def connect(url):
    """A Redis client that fails at once when Redis is away, instead of retrying behind the caller's back.

    A burst of senders waits (up to 2 s) for a free connection of its pool: redis-py's
    default pool would raise once 100 are busy, and every sender would be told Redis is down.
    """
    pool = redis.BlockingConnectionPool.from_url(url, decode_responses=True, retry=Retry(NoBackoff(), 0),
                                                 socket_connect_timeout=2, max_connections=50, timeout=2)
    return redis.Redis(connection_pool=pool)


def check_name(name):
    """``name`` if it is a valid user name, else ValueError with the reason."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError("a name is 1 to 32 letters, digits, '_', '.' or '-'")
    return name


def check_text(text):
    """``text`` stripped, if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the message is empty")
    if len(text) > MAX_TEXT:
        raise ValueError(f"the message is longer than {MAX_TEXT} characters")
    return text.strip()


def register(r, name):
    """Make ``name`` a known recipient."""
    r.sadd("users", name)


def store_and_publish(r, to, sender, text, publish=True):
    """Store a notification for ``to`` and (unless ``publish=False``) announce it; return it.

    Raises UnknownRecipient, ValueError for bad input, redis.RedisError when Redis is away.
    """
    to, sender, text = check_name(to), check_name(sender), check_text(text)
    at = int(time.time())
    number = r.eval(STORE_AND_PUBLISH, 4, "users", f"notifications:{to}:seq", f"notifications:{to}", CHANNEL,
                    to, sender, text, at, KEEP, "1" if publish else "0")
    if not number:
        raise UnknownRecipient(f"nobody called {to!r} has logged in yet")
    return {"id": number, "to": to, "from": sender, "text": text, "at": at}


def since(r, name, after):
    """The notifications of ``name`` numbered above ``after``, oldest first."""
    return [{"id": int(entry_id.split("-")[0]), "to": name, "from": fields["from"], "text": fields["text"],
             "at": int(fields["at"])}
            for entry_id, fields in r.xrange(f"notifications:{name}", min=f"{after + 1}-0", max="+")]


def read_up_to(r, name):
    """The highest notification number ``name`` marked as read (0 if none)."""
    return int(r.get(f"notifications:{name}:read") or 0)


def mark_read(r, name, up_to):
    """Mark every notification of ``name`` up to number ``up_to`` as read; return the new mark.

    The mark only moves forward, even when two tabs mark at once (WATCH/MULTI), and
    never past the last notification, so future ones still arrive unread.
    """
    key, last = f"notifications:{name}:read", f"notifications:{name}:seq"

    def move_forward(pipe):
        mark = max(int(pipe.get(key) or 0), min(up_to, int(pipe.get(last) or 0)))
        pipe.multi()
        pipe.set(key, mark)
        return mark

    return r.transaction(move_forward, key, last, value_from_callable=True)


def parse(message):
    """A notification from the channel, or ValueError if someone published something else there."""
    try:
        notification = json.loads(message)
        check_name(notification["to"])
        if not isinstance(notification["id"], int):
            raise TypeError
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"not a notification: {message[:80]!r}") from error
    return notification
