"""Notify a user from outside the web server: ``python publish.py --to bob "hello"``.

Any process that can reach Redis can do this: a cron job, another service, a shell.
The notification is stored first (so it waits for a user who is offline), then pushed:

- ``--via channel`` (default, the notes' idea): announced on the ``notifications``
  channel; each server's subscriber task forwards it to the user's tabs.
- ``--via queue``: emitted straight into the user's room through Flask-SocketIO's
  message queue by a write-only ``SocketIO(message_queue=...)``, no web server here.

Exits 0 once stored, 1 if Redis is unreachable or the recipient unknown, 2 on bad usage.
"""
import argparse
import os

import redis

import notification_store as store


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python publish.py", description=__doc__.split("\n")[0])
    parser.add_argument("--to", required=True, help="the recipient's user name (they must have logged in once)")
    parser.add_argument("--sender", default="publisher", help="who it is from (default: publisher)")
    parser.add_argument("--via", choices=["channel", "queue"], default="channel", help="how it is pushed")
    parser.add_argument("text", help="the message")
    args = parser.parse_args(argv)
    url = os.environ.get("REDIS_URL")
    if not url:
        parser.exit(2, "publish.py: set REDIS_URL to the server's Redis (app.py prints it when it starts)\n")
    try:
        notification = store.store_and_publish(store.connect(url), args.to, args.sender, args.text,
                                               publish=args.via == "channel")
        if args.via == "queue":
            from flask_socketio import SocketIO  # imported here: the default path does not need it, and it is slow
            emitter = SocketIO(message_queue=url, channel=store.SOCKETIO_CHANNEL, async_mode="threading")
            emitter.emit("notification", notification, to=f"user:{args.to}")
    except redis.RedisError as error:
        parser.exit(1, f"publish.py: cannot reach Redis at {url}: {error}\n")
    except ValueError as error:
        parser.exit(1, f"publish.py: {error}\n")
    print(f"notification {notification['id']} for {args.to} stored and pushed via {args.via}")


if __name__ == "__main__":
    main()
