"""Notify a user from outside the web server: ``../.venv/bin/python publish.py --to bob "hello"``.

Any process that can reach Redis can do this: a cron job, another service, a shell.
The notification is stored first (so it waits for a user who is offline), then pushed:

- ``--via channel`` (default, the notes' idea): a doorbell rings on the ``notifications``
  channel; each server's subscriber task reads the notification from the store and
  forwards it to the user's tabs.
- ``--via queue``: the stored notification is emitted straight into the user's room through
  Flask-SocketIO's message queue by a write-only ``SocketIO(message_queue=...)``, no web server here.

Exits 0 once stored, 1 if Redis is unreachable or the recipient unknown, 2 on bad usage.
"""
import argparse
import os
import secrets

import notification_store as store
import redis


def main(argv=None):
    parser = argparse.ArgumentParser(prog="publish.py", description=__doc__.split("\n")[0])
    parser.add_argument("--to", required=True, help="the recipient's user name (they must have logged in once)")
    parser.add_argument("--sender", default="publisher", help="who it is from (default: publisher)")
    parser.add_argument("--via", choices=["channel", "queue"], default="channel", help="how it is pushed")
    parser.add_argument("--key", default=secrets.token_hex(8),
                        help="the send's idempotency key: run again with the same key, it is stored once")
    parser.add_argument("text", help="the message")
    args = parser.parse_args(argv)
    url = os.environ.get("REDIS_URL")
    if not url:
        parser.exit(2, "publish.py: set REDIS_URL to the server's Redis (app.py prints how when it starts)\n")
    try:
        r = store.connect(url)
        # No rate limit: whoever can reach Redis is trusted already (and could write to it directly).
        entry_id = store.store(r, args.to, args.sender, args.text, args.key, ring=args.via == "channel", limit=None)
        if args.via == "queue":
            from flask_socketio import SocketIO  # imported here: the default path does not need it, and it is slow
            emitter = SocketIO(message_queue=url, channel=store.SOCKETIO_CHANNEL, async_mode="threading")
            emitter.emit("notification", store.read(r, store.checked_name(args.to), entry_id),
                         to=store.private_room(store.checked_name(args.to)))
    except store.Forgotten as error:  # Redis answered: not an outage
        parser.exit(1, f"publish.py: {error}\n")
    except redis.RedisError as error:
        parser.exit(1, f"publish.py: cannot reach Redis: {error}\n")
    except ValueError as error:
        parser.exit(1, f"publish.py: {error}\n")
    print(f"notification {entry_id} for {store.checked_name(args.to)} stored and pushed via {args.via}")


if __name__ == "__main__":
    main()
