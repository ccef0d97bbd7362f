# The two commands a newcomer needs: `make demo` and `make test`. Both create the
# virtualenv and install everything on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

BENCHMARKS := import middleware accuracy fleet cache pool nplusone index fingerprint detection regression

.PHONY: install tools demo test lint typecheck pytest bench $(BENCHMARKS:%=bench-%) clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# promtool (Debian package `prometheus`) checks our exposition format in the tests. Only
# the binary is unpacked into the venv: installing the package would start a server.
PROMTOOL := $(VENV)/tools/promtool
$(PROMTOOL): | $(STAMP)
	@mkdir -p $(VENV)/tools/deb
	@cd $(VENV)/tools/deb && (apt-get download prometheus >/dev/null 2>&1 \
		|| (apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1)) \
		&& dpkg-deb -x prometheus_*.deb root && cp root/usr/bin/promtool ../promtool \
		|| echo "promtool unavailable (no apt): the exposition-format test will be skipped outside CI"
	@rm -rf $(VENV)/tools/deb

tools: $(PROMTOOL)

## make demo [DURATION=30] [DEMO_ARGS="--rps 300"]
demo: $(STAMP)
	$(BIN)/wedsync-perf demo $(if $(DURATION),--duration $(DURATION)) $(DEMO_ARGS)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) tools
	PROMTOOL=$(abspath $(PROMTOOL)) $(BIN)/pytest

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCHMARKS:%=bench-%)

# make bench-NAME runs benchmarks/bench_NAME.py (peers come with the bench extra).
$(BENCHMARKS:%=bench-%): bench-%: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_$*.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
