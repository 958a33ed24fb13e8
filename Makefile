# Two commands do everything: `make run` (set up, then run the tutorial) and
# `make test` (set up, then run the whole suite). Set-up is incremental: a
# second run finds everything installed and starts within seconds.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLIENT := node_modules/socket.io-client/dist/socket.io.min.js

.PHONY: setup run test lock notebooks notebooks-clean bench

setup: $(VENV)/.installed static/vendor/socket.io.min.js bench/node_modules/.package-lock.json

# No CHAPTER: the classroom hub, every chapter at once (LAN=1: for the classroom network).
run: setup
	$(BIN)/python -m tutorial $(if $(CHAPTER),run $(CHAPTER),hub $(if $(LAN),--lan))

test: setup
	scripts/install-system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# JupyterLab on this machine only, its kernel the venv's Python (notebooks/README.md).
notebooks: setup
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks $(JUPYTER_ARGS)

# Chapter 10 (gunicorn, socketio.run, nginx) against Node doing the same work, ~6 minutes (bench/README.md).
# BENCH_ARGS="--plot bench/latest.png --update-readme" also draws the figures and writes the tables
# into bench/README.md; "--capacity" and "--profile-memory" measure the rest; --help lists the options.
bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Strip outputs before committing a notebook (the suite checks it).
notebooks-clean: setup
	$(BIN)/python notebooks/clean.py

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

# After editing requirements.in: pin every package again, from a clean environment.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -r requirements.in
	{ echo '# Every package, pinned: generated from requirements.in by `make lock`. Do not edit by hand.'; \
	  .lock-venv/bin/python -m pip freeze; } > requirements.txt
	rm -rf .lock-venv
