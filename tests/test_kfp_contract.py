"""Contract test: model_garden.kubeflow.client/commands against the KFP v2beta1 API.

The real ``kfp.Client`` (SDK 2.5, ``kfp_server_api``) talks HTTP to
:class:`tests.kfp_fake_server.FakeKfpServer` on 127.0.0.1; the tests assert
what goes over the wire, shaped as kubeflow/pipelines ``backend/api/v2beta1``
declares it: ``pipeline.proto`` (``ListPipelines``/``ListPipelineVersions``
with a ``filter``, ``GetPipelineVersion``) and the upload endpoints
(``/apis/v2beta1/pipelines/upload[_version]``, multipart ``uploadfile`` with
``name``/``pipelineid``/``namespace`` query parameters, served by
``backend/src/apiserver/server/pipeline_upload_server.go``), ``experiment.proto``
(``display_name``, ``namespace``), ``run.proto`` (``display_name``,
``experiment_id``, ``pipeline_spec`` or ``pipeline_version_reference``,
``runtime_config``, ``service_account``; ``ListRuns`` with ``sort_by``),
``recurring_run.proto`` (``trigger.cron_schedule.cron``, ``max_concurrency``,
``no_catchup``, ``mode: ENABLE``), ``runtime_config.proto`` (typed
``parameters``, ``pipeline_root``), ``filter.proto`` (``EQUALS`` on
``display_name``) and ``healthz.proto``; plus the auth headers, and that no
credential shows up in any output. What is ``kfp.Client``'s own behaviour is
tested through our commands only. The pipeline package is compiled here by
``kfp.compiler`` from a trivial pipeline.
"""

import json
import logging
import os
import socket
import time

import click
import kfp
import pytest
import yaml
from click.testing import CliRunner
from google.protobuf import json_format
from kfp import compiler, dsl
from kfp.pipeline_spec import pipeline_spec_pb2

from model_garden.kubeflow import client as kfp_client, commands as kfp_commands
from tests.kfp_fake_server import API, FakeKfpServer

TOKEN = "tok-9f8e7d6c5b4a-not-a-real-secret"
COOKIE = "authservice_session=MTcwMDAwMDAwMHxzZWNyZXQtY29va2ll"


@dsl.component(base_image="python:3.10-slim")
def _train(message: str, train_steps: int, learning_rate: float, use_gpu: bool) -> str:
    return f"{message}:{train_steps}:{learning_rate}:{use_gpu}"


@dsl.pipeline(name="contract-pipeline", description="A trivial pipeline for the contract test.")
def _contract_pipeline(message: str = "hello", train_steps: int = 10,
                       learning_rate: float = 0.1, use_gpu: bool = False):
    _train(message=message, train_steps=train_steps, learning_rate=learning_rate,
           use_gpu=use_gpu)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("kfp") / "contract_pipeline.yaml"
    compiler.Compiler().compile(_contract_pipeline, str(path))
    return str(path)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No cluster, kubeconfig or KFP context of the machine leaks in."""
    for var in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_SA_TOKEN_PATH", "KUBERNETES_SERVICE_HOST",
                "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
                "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME", kfp_commands.TOKEN_ENV,
                kfp_commands.COOKIES_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    # kfp.Client reads (and set_user_namespace writes) this file; keep it in tmp.
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))


@pytest.fixture
def server():
    with FakeKfpServer() as srv:
        yield srv


def _spec_dict(package_path: str) -> dict:
    with open(package_path) as f:
        return yaml.safe_load(f)


def _as_sent(spec: dict) -> dict:
    """The PipelineSpec as kfp.Client serializes it into a run body."""
    return json_format.MessageToDict(json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- kfp_client functions -----------------------------------------------------


def test_upload_new_pipeline_sends_the_package_bytes(server, package):
    client = kfp_client.connect(server.url)
    pipeline_id, version, new = kfp_client.upload(client, package, "mnist",
                                                  description="MNIST CNN")

    assert new and server.pipelines[pipeline_id]["display_name"] == "mnist"
    # kfp.Client.get_pipeline_id's lookup: a filter.proto Filter as JSON, the
    # enum by number (v2beta1 Predicate.Operation EQUALS = 1).
    lookup = server.calls("GET", f"{API}/pipelines")[0]
    assert json.loads(lookup.q("filter")) == {"predicates": [
        {"operation": 1, "key": "display_name", "stringValue": "mnist"}]}
    upload = server.calls("POST", f"{API}/pipelines/upload")
    assert len(upload) == 1
    assert upload[0].q("name") == "mnist" and upload[0].q("description") == "MNIST CNN"
    assert upload[0].headers["content-type"].startswith("multipart/form-data")
    filename, data = upload[0].files["uploadfile"]
    with open(package, "rb") as f:
        assert data == f.read()
    assert filename == os.path.basename(package)
    # The first version, named after the pipeline by KFP, is looked up for its id.
    assert version.pipeline_version_id == server.versions[pipeline_id][0]["pipeline_version_id"]
    assert version.display_name == "mnist"


def test_upload_existing_name_adds_a_version(server, package):
    client = kfp_client.connect(server.url)
    first_id, _, _ = kfp_client.upload(client, package, "mnist")
    second_id, second, new = kfp_client.upload(client, package, "mnist", "v2")
    _, third, _ = kfp_client.upload(client, package, "mnist")  # default version name

    assert not new and second_id == first_id
    versions = server.calls("POST", f"{API}/pipelines/upload_version")
    assert [v.q("pipelineid") for v in versions] == [first_id] * 2
    assert versions[0].q("name") == "v2" and second.display_name == "v2"
    assert versions[1].q("name").startswith("mnist-") and third.display_name == versions[1].q("name")
    with open(package, "rb") as f:
        assert versions[0].files["uploadfile"][1] == f.read()
    assert len(server.calls("POST", f"{API}/pipelines/upload")) == 1
    assert [v["display_name"] for v in server.versions[first_id]] == [
        "mnist", "v2", third.display_name]


def test_submit_package_creates_experiment_and_typed_parameters(server, package):
    client = kfp_client.connect(server.url)
    run, exp = kfp_client.submit(
        client, package, experiment="mnist-dev", run_name="mnist-r1",
        params={"train_steps": "800", "learning_rate": "0.25", "use_gpu": "true",
                "message": "hi"},
        pipeline_root="gs://bucket/root", service_account="model-garden-pipeline")

    # get-or-create: a filtered lookup, then the create.
    lookup = server.calls("GET", f"{API}/experiments")[0]
    assert json.loads(lookup.q("filter"))["predicates"][0]["stringValue"] == "mnist-dev"
    created = server.calls("POST", f"{API}/experiments")
    assert len(created) == 1 and created[0].json["display_name"] == "mnist-dev"
    (sent,) = server.calls("POST", f"{API}/runs")
    body = sent.json
    assert body["display_name"] == "mnist-r1"
    assert body["experiment_id"] == exp.experiment_id == next(iter(server.experiments))
    assert body["runtime_config"] == {
        "parameters": {"train_steps": 800, "learning_rate": 0.25, "use_gpu": True,
                       "message": "hi"},
        "pipeline_root": "gs://bucket/root",
    }
    assert body["pipeline_spec"] == _as_sent(_spec_dict(package))
    assert "pipeline_version_reference" not in body
    assert body["service_account"] == "model-garden-pipeline"
    assert run.run_id in server.runs and run.display_name == "mnist-r1"
    assert exp.display_name == "mnist-dev"


def test_submit_reuses_an_existing_experiment(server, package):
    client = kfp_client.connect(server.url)
    _, first = kfp_client.submit(client, package, experiment="shared")
    _, second = kfp_client.submit(client, package, experiment="shared")
    assert len(server.calls("POST", f"{API}/experiments")) == 1
    assert first.experiment_id == second.experiment_id
    names = [r.json["display_name"] for r in server.calls("POST", f"{API}/runs")]
    assert all(n.startswith("contract-pipeline-") for n in names)


def test_submit_uploaded_version_by_name(server, package):
    client = kfp_client.connect(server.url)
    kfp_client.upload(client, package, "mnist")
    pipeline_id, v2, _ = kfp_client.upload(client, package, "mnist", "v2")
    run, _ = kfp_client.submit(client, pipeline_name="mnist", version_name="v2",
                               params={"train_steps": "5"}, experiment="e")
    body = server.calls("POST", f"{API}/runs")[0].json
    assert body["pipeline_version_reference"] == {
        "pipeline_id": pipeline_id, "pipeline_version_id": v2.pipeline_version_id}
    assert "pipeline_spec" not in body
    # Typed from the spec stored with the version (GET .../versions/{id}).
    assert body["runtime_config"]["parameters"] == {"train_steps": 5}
    assert server.calls("GET", f"{API}/pipelines/{pipeline_id}/versions/{v2.pipeline_version_id}")
    assert server.runs[run.run_id]["pipeline_version_reference"]["pipeline_version_id"] == \
        v2.pipeline_version_id
    # kfp.Client would drop a caching override for a version silently: refused here.
    with pytest.raises(kfp_client.KfpError, match="applies to a PACKAGE file"):
        kfp_client.submit(client, pipeline_name="mnist", enable_caching=False)
    assert len(server.calls("POST", f"{API}/runs")) == 1


def test_submit_newest_version_by_default(server, package):
    client = kfp_client.connect(server.url)
    kfp_client.upload(client, package, "mnist")
    pipeline_id, newest, _ = kfp_client.upload(client, package, "mnist", "v9")
    kfp_client.submit(client, pipeline_name="mnist", experiment="e")
    ref = server.calls("POST", f"{API}/runs")[0].json["pipeline_version_reference"]
    assert ref["pipeline_version_id"] == newest.pipeline_version_id
    listing = server.calls("GET", f"{API}/pipelines/{pipeline_id}/versions")[-1]
    assert listing.q("sort_by") == "created_at desc"


def test_bad_parameters_are_refused_before_any_run(server, package):
    client = kfp_client.connect(server.url)
    with pytest.raises(kfp_client.KfpError, match=r"no parameter 'steps'.*train_steps"):
        kfp_client.submit(client, package, params={"steps": "1"})
    with pytest.raises(kfp_client.KfpError, match="NUMBER_INTEGER"):
        kfp_client.submit(client, package, params={"train_steps": "many"})
    with pytest.raises(kfp_client.KfpError, match="BOOLEAN"):
        kfp_client.submit(client, package, params={"use_gpu": "maybe"})
    assert not server.calls("POST", f"{API}/runs")


def test_schedule_sends_cron_with_seconds_concurrency_and_no_catchup(server, package):
    client = kfp_client.connect(server.url)
    job, exp, cron = kfp_client.schedule(client, package, cron="0 3 * * *", experiment="nightly",
                                         params={"train_steps": "100"}, job_name="mnist-nightly")
    (req,) = server.calls("POST", f"{API}/recurringruns")
    body = req.json
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["mode"] == "ENABLE"
    assert body["display_name"] == "mnist-nightly"
    assert body["runtime_config"] == {"parameters": {"train_steps": 100}}
    assert body["experiment_id"] == exp.experiment_id
    assert server.experiments[exp.experiment_id]["display_name"] == "nightly"
    assert body["pipeline_spec"] == _as_sent(_spec_dict(package))
    assert cron == "0 0 3 * * *"
    assert server.recurring_runs[job.recurring_run_id]["status"] == "ENABLED"


def test_schedule_uploaded_pipeline_and_argument_checks(server, package):
    client = kfp_client.connect(server.url)
    pipeline_id, _, _ = kfp_client.upload(client, package, "mnist")
    kfp_client.schedule(client, pipeline_name="mnist", cron="30 0 2 * * 1-5",
                        max_concurrency=2, no_catchup=False, experiment="weekdays")
    body = server.calls("POST", f"{API}/recurringruns")[0].json
    assert body["trigger"]["cron_schedule"]["cron"] == "30 0 2 * * 1-5"
    assert body["max_concurrency"] == 2 and body["no_catchup"] is False
    assert body["pipeline_version_reference"]["pipeline_id"] == pipeline_id
    with pytest.raises(kfp_client.KfpError, match="fields"):
        kfp_client.schedule(client, pipeline_name="mnist", cron="3 * *")
    with pytest.raises(kfp_client.KfpApiError, match="max concurrency"):  # the server's check
        kfp_client.schedule(client, pipeline_name="mnist", max_concurrency=0)
    # The bad cron never left; the bad concurrency was refused by the server.
    assert len(server.calls("POST", f"{API}/recurringruns")) == 2
    assert len(server.recurring_runs) == 1


@pytest.mark.parametrize("given,expected", [
    ("0 3 * * *", "0 0 3 * * *"),
    ("*/15 * * * *", "0 */15 * * * *"),
    ("  0   3 * * 1-5 ", "0 0 3 * * 1-5"),
    ("0 0 3 * * *", "0 0 3 * * *"),
    ("@daily", "@daily"),
    ("@every 6h", "@every 6h"),
])
def test_to_kfp_cron(given, expected):
    assert kfp_client.to_kfp_cron(given) == expected


def test_to_kfp_cron_rejects_other_field_counts():
    for bad in ("* * * *", "0 0 0 3 * * * *", ""):
        with pytest.raises(ValueError):
            kfp_client.to_kfp_cron(bad)


def test_list_runs_newest_first_in_one_request(package):
    with FakeKfpServer() as server:
        client = kfp_client.connect(server.url)
        for i in range(5):
            kfp_client.submit(client, package, experiment="e", run_name=f"run-{i}")
        kfp_client.submit(client, package, experiment="other", run_name="elsewhere")

        rows = kfp_client.list_runs(client, experiment="e", limit=3)
        assert [r.display_name for r in rows] == ["run-4", "run-3", "run-2"]
        assert rows[0].run_id in server.runs and rows[0].state == "PENDING"
        assert rows[0].created_at.isoformat().startswith("2024-05-01T12:00:")
        (get,) = server.calls("GET", f"{API}/runs")
        exp_id = next(e["experiment_id"] for e in server.experiments.values()
                      if e["display_name"] == "e")
        assert get.q("experiment_id") == exp_id and get.q("page_size") == "3"
        assert get.q("sort_by") == "created_at desc"

        assert len(kfp_client.list_runs(client)) == 6
        # KFP serves at most 200 a page (list.go maxPageSize): never ask for more.
        kfp_client.list_runs(client, limit=1000)
        assert server.calls("GET", f"{API}/runs")[-1].q("page_size") == "200"
        with pytest.raises(kfp_client.KfpError, match="No experiment is found with name nope"):
            kfp_client.list_runs(client, experiment="nope")


def test_not_a_pipeline_package(server, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\n")
    client = kfp_client.connect(server.url)
    with pytest.raises(kfp_client.KfpError, match="not a KFP v2 PipelineSpec"):
        kfp_client.upload(client, str(bad), "x")
    with pytest.raises(kfp_client.KfpError, match="not found"):
        kfp_client.upload(client, str(tmp_path / "missing.yaml"), "x")
    assert not server.calls("POST", f"{API}/pipelines/upload")


# --- credentials ----------------------------------------------------------------


def test_token_goes_in_the_authorization_header(package):
    with FakeKfpServer(token=TOKEN) as server:
        client = kfp_client.connect(server.url, existing_token=TOKEN)
        kfp_client.upload(client, package, "mnist")
        kfp_client.submit(client, pipeline_name="mnist", experiment="e")
        assert len(server.calls()) >= 6
        assert {r.headers.get("authorization") for r in server.calls()} == {f"Bearer {TOKEN}"}
        assert not any(TOKEN in r.path or TOKEN.encode() in r.body for r in server.calls())


def test_missing_token_is_rejected_by_the_gateway(package):
    with FakeKfpServer(token=TOKEN) as server:
        client = kfp_client.connect(server.url, namespace="team-a")  # no healthz probe
        with pytest.raises(kfp_client.KfpApiError, match="HTTP 401") as err:
            kfp_client.upload(client, package, "mnist")
        assert err.value.status == 401
        assert "authorization" not in server.calls()[0].headers


def test_service_account_token_file_is_read_per_request(monkeypatch, tmp_path, package):
    token_file = tmp_path / "token"
    token_file.write_text("projected-token-1\n")
    with FakeKfpServer(token="projected-token-1") as server:
        monkeypatch.setenv("KF_PIPELINES_ENDPOINT", server.url)
        monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
        client = kfp_client.connect()
        kfp_client.upload(client, package, "mnist")
        token_file.write_text("projected-token-2\n")  # the kubelet rotated it
        server.token = "projected-token-2"
        kfp_client.submit(client, pipeline_name="mnist", experiment="e")
        headers = [r.headers.get("authorization") for r in server.calls()]
        assert headers[0] == "Bearer projected-token-1"
        assert headers[-1] == "Bearer projected-token-2"
        assert set(headers) == {"Bearer projected-token-1", "Bearer projected-token-2"}


def test_cookies_are_sent(package):
    with FakeKfpServer(cookie=COOKIE) as server:
        client = kfp_client.connect(server.url, cookies=COOKIE)
        kfp_client.upload(client, package, "mnist")
        assert all(r.headers.get("cookie") == COOKIE for r in server.calls())


def test_multi_user_namespace(package, tmp_path):
    with FakeKfpServer(multi_user=True) as server:
        client = kfp_client.connect(server.url, namespace="team-a")
        kfp_client.upload(client, package, "mnist", namespace="team-a")
        kfp_client.submit(client, pipeline_name="mnist", experiment="e", namespace="team-a")
        kfp_client.list_runs(client)
        assert not server.calls("GET", f"{API}/healthz")  # namespace known: no probe
        assert server.calls("POST", f"{API}/pipelines/upload")[0].q("namespace") == "team-a"
        assert server.calls("POST", f"{API}/experiments")[0].json["namespace"] == "team-a"
        assert server.calls("GET", f"{API}/experiments")[0].q("namespace") == "team-a"
        assert server.calls("GET", f"{API}/runs")[0].q("namespace") == "team-a"
    assert not (tmp_path / "kfp-context.json").exists()


def test_failed_health_check_is_one_clear_error(package, monkeypatch, capsys):
    """Without a namespace kfp.Client probes /healthz (5 tries, 5 s apart): a 401 there."""
    monkeypatch.setattr(time, "sleep", lambda _seconds: None)  # kfp's retry pause
    with FakeKfpServer(token=TOKEN) as server:
        with pytest.raises(kfp_client.KfpError) as err:
            kfp_client.connect(server.url, existing_token="wrong-" + TOKEN)
        assert str(err.value) == (
            f"Kubeflow Pipelines at {server.url} failed its health check (/apis/v2beta1/healthz): "
            "HTTP 401 Unauthorized: Unauthenticated: missing or invalid bearer token")
        assert [r.path for r in server.calls()] == [f"{API}/healthz"] * 5
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert TOKEN not in captured.err + captured.out + str(err.value)


def test_legacy_tfx_parameter_types():
    """KubeflowV2DagRunner writes the deprecated `type` (INT/DOUBLE/STRING)."""
    spec = {"root": {"inputDefinitions": {"parameters": {
        "train_steps": {"type": "INT"}, "threshold": {"type": "DOUBLE"},
        "split": {"type": "STRING"}}}}}
    assert kfp_client.coerce_params(spec, {"train_steps": "7", "threshold": "0.5",
                                           "split": "80/20"}) == {
        "train_steps": 7, "threshold": 0.5, "split": "80/20"}
    assert kfp_client.coerce_params(spec, {"train_steps": 8}) == {"train_steps": 8}


def test_no_endpoint_and_unreachable_host():
    with pytest.raises(kfp_client.KfpError, match="no Kubeflow Pipelines endpoint"):
        kfp_client.connect()
    port = _free_port()
    start = time.monotonic()
    with pytest.raises(kfp_client.KfpUnreachableError,
                       match=f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}"):
        kfp_client.connect(f"http://user:pw@127.0.0.1:{port}", existing_token=TOKEN)
    assert time.monotonic() - start < 5


# --- click commands ---------------------------------------------------------------


def _group() -> click.Group:
    """The commands as the lead adds them to `model-garden`."""
    group = click.Group("model-garden")
    for command in kfp_commands.COMMANDS:
        group.add_command(command)
    return group


def _invoke(args, env=None):
    return CliRunner().invoke(_group(), args, env=env or {}, catch_exceptions=False)


def test_cli_upload_submit_schedule_runs(package, caplog):
    caplog.set_level(logging.DEBUG)
    env = {kfp_commands.TOKEN_ENV: TOKEN}
    with FakeKfpServer(token=TOKEN) as server:
        host = ["--host", server.url]
        up = _invoke(["upload", package, "--pipeline-name", "mnist", *host], env)
        assert up.exit_code == 0, up.output
        assert "new pipeline 'mnist'" in up.output
        up2 = _invoke(["upload", package, "--pipeline-name", "mnist", "--version-name", "v2",
                       *host], env)
        assert up2.exit_code == 0 and "new version of pipeline 'mnist'" in up2.output

        sub = _invoke(["submit", "--pipeline-name", "mnist", "--version-name", "v2",
                       "--experiment", "mnist-dev", "--run-name", "r1",
                       "--param", "train_steps=800", "--param", "message=a=b",
                       "--pipeline-root", "gs://b/r", *host], env)
        assert sub.exit_code == 0, sub.output
        assert "run 'r1'" in sub.output and "experiment 'mnist-dev'" in sub.output
        run = server.calls("POST", f"{API}/runs")[0].json
        assert run["runtime_config"] == {"parameters": {"train_steps": 800, "message": "a=b"},
                                         "pipeline_root": "gs://b/r"}
        assert server.experiments[run["experiment_id"]]["display_name"] == "mnist-dev"

        sch = _invoke(["schedule", package, "--cron", "0 3 * * *", "--experiment", "nightly",
                       "--param", "use_gpu=false", *host], env)
        assert sch.exit_code == 0, sch.output
        assert "cron '0 0 3 * * *'" in sch.output
        job = server.calls("POST", f"{API}/recurringruns")[0].json
        assert job["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
        assert job["max_concurrency"] == 1 and job["no_catchup"] is True
        assert job["runtime_config"]["parameters"] == {"use_gpu": False}

        ls = _invoke(["runs", "--experiment", "mnist-dev", *host], env)
        assert ls.exit_code == 0, ls.output
        lines = ls.output.strip().splitlines()
        assert lines[0].split() == ["RUN", "ID", "NAME", "STATE", "CREATED"]
        assert lines[-1].split()[1:3] == ["r1", "PENDING"]
        js = _invoke(["runs", "--json", *host], env)
        row = json.loads(js.output.strip().splitlines()[-1])
        assert set(row) == {"id", "name", "state", "created_at"} and row["name"] == "r1"

        assert {r.headers.get("authorization") for r in server.calls()} == {f"Bearer {TOKEN}"}
        for result in (up, up2, sub, sch, ls, js):
            assert TOKEN not in result.output
        assert TOKEN not in caplog.text


def test_cli_token_option_and_cookies_never_printed(package):
    with FakeKfpServer(token=TOKEN, cookie=COOKIE) as server:
        ok = _invoke(["upload", package, "--host", server.url, "--token", TOKEN,
                      "--cookies", COOKIE])
        assert ok.exit_code == 0, ok.output
        assert server.calls()[-1].headers["authorization"] == f"Bearer {TOKEN}"
        assert server.calls()[-1].headers["cookie"] == COOKIE
        # A wrong token: a clean one-line error, no traceback, no secret.
        bad = _invoke(["runs", "--host", server.url, "--namespace", "team-a",
                       "--token", TOKEN[::-1], "--cookies", COOKIE])
        assert bad.exit_code == 1
        assert "Error: Kubeflow Pipelines API: HTTP 401" in bad.output
        for secret in (TOKEN, TOKEN[::-1], COOKIE):
            assert secret not in bad.output and secret not in ok.output
        assert "Traceback" not in bad.output
        help_text = _invoke(["submit", "--help"], {kfp_commands.TOKEN_ENV: TOKEN}).output
        assert kfp_commands.TOKEN_ENV in help_text and TOKEN not in help_text


def test_cli_user_errors_are_one_line(package, tmp_path):
    missing = _invoke(["upload", str(tmp_path / "nope.yaml"), "--host", "http://127.0.0.1:9"])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output and "Traceback" not in missing.output

    port = _free_port()
    unreachable = _invoke(["submit", package, "--host", f"http://127.0.0.1:{port}"],
                          {kfp_commands.TOKEN_ENV: TOKEN})
    assert unreachable.exit_code == 1
    assert unreachable.output.strip() == (
        f"Error: cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}: Connection refused")

    no_host = _invoke(["runs"])
    assert no_host.exit_code == 1 and "no Kubeflow Pipelines endpoint" in no_host.output

    with FakeKfpServer() as server:
        bad_param = _invoke(["submit", package, "--host", server.url, "--param", "epochs=3"])
        assert bad_param.exit_code == 1
        assert "no parameter 'epochs'" in bad_param.output
        assert "learning_rate, message, train_steps, use_gpu" in bad_param.output
        no_eq = _invoke(["submit", package, "--host", server.url, "--param", "epochs"])
        assert no_eq.exit_code == 2 and "expected KEY=VALUE" in no_eq.output
        both = _invoke(["submit", package, "--pipeline-name", "x", "--host", server.url])
        assert both.exit_code == 2 and "one of them" in both.output
        unknown = _invoke(["submit", "--pipeline-name", "never-uploaded", "--host", server.url])
        assert unknown.exit_code == 1 and "no pipeline is named 'never-uploaded'" in unknown.output
        cron = _invoke(["schedule", package, "--cron", "0 3 *", "--host", server.url])
        assert cron.exit_code == 1 and "expected 5" in cron.output
        caching = _invoke(["submit", "--pipeline-name", "x", "--no-caching", "--host",
                           server.url])
        assert caching.exit_code == 1 and "applies to a PACKAGE file" in caching.output
        limit = _invoke(["runs", "--limit", "201", "--host", server.url])
        assert limit.exit_code == 2 and "1<=x<=200" in limit.output
        conc = _invoke(["schedule", package, "--max-concurrency", "11", "--host", server.url])
        assert conc.exit_code == 2
        assert not server.calls("POST", f"{API}/runs")
        assert not server.calls("POST", f"{API}/recurringruns")
        for result in (bad_param, no_eq, both, unknown, cron, caching, limit, conc):
            assert "Traceback" not in result.output
