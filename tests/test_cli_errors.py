"""Ordinary user errors are one ``Error:`` line naming the path and what to do; ``-v`` adds the traceback.

Issue 13 item 3: a missing ``--data-dir``, ``$MODEL_GARDEN_DATA`` without the
dataset's folder, an ``--output-root`` that is a file or not writable and a
failed download (refused, no such host, stalled) printed 20-line
tracebacks. Each case here also checks that nothing was written under the
output root. The "no traceback" cases run the real entry point in a
subprocess and read its stderr.
"""

import dataclasses
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

import pytest
from click.testing import CliRunner

from model_garden import cli, datasets

pytestmark = pytest.mark.timeout(60)


def _child_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _main(args, user=None, **env):
    """``python -m model_garden.cli ARGS`` in a child process: (returncode, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "model_garden.cli", *args], capture_output=True,
                          text=True, env=_child_env(**env), timeout=50, user=user)
    return done.returncode, done.stdout, done.stderr


def _one_error_line(stderr, *fragments):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    return lines[0]


@pytest.mark.parametrize("command,name", [("run", "mnist"), ("convert", "mnist")])
def test_a_missing_data_dir_is_one_line_and_v_shows_the_traceback(tmp_path, command, name):
    missing, root = tmp_path / "no-such-data", tmp_path / "out"
    rc, _, err = _main([command, name, "--data-dir", str(missing), "--output-root", str(root)])
    assert rc == 1
    _one_error_line(err, f"--data-dir {missing}: no such folder", "give the folder that holds",
                    "t10k-images-idx3-ubyte.gz")
    assert not root.exists()
    rc, _, err = _main(["-v", command, name, "--data-dir", str(missing), "--output-root",
                        str(root)])
    assert rc == 1 and "Traceback (most recent call last)" in err
    assert "FileNotFoundError" in err and f"--data-dir {missing}" in err
    assert not root.exists()


def test_a_data_dir_that_is_a_file_says_so(tmp_path):
    a_file = tmp_path / "mnist.tar"
    a_file.write_bytes(b"x")
    result = CliRunner().invoke(cli.cli, ["run", "mnist", "--data-dir", str(a_file),
                                          "--output-root", str(tmp_path / "out")])
    assert result.exit_code == 2  # click's own check of the option (file_okay=False)
    assert f"'--data-dir': Directory '{a_file}' is a file" in result.output
    assert result.output.count("Error: ") == 1 and "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["mnist.tar"]


def test_model_garden_data_without_the_dataset_folder(tmp_path):
    data, root = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    rc, _, err = _main(["run", "census_wide", "--output-root", str(root)],
                       MODEL_GARDEN_DATA=data)
    assert rc == 1
    _one_error_line(err, f"$MODEL_GARDEN_DATA={data} has no folder census/",
                    f"put its raw files in {data / 'census'}", "--data-dir",
                    "unset MODEL_GARDEN_DATA")
    assert not root.exists() and os.listdir(data) == []


def test_an_output_root_that_is_a_file(tmp_path, mnist_dir):
    root = tmp_path / "out"
    root.write_text("not a folder")
    for args in (["run", "mnist"], ["convert", "mnist"]):
        rc, _, err = _main([*args, "--data-dir", mnist_dir, "--output-root", str(root)])
        assert rc == 1
        _one_error_line(err, f"--output-root {root}: is a file, not a folder",
                        "choose another --output-root")
    under = root / "deeper"
    rc, _, err = _main(["run", "mnist", "--data-dir", mnist_dir, "--output-root", str(under)])
    _one_error_line(err, f"--output-root {under}: is a file ({root} above it)")
    assert root.read_text() == "not a folder" and os.listdir(tmp_path) == ["out"]


@pytest.fixture
def open_tmp():
    """A temporary folder that every user can enter (pytest's tmp_path is root's, 0700)."""
    folder = tempfile.mkdtemp(prefix="model-garden-test-")
    os.chmod(folder, 0o755)
    yield pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_an_output_root_that_is_not_writable(open_tmp, mnist_dir):
    parent = open_tmp / "read-only"
    parent.mkdir()
    root = parent / "out"
    args = ["run", "mnist", "--data-dir", mnist_dir, "--output-root", str(root)]
    if os.geteuid() == 0:
        # root writes anywhere: the child imports the CLI, then becomes nobody, for whom
        # root's 0755 folder is read-only (nobody cannot run this venv's python itself).
        code = ("import os, sys; from model_garden import cli; "
                "import model_garden.pipelines.runners; "
                "os.setgid(65534); os.setuid(65534); sys.argv[0] = 'model-garden'; cli.main()")
        os.chmod(parent, 0o755)
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, env=_child_env(), timeout=50)
        rc, err = done.returncode, done.stderr
    else:
        os.chmod(parent, 0o555)
        try:
            rc, _, err = _main(args)
        finally:
            os.chmod(parent, 0o755)
    assert rc == 1
    _one_error_line(err, f"--output-root {root}: not writable by this user ({parent}",
                    "choose a folder you can write to")
    assert os.listdir(parent) == []


def _mnist_from(monkeypatch, tmp_path, *bases):
    """The mnist registry entry fetched from ``bases``; no local copy, the cache in tmp_path."""
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    entry = datasets.DATASETS["mnist"]
    files = tuple(dataclasses.replace(f, urls=bases) for f in entry.files)
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(entry, files=files))
    return files[0].filename


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connections are refused


def _assert_download_error(result, tmp_path, *fragments):
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.output, "could not download", "--data-dir FOLDER", *fragments)
    assert not (tmp_path / "out").exists()
    cache = tmp_path / "cache" / "mnist"
    assert not cache.exists() or os.listdir(cache) == []  # no partial file either
    return line


def test_a_refused_download_names_the_url_and_the_way_round(monkeypatch, tmp_path):
    base = f"http://127.0.0.1:{_closed_port()}/mnist/"
    name = _mnist_from(monkeypatch, tmp_path, base)
    result = CliRunner().invoke(cli.cli, ["run", "mnist", "--output-root", str(tmp_path / "out")])
    _assert_download_error(result, tmp_path, f"{base}{name}: [Errno 111] Connection refused")


def test_an_unknown_host_names_the_url(monkeypatch, tmp_path):
    base = "http://model-garden.invalid/mnist/"  # RFC 6761: never resolves
    name = _mnist_from(monkeypatch, tmp_path, base)
    result = CliRunner().invoke(cli.cli, ["run", "mnist", "--output-root", str(tmp_path / "out")])
    _assert_download_error(result, tmp_path, f"{base}{name}: ")


def test_a_stalled_download_gives_up_after_the_timeout(monkeypatch, tmp_path):
    """A server that accepts and never answers: the wait is $MODEL_GARDEN_DOWNLOAD_TIMEOUT."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # held open, never written to
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.getsockname()[1]}/mnist/"
        name = _mnist_from(monkeypatch, tmp_path, base)
        monkeypatch.setenv("MODEL_GARDEN_DOWNLOAD_TIMEOUT", "0.5")
        result = CliRunner().invoke(cli.cli, ["run", "mnist", "--output-root",
                                              str(tmp_path / "out")])
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
    _assert_download_error(result, tmp_path,
                           f"{base}{name}: no answer within 0.5 s (stalled or unreachable)")
    assert accepted


def test_a_failed_download_in_a_child_process_has_no_traceback(tmp_path):
    """The entry point itself, offline: the registry's real URLs on a closed loopback port."""
    port = _closed_port()
    code = ("import dataclasses, sys; from model_garden import datasets; "
            "e = datasets.DATASETS['census']; "
            f"f = tuple(dataclasses.replace(x, urls=('http://127.0.0.1:{port}/adult/',)) "
            "for x in e.files); "
            "datasets.DATASETS['census'] = dataclasses.replace(e, files=f); "
            "from model_garden.cli import main; sys.argv[0] = 'model-garden'; main()")
    env = _child_env(MODEL_GARDEN_CACHE=tmp_path / "cache")
    env.pop("MODEL_GARDEN_DATA", None)
    done = subprocess.run([sys.executable, "-c", code, "run", "census_wide", "--output-root",
                           str(tmp_path / "out")], capture_output=True, text=True, env=env,
                          timeout=50)
    assert done.returncode == 1, done.stderr
    _one_error_line(done.stderr, f"http://127.0.0.1:{port}/adult/adult.data",
                    "Connection refused", "--data-dir FOLDER")
    assert not (tmp_path / "out").exists()


def test_help_and_list_import_no_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from model_garden import cli; "
            "r = CliRunner().invoke(cli.cli, ['--help']); assert '-v, --verbose' in r.output; "
            "r = CliRunner().invoke(cli.cli, ['list']); assert r.exit_code == 0; "
            "bad = [m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env=_child_env(), timeout=50)
