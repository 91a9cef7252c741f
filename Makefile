# The two commands: `make run` and `make test`. Both run `setup` first, which is idempotent
# and takes a second or two when nothing changed.
PY := .venv/bin/python
PLAYHEAD := .venv/bin/playhead

.PHONY: setup run cluster test lint typecheck pytest bench clean

setup: .venv/.installed
	@scripts/apt-ensure.sh
	@test web/node_modules/.package-lock.json -nt web/package-lock.json || (cd web && npm ci --loglevel=error --no-audit --no-fund)
	@$(PLAYHEAD) models fetch --quiet
	@$(PLAYHEAD) samples fetch --quiet

# reinstall only when the dependencies change
.venv/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

PORT ?= 8000
run: setup
	$(PLAYHEAD) serve --port $(PORT)

# scale-out on one machine: Redis, an S3 server, 2 API replicas behind a proxy, 2 workers
cluster: setup
	$(PLAYHEAD) cluster --port $(PORT)

test: setup lint typecheck pytest

lint:
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

typecheck:
	.venv/bin/mypy

pytest:
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/served.py
	$(PY) benchmarks/planner.py
	$(PLAYHEAD) bench qoe

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
