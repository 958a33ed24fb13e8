"""groundwork.serving's garbage-collector schedule, in a process of its own (it changes the collector of
the process that calls it): what lives a moment is frozen out of the collector's sight, and what died
while frozen is collected at the next full collection. Why: bench/README.md, "Where the time goes"."""
import subprocess
import sys

from tutorial import ROOT

SCHEDULE = """
import gc, sys, time, weakref
from groundwork import serving

def until(condition, what, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"not within {seconds} s: {what}")
        time.sleep(0.01)

class Node:
    pass

serving.keep_collections_short(freeze_every=0.05, full_collection_every=%(full)s)
cycle = Node()
cycle.me = cycle  # only the cyclic collector can free it
died = weakref.ref(cycle)
frozen = gc.get_freeze_count()
until(lambda: gc.get_freeze_count() > frozen, "the cycle frozen")
assert not any(o is cycle for o in gc.get_objects()), "frozen: no collection walks it"
del cycle
gc.collect()  # a full collection by hand, as Python would run one: the frozen cycle survives it
assert died() is not None, "a frozen cycle was collected"
until(lambda: died() is None, "the cycle collected by the schedule's full collection", %(wait)s)
print("collected")
"""


def run_schedule(full_collection_every, wait):
    script = SCHEDULE % {"full": full_collection_every, "wait": wait}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_what_lived_a_moment_is_frozen_and_a_frozen_cycle_is_collected_by_the_next_full_collection():
    done = run_schedule(full_collection_every=0.5, wait=10)
    assert done.returncode == 0 and done.stdout == "collected\n", done.stderr


def test_without_the_full_collection_a_frozen_cycle_is_never_collected():
    """The same cycle, the full collection an hour away: it stays (what FULL_COLLECTION_EVERY is for)."""
    done = run_schedule(full_collection_every=3600, wait=1)
    assert done.returncode == 1 and "the cycle collected by the schedule" in done.stderr, done.stderr
