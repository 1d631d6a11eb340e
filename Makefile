# model-garden developer targets. `make setup` first, then any other target.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Python 3.10 (TFX 1.16 supports 3.9-3.10): the newest pyenv 3.10, else python3.10
# on PATH (a pyenv shim on PATH may not run when 3.10 is not the active version).
PYTHON310 ?= $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.10.*/bin/python3.10 2>/dev/null | tail -1)
ifeq ($(PYTHON310),)
PYTHON310 := $(shell command -v python3.10 2>/dev/null)
endif
UV ?= $(shell command -v uv 2>/dev/null)
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL ?= 2
export MODEL_GARDEN_DATA ?= $(abspath ../shared/data)
OUTPUT ?= model-garden-output

IMAGE ?= model-garden:dev

.PHONY: setup lock demo test test-fast test-slow bench image clean

setup:  ## venv (Python 3.10) from the committed lock, package installed
	@test -n "$(PYTHON310)" || { echo "error: python3.10 not found (pyenv install 3.10)"; exit 1; }
	@if [ -z "$(UV)" ]; then python3 -m pip install -q uv; fi
	uv venv --seed --allow-existing -p "$(PYTHON310)" $(VENV)
	uv pip sync -p $(PY) requirements.lock
	uv pip install -p $(PY) --no-deps -e .
	@echo "ready: source $(VENV)/bin/activate  (puts model-garden on PATH)"

lock:  ## re-resolve requirements.in into requirements.lock
	uv pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_28 requirements.in -o requirements.lock

# ../shared/data lacks the 60k training images: a hash split of the 10k
# present, and a threshold the resulting 8k training digits can reach.
demo:  ## the MNIST recipe on the real files, locally with BeamDagRunner
	$(VENV)/bin/model-garden run mnist --split hash:80/20 --threshold 0.98 --output-root $(OUTPUT)

test:  ## the whole suite, as CI runs it (fast and slow)
	$(PY) -m pytest -m "" tests

test-fast:
	$(PY) -m pytest -m "not slow" tests

test-slow:
	$(PY) -m pytest -m slow tests

bench:  ## benchmarks: print the results table
	$(PY) benchmarks/run.py

image:  ## the pipeline image (Dockerfile): TFX 1.16 base + requirements.lock + the package
	docker build -t $(IMAGE) .

clean:
	rm -rf $(OUTPUT) .pytest_cache
