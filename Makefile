# The two commands a newcomer needs: `make demo` and `make test`. Both create the
# virtualenv and install everything on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

BENCHMARKS := import middleware accuracy fleet cache pool nplusone index fingerprint detection regression autoscale admission balancer e2e faults soak

.PHONY: install tools chromium dashboard-assets demo test lint typecheck pytest bench $(BENCHMARKS:%=bench-%) clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# promtool (Debian package `prometheus`) checks our exposition format and SLO rules in
# the tests; Alertmanager (`prometheus-alertmanager`) receives our alerts in them. Only
# the binaries are unpacked into the venv: installing the packages would start servers.
PROMTOOL := $(VENV)/tools/promtool
ALERTMANAGER := $(VENV)/tools/alertmanager
define unpack_deb
	@mkdir -p $(VENV)/tools/deb-$(1)
	@cd $(VENV)/tools/deb-$(1) && (apt-get download $(1) >/dev/null 2>&1 \
		|| (apt-get update -qq >/dev/null 2>&1 && apt-get download $(1) >/dev/null 2>&1)) \
		&& dpkg-deb -x $(1)_*.deb root && cp root/usr/bin/$(2) ../$(3) \
		|| echo "$(1) unavailable (no apt): the tests that need it will fail"
	@rm -rf $(VENV)/tools/deb-$(1)
endef
$(PROMTOOL): | $(STAMP)
	$(call unpack_deb,prometheus,promtool,promtool)
# Debian's Alertmanager reads its templates from /usr/share, where the package would
# have put them: copy them there too (needs root, as installing the package would).
AM_TEMPLATE := /usr/share/prometheus/alertmanager/email.tmpl
$(ALERTMANAGER): | $(STAMP)
	$(call unpack_deb,prometheus-alertmanager,prometheus-alertmanager,alertmanager)
	@test -f $(AM_TEMPLATE) || (mkdir -p $(VENV)/tools/deb-am && cd $(VENV)/tools/deb-am \
		&& apt-get download prometheus-alertmanager >/dev/null 2>&1 \
		&& dpkg-deb -x prometheus-alertmanager_*.deb root \
		&& mkdir -p $(dir $(AM_TEMPLATE)) && cp -r root$(dir $(AM_TEMPLATE)). $(dir $(AM_TEMPLATE))) \
		|| echo "could not install $(AM_TEMPLATE): the Alertmanager test will fail"
	@rm -rf $(VENV)/tools/deb-am

# Chromium for the dashboard's browser test (Debian's; Playwright drives it, no download).
chromium:
	@command -v chromium >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1)) \
		|| echo "chromium could not be installed (needs root and apt): the dashboard test will fail"

tools: $(PROMTOOL) $(ALERTMANAGER) chromium

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
	PROMTOOL=$(abspath $(PROMTOOL)) ALERTMANAGER=$(abspath $(ALERTMANAGER)) $(BIN)/pytest

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
		|| echo "wrk could not be installed (Debian package wrk): bench-admission needs it"
	touch $(BENCH_STAMP)

bench: $(BENCHMARKS:%=bench-%)

# make bench-NAME runs benchmarks/bench_NAME.py (peers come with the bench extra).
$(BENCHMARKS:%=bench-%): bench-%: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_$*.py

# The dashboard's charting library, from the npm registry, committed as a built asset
# (the page must work offline: no CDN). Re-run to update it.
UPLOT_VERSION := 1.6.32
dashboard-assets:
	rm -rf .uplot && mkdir .uplot && cd .uplot && npm pack uplot@$(UPLOT_VERSION) >/dev/null \
		&& tar xzf uplot-$(UPLOT_VERSION).tgz
	cp .uplot/package/dist/uPlot.iife.min.js .uplot/package/dist/uPlot.min.css src/wedsync_perf/dashboard/static/
	cp .uplot/package/LICENSE src/wedsync_perf/dashboard/static/uPlot.LICENSE
	rm -rf .uplot

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
