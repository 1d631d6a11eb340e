"""The pipeline image, built for real from the Dockerfile (``make image``) and run.

Docker where an engine answers, else podman (``scripts/podman-setup.sh``;
CI's ``.ci/run`` installs it).  Without a registry the base is the local
stand-in of ``scripts/base-image.sh`` (a debootstrap bookworm with this
machine's Python 3.10); the layers above it are the ones users' builds on
``gcr.io/tfx-oss-public/tfx:1.16.0`` run.  What is checked is what every
compiled step relies on: Python 3.10, every package of ``requirements.lock``
at its locked version (the developer-only tools excepted, as the Dockerfile
says), the package importable from ``runners.IMAGE_PACKAGE_ROOT``, the
curated schemas where compiled pipelines read them, and an unprivileged user.

The tag is the one ``tests/test_kfp_local.py`` runs, so its build is a
layer-cache hit.  A missing engine is an error, never a skip.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from model_garden.pipelines import runners

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.environ.get("MODEL_GARDEN_KFP_LOCAL_IMAGE") or "localhost/model-garden:kfp-local"


def _engine() -> str:
    # The engine `make image` builds with: docker only for a Docker Engine (a
    # docker CLI on podman's API socket is podman's storage, run podman then).
    docker = shutil.which("docker")
    if docker:
        server = subprocess.run([docker, "version", "--format", "{{.Server.Platform.Name}}"],
                                capture_output=True, text=True).stdout
        if "Docker" in server:
            return docker
    podman = shutil.which("podman")
    if podman is None:
        pytest.fail("no Docker engine and no podman: `sudo bash scripts/podman-setup.sh`")
    return podman


@pytest.fixture(scope="module")
def image():
    """The image tag, built from the current source unless MODEL_GARDEN_KFP_LOCAL_IMAGE names one."""
    if not os.environ.get("MODEL_GARDEN_KFP_LOCAL_IMAGE"):
        proc = subprocess.run(["make", "-C", ROOT, "image", f"IMAGE={IMAGE}"],
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert re.search(rf"built {re.escape(IMAGE)} with \S+ in \d+ s", proc.stdout), proc.stdout
    return IMAGE


def _in_image(image, *command: str) -> str:
    proc = subprocess.run([_engine(), "run", "--rm", "--network", "none", image, *command],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command}: {proc.stderr[-3000:]}"
    return proc.stdout


def _locked() -> dict:
    """{normalized name: version} of requirements.lock minus the Dockerfile's DEV_ONLY tools."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        dev_only = re.search(r'ARG DEV_ONLY="([^"]+)"', f.read()).group(1).split("|")
    with open(os.path.join(ROOT, "requirements.lock")) as f:
        pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", f.read(), re.M))
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731 (PEP 503)
    return {norm(k): v for k, v in pins.items() if k not in dev_only}


def test_python_310_and_every_locked_package_at_its_version(image):
    version = _in_image(image, "python", "-c", "import sys; print(sys.version_info[:2])")
    assert version.strip() == "(3, 10)"
    listed = json.loads(_in_image(image, "python", "-m", "pip", "list", "--format=json"))
    installed = {re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"] for p in listed}
    locked = _locked()
    assert len(locked) > 100  # the whole lock, not a stub
    wrong = {name: (want, installed.get(name)) for name, want in locked.items()
             if installed.get(name) != want}
    assert wrong == {}, "locked package missing or at another version in the image (want, got)"


def test_the_package_imports_from_the_image_package_root_as_an_unprivileged_user(image):
    probe = (
        "import os, model_garden, model_garden.pipelines.recipes as r, "
        "model_garden.kubeflow.entrypoint, tfx.v1;"
        "print(os.path.dirname(os.path.dirname(model_garden.__file__)));"
        "print(os.getuid());"
        "print(os.path.isdir(os.path.join(os.path.dirname(model_garden.__file__), 'schemas')));"
        "print(os.environ['TF_USE_LEGACY_KERAS'])"
    )
    root, uid, schemas, legacy = _in_image(image, "python", "-c", probe).split()
    assert root == runners.IMAGE_PACKAGE_ROOT
    assert uid == "10001"
    assert schemas == "True"
    assert legacy == "1"
