# Commune Edge: `make demo` runs the box on generated scans, `make test` runs the suite.
# Both work on a fresh Debian machine with only python3, make and apt: system
# packages come from apt, Python packages from the committed uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.9
ARCH ?= $(shell dpkg --print-architecture)
UV := .tools/bin/uv
VENV := .venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup system-deps test test-fast demo bench lint format clean image-smoke messages

system-deps:
	@missing=""; \
	ldconfig -p | grep -q 'libzbar\.so\.0' || missing="$$missing libzbar0"; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v udevadm >/dev/null || missing="$$missing udev"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v scanimage >/dev/null || missing="$$missing sane-utils"; \
	ls /usr/lib/*/sane/libsane-test.so.1 >/dev/null 2>&1 || missing="$$missing libsane1"; \
	[ -x /usr/sbin/smbd ] || missing="$$missing samba"; \
	command -v smbclient >/dev/null || missing="$$missing smbclient"; \
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

# Not part of `make test`: builds a Debian bookworm rootfs (needs root and Debian's
# archive), installs this checkout the way the Raspberry Pi image does, and runs
# `edge doctor` and a capture inside it. ARCH=arm64 needs qemu-user-static.
image-smoke: setup
	$(SUDO) env UV=$(CURDIR)/$(UV) PIP=$(CURDIR)/.tools/bin/pip PY=$(CURDIR)/$(VENV)/bin/python \
		ARCH=$(ARCH) image-build/smoke

bench: setup
	$(VENV)/bin/python bench/capture.py
	$(VENV)/bin/python bench/decoders.py
	$(VENV)/bin/python bench/covers.py
	$(VENV)/bin/python bench/update.py
	$(VENV)/bin/python bench/tui.py
	$(VENV)/bin/python bench/sync.py

# The clerk UI's catalogues: add new messages to edge/tui/locale/*/edge.po, drop unused
# ones, and list what still needs a Vietnamese translation (the tests fail until it has one).
messages: setup
	$(VENV)/bin/python -m edge.tui.i18n

lint: setup
	$(VENV)/bin/ruff check edge tests bench
	$(VENV)/bin/ruff format --check edge tests bench
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format edge tests bench
	$(VENV)/bin/ruff check --fix edge tests bench

clean:
	rm -rf .tools $(VENV) demo-state .image-smoke
