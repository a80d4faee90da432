# `make run` and `make test` work on a fresh Debian machine: they create .venv, install the
# project and, when run as root on Debian, the system packages it needs.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
INSTANCE ?= instance
HOST ?= 127.0.0.1
PORT ?= 8000
# chromium: browser tests; libharfbuzz-subset0 + fonts-noto-cjk + pango: PDF rendering (CJK)
SYSTEM_PACKAGES := chromium libharfbuzz-subset0 fonts-noto-cjk libpango-1.0-0 \
	libpangoft2-1.0-0 libpangocairo-1.0-0 python3-venv
PYTEST_ARGS ?=

.PHONY: run test bench system-packages venv clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing the project into $(VENV) (log: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip && \
	   $(BIN)/python -m pip install -e '.[test]'; } > $(VENV)/install.log 2>&1 \
	  || { tail -40 $(VENV)/install.log; exit 1; }
	touch $@

venv: $(BIN)/.installed

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(SYSTEM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	else echo "not root on Debian: make sure these are installed: $(SYSTEM_PACKAGES)"; fi

run: system-packages venv
	@QMS_INSTANCE_PATH=$(INSTANCE) $(BIN)/python -m qms.devrun --host $(HOST) --port $(PORT)

test: system-packages venv
	$(BIN)/pytest $(PYTEST_ARGS)

bench: system-packages venv
	$(BIN)/python -m benchmarks

clean-venv:
	rm -rf $(VENV)
