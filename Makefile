# Two commands do everything: `make run` (set up, then run the tutorial) and
# `make test` (set up, then run the whole suite). Set-up is incremental: a
# second run finds everything installed and starts within seconds.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two test workers, a test file each at a time (its module-scoped servers stay in one worker):
# most tests wait on servers and browsers, not on a core. PYTEST_WORKERS= runs them one by one.
PYTEST_WORKERS ?= -n 2 --dist loadfile
CLIENT := node_modules/socket.io-client/dist/socket.io.min.js
ADMIN_UI := node_modules/@socket.io/admin-ui/ui/dist
# Jupyter refuses to run as root without --allow-root (containers, some classrooms' machines).
JUPYTER_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# The hub's Chinese texts: the catalogue is committed, its compiled form (.mo) made by set-up.
CATALOGUE := tutorial/translations/zh_Hans_CN/LC_MESSAGES/messages

.PHONY: setup run test check lock notebooks notebooks-clean bench chaos messages

setup: $(VENV)/.installed static/vendor/socket.io.min.js static/vendor/admin-ui/index.html \
       bench/node_modules/.package-lock.json $(CATALOGUE).mo

# No CHAPTER: the classroom hub, every chapter at once (LAN=1: for the classroom network;
# LOGS=1: every chapter's output in this terminal too).
# CHAPTER=10 SCALE=3: gunicorn processes behind nginx, as in production (10_redis_pubsub/RUNNING.md);
# HA=1 with it: on Redis Sentinel (a primary, a replica, three sentinels).
run: setup
	$(BIN)/python -m tutorial $(if $(CHAPTER),run $(CHAPTER) $(if $(SCALE),--scale $(SCALE) $(if $(HA),--ha)),hub $(if $(LAN),--lan) $(if $(LOGS),--logs))

# A chapter's "Now you try" exercises (its README) checked against its app.py: make check CHAPTER=06
# (EXERCISE=2: that one only).
check: setup
	$(BIN)/python -m tutorial check $(CHAPTER) $(if $(EXERCISE),--exercise $(EXERCISE))

# The linter first (rules in pyproject.toml): a finding stops the run before the suite starts.
test: setup
	scripts/install-system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# JupyterLab on this machine only, its kernel the venv's Python (notebooks/README.md).
notebooks: setup
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks $(JUPYTER_ROOT) $(JUPYTER_ARGS)

# Chapter 10 (gunicorn, socketio.run, nginx) against Node doing the same work, ~5 minutes (bench/README.md).
# BENCH_ARGS="--plot bench/latest.png --update-readme" also draws the figures and writes the tables
# into bench/README.md and its Chinese twin; "--capacity" and "--profile-memory" measure the rest;
# --help lists the options.
bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Strip outputs before committing a notebook (the suite checks it).
notebooks-clean: setup
	$(BIN)/python notebooks/clean.py

# After changing the hub's texts: find them again, then translate what the catalogue marks new or fuzzy
# (tests/test_hub_languages.py fails until every text has its translation).
messages: $(VENV)/.installed
	$(BIN)/pybabel extract --mapping-file tutorial/babel.cfg --no-location --no-wrap \
	    --output-file tutorial/translations/messages.pot tutorial
	$(BIN)/pybabel update --input-file tutorial/translations/messages.pot --output-dir tutorial/translations \
	    --no-wrap --ignore-obsolete
	rm tutorial/translations/messages.pot

$(CATALOGUE).mo: $(CATALOGUE).po $(VENV)/.installed
	$(BIN)/pybabel compile --input-file $< --output-file $@

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# matplotlib builds its font cache on first import and, if that takes over 5 s,
	@# says so on stderr: do it now, not inside a notebook that must print no errors.
	$(BIN)/python -c "import matplotlib.font_manager"
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# The benchmark's Node.js reference server and load generator.
bench/node_modules/.package-lock.json: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund

# The pages load the client from the app's own static folder: offline-proof.
static/vendor/socket.io.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp $(CLIENT) $(CLIENT).map static/vendor/

# The Socket.IO Admin UI (chapters 09 and 10 serve it from /static/vendor/admin-ui/), made offline:
# its page asks two CDNs for fonts; the icon font comes from the local @mdi/font, Roboto falls back.
static/vendor/admin-ui/index.html: node_modules/.package-lock.json
	rm -rf static/vendor/admin-ui && mkdir -p static/vendor/admin-ui/mdi
	cp -R $(ADMIN_UI)/. static/vendor/admin-ui/
	cp -R node_modules/@mdi/font/css node_modules/@mdi/font/fonts static/vendor/admin-ui/mdi/
	sed -e 's|<link rel="stylesheet" href="https://fonts.googleapis.com/[^>]*>||' \
	    -e 's|https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/|mdi/css/|' \
	    $(ADMIN_UI)/index.html > static/vendor/admin-ui/index.html

# After editing requirements.in: pin every package again, from a clean environment.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -r requirements.in
	{ echo '# Every package, pinned: generated from requirements.in by `make lock`. Do not edit by hand.'; \
	  .lock-venv/bin/python -m pip freeze; } > requirements.txt
	rm -rf .lock-venv

# Chapter 10 under one fault after another, a few minutes per async mode (10_redis_pubsub/CHAOS.md).
# CHAOS_ARGS="--help" lists the sizes and faults.
chaos: setup
	ASYNC_MODE=threading $(BIN)/python -m tutorial.chaos $(CHAOS_ARGS)
	ASYNC_MODE=eventlet $(BIN)/python -m tutorial.chaos $(CHAOS_ARGS)
