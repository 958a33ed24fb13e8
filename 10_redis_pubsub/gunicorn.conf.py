"""How gunicorn serves chapter 10: gunicorn reads this file from the folder it starts in, so
`gunicorn -k gevent -w 1 'app:create_app()'` here and `make run CHAPTER=10 SCALE=3` both get it
(options on the command line still win). Nothing here is about notifications.
"""

# Connections one process serves at once: the app admits MAX_CONNECTIONS tabs (5,000, in
# groundwork/serving.py) and refuses the next one itself ("server full", try again); the rest is
# room for page loads and logins. gunicorn's default, 1,000, left tab 1,001 waiting in silence.
worker_connections = 6_000

# gevent notes where each greenlet was spawned, for debugging: a dozen frame records per greenlet,
# three greenlets per connection. Without them: 5 KB less per connection, and a fifth fewer objects
# for the garbage collector to walk (bench/README.md, "Where the time goes").
raw_env = ["GEVENT_TRACK_GREENLET_TREE=false"]


def post_worker_init(worker):
    """In the worker, once it has loaded the app: room for its connections, short garbage collections."""
    # Imported here, not at the top: this file runs in gunicorn's master process too, before the
    # gevent worker monkey-patches the standard library, and what is imported then would not yield.
    from groundwork import serving

    serving.raise_open_file_limit(worker.cfg.worker_connections + 100)  # each connection is an open file
    serving.keep_collections_short()
