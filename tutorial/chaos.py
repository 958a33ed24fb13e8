"""``make chaos``: chapter 10 under one fault after another, with exact counts of what was lost or shown twice.

Several server processes share one Redis (AOF, fsync always), or for the failover row
a primary, a replica and three sentinels; tabs connect to each process and one of
them through nginx. The tabs and senders are Node processes
running the page's own logic (``notifications.js``, through ``chaos_tabs.js``):
what a tab "shows" is what the page would draw. Senders send at a steady rate
all along; each fault in turn is injected a moment into its phase. At the end the
senders stop, every send gets its definite answer, and per fault it prints:

- sent, acknowledged (an id), refused (a definite error: the rate limit), ambiguous
  (at least one unanswered or "try again" attempt before the definite answer),
  unresolved (no definite answer at the end);
- erased: deliveries of notifications acknowledged, then wiped when Redis restarted empty
  before a tab had them, each on a tab that said "the notification store was reset";
  trimmed: deliveries trimmed (over KEEP per user) before a tab had them, each on a tab that
  said how many ("N older notifications are no longer kept": said, the sum of those N, must
  equal trimmed plus what the rig stored itself and the tab never got);
  lost: any other acknowledged notification a tab of its recipient never showed,
  twice: deliveries shown twice, forged: anything shown that nobody sent;
- p50/p99 delivery latency (send started -> shown) and recovery: from the fault until
  every notification acknowledged up to the end of the fault is shown on every tab of its recipient.

``python -m tutorial.chaos --help`` lists the sizes; ``--smoke`` is the few-second version the suite runs.
"""
import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

from groundwork.redis_server import HighlyAvailableRedis, PrivateRedis
from tutorial import chapter_dir
from tutorial.servers import ChapterServer

HERE = Path(__file__).parent
CHAPTER = chapter_dir("10").name


class Rig:
    """The servers, their Redis, nginx, and the Node process of tabs and senders."""

    def __init__(self, args, highly_available=False):
        self.args = args
        self.redis = HighlyAvailableRedis() if highly_available else PrivateRedis(durable=True)
        self.env = {"REDIS_URL": self.redis.url, "FLASK_SECRET_KEY": secrets.token_hex(16)}
        self.servers, self.nginx, self.node, self.events = [], None, None, []
        self.stored = set()  # the texts the rig stored itself (trim history): sent by nobody, yet not forged
        self.lock = threading.Lock()

    def start(self):
        self.redis.start()
        self.servers = [ChapterServer(CHAPTER, self.args.async_mode, env=self.env)
                        for _ in range(self.args.servers)]
        with ThreadPoolExecutor() as starting:  # all at once: each takes a second or two to import Flask
            list(starting.map(ChapterServer.start, self.servers))
        urls = [server.url for server in self.servers]
        if self.args.nginx:
            from tutorial.servers import Nginx  # only for the full run: the suite's smoke run goes without
            self.nginx = Nginx([server.url.removeprefix("http://") for server in self.servers]).start()
            urls.append(self.nginx.url)
        tabs = [{"user": f"r{n}", "url": urls[(n + copy) % len(urls)]}
                for n in range(self.args.recipients) for copy in range(self.args.tabs)]
        senders = [{"user": f"s{n}", "url": urls[n % len(urls)]} for n in range(self.args.senders)]
        flooder = {"user": "flooder", "url": urls[0]}
        for client in [*tabs, *senders, flooder]:
            client["cookie"] = self.log_in(client["url"], client["user"])
        config = {"tabs": tabs, "senders": senders, "flooder": flooder, "rate": self.args.rate, "keep": 100}
        self.node = subprocess.Popen(["node", "chaos_tabs.js", json.dumps(config)], cwd=HERE, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        threading.Thread(target=self.read_events, daemon=True).start()
        self.wait_for("ready")
        self.tabs = tabs
        self.recipients = sorted({tab["user"] for tab in tabs})
        self.tabs_of = {user: [n for n, tab in enumerate(tabs) if tab["user"] == user] for user in self.recipients}

    @staticmethod
    def log_in(url, user):
        response = requests.post(f"{url}/login", data={"username": user}, allow_redirects=False, timeout=10)
        response.raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in response.cookies.items())  # a Cookie header

    def read_events(self):
        for line in self.node.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def wait_for(self, kind, after=0, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events[after:] if e["e"] == kind]
            if found:
                return found[0]
            time.sleep(0.05)  # a poll of the Node process's events
        raise TimeoutError(f"no {kind!r} from the tabs within {timeout}s")

    def command(self, cmd, **fields):
        self.node.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.node.stdin.flush()

    # The faults, in the order they run.

    def kill_a_server(self):
        victim = self.servers[0]
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        victim.stop()
        self.servers[0] = ChapterServer(CHAPTER, self.args.async_mode, port=victim.port, env=self.env).start()

    def drop_connections(self):
        self.command("drop")

    def restart_redis(self):
        self.redis.stop()
        self.redis.start()

    def restart_redis_empty(self):
        self.redis.forget()
        self.redis.start()

    def pause_redis(self):
        os.kill(self.redis.process.pid, signal.SIGSTOP)
        time.sleep(self.args.pause)  # the fault itself: Redis answers nothing for this long
        os.kill(self.redis.process.pid, signal.SIGCONT)

    def evicting_redis(self):
        with redis.Redis.from_url(self.redis.url) as r:
            r.config_set("maxmemory-policy", "allkeys-lru")
            time.sleep(self.args.evicting)  # the fault itself: this long on an evicting policy
            r.config_set("maxmemory-policy", "noeviction")

    def trim_history(self):
        """The tabs of one recipient go away; more than KEEP notifications arrive for them; they come back."""
        user = self.recipients[-1]
        self.command("offline", user=user)
        self.wait_for("offline", after=len(self.events))
        store = notification_store()
        r = store.connect(self.redis.url)
        for n in range(store.KEEP + 300):
            store.store(r, user, "chaos", f"kept {n}", secrets.token_hex(8), limit=None)
            self.stored.add(f"kept {n}")
        r.close()
        self.command("online", user=user)

    def failover(self):
        """The primary dies while the replication link stalls; the sentinels promote the replica."""
        with self.redis.replication_stalled():
            time.sleep(self.args.lag)  # the fault itself: the link lags this long, sends go on
            self.redis.primary.process.kill()
            self.redis.primary.process.wait()
        self.redis.wait(lambda: self.redis.current_primary() is self.redis.replica, 30, "no failover")
        self.redis.rejoin(self.redis.primary)

    def forged_publish(self):
        with redis.Redis.from_url(self.redis.url) as r:
            for n, user in enumerate(self.recipients * 5):
                r.publish("notifications", json.dumps({"id": 10**6 + n, "to": user, "from": "admin", "text": "FORGED"}))
                r.publish("notifications", json.dumps({"to": user, "id": f"{10**14 + n}-0"}))

    def flood(self):
        self.command("flood", to=self.recipients[0], count=self.args.flood)

    def stop(self):
        if self.node is not None:
            self.node.kill()
            self.node.wait()
        if self.nginx is not None:
            self.nginx.stop()
        with ThreadPoolExecutor() as stopping:
            list(stopping.map(ChapterServer.stop, self.servers))
        self.redis.remove()


FAULTS = {
    "none": None, "kill -9 a server": Rig.kill_a_server, "drop connections": Rig.drop_connections,
    "restart Redis (AOF)": Rig.restart_redis, "restart Redis empty": Rig.restart_redis_empty,
    "pause Redis": Rig.pause_redis, "evicting Redis": Rig.evicting_redis, "trim history": Rig.trim_history,
    "forged PUBLISH": Rig.forged_publish, "flood": Rig.flood,
    "failover, lagging replica": Rig.failover,
}
SENTINEL = {"failover, lagging replica"}  # the faults that need Redis Sentinel: a rig of their own
SMOKE = ["kill -9 a server", "restart Redis (AOF)", "forged PUBLISH"]


def notification_store():
    """Chapter 10's store module (the lesson's own file, loaded from its folder)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("notification_store", chapter_dir("10") / "notification_store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args):
    """Every phase on one Redis, then those that need Sentinel on a primary and replica: the rows."""
    plain = [fault for fault in args.faults if fault not in SENTINEL]
    sentinel = [fault for fault in args.faults if fault in SENTINEL]
    return (run_rig(args, plain) if plain else []) + (run_rig(args, sentinel, True) if sentinel else [])


def run_rig(args, faults, highly_available=False):
    """Each of ``faults`` in turn on one rig, then the counts per phase."""
    rig = Rig(args, highly_available)
    phases = []
    try:
        rig.start()
        for fault in faults:
            start = time.time() * 1000
            time.sleep(args.before)  # steady traffic, then the fault
            injected = time.time() * 1000
            if FAULTS[fault]:
                FAULTS[fault](rig)
            over = time.time() * 1000
            time.sleep(args.after)
            phases.append((fault, start, injected, over, time.time() * 1000))
        rig.command("stop")
        mark = len(rig.events)
        rig.command("drain")
        rig.wait_for("drained", after=mark, timeout=args.settle + 30)
        settle(rig, args.settle)
    finally:
        rig.stop()
    if args.explain:
        explain(rig)
    return [count(rig, phase) for phase in phases]


def explain(rig):
    """Print every missing delivery with what its tab last said (to debug a loss)."""
    sends = [e for e in rig.events if e["e"] == "sent"]
    shows = {(e["tab"], e["text"]) for e in rig.events if e["e"] == "show"}
    for text, tab in missing(rig, sends, shows):
        said = [e for e in rig.events if e.get("tab") == tab and e["e"] in ("status", "show")][-3:]
        sent = next(s for s in sends if s["text"] == text)
        print(f"missing on tab {tab} ({rig.tabs[tab]['url']}): {sent} - its last events: {said}")


def missing(rig, sends, shows):
    """(send, tab) pairs of acknowledged notifications that a tab of their recipient never showed."""
    return [(s["text"], tab) for s in sends if "id" in s
            for tab in rig.tabs_of[s["to"]] if (tab, s["text"]) not in shows]


def settle(rig, timeout):
    """Wait until every acknowledged notification is shown, or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rig.lock:
            sends = [e for e in rig.events if e["e"] == "sent"]
            shows = {(e["tab"], e["text"]) for e in rig.events if e["e"] == "show"}
        if not missing(rig, sends, shows):
            return
        time.sleep(0.1)  # a poll of the Node process's events


def count(rig, phase):
    """The row of one phase."""
    fault, start, injected, over, end = phase
    sends = [e for e in rig.events if e["e"] == "sent" and start <= e["t"] < end]
    shows = [e for e in rig.events if e["e"] == "show"]
    sent_texts = {e["text"] for e in rig.events if e["e"] == "sent"} | rig.stored  # whatever was not forged
    mine = {s["text"]: s for s in sends}
    first_shown, twice = {}, 0
    for show in shows:
        key = (show["tab"], show["text"])
        twice += key in first_shown and show["text"] in mine
        first_shown.setdefault(key, show["t"])
    missing_now = missing(rig, sends, set(first_shown))
    notices = [e for e in rig.events if e["e"] == "notice" and start <= e["t"] < end]
    told_reset = {e["tab"] for e in notices if "store was reset" in e["text"]}
    said = {}  # tab -> how many notifications it said are no longer kept
    for e in notices:
        if match := re.fullmatch(r"(\d+) older notifications? (?:is|are) no longer kept", e["text"]):
            said[e["tab"]] = said.get(e["tab"], 0) + int(match[1])
    erased = [text for text, tab in missing_now
              if fault == "restart Redis empty" and mine[text]["done"] <= over and tab in told_reset]
    trimmed = [text for text, tab in missing_now if fault == "trim history" and tab in said]
    # What the rig stored itself for the away tabs ("kept N", not a send) and a tab never showed: trimmed too.
    trimmed_by_rig = [text for tab in said for text in rig.stored
                      if fault == "trim history" and (tab, text) not in first_shown]
    latencies = sorted(t - mine[text]["t"] for (tab, text), t in first_shown.items() if text in mine)
    # Everything acknowledged up to the end of the fault, shown on every tab of its recipient:
    caught_up = [first_shown.get((tab, s["text"]), float("inf")) for s in sends
                 if "id" in s and s["t"] < over and s["text"] not in erased + trimmed
                 for tab in rig.tabs_of.get(s["to"], [])]
    return {
        "fault": fault, "sent": len(sends), "acknowledged": sum("id" in s for s in sends),
        "refused": sum("error" in s for s in sends),
        "refusals": dict(Counter(re.sub(r"\d+", "N", s["error"]) for s in sends if "error" in s)),
        "ambiguous": sum(s["retries"] > 0 for s in sends),
        "unresolved": 0,  # run() waited for every send's definite answer ("drained")
        # Acknowledged, then wiped with Redis before a tab had it, or trimmed before a tab came back: what
        # the guarantee allows, as long as the tab says so. Any other missing delivery is lost.
        "erased": len(erased), "trimmed": len(trimmed) + len(trimmed_by_rig), "said": sum(said.values()),
        "lost": len(missing_now) - len(erased) - len(trimmed),
        "twice": twice,
        "forged": sum(show["text"] not in sent_texts for show in shows) if fault == "forged PUBLISH" else 0,
        "p50 ms": percentile(latencies, 50), "p99 ms": percentile(latencies, 99),
        "recovery ms": None if not FAULTS[fault] or not caught_up or max(caught_up) == float("inf")
        else max(round(max(caught_up) - injected), 0),
    }


def percentile(values, p):
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))])


def table(rows):
    """The rows as a Markdown table."""
    columns = [column for column in rows[0] if column != "refusals"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("–" if row[c] is None else str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--async-mode", default=os.environ.get("ASYNC_MODE", "threading"),
                        choices=["threading", "eventlet"])
    parser.add_argument("--servers", type=int, default=3, help="server processes (default 3)")
    parser.add_argument("--recipients", type=int, default=40, help="users with tabs open (default 40)")
    parser.add_argument("--tabs", type=int, default=2, help="tabs per recipient, on different processes (default 2)")
    parser.add_argument("--senders", type=int, default=10, help="users sending all along (default 10)")
    parser.add_argument("--rate", type=float, default=4, help="sends per second per sender (default 4)")
    parser.add_argument("--before", type=float, default=2, help="seconds of steady traffic before each fault")
    parser.add_argument("--after", type=float, default=6, help="seconds of traffic after each fault")
    parser.add_argument("--pause", type=float, default=3, help="seconds Redis stays paused")
    parser.add_argument("--lag", type=float, default=0.5,
                        help="seconds the replication link stalls before the primary dies")
    parser.add_argument("--evicting", type=float, default=7,
                        help="seconds Redis is set to evict keys (the servers look every 5 s)")
    parser.add_argument("--flood", type=int, default=500, help="notifications the flooder sends at once")
    parser.add_argument("--settle", type=float, default=20, help="seconds allowed for the last deliveries")
    parser.add_argument("--no-nginx", dest="nginx", action="store_false", help="no nginx in front")
    parser.add_argument("--faults", nargs="+", choices=list(FAULTS), default=list(FAULTS), metavar="FAULT")
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds: 2 processes, no nginx, 4 tabs, 2 senders, 3 faults, 1 s each")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON (for the suite)")
    parser.add_argument("--explain", action="store_true", help="print each missing delivery and its tab's last events")
    args = parser.parse_args(argv)
    if args.smoke:
        args.servers, args.recipients, args.senders, args.rate, args.nginx = 2, 2, 2, 5, False
        args.before, args.after, args.settle, args.faults = 0.3, 0.7, 10, SMOKE
    rows = run(args)
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"\n{args.async_mode}: {args.servers} processes{' + nginx' if args.nginx else ''}, "
              f"{args.recipients * args.tabs} tabs, {args.senders} senders at {args.rate}/s each\n")
        print(table(rows))
        for row in rows:
            for reason, times in row["refusals"].items():
                print(f"{row['fault']}: {times} refused with {reason!r}")


if __name__ == "__main__":
    main()
