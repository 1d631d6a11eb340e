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

.PHONY: setup lock demo test test-fast test-slow fuzz bench bench-faults image base-image kfp-venv kfp-local clean

# --compile-bytecode: uv writes no .pyc by default, and where Python may not
# write them either (PYTHONDONTWRITEBYTECODE, a read-only venv) every process,
# each Beam worker included, compiled TF, TFX and Beam from source at start:
# 19 s instead of 10.4 s to import what a run imports (README, Benchmarks).
setup:  ## venv (Python 3.10) from the committed lock, package installed
	@test -n "$(PYTHON310)" || { echo "error: python3.10 not found (pyenv install 3.10)"; exit 1; }
	@if [ -z "$(UV)" ]; then python3 -m pip install -q uv; fi
	uv venv --seed --allow-existing -p "$(PYTHON310)" $(VENV)
	uv pip sync -p $(PY) --compile-bytecode requirements.lock
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

# Property-based fuzzing of every raw-data reader on mutated real files
# (tests/test_fuzz_readers.py): FUZZ_EXAMPLES random cases per reader; prints
# per reader the cases tried and how they ended, and hypothesis' statistics.
# CI runs the same tests with 40 derandomized cases each.
FUZZ_EXAMPLES ?= $(or $(MODEL_GARDEN_FUZZ_EXAMPLES),2000)
fuzz:  ## long fuzzing run of the data readers by hand (FUZZ_EXAMPLES=2000 per reader)
	MODEL_GARDEN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MODEL_GARDEN_FUZZ_RANDOM=1 \
	  $(PY) -m pytest -s -p no:cacheprovider --hypothesis-show-statistics tests/test_fuzz_readers.py

# BENCH: benchmark names (benchmarks/run.py), or all; BENCH_ARGS e.g. --modes
# multi_processing,in_memory.  Default: the local run against its peers.
BENCH ?= local_run
BENCH_ARGS ?=
bench:  ## benchmarks: print the results table (BENCH=local_run; BENCH=all: every benchmark)
	$(PY) benchmarks/run.py $(BENCH) $(BENCH_ARGS)

# kill -9 at each component of the MNIST recipe, a full disk (a small tmpfs:
# run as root) and a concurrent second run; 30-40 minutes on 2 cores.
bench-faults:  ## fault-injection benchmark by hand: print its table
	$(PY) -m benchmarks.faults

# The pipeline image: docker where a Docker Engine answers, else podman
# (a docker CLI whose DOCKER_HOST is podman's API socket counts as podman: its
# legacy builder has no --secret, "unknown flag: --secret").
# (scripts/podman-setup.sh installs and configures it, as root).  podman here
# reaches no image registry, so its default base is the local stand-in that
# scripts/base-image.sh imports; BASE_IMAGE=... overrides either way.
# podman: --format docker, or the Dockerfile's SHELL is ignored (OCI format).
CONTAINER_ENGINE ?=
BASE_IMAGE ?=
LOCAL_BASE_IMAGE ?= localhost/model-garden-base:bookworm-py3.10
CA_BUNDLE ?= $(firstword $(wildcard $(SSL_CERT_FILE) /etc/ssl/certs/ca-certificates.crt))
INDEX_URL ?= $(firstword $(filter http://% https://%,$(UV_DEFAULT_INDEX) $(UV_INDEX_URL) $(PIP_INDEX_URL)))

image:  ## the pipeline image (Dockerfile): TFX 1.16 base (or LOCAL_BASE_IMAGE on podman) + requirements.lock + the package
	@engine="$(CONTAINER_ENGINE)"; base="$(BASE_IMAGE)"; \
	if [ -z "$$engine" ]; then \
	  if docker version --format '{{.Server.Platform.Name}}' 2>/dev/null | grep -q Docker; then engine=docker; \
	  elif command -v podman >/dev/null 2>&1; then engine=podman; \
	  else echo "error: no Docker engine and no podman (sudo bash scripts/podman-setup.sh)"; exit 1; fi; \
	fi; \
	extra=(); \
	if [ "$$engine" = podman ]; then \
	  extra+=(--network host --format docker); \
	  if [ -z "$$base" ]; then bash scripts/base-image.sh; base="$(LOCAL_BASE_IMAGE)"; fi; \
	fi; \
	if [ -n "$$base" ]; then extra+=(--build-arg "BASE_IMAGE=$$base"); fi; \
	if [ -n "$(INDEX_URL)" ]; then extra+=(--build-arg "INDEX_URL=$(INDEX_URL)"); fi; \
	if [ -n "$(CA_BUNDLE)" ]; then extra+=(--secret "id=ca,src=$(CA_BUNDLE)"); fi; \
	echo "$$engine build $${extra[*]} -t $(IMAGE) ."; \
	start=$$(date +%s); \
	$$engine build "$${extra[@]}" -t $(IMAGE) . && \
	echo "built $(IMAGE) with $$engine in $$(( $$(date +%s) - start )) s"

base-image:  ## podman only: the registry-free base image (debootstrap bookworm + this machine's Python 3.10)
	bash scripts/base-image.sh

# kfp.local (KFP's local orchestrator, kfp >= 2.7) in a tool venv of its own:
# the lock's kfp 2.5 stays for the compiler.  DockerRunner talks to podman's
# Docker-API socket (scripts/podman-setup.sh starts it) unless DOCKER_HOST says
# otherwise.
KFP_VENV ?= .kfp-venv
KFP_LOCAL_REQUIREMENTS := kfp==2.17.3 docker==7.2.0
PODMAN_SOCKET ?= /run/podman/podman.sock
KFP_DOCKER_HOST ?= $(or $(DOCKER_HOST),$(if $(wildcard $(PODMAN_SOCKET)),unix://$(PODMAN_SOCKET)))
PACKAGE ?=
PIPELINE_ROOT ?= $(abspath $(OUTPUT))/kfp-local
PARAMS ?=
# Without PACKAGE: the image from the current source, RECIPE compiled for it
# with the data under PIPELINE_ROOT (DockerRunner mounts nothing else), and a
# first span copied there from KFP_LOCAL_DATA when none is yet (idx files cut
# to KFP_LOCAL_SLICE=START:COUNT items; empty: whole files).  A later
# `make kfp-local` reruns on the same root (cached steps are served from
# <root>/.kfp_cache); a new span: scripts/kfp_local_run.py --add-span.
RECIPE ?= mnist
KFP_LOCAL_IMAGE ?= localhost/model-garden:kfp-local
KFP_LOCAL_COMPILE ?= --split hash --spans 1 --train-steps 20 --eval-steps 4 --threshold 0.5
KFP_LOCAL_DATA ?= $(MODEL_GARDEN_DATA)/$(RECIPE)
KFP_LOCAL_SLICE ?= 0:2000

kfp-venv:  ## .kfp-venv: kfp 2.17 (kfp.local) and the Docker SDK, for scripts/kfp_local_run.py
	@if [ -z "$(UV)" ]; then python3 -m pip install -q uv; fi
	uv venv --allow-existing -p "$(PYTHON310)" $(KFP_VENV)
	uv pip install -p $(KFP_VENV)/bin/python $(KFP_LOCAL_REQUIREMENTS)

kfp-local: kfp-venv  ## run PACKAGE (default: RECIPE compiled now) with kfp.local's DockerRunner, every step in the image
	@set -e; package="$(PACKAGE)"; stage=(); \
	if [ -z "$$package" ]; then \
	  $(MAKE) --no-print-directory image IMAGE=$(KFP_LOCAL_IMAGE); \
	  mkdir -p "$(PIPELINE_ROOT)"; package="$(PIPELINE_ROOT)/../$(RECIPE)-kfp-local.yaml"; \
	  $(VENV)/bin/model-garden compile $(RECIPE) -o "$$package" --image $(KFP_LOCAL_IMAGE) \
	    --pipeline-root "$(PIPELINE_ROOT)" $(KFP_LOCAL_COMPILE); \
	  stage=(--add-span "$(KFP_LOCAL_DATA)" --if-no-span); \
	  if [ -n "$(KFP_LOCAL_SLICE)" ]; then stage+=(--span-slice $(KFP_LOCAL_SLICE)); fi; \
	fi; \
	DOCKER_HOST=$(KFP_DOCKER_HOST) $(KFP_VENV)/bin/python scripts/kfp_local_run.py \
	  --package "$$package" --pipeline-root $(PIPELINE_ROOT) "$${stage[@]}" $(foreach p,$(PARAMS),--param $(p))

clean:
	rm -rf $(OUTPUT) .pytest_cache
