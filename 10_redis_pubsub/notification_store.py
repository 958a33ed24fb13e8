"""Notifications kept in Redis: who the users are, each user's notifications, what they have read.

The server (``app.py``) and the command-line publisher (``publish.py``) both write
through ``store``, the only way a notification enters the system: it is stored
first, then a doorbell rings on the ``notifications`` channel. The doorbell carries
only the recipient and the id; whoever hears it reads the notification from the
stream, so nothing but a stored notification ever reaches a page.

Keys (``<name>`` is a user name):

- ``users``: a set of every name that logged in or is connected (the known recipients);
- ``users:since``: when (Redis's clock) that set was first filled: just now means Redis lost its data;
- ``notifications:<name>``: a stream of the notifications, capped at ``KEEP`` entries.
  Its ids (``<milliseconds>-<n>``) come from Redis's clock and always grow, even
  when Redis lost everything, so an id is never given twice; each entry names the
  one before it (``prev``), which lets a page see a gap or a store that forgot, and
  counts the user's notifications (``n``: 1, 2, …), which tells it how many it can no longer get;
- ``notifications:<name>:read``: the id of the newest notification the user marked as read;
- ``notifications:sent:<sender>:<key>``: the id a send with that idempotency key got, and a digest
  of what it sent (recipient and text), for a day;
- ``notifications:rate:<sender>``: how many sends this window (the per-sender limit, shared by all processes);
- ``notifications:replays:<name>``: how many replays this window (the per-user limit, shared by all processes).

Redis must never evict these keys (``maxmemory-policy noeviction``): ``check_no_eviction``.
"""
import json
import re
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel
from socketio.redis_manager import parse_redis_sentinel_url

CHANNEL = "notifications"  # the doorbells: {"to": name, "id": id}
# Flask-SocketIO's message queue. Name it: Flask-SocketIO defaults to "flask-socketio" and a bare
# python-socketio RedisManager to "socketio", and processes on different channels never hear each other.
SOCKETIO_CHANNEL = "notifications-socketio"
KEEP = 1000  # per user; older notifications are trimmed and cannot be replayed
PAGE = 100  # notifications per replay, and the newest a page shows
MAX_TEXT = 500
RATE_LIMIT = (60, 10)  # sends per sender per window of seconds
REPLAY_LIMIT = (20, 10)  # replays (on connecting, sync, older) per user per window of seconds
KEY_TTL = 24 * 3600  # seconds a send's idempotency key is remembered
# Seconds after a Redis first has users (after a start empty) during which an unknown recipient means
# "not registered again yet" (try again), not "nobody by that name": every server's subscriber
# registers its connected users within a second of reaching Redis.
REGISTERING = 3
NAME = re.compile(r"[a-z0-9_-]{1,32}")
RESERVED = frozenset({"admin", "administrator", "root", "system", "publisher", "server", "support", "null"})
ID = re.compile(r"(\d{1,15})-(\d{1,15})")  # a stream id; 15 digits keep both parts far below 2**64
KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
REPLICA_WAIT = 1000  # ms a send waits for a replica to confirm it (WAIT), when replicas are asked for
RETRY_DELAYS = (0.1, 0.2, 0.5)  # seconds between attempts to reach Redis again; the last one repeats

# Store a notification and ring the doorbell, in one atomic step: nobody can be told about a
# notification that is not stored, or miss one stored between the two; a send whose key was
# stored already gets the same id again instead of a second copy, and a key used for another
# message (another recipient or text) is refused instead of answering with the first one's id.
# KEYS: users, the recipient's stream, the send's key, the sender's rate counter, the channel, users:since.
# ARGV: to, from, text, KEEP, ring the doorbell ('1'/'0'), limit (0: none), window, key TTL, REGISTERING.
STORE_SCRIPT = """
local digest = redis.sha1hex(ARGV[1] .. ' ' .. ARGV[3])  -- a name has no space: unambiguous
local done = redis.call('GET', KEYS[3])
if done then
  local id, sent = string.match(done, '(%S+) (%S+)')
  if sent ~= digest then return {'reused'} end
  return {'stored', id}
end
if tonumber(ARGV[6]) > 0 then
  local count = redis.call('INCR', KEYS[4])
  if count == 1 then redis.call('EXPIRE', KEYS[4], ARGV[7]) end
  if count > tonumber(ARGV[6]) then return {'limited', redis.call('TTL', KEYS[4])} end
end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  local since = redis.call('GET', KEYS[6])
  if not since or tonumber(redis.call('TIME')[1]) - tonumber(since) < tonumber(ARGV[9]) then return {'forgotten'} end
  return {'unknown', since}
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local prev, n = '0-0', 1
if #last > 0 then
  prev = last[1][1]
  local fields = last[1][2]
  for i = 1, #fields, 2 do if fields[i] == 'n' then n = tonumber(fields[i + 1]) + 1 end end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
                      'prev', prev, 'n', n, 'from', ARGV[2], 'text', ARGV[3])
redis.call('SET', KEYS[3], id .. ' ' .. digest, 'EX', ARGV[8])
if ARGV[5] == '1' then redis.call('PUBLISH', KEYS[5], cjson.encode({to = ARGV[1], id = id})) end
return {'stored', id}
"""

# Count one request in a window (a limit shared by every process). KEYS: the counter. ARGV: limit, window.
# Returns 0 if allowed, else the seconds until the window ends.
LIMIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then return math.max(redis.call('TTL', KEYS[1]), 1) end
return 0
"""

# Add users to the known recipients, and note when this Redis first had any (its TIME, seconds).
# KEYS: users, users:since. ARGV: the names.
REGISTER_SCRIPT = """
redis.call('SADD', KEYS[1], unpack(ARGV))
redis.call('SET', KEYS[2], redis.call('TIME')[1], 'NX')
"""

# Move a user's read mark forward to ARGV[1], never backwards (two tabs at once) and never past
# the newest notification (future ones still arrive unread). KEYS: the stream, the read mark.
MARK_READ_SCRIPT = """
local function older(a, b)
  local am, an = string.match(a, '(%d+)-(%d+)')
  local bm, bn = string.match(b, '(%d+)-(%d+)')
  am, an, bm, bn = tonumber(am), tonumber(an), tonumber(bm), tonumber(bn)
  return am < bm or (am == bm and an < bn)
end
local mark = redis.call('GET', KEYS[2]) or '0-0'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local wanted = ARGV[1]
if #last == 0 then return mark end
if older(last[1][1], wanted) then wanted = last[1][1] end
if older(mark, wanted) then redis.call('SET', KEYS[2], wanted); mark = wanted end
return mark
"""


def private_room(name):
    """The Socket.IO room of every connection of user ``name``: one address for all their tabs, in every process."""
    return f"user:{name}"


class UnknownRecipient(ValueError):
    """The recipient has not logged in since this store started, so nobody would ever read the notification."""


class Forgotten(redis.RedisError):
    """Redis knows no users yet: it has just started, or lost its data and the servers are registering again."""


class RateLimited(ValueError):
    """More requests than a limit allows (RATE_LIMIT for sends, REPLAY_LIMIT for replays): nothing was done."""


class ReusedKey(ValueError):
    """An idempotency key already used for another message (another recipient or text): nothing was stored."""


class NotReplicated(redis.RedisError):
    """Stored on the primary, but no replica confirmed it in time: a failover now could lose it (send again)."""


class Evicting(redis.RedisError):
    """Redis may evict keys when its memory is full: notifications, users and keys would vanish unseen."""


def connect(url):
    """A Redis client that fails at once when Redis is away, instead of retrying behind the caller's back.

    A burst of senders waits (up to 2 s) for a free connection of its pool: redis-py's
    default pool would raise once 100 are busy, and every sender would be told Redis is down.
    ``redis+sentinel://[:password]@host:port,host:port/db/service`` asks the sentinels for the
    current primary, and again after a failover (the URL python-socketio's message queue reads).
    """
    options = dict(decode_responses=True, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2, socket_timeout=5,
                   max_connections=50)
    if url.startswith("redis+sentinel://"):
        sentinels, service, settings = parse_redis_sentinel_url(url)
        return Sentinel(sentinels, socket_timeout=2, **settings).master_for(service, **options)
    return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, timeout=2, **options))


def check_no_eviction(r):
    """Raise Evicting unless Redis is set never to evict keys (``maxmemory-policy noeviction``).

    Job queues built on Redis refuse an evicting Redis for the same reason: an evicted stream
    or ``users`` set loses acknowledged notifications without any error. (INFO, not CONFIG GET:
    hosted Redis services often refuse CONFIG.)
    """
    policy = r.info("memory")["maxmemory_policy"]
    if policy != "noeviction":
        raise Evicting(f"Redis may evict notifications (maxmemory-policy {policy}): "
                       "set maxmemory-policy noeviction")


def checked_name(name):
    """``name`` case-folded, if it is a valid user name, else ValueError with the reason.

    ASCII only, so no two names look alike (``bob`` and ``bоb`` with a Cyrillic "о").
    """
    # isascii() first: str.lower() maps some non-ASCII letters to ASCII ones (the Kelvin sign to "k").
    if not isinstance(name, str) or not name.isascii() or not NAME.fullmatch(name.strip().lower()):
        raise ValueError("a name is 1 to 32 letters (a-z), digits, '_' or '-'")
    return name.strip().lower()


def checked_login_name(name):
    """A name someone may log in as: a valid name that is not reserved, else ValueError."""
    name = checked_name(name)
    if name in RESERVED:
        raise ValueError(f"{name} is a reserved name: choose another")
    return name


def checked_text(text):
    """``text`` stripped, if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the message is empty")
    if len(text) > MAX_TEXT:
        raise ValueError(f"the message is longer than {MAX_TEXT} characters")
    return text.strip()


def checked_id(value, what):
    """``value`` if it is a notification id (``"<ms>-<n>"``), else ValueError naming ``what``."""
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise ValueError(f"{what!r} must be a notification id such as '1700000000000-0'")
    return value


def checked_key(key):
    """``key`` if it is a send's idempotency key, else ValueError."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValueError("'key' must be 8 to 64 letters, digits, '_' or '-', made once per message")
    return key


def register(r, *names):
    """Make ``names`` known recipients."""
    if names:
        r.eval(REGISTER_SCRIPT, 2, "users", "users:since", *names)


def store(r, to, sender, text, key, ring=True, limit=RATE_LIMIT, replicas=0):
    """Store a notification for ``to`` under the send's ``key``, ring the doorbell (unless ``ring=False``).

    Returns its id: the same id for every call with the same sender and key.
    Raises UnknownRecipient, RateLimited, ReusedKey, ValueError for bad input, redis.RedisError
    when Redis is away (then it may or may not be stored: send again with the same key),
    Forgotten (Redis restarted empty, and knows no users until the servers tell it again)
    or NotReplicated (``replicas`` replicas did not confirm it within REPLICA_WAIT: send again).
    ``limit=None`` is for trusted senders (publish.py).
    """
    to, sender, text, key = checked_name(to), checked_name(sender), checked_text(text), checked_key(key)
    count, window = limit or (0, 1)
    # With replicas, the doorbell rings only once a replica confirmed: no page shows what a failover could take back.
    outcome, *detail = r.eval(STORE_SCRIPT, 6, "users", f"notifications:{to}", f"notifications:sent:{sender}:{key}",
                              f"notifications:rate:{sender}", CHANNEL, "users:since", to, sender, text, KEEP,
                              "1" if ring and not replicas else "0", count, window, KEY_TTL, REGISTERING)
    if outcome == "forgotten":
        raise Forgotten("Redis knows no users yet: it has just started, or lost its data and the servers are "
                        "registering their connected users again; log in as the recipient, or try again")
    if outcome == "unknown":
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(detail[0])))
        raise UnknownRecipient(f"nobody called {to!r} has logged in since this notification store started ({started})")
    if outcome == "limited":
        raise RateLimited(f"too many notifications: at most {count} every {window} s, try again in {detail[0]} s")
    if outcome == "reused":
        raise ReusedKey("this key was used for another message: make a new key for each message")
    # Acknowledged only once a replica holds it too: a primary that dies now loses nothing acknowledged.
    # Asked again with the same key, this waits again: the answer settles once the replica caught up,
    # and the doorbell rings before the sender hears "stored" (a sender sends until it does).
    if replicas:
        if r.wait(replicas, REPLICA_WAIT) < replicas:
            raise NotReplicated(f"stored, but not yet confirmed by {replicas} replica(s): send again with the same key")
        if ring:
            r.publish(CHANNEL, json.dumps({"to": to, "id": detail[0]}))
    return detail[0]


def allow_replay(r, name, limit=REPLAY_LIMIT):
    """Count a replay for user ``name`` in every process's common window, or RateLimited once they asked too often
    (``limit`` None: no limit, as FLASK_REPLAY_LIMIT=null sets it for the benchmark)."""
    if limit is None:
        return
    count, window = limit
    wait = r.eval(LIMIT_SCRIPT, 1, f"notifications:replays:{name}", count, window)
    if wait:
        raise RateLimited(f"too many requests: at most {count} every {window} s, try again in {wait} s")


def _notification(name, entry_id, fields):
    return {"id": entry_id, "prev": fields["prev"], "n": int(fields.get("n", 0)), "to": name, "from": fields["from"],
            "text": fields["text"], "at": int(entry_id.split("-")[0]) / 1000}


def read(r, name, entry_id):
    """The stored notification ``entry_id`` of ``name``, or None (trimmed, or never stored)."""
    return next(iter(read_each(r, [(name, entry_id)])), None)


def read_each(r, wanted):
    """The stored notifications each ``(name, entry_id)`` of ``wanted`` names, in its order and one round trip
    (those trimmed or never stored are left out)."""
    with r.pipeline(transaction=False) as pipe:
        for name, entry_id in wanted:
            pipe.xrange(f"notifications:{name}", entry_id, entry_id)
        found = pipe.execute()
    return [_notification(name, *entry) for (name, _), entries in zip(wanted, found, strict=True) for entry in entries]


def since(r, name, after, count=PAGE):
    """Up to ``count`` notifications of ``name`` after id ``after`` (the newest ``count`` if None), oldest first.

    Returns ``(notifications, more)``: ``more`` says whether others follow them.
    """
    key = f"notifications:{name}"
    if after is None:
        entries = r.xrevrange(key, "+", "-", count=count)[::-1]
        more = False
    else:
        entries = r.xrange(key, f"({after}", "+", count=count + 1)
        more = len(entries) > count
    return [_notification(name, *entry) for entry in entries[:count]], more


def knows(r, name, entry_id):
    """Whether ``entry_id`` is, or was before trimming, a notification of ``name`` in this store.

    A page's newest id that this store never gave (a store reset under it, or an id forged onto
    the message queue) must not stay the page's mark: nothing newer than it would ever show.
    """
    kept = r.xrange(f"notifications:{name}", "-", "+", count=1)
    return entry_id == "0-0" or bool(r.xrange(f"notifications:{name}", entry_id, entry_id)) or (
        bool(kept) and compare(entry_id, kept[0][0]) < 0)


def compare(a, b):
    """-1, 0 or 1 as stream id ``a`` is older than, the same as or newer than ``b``."""
    a, b = [int(part) for part in a.split("-")], [int(part) for part in b.split("-")]
    return (a > b) - (a < b)


def before(r, name, newest, count=PAGE):
    """Up to ``count`` notifications of ``name`` older than id ``newest``, oldest first, and whether more exist."""
    if newest == "0-0":
        raise ValueError("'before' must be newer than '0-0': nothing is older")
    entries = r.xrevrange(f"notifications:{name}", f"({newest}", "-", count=count + 1)
    return [_notification(name, *entry) for entry in entries[:count]][::-1], len(entries) > count


def read_up_to(r, name):
    """The id of the newest notification ``name`` marked as read ("0-0" if none)."""
    return r.get(f"notifications:{name}:read") or "0-0"


def mark_read(r, name, up_to):
    """Mark every notification of ``name`` up to id ``up_to`` as read; return the new mark."""
    return r.eval(MARK_READ_SCRIPT, 2, f"notifications:{name}", f"notifications:{name}:read", up_to)


def parse_doorbell(message):
    """``(name, id)`` from a doorbell on the channel, or ValueError if someone published something else there."""
    try:
        doorbell = json.loads(message)
        return checked_name(doorbell["to"]), checked_id(doorbell["id"], "id")
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"not a doorbell: {message[:80]!r}") from error


def retry_delay(attempt):
    """Seconds to wait before attempt number ``attempt`` (0, 1, …) to reach Redis again."""
    return RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
