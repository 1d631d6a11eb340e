"""The TFJob Trainer executor against a loopback Kubernetes API server (contract test).

The executor runs unmodified with the real ``kubernetes`` client, configured
from a kubeconfig that points at :class:`tests.fake_k8s_server.FakeKubernetes`;
that server rejects invalid TFJobs (422) the way a cluster with the Training
Operator's CRD and strict field validation does, and plays the operator's
status conditions. Nothing in the client is mocked.
"""

import json
import multiprocessing
import os
import time

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from model_garden.kubeflow import accelerators
from model_garden.kubeflow import tfjob_trainer
from model_garden.kubeflow import tfjob
from model_garden.kubeflow import tfjob_entry
from tests.fake_k8s_server import FakeKubernetes, tfjob_errors

IMAGE = "europe-docker.pkg.dev/acme/ml/model-garden:1.2.3"
POD = {"name": "model-garden-mnist-abc12-trainer-driver", "uid": "7d6c0f3e-1111-2222-3333-444455556666"}


# --- fixtures -------------------------------------------------------------------------


def _artifacts(root):
    """Real TFX artifacts of a Trainer invocation, with their folders on disk."""
    from tfx.types import artifact_utils, standard_artifacts

    def make(cls, name, **properties):
        artifact = cls()
        artifact.uri = os.path.join(root, name)
        os.makedirs(artifact.uri, exist_ok=True)
        for key, value in properties.items():
            setattr(artifact, key, value)
        return artifact

    examples = make(standard_artifacts.Examples, "Transform/transformed_examples/5",
                    split_names=artifact_utils.encode_split_names(["train", "test"]))
    for split in ("train", "test"):
        os.makedirs(os.path.join(examples.uri, f"Split-{split}"), exist_ok=True)
    schema = make(standard_artifacts.Schema, "CuratedSchema/schema/3")
    with open(os.path.join(schema.uri, "schema.pbtxt"), "w") as f:
        f.write('feature { name: "image" type: FLOAT }\n')
    inputs = {"examples": [examples], "schema": [schema],
              "transform_graph": [make(standard_artifacts.TransformGraph,
                                       "Transform/transform_graph/5")]}
    outputs = {"model": [make(standard_artifacts.Model, "Trainer/model/6")],
               "model_run": [make(standard_artifacts.ModelRun, "Trainer/model_run/6")]}
    return inputs, outputs


def _exec_properties(config: tfjob_trainer.TFJobConfig):
    return {
        "train_args": json.dumps({"splits": ["train"], "num_steps": 800}),
        "eval_args": json.dumps({"splits": ["test"], "num_steps": 20}),
        "run_fn": "model_garden.trainers.mnist.run_fn",
        "custom_config": json.dumps({"batch_size": 100, "strategy": "auto"}),
        # What a run sets: KFP v2 may deliver integers as JSON numbers (floats).
        "train_steps": 7,
        "eval_steps": 3.0,
        "tfjob": config.to_json(),
    }


def _config(**overrides):
    values = dict(image=IMAGE, workers=3, gpus_per_replica=1, gpu_type="nvidia-tesla-t4",
                  namespace="ml-team", poll_interval_s=0.01, timeout_s=30)
    values.update(overrides)
    return tfjob_trainer.TFJobConfig(**values)


@pytest.fixture
def cluster_env(tmp_path, monkeypatch):
    """The step's environment outside a pod: $KUBECONFIG, KFP's pod name and uid."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KFP_POD_NAME", POD["name"])
    monkeypatch.setenv("KFP_POD_UID", POD["uid"])

    def connect(fake: FakeKubernetes):
        monkeypatch.setenv("KUBECONFIG", fake.write_kubeconfig(str(tmp_path / "kubeconfig")))

    return connect


def _serving_model_dir(outputs):
    from tfx.utils import path_utils

    return path_utils.serving_model_dir(outputs["model"][0].uri)


def _chief_writes_model(seen):
    """on_succeeded: what the chief does: read its --fn-args, write the SavedModel."""

    def on_succeeded(job):
        container = job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
        uri = container["args"][container["args"].index("--fn-args") + 1]
        inputs, outputs, props = tfjob_entry.load_invocation(uri)
        seen.update(uri=uri, inputs=inputs, outputs=outputs, props=props)
        model_dir = _serving_model_dir(outputs)
        os.makedirs(model_dir)
        with open(os.path.join(model_dir, "saved_model.pb"), "wb") as f:
            f.write(b"\x08\x01")

    return on_succeeded


# --- the contract -----------------------------------------------------------------------


def test_step_creates_a_valid_tfjob_follows_it_and_passes_on_succeeded(tmp_path, cluster_env):
    inputs, outputs = _artifacts(str(tmp_path))
    seen = {}
    with FakeKubernetes("Succeeded", on_succeeded=_chief_writes_model(seen)) as fake:
        cluster_env(fake)
        tfjob_trainer.Executor().Do(inputs, outputs, _exec_properties(_config()))

    posts = fake.calls("POST")
    assert len(posts) == 1
    method, path, headers, job = posts[0]
    assert path == "/apis/kubeflow.org/v1/namespaces/ml-team/tfjobs"
    assert headers["authorization"] == "Bearer fake-k8s-token"  # the kubeconfig's credentials
    assert tfjob_errors(job) == []
    assert tfjob.replica_counts(job) == {"Chief": 1, "Worker": 2}
    name = job["metadata"]["name"]
    assert len(name) <= 48 and name.startswith("mg-trainer-")
    assert name == tfjob_trainer.job_name(_serving_model_dir(outputs))  # one name per task
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Pod", "name": POD["name"], "uid": POD["uid"],
        "blockOwnerDeletion": False, "controller": False}]
    for kind in ("Chief", "Worker"):
        pod = job["spec"]["tfReplicaSpecs"][kind]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "tensorflow" and container["image"] == IMAGE
        assert container["command"] == ["python", "-m", "model_garden.kubeflow.tfjob_entry"]
        assert container["args"] == ["--fn-args", seen["uri"]]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal",
                                       "value": "present", "effect": "NoSchedule"}]
        assert pod["tolerations"] == [accelerators.parse_gpu("nvidia-tesla-t4:1").toleration()]
        assert pod["serviceAccountName"] == "model-garden-pipeline"

    # The replicas get the step's FnArgs inputs: run-time steps applied, strategy
    # multi_worker, the same artifacts; the file lies beside the step's outputs.
    assert seen["uri"] == os.path.join(outputs["model_run"][0].uri, "tfjob", "fn_args.json")
    props = seen["props"]
    assert json.loads(props["train_args"])["num_steps"] == 7
    assert json.loads(props["eval_args"])["num_steps"] == 3
    assert json.loads(props["custom_config"]) == {"batch_size": 100, "strategy": "multi_worker"}
    assert "tfjob" not in props and "train_steps" not in props
    assert {k: [a.uri for a in v] for k, v in seen["inputs"].items()} == {
        k: [a.uri for a in v] for k, v in inputs.items()}
    assert seen["outputs"]["model"][0].uri == outputs["model"][0].uri

    # Looked up first (404: no earlier attempt), followed to the end (Created,
    # Running, Succeeded), then deleted.
    assert len(fake.calls("GET")) == 4
    assert [p for _, p, _, _ in fake.calls("DELETE")] == [f"{path}/{name}"]
    assert fake.jobs == {}


def test_a_failed_tfjob_fails_the_step_and_is_kept(tmp_path, cluster_env):
    inputs, outputs = _artifacts(str(tmp_path))
    with FakeKubernetes("Failed") as fake:
        cluster_env(fake)
        with pytest.raises(tfjob_trainer.TFJobFailedError) as failure:
            tfjob_trainer.Executor().Do(inputs, outputs, _exec_properties(_config()))
    (name,) = [n for _, n in fake.jobs]
    message = str(failure.value)
    assert f"ml-team/{name} failed: TFJobFailed" in message
    assert "1 Worker replica(s) failed" in message
    assert f"kubectl -n ml-team describe tfjob {name}" in message
    assert fake.calls("DELETE") == []  # left for `kubectl describe` / logs
    assert not os.path.exists(_serving_model_dir(outputs))


def test_succeeded_without_a_savedmodel_fails_the_step(tmp_path, cluster_env):
    inputs, outputs = _artifacts(str(tmp_path))
    with FakeKubernetes("Succeeded") as fake:
        cluster_env(fake)
        with pytest.raises(RuntimeError, match="wrote no SavedModel"):
            tfjob_trainer.Executor().Do(inputs, outputs, _exec_properties(_config()))


def test_a_job_that_never_finishes_times_out_and_is_deleted(tmp_path, cluster_env):
    inputs, outputs = _artifacts(str(tmp_path))
    with FakeKubernetes("Running") as fake:
        cluster_env(fake)
        with pytest.raises(TimeoutError, match="did not finish within 0.3 s"):
            tfjob_trainer.Executor().Do(inputs, outputs,
                                        _exec_properties(_config(timeout_s=0.3)))
    assert len(fake.calls("DELETE")) == 1 and fake.jobs == {}


def test_cpu_job_in_the_default_namespace_without_kfp_pod(tmp_path, cluster_env, monkeypatch):
    monkeypatch.delenv("KFP_POD_NAME")
    inputs, outputs = _artifacts(str(tmp_path))
    seen = {}
    with FakeKubernetes("Succeeded", on_succeeded=_chief_writes_model(seen)) as fake:
        cluster_env(fake)
        tfjob_trainer.Executor().Do(inputs, outputs, _exec_properties(
            _config(workers=2, gpus_per_replica=0, gpu_type=None, namespace=None)))
    (_, path, _, job), = fake.calls("POST")
    assert path == "/apis/kubeflow.org/v1/namespaces/kubeflow/tfjobs"
    assert tfjob_errors(job) == []
    assert tfjob.replica_counts(job) == {"Chief": 1, "Worker": 1}
    assert "ownerReferences" not in job["metadata"]
    pod = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "resources" not in pod["containers"][0]


def test_the_fake_server_rejects_what_a_cluster_rejects(tmp_path):
    """Negative control: an invalid TFJob gets 422, a wrong token 401."""
    job = tfjob_trainer.build_tfjob(_config(), "mg-trainer-x", "ml-team", "gs://b/f.json")
    assert tfjob_errors(job) == []
    job["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "two"
    job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["cmd"] = ["x"]
    with FakeKubernetes() as fake:
        from kubernetes import config

        api = k8s_client.CustomObjectsApi(config.new_client_from_config(
            config_file=fake.write_kubeconfig(str(tmp_path / "kubeconfig"))))
        with pytest.raises(ApiException) as invalid:
            api.create_namespaced_custom_object("kubeflow.org", "v1", "ml-team", "tfjobs", job)
        assert invalid.value.status == 422
        assert "replicas" in invalid.value.body and "cmd" in invalid.value.body
        fake.token = "another-token"
        with pytest.raises(ApiException) as unauthorized:
            api.get_namespaced_custom_object("kubeflow.org", "v1", "ml-team", "tfjobs", "x")
        assert unauthorized.value.status == 401


# --- a retried step re-attaches -----------------------------------------------------------

RETRY_POD = {"name": "model-garden-mnist-abc12-trainer-retry", "uid": "9e8d7c6b-aaaa-bbbb-cccc-ddddeeeeffff"}


def _first_attempt(inputs, outputs, props, kubeconfig):
    """The step's first attempt, in a child process that the test kills (a pre-emption)."""
    os.environ["KUBECONFIG"] = kubeconfig
    tfjob_trainer.Executor().Do(inputs, outputs, props)


def test_a_retry_after_a_kill_follows_the_running_tfjob(tmp_path, cluster_env, monkeypatch):
    """Attempt 1 creates the TFJob and is SIGKILLed while it runs; attempt 2 (same
    output URIs, another pod) creates nothing, adopts the job and follows it to the end."""
    inputs, outputs = _artifacts(str(tmp_path))
    seen = {}
    with FakeKubernetes("Running", on_succeeded=_chief_writes_model(seen)) as fake:
        cluster_env(fake)
        props = _exec_properties(_config(timeout_s=None))
        first = multiprocessing.get_context("fork").Process(
            target=_first_attempt, args=(inputs, outputs, props, os.environ["KUBECONFIG"]))
        first.start()
        try:
            deadline = time.monotonic() + 60
            while not any(n >= 3 for n in fake.reads.values()):  # read as Running
                assert first.is_alive() and time.monotonic() < deadline, "attempt 1 did not start"
                time.sleep(0.05)
        finally:
            first.kill()
            first.join(10)
        assert first.exitcode == -9
        (key,) = fake.jobs
        assert tfjob_trainer.job_state(fake.jobs[key])[0] == "Running"

        fake.outcome = "Succeeded"  # the job trains on and finishes: the retry's
        fake.reads[key] = 1  # lookup still sees it Running, a later read Succeeded
        monkeypatch.setenv("KFP_POD_NAME", RETRY_POD["name"])
        monkeypatch.setenv("KFP_POD_UID", RETRY_POD["uid"])
        tfjob_trainer.Executor().Do(inputs, outputs, _exec_properties(_config(timeout_s=30)))

    assert len(fake.calls("POST")) == 1  # one TFJob for the task, never a second
    (patch,) = fake.calls("PATCH")
    assert patch[1] == f"/apis/kubeflow.org/v1/namespaces/{key[0]}/tfjobs/{key[1]}"
    assert patch[2]["content-type"] == "application/merge-patch+json"
    assert [o["name"] for o in patch[3]["metadata"]["ownerReferences"]] == [
        POD["name"], RETRY_POD["name"]]  # the job outlives the killed pod
    assert [p for _, p, _, _ in fake.calls("DELETE")] == [patch[1]]  # deleted once done
    assert os.path.exists(os.path.join(_serving_model_dir(outputs), "saved_model.pb"))
    assert seen["outputs"]["model"][0].uri == outputs["model"][0].uri


def test_a_retry_reuses_a_succeeded_tfjob(tmp_path, cluster_env):
    """Killed after the job succeeded but before the step ended: no second training."""
    inputs, outputs = _artifacts(str(tmp_path))
    def chief(_job):
        os.makedirs(_serving_model_dir(outputs))
        with open(os.path.join(_serving_model_dir(outputs), "saved_model.pb"), "wb") as f:
            f.write(b"\x08\x01")

    with FakeKubernetes("Succeeded", on_succeeded=chief) as fake:
        cluster_env(fake)
        name = tfjob_trainer.job_name(_serving_model_dir(outputs))
        job = tfjob_trainer.build_tfjob(_config(), name, "ml-team", "gs://b/fn_args.json", POD)
        api = k8s_client.CustomObjectsApi(
            __import__("kubernetes").config.new_client_from_config(os.environ["KUBECONFIG"]))
        api.create_namespaced_custom_object("kubeflow.org", "v1", "ml-team", "tfjobs", job)
        while tfjob_trainer.job_state(api.get_namespaced_custom_object(
                "kubeflow.org", "v1", "ml-team", "tfjobs", name))[0] != "Succeeded":
            pass
        reads = len(fake.calls("GET"))
        tfjob_trainer.Executor().Do(inputs, outputs, _exec_properties(_config()))
    assert len(fake.calls("POST")) == 1 and fake.calls("PATCH") == []
    assert len(fake.calls("GET")) == reads + 2  # the lookup, then one read: Succeeded
    assert len(fake.calls("DELETE")) == 1 and fake.jobs == {}
    # The invocation file is not rewritten for a job that already ran.
    assert not os.path.exists(os.path.join(outputs["model_run"][0].uri, "tfjob"))


def test_a_retry_replaces_a_failed_tfjob(tmp_path, cluster_env):
    inputs, outputs = _artifacts(str(tmp_path))
    props = _exec_properties(_config())
    with FakeKubernetes("Failed") as fake:
        cluster_env(fake)
        with pytest.raises(tfjob_trainer.TFJobFailedError):
            tfjob_trainer.Executor().Do(inputs, outputs, props)
        ((key, first),) = fake.jobs.items()
        fake.job_outcomes[key] = "Failed"  # the old job stays failed; a new one succeeds
        fake.outcome = "Succeeded"
        fake.on_succeeded = _chief_writes_model({})
        tfjob_trainer.Executor().Do(inputs, outputs, props)
    posts = fake.calls("POST")
    assert len(posts) == 2 and posts[0][3]["metadata"]["name"] == posts[1][3]["metadata"]["name"]
    # The failed job was deleted before its replacement was created, which then succeeded.
    methods = [m for m, *_ in fake.requests]
    assert methods.index("DELETE") < len(methods) - 1 - methods[::-1].index("POST")
    assert len(fake.calls("DELETE")) == 2 and fake.jobs == {}
    assert tfjob_trainer.job_state(first)[0] == "Failed"


def test_the_fake_server_merge_patches_like_the_api_server(tmp_path):
    job = tfjob_trainer.build_tfjob(_config(), "mg-trainer-x", "ml-team", "gs://b/f.json", POD)
    with FakeKubernetes() as fake:
        from kubernetes import config

        api = k8s_client.CustomObjectsApi(config.new_client_from_config(
            config_file=fake.write_kubeconfig(str(tmp_path / "kubeconfig"))))
        api.create_namespaced_custom_object("kubeflow.org", "v1", "ml-team", "tfjobs", job)
        patched = api.patch_namespaced_custom_object(
            "kubeflow.org", "v1", "ml-team", "tfjobs", "mg-trainer-x",
            {"metadata": {"labels": {"extra": "1"}}})
        assert patched["metadata"]["labels"]["extra"] == "1"
        assert patched["metadata"]["labels"]["model-garden.io/tfjob"] == "mg-trainer-x"
        assert patched["metadata"]["resourceVersion"] == "2"
        with pytest.raises(ApiException) as invalid:
            api.patch_namespaced_custom_object(
                "kubeflow.org", "v1", "ml-team", "tfjobs", "mg-trainer-x",
                {"metadata": {"ownerReferences": [{"kind": "Pod"}]}})  # no name, uid
        assert invalid.value.status == 422


# --- pieces -------------------------------------------------------------------------------


def test_job_state_reads_the_operator_conditions():
    assert tfjob_trainer.job_state({}) == ("Pending", {})
    running = {"status": {"conditions": [
        {"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]}}
    assert tfjob_trainer.job_state(running)[0] == "Running"
    done = {"status": {"conditions": [
        {"type": "Created", "status": "True"}, {"type": "Running", "status": "False"},
        {"type": "Succeeded", "status": "True", "reason": "TFJobSucceeded"}]}}
    assert tfjob_trainer.job_state(done) == ("Succeeded", done["status"]["conditions"][2])
    restarted = {"status": {"conditions": [
        {"type": "Restarting", "status": "False"}, {"type": "Running", "status": "True"}]}}
    assert tfjob_trainer.job_state(restarted)[0] == "Running"


def test_settings_are_validated():
    with pytest.raises(ValueError, match="workers >= 2"):
        tfjob_trainer.TFJobConfig(image=IMAGE, workers=1)
    with pytest.raises(ValueError, match="without gpus_per_replica"):
        tfjob_trainer.TFJobConfig(image=IMAGE, workers=2, gpu_type="nvidia-l4")
    with pytest.raises(ValueError, match="needs a gpu_type"):
        tfjob_trainer.TFJobConfig(image=IMAGE, workers=2, gpus_per_replica=1)
    with pytest.raises(ValueError, match="not a GKE GPU type"):
        tfjob_trainer.TFJobConfig(image=IMAGE, workers=2, gpus_per_replica=1, gpu_type="T4")
    with pytest.raises(ValueError, match="unknown TFJob settings"):
        tfjob_trainer.TFJobConfig.from_json(json.dumps({"image": IMAGE, "workers": 2, "gpu": 1}))
    config = _config()
    assert tfjob_trainer.TFJobConfig.from_json(config.to_json()) == config


def test_step_without_tfjob_settings_or_with_bad_steps_fails(tmp_path):
    inputs, outputs = _artifacts(str(tmp_path))
    props = _exec_properties(_config())
    del props["tfjob"]
    with pytest.raises(ValueError, match="'tfjob'"):
        tfjob_trainer.Executor().Do(inputs, outputs, props)
    props = _exec_properties(_config())
    props["train_steps"] = 2.5
    with pytest.raises(ValueError, match="train_steps must be a whole number"):
        tfjob_trainer.Executor().Do(inputs, outputs, props)


def test_chief_is_chief_or_worker_zero_without_chief():
    cluster = {"chief": ["h:1"], "worker": ["h:2", "h:3"]}
    assert tfjob_entry.is_chief({})
    assert tfjob_entry.is_chief({"cluster": cluster, "task": {"type": "chief", "index": 0}})
    assert not tfjob_entry.is_chief({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    workers = {"worker": ["h:2", "h:3"]}
    assert tfjob_entry.is_chief({"cluster": workers, "task": {"type": "worker", "index": 0}})
    assert not tfjob_entry.is_chief({"cluster": workers, "task": {"type": "worker", "index": 1}})
