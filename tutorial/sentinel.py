"""Chapter 10 on a highly available Redis: ``make run CHAPTER=10 SCALE=3 HA=1``.

The production shape of ``tutorial.production`` on Redis Sentinel's smallest real setup
(groundwork's ``HighlyAvailableRedis``: a primary, a replica, three sentinels, all local
processes). Kill the primary (its pid is printed) and watch the pages carry on.
"""
from groundwork.redis_server import HighlyAvailableRedis

from . import production


def serve(scale, port):
    """Start the sentinels' Redis, then the cluster on it, until Ctrl-C; then stop all of it."""
    ha = production.start_deaf_to_ctrl_c(HighlyAvailableRedis())
    try:
        print(f" * Redis Sentinel: primary pid {ha.primary.process.pid} on port {ha.primary.port}, "
              f"replica pid {ha.replica.process.pid} on port {ha.replica.port}, "
              f"sentinels on ports {', '.join(map(str, ha.sentinel_ports))}", flush=True)
        production.serve(scale, port, redis_url=ha.url)
    finally:
        ha.remove()
