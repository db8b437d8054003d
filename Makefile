# Commune Edge: `make demo` runs the box on generated scans, `make test` runs the suite.
# Both work on a fresh Debian machine with only python3, make and apt: system
# packages come from apt, Python packages from the committed uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup system-deps test test-fast demo bench lint format clean

system-deps:
	@missing=""; \
	ldconfig -p | grep -q 'libzbar\.so\.0' || missing="$$missing libzbar0"; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: system-deps $(VENV)/.synced

test: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

test-fast: setup
	$(VENV)/bin/python -m pytest -q -m 'not slow and not bench'

demo: setup
	$(VENV)/bin/python -m edge.demo --dir demo-state

bench: setup
	$(VENV)/bin/python bench/capture.py
	$(VENV)/bin/python bench/decoders.py

lint: setup
	$(VENV)/bin/ruff check edge tests bench
	$(VENV)/bin/ruff format --check edge tests bench

format: setup
	$(VENV)/bin/ruff format edge tests bench
	$(VENV)/bin/ruff check --fix edge tests bench

clean:
	rm -rf .tools $(VENV) demo-state
