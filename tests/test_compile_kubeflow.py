"""`model-garden compile`: every recipe as a KFP v2 package, with accelerators and Beam runners.

The packages are compiled through the CLI (the way a user does) and read
back with kfp's own loader; the node-pool placement is checked against the
node pools in ``kubernetes/nodepools/``.
"""

import json
import os

import pytest
import yaml
from click.testing import CliRunner
from google.protobuf import json_format

from model_garden import cli
from model_garden.kubeflow import runtime_parameters
from model_garden.kubeflow import client as kfp_client, compiler as kubeflow
from model_garden.pipelines import recipes

IMAGE = "europe-docker.pkg.dev/acme/ml/model-garden:1.2.3"
ROOT = "gs://acme-ml/model-garden"
NODEPOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "kubernetes", "nodepools")
BEAM_COMPONENTS = {"ExampleGen", "StatisticsGen", "Transform", "Evaluator"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                  "effect": "NoSchedule"}
TPU_TOLERATION = {"key": "google.com/tpu", "operator": "Equal", "value": "present",
                  "effect": "NoSchedule"}
# Fields of kfp-kubernetes' Toleration message (KubernetesExecutorConfig.tolerations = 12).
TOLERATION_FIELDS = {"key", "operator", "value", "effect", "tolerationSeconds"}


def _compile(out_dir, recipe, *flags):
    path = os.path.join(out_dir, f"{recipe}-{abs(hash(flags))}.yaml")
    result = CliRunner().invoke(
        cli.cli, ["compile", recipe, "--image", IMAGE, "--pipeline-root", ROOT, "-o", path,
                  *flags], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return path


def _containers(spec):
    return {k[len("exec-"):]: v["container"]
            for k, v in spec["deploymentSpec"]["executors"].items() if "container" in v}


def _task_param(spec, task, name):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]


def _nodepool(name):
    with open(os.path.join(NODEPOOLS, f"{name}-nodepool.yaml")) as f:
        return yaml.safe_load(f)["spec"]["nodeConfig"]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kubeflow"))


@pytest.fixture(scope="module")
def plain(out_dir, data_root):
    """Every registered recipe, compiled without accelerators (direct Beam runner).

    ``--input-base`` is the real data folder: some ExampleGens (CIFAR-10)
    detect the files' layout while the pipeline is built.
    """
    return {name: _compile(out_dir, name, "--input-base",
                           os.path.join(data_root, recipes.get_recipe(name).dataset),
                           *_needed_flags(name))
            for name in sorted(recipes.RECIPES)}


def _needed_flags(name):
    """A fine-tuning recipe (``trainable_scopes``) needs its checkpoint (``check_runnable``)."""
    if recipes.get_recipe(name).config.to_custom_config().get("trainable_scopes"):
        return ("--set", f"checkpoint_path={ROOT}/checkpoints/{name}.ckpt")
    return ()


# The TF-Slim recipes the zoo issue names, with accelerators like the others.
@pytest.mark.parametrize("name", ["flowers_mobilenet_v1", "flowers_inception_v3",
                                  "imagenet_resnet_v1_50", "imagenet_inception_v3"])
@pytest.mark.parametrize("flags, accelerator", [
    (("--gpu", "nvidia-tesla-t4:1"), {"type": "nvidia.com/gpu", "count": "1"}),
    (("--tpu", "tpu-v5-lite-podslice:2x2"), {"type": "google.com/tpu", "count": "4"})])
def test_slim_recipes_compile_for_accelerators(out_dir, name, flags, accelerator):
    spec, platform = kubeflow.load_package(_compile(out_dir, name, *flags, *_needed_flags(name)))
    containers = _containers(spec)
    assert containers["Trainer"]["resources"] == {"accelerator": accelerator}
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert list(config) == ["exec-Trainer"]


@pytest.fixture(scope="module")
def gpu(out_dir):
    return _compile(out_dir, "mnist", "--gpu", "nvidia-tesla-t4:1")


# --- every recipe -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_recipe_compiles_into_a_kfp_pipeline(plain, name):
    from kfp import components
    from kfp.pipeline_spec import pipeline_spec_pb2

    recipe = recipes.get_recipe(name)
    path = plain[name]
    spec, platform = kubeflow.load_package(path)
    assert platform == {}  # no accelerator: no Kubernetes platform spec
    parsed = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    assert parsed.pipeline_info.name == f"model-garden-{name.replace('_', '-')}"
    assert parsed.schema_version == "2.1.0"
    assert parsed.default_pipeline_root == ROOT
    assert {"ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(parsed.root.dag.tasks)
    loaded = components.load_component_from_file(path)
    assert loaded.name == parsed.pipeline_info.name

    containers = _containers(spec)
    assert {c["image"] for c in containers.values()} == {IMAGE}
    assert not any("resources" in c for c in containers.values())

    # Runtime parameters: typed, defaulting to the recipe's values, bound to the steps.
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["train_steps"]["parameterType"] == "NUMBER_INTEGER"
    assert params["train_steps"]["defaultValue"] == recipe.train_steps
    assert params["eval_steps"]["parameterType"] == "NUMBER_INTEGER"
    assert params["eval_steps"]["defaultValue"] == recipe.eval_steps
    assert params["threshold"]["parameterType"] == "NUMBER_DOUBLE"
    assert params["threshold"]["defaultValue"] == pytest.approx(recipe.eval.threshold)
    assert all(p["isOptional"] for p in params.values())
    assert loaded.component_spec.inputs["train_steps"].default == recipe.train_steps
    for task, name_ in (("Trainer", "train_steps"), ("Trainer", "eval_steps"),
                        ("Evaluator", "threshold")):
        assert _task_param(spec, task, name_) == {"componentInputParameter": name_}
    assert containers["Trainer"]["args"][1] == kubeflow.TRAINER_EXECUTOR
    assert containers["Evaluator"]["args"][1] == (
        "model_garden.kubeflow.runtime_parameters.EvaluatorExecutor")

    # Beam options on the Beam components only.
    for component, container in containers.items():
        runner = [a for a in container.get("args", []) if a.startswith("--runner=")]
        assert runner == (["--runner=DirectRunner"] if component in BEAM_COMPONENTS else []), \
            component
    assert "--direct_running_mode=multi_processing" in containers["Transform"]["args"]


# What the open-source KFP v2 backend implements, read from its source
# (kubeflow/pipelines, 2.3.0 to master):
# * executor kinds: backend/src/v2/compiler/argocompiler/dag.go compiles
#   ``container`` and ``importer`` executors; ``resolver`` fails with
#   "resolver executors not implemented", custom jobs are refused;
# * container fields: backend/src/v2/driver/driver.go (initPodSpecPatch) builds
#   the pod from ``image``, ``command``, ``args``, ``env`` and ``resources``;
#   ``lifecycle`` (preCacheCheck) is run by Vertex AI only;
# * resources: cpuLimit/cpuRequest/memoryLimit/memoryRequest and
#   accelerator.type/count (driver.go; the resource* forms are newer);
# * importer fields: backend/src/v2/driver/driver.go (Importer) reads
#   artifactUri, typeSchema, metadata and reimport;
# * a task's cachingOptions.enableCache (backend/src/v2/cacheutils/cache.go).
OPEN_SOURCE_EXECUTOR_KINDS = {"container", "importer"}
OPEN_SOURCE_CONTAINER_FIELDS = {"image", "command", "args", "env", "resources"}
OPEN_SOURCE_RESOURCE_FIELDS = {"cpuLimit", "cpuRequest", "memoryLimit", "memoryRequest",
                               "accelerator"}
OPEN_SOURCE_IMPORTER_FIELDS = {"artifactUri", "typeSchema", "metadata", "reimport"}
OPEN_SOURCE_TASK_FIELDS = {"taskInfo", "componentRef", "inputs", "dependentTasks",
                           "cachingOptions"}


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_executor_is_one_the_open_source_backend_runs(plain, name, out_dir):
    paths = [plain[name]]
    if name == "mnist":  # and the accelerator and TFJob forms
        paths += [_compile(out_dir, name, "--gpu", "nvidia-tesla-t4:1"),
                  _compile(out_dir, name, "--workers", "2")]
    for path in paths:
        spec, _ = kubeflow.load_package(path)
        executors = spec["deploymentSpec"]["executors"]
        for label, executor in executors.items():
            assert label.startswith("exec-"), label
            (kind,) = executor
            assert kind in OPEN_SOURCE_EXECUTOR_KINDS, (path, label, kind)
            fields = set(executor[kind])
            if kind == "container":
                assert fields <= OPEN_SOURCE_CONTAINER_FIELDS, (label, fields)
                assert executor[kind]["command"] == list(kubeflow.ENTRYPOINT), label
                assert set(executor[kind].get("resources", {})) <= OPEN_SOURCE_RESOURCE_FIELDS
            else:
                assert fields <= OPEN_SOURCE_IMPORTER_FIELDS, (label, fields)
        for key, component in spec["components"].items():
            assert key.startswith("comp-"), key  # kfp.local needs kfp's prefix
            assert component["executorLabel"] in executors
        tasks = spec["root"]["dag"]["tasks"]
        for task_name, task in tasks.items():
            assert set(task) <= OPEN_SOURCE_TASK_FIELDS, (task_name, set(task))
            assert task["componentRef"]["name"] in spec["components"]
            for parameter in task.get("inputs", {}).get("parameters", {}).values():
                producer = parameter.get("taskOutputParameter")
                if producer:
                    assert producer["producerTask"] in tasks, (task_name, producer)
            for artifact in task.get("inputs", {}).get("artifacts", {}).values():
                producer = artifact.get("taskOutputArtifact")
                if producer:
                    assert producer["producerTask"] in tasks, (task_name, producer)
        # The steps that look outside the pipeline never come from the cache; all others may.
        uncached = {t for t, task in tasks.items()
                    if not task.get("cachingOptions", {}).get("enableCache")}
        assert uncached == set(kubeflow.NEVER_CACHED), uncached
        # Their outputs are what ExampleGen's and the baseline's cache keys see.
        assert _task_param(spec, "ExampleGen", "input_spans") == {"taskOutputParameter": {
            "producerTask": "InputSpans", "outputParameterKey": "input_spans"}}
        assert _task_param(spec, "LatestBlessedModel", "pushed_version") == {
            "taskOutputParameter": {"producerTask": "LatestPushedVersion",
                                    "outputParameterKey": "pushed_version"}}
        assert tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"] == {
            "taskOutputArtifact": {"producerTask": "LatestBlessedModel",
                                   "outputArtifactKey": "model"}}


def test_compiling_refuses_an_executor_the_open_source_backend_does_not_run():
    spec = {"components": {"R": {"executorLabel": "R_executor"}},
            "deploymentSpec": {"executors": {"R_executor": {"resolver": {
                "outputArtifactQueries": {}}}}},
            "root": {"dag": {"tasks": {"R": {"componentRef": {"name": "R"}}}}}}
    with pytest.raises(ValueError, match="exec-R is a resolver executor"):
        kubeflow.adapt_for_open_source_backend(spec)


def test_a_run_overrides_the_parameters_with_typed_values(plain):
    spec, _ = kubeflow.load_package(plain["mnist"])
    assert kfp_client.coerce_params(spec, {"train_steps": "2000", "eval_steps": "50",
                                           "threshold": "0.99"}) == {
        "train_steps": 2000, "eval_steps": 50, "threshold": 0.99}


def test_the_executors_apply_the_parameters_to_the_compiled_protos(plain):
    """What the Trainer/Evaluator executors do with a run's values, on the compiled inputs."""
    spec, _ = kubeflow.load_package(plain["mnist"])
    trainer = {k: _task_param(spec, "Trainer", k)["runtimeValue"]["constant"]
               for k in ("train_args", "eval_args")}
    trainer.update(train_steps=2000, eval_steps=50.0)
    assert runtime_parameters.apply_step_overrides(trainer) == {"train_steps": 2000,
                                                                "eval_steps": 50}
    assert json.loads(trainer["train_args"]) == {"splits": ["train"], "num_steps": 2000}
    assert json.loads(trainer["eval_args"]) == {"splits": ["test"], "num_steps": 50}
    with pytest.raises(ValueError, match="eval_steps must be >= 1"):
        runtime_parameters.apply_step_overrides({"eval_steps": 0})

    evaluator = {k: _task_param(spec, "Evaluator", k)["runtimeValue"]["constant"]
                 for k in ("eval_config", "threshold_metric")}
    metric = evaluator["threshold_metric"]
    assert metric == recipes.get_recipe("mnist").eval.threshold_metric
    evaluator["threshold"] = 0.5
    runtime_parameters.apply_threshold_override(evaluator)
    config = json.loads(evaluator["eval_config"])
    bounds = [t["threshold"]["value_threshold"]["lower_bound"]
              for s in config["metrics_specs"] for m in s["metrics"] if m["class_name"] == metric
              for t in [m] + m.get("per_slice_thresholds", []) if "threshold" in t]
    assert bounds == [0.5]
    with pytest.raises(ValueError, match="no value threshold on metric 'AUC'"):
        runtime_parameters.apply_threshold_override(
            {"eval_config": evaluator["eval_config"], "threshold": 0.5, "threshold_metric": "AUC"})
    # Issue 13: a run-time threshold an accuracy can never reach fails before TFMA runs.
    with pytest.raises(ValueError, match=r"parameter threshold 1.5 is outside \[0, 1\]"):
        runtime_parameters.apply_threshold_override(
            {"eval_config": evaluator["eval_config"], "threshold": 1.5, "threshold_metric": metric})


def recording_run_fn(fn_args):
    """A run_fn that records what it was given (for the container-command test)."""
    os.makedirs(fn_args.serving_model_dir)
    with open(os.path.join(fn_args.serving_model_dir, "fn_args.json"), "w") as f:
        json.dump({"train_steps": fn_args.train_steps, "eval_steps": fn_args.eval_steps,
                   "custom_config": fn_args.custom_config}, f)


def test_the_trainer_container_applies_a_runs_parameters(plain, tmp_path):
    """The compiled Trainer command, fed an ExecutorInput as KFP's launcher builds it.

    Parameters arrive as ``parameterValues`` (JSON numbers for integers) and are
    typed by the ``--json_serialized_inputs_spec_args`` of the 2.1 spec; the
    run's train_steps/eval_steps reach the run_fn's FnArgs.
    """
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as entry

    spec, _ = kubeflow.load_package(plain["mnist"])
    container = _containers(spec)["Trainer"]
    component = spec["components"]["comp-Trainer"]["inputDefinitions"]
    values = {k: v["runtimeValue"]["constant"]
              for k, v in spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"].items()
              if "runtimeValue" in v}
    values.update(train_steps=2000.0, eval_steps=50.0, run_fn=f"{__name__}.recording_run_fn")

    def artifacts(definitions, **metadata):
        out = {}
        for key, definition in definitions.items():
            uri = str(tmp_path / key)
            os.makedirs(uri, exist_ok=True)
            out[key] = {"artifacts": [{"name": f"projects/p/artifacts/{key}", "uri": uri,
                                       "type": definition["artifactType"],
                                       "metadata": metadata.get(key, {})}]}
        return out

    inputs = artifacts(component["artifacts"],
                       examples={"split_names": json.dumps(["train", "test"])})
    (tmp_path / "schema" / "schema.pbtxt").write_text('feature { name: "image" type: FLOAT }\n')
    outputs = artifacts(spec["components"]["comp-Trainer"]["outputDefinitions"]["artifacts"])
    executor_input = {"inputs": {"parameterValues": values, "artifacts": inputs},
                      "outputs": {"artifacts": outputs,
                                  "outputFile": str(tmp_path / "out" / "executor_output.json")}}
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    assert "--json_serialized_inputs_spec_args" in args
    entry.main(entry._parse_flags(args))  # pylint: disable=protected-access

    with open(tmp_path / "model" / "Format-Serving" / "fn_args.json") as f:
        seen = json.load(f)
    assert seen["train_steps"] == 2000 and seen["eval_steps"] == 50
    assert seen["custom_config"] == json.loads(values["custom_config"])
    assert (tmp_path / "out" / "executor_output.json").exists()


# --- accelerators ---------------------------------------------------------------------------


def test_gpu_goes_to_the_trainer_only_with_the_gpu_pools_placement(gpu):
    from google.protobuf import json_format as jf
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb

    spec, platform = kubeflow.load_package(gpu)
    containers = _containers(spec)
    assert containers["Trainer"]["resources"] == {
        "accelerator": {"type": "nvidia.com/gpu", "count": "1"}}
    assert [c for c, v in containers.items() if "resources" in v] == ["Trainer"]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert list(executors) == ["exec-Trainer"]
    config = executors["exec-Trainer"]
    assert config["nodeSelector"] == {"labels": {"cloud.google.com/gke-accelerator":
                                                 "nvidia-tesla-t4"}}
    assert config["tolerations"] == [GPU_TOLERATION]
    # The document is kfp-kubernetes' KubernetesExecutorConfig: strict parse of what the
    # installed proto knows, and the upstream Toleration message's fields.
    jf.ParseDict({k: v for k, v in config.items() if k != "tolerations"},
                 k8s_pb.KubernetesExecutorConfig())
    assert set(config["tolerations"][0]) <= TOLERATION_FIELDS
    # It matches kubernetes/nodepools/gpu-nodepool.yaml: taint and GPU type.
    pool = _nodepool("gpu")
    (taint,) = pool["taint"]
    assert (taint["key"], taint["value"], taint["effect"]) == ("nvidia.com/gpu", "present",
                                                               "NO_SCHEDULE")
    assert pool["guestAccelerator"][0]["type"] == "nvidia-tesla-t4"
    # kfp reads both documents.
    from kfp import components

    loaded = components.load_component_from_file(gpu)
    assert json_format.MessageToDict(loaded.component_spec.platform_spec) == platform


def test_tpu_slice_goes_to_the_trainer_with_the_tpu_pools_placement(out_dir):
    spec, platform = kubeflow.load_package(
        _compile(out_dir, "mnist", "--tpu", "tpu-v5-lite-podslice:2x2"))
    containers = _containers(spec)
    assert containers["Trainer"]["resources"] == {
        "accelerator": {"type": "google.com/tpu", "count": "4"}}
    assert [c for c, v in containers.items() if "resources" in v] == ["Trainer"]
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert list(config) == ["exec-Trainer"]
    assert config["exec-Trainer"]["nodeSelector"]["labels"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "2x2"}
    assert config["exec-Trainer"]["tolerations"] == [TPU_TOLERATION]
    custom = json.loads(_task_param(spec, "Trainer", "custom_config")["runtimeValue"]["constant"])
    assert custom["strategy"] == "tpu"
    pool = _nodepool("tpu")
    (taint,) = pool["taint"]
    assert (taint["key"], taint["value"], taint["effect"]) == ("google.com/tpu", "present",
                                                               "NO_SCHEDULE")
    assert pool["machineType"] == "ct5lp-hightpu-4t"  # 4 chips: a 2x2 slice on one host


def test_workers_train_in_a_tfjob_with_the_gpus_on_its_replicas(out_dir):
    from model_garden.kubeflow import tfjob_trainer

    spec, platform = kubeflow.load_package(
        _compile(out_dir, "mnist", "--workers", "3", "--gpu", "nvidia-tesla-t4:2"))
    trainer = _containers(spec)["Trainer"]
    assert trainer["args"][1] == "model_garden.kubeflow.tfjob_trainer.Executor"
    assert "resources" not in trainer and platform == {}  # the step only supervises
    config = tfjob_trainer.TFJobConfig.from_json(
        _task_param(spec, "Trainer", "tfjob")["runtimeValue"]["constant"])
    assert (config.image, config.workers, config.gpus_per_replica, config.gpu_type) == (
        IMAGE, 3, 2, "nvidia-tesla-t4")
    custom = json.loads(_task_param(spec, "Trainer", "custom_config")["runtimeValue"]["constant"])
    assert custom["strategy"] == "multi_worker"
    assert _task_param(spec, "Trainer", "train_steps") == {"componentInputParameter": "train_steps"}


# --- Beam runners -----------------------------------------------------------------------------


def test_dataflow_runs_the_beam_components_on_dataflow(out_dir):
    spec, _ = kubeflow.load_package(_compile(
        out_dir, "mnist", "--beam-runner", "dataflow", "--beam-project", "acme",
        "--beam-region", "europe-west4", "--beam-arg=--max_num_workers=8"))
    expected = ["--runner=DataflowRunner", "--project=acme", "--region=europe-west4",
                f"--temp_location={ROOT}/tmp/dataflow", "--experiments=use_runner_v2",
                f"--sdk_container_image={IMAGE}", "--sdk_location=container",
                "--max_num_workers=8"]
    for component, container in _containers(spec).items():
        args = container.get("args", [])
        if component in BEAM_COMPONENTS:
            assert args[-len(expected):] == expected, component
        else:
            assert not any(a.startswith(("--runner", "--project", "--temp_location"))
                           for a in args), component
    # No Vertex-only driver hook (ExampleGen's preCacheCheck) is left.
    assert not any("lifecycle" in c for c in _containers(spec).values())


def test_flink_spark_and_direct_arguments():
    common = dict(image=IMAGE, pipeline_root=ROOT)
    assert kubeflow.beam_runner_args("flink", flink_master="flink-jobmanager:8081", **common) == [
        "--runner=FlinkRunner", "--flink_master=flink-jobmanager:8081",
        "--environment_type=EXTERNAL", "--environment_config=localhost:50000"]
    assert kubeflow.beam_runner_args("spark", spark_master="spark://spark-master:7077",
                                     extra=["--environment_type=DOCKER"], **common) == [
        "--runner=SparkRunner", "--spark_master_url=spark://spark-master:7077",
        "--environment_type=EXTERNAL", "--environment_config=localhost:50000",
        "--environment_type=DOCKER"]
    assert kubeflow.beam_runner_args("direct", direct_num_workers=4, **common) == [
        "--runner=DirectRunner", "--direct_running_mode=multi_processing",
        "--direct_num_workers=4"]


# --- what the user gets wrong ----------------------------------------------------------------


@pytest.mark.parametrize("flags, message", [
    (["--gpu", "nvidia-tesla-t4"], "--gpu 'nvidia-tesla-t4' is missing its COUNT: use TYPE:COUNT"),
    (["--gpu", ":1"], "is missing its TYPE"),
    (["--gpu", "nvidia-tesla-t4:0"], "COUNT must be a whole number >= 1"),
    (["--gpu", "tesla-t4:1"], "not a GKE GPU type"),
    (["--gpu", "nvidia-tesla-t4:1", "--tpu", "tpu-v5-lite-podslice:2x2"],
     "--gpu and --tpu exclude each other"),
    (["--tpu", "tpu-v5-lite-podslice"], "is missing its TOPOLOGY"),
    (["--tpu", "tpu-v9:2x2"], "unknown TPU type 'tpu-v9'"),
    (["--tpu", "tpu-v5-lite-podslice:4x4"], "16 chips over several hosts"),
    (["--tpu", "tpu-v5-lite-podslice:2x2", "--workers", "2"], "drop --workers"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--workers", "2", "--strategy", "mirrored"], "strategy multi_worker, not 'mirrored'"),
    (["--strategy", "multi_worker"], "compile with --workers N"),
    (["--beam-runner", "samza"], "'samza' is not one of"),
    (["--beam-runner", "dataflow"], "needs --beam-project and --beam-region"),
    (["--beam-runner", "dataflow", "--beam-project", "p", "--beam-region", "r",
      "--pipeline-root", "/local/root"], "needs --beam-temp-location gs://"),
    (["--beam-runner", "flink"], "needs --flink-master HOST:PORT"),
    (["--beam-runner", "spark"], "needs --spark-master"),
    (["--flink-master", "fl:8081"], "--flink-master only applies to --beam-runner flink"),
    (["--beam-arg", "max_num_workers=8"], "must be a Beam option like --name=value"),
    (["-o", "pipeline.json"], "must be a .yaml or .yml file"),
])
def test_errors_name_what_is_wrong(tmp_path, flags, message):
    args = ["compile", "mnist", "--image", IMAGE, "-o", str(tmp_path / "p.yaml"), *flags]
    result = CliRunner().invoke(cli.cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "p.yaml").exists()


def test_unknown_runner_in_the_library_names_the_choices():
    with pytest.raises(ValueError, match="unknown beam runner 'samza'; choose one of direct, "
                                         "dataflow, flink, spark"):
        kubeflow.beam_runner_args("samza", image=IMAGE, pipeline_root=ROOT)


def test_compiling_is_deterministic_and_leaves_no_temporary_file(out_dir, gpu):
    with open(gpu) as f:
        before = f.read()
    again = _compile(out_dir, "mnist", "--gpu", "nvidia-tesla-t4:1")
    assert again == gpu
    with open(again) as f:
        assert f.read() == before
    assert not [f for f in os.listdir(out_dir) if f.endswith(".tmp.yaml")]


# --- the anomalies gate (issue 13 item 5) --------------------------------------------------------


def _upstream(tasks, task):
    """Every task that ``task`` waits for (dependentTasks, transitively)."""
    seen, todo = set(), list(tasks[task].get("dependentTasks", []))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(tasks[name].get("dependentTasks", []))
    return seen


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_package_gates_transform_on_anomalies_failing_by_default(plain, name):
    """The gate reads the ExampleValidator's anomalies; Transform and all after it wait for it.

    The open-source backend runs a task after its ``dependentTasks`` succeeded
    (``argocompiler/dag.go``: ``depends: <task>.Succeeded``), ``kfp.local`` in
    their topological order: a failing gate stops Transform, Trainer,
    Evaluator and Pusher. ``on_anomalies`` is a pipeline parameter whose
    default is ``fail``: the package ``schedule`` runs as it is.
    """
    spec, _ = kubeflow.load_package(plain[name])
    tasks = spec["root"]["dag"]["tasks"]
    gate = tasks["AnomaliesGate"]
    assert gate["inputs"]["artifacts"] == {"anomalies": {"taskOutputArtifact": {
        "producerTask": "ExampleValidator", "outputArtifactKey": "anomalies"}}}
    assert gate["inputs"]["parameters"] == {"on_anomalies": {
        "componentInputParameter": "on_anomalies"}}
    assert "AnomaliesGate" in tasks["Transform"]["dependentTasks"]
    for task in ("Transform", "Trainer", "Evaluator", "Pusher"):
        assert "AnomaliesGate" in _upstream(tasks, task), task
    assert "AnomaliesGate" not in _upstream(tasks, "ExampleValidator")
    param = spec["root"]["inputDefinitions"]["parameters"]["on_anomalies"]
    assert (param["parameterType"], param["defaultValue"], param["isOptional"]) == (
        "STRING", "fail", True)
    assert _containers(spec)["AnomaliesGate"]["args"][1] == (
        "model_garden.components.anomalies_gate.Executor")


def test_compile_on_anomalies_warn_is_the_packages_default(out_dir):
    spec, _ = kubeflow.load_package(_compile(out_dir, "mnist", "--on-anomalies", "warn"))
    assert spec["root"]["inputDefinitions"]["parameters"]["on_anomalies"]["defaultValue"] == "warn"


def test_schedule_runs_the_package_with_fail_and_a_run_may_warn(plain, monkeypatch, tmp_path):
    """``schedule PACKAGE`` sends the compiled spec and no override: its runs gate with fail."""
    import kfp

    from tests.kfp_fake_server import API, FakeKfpServer

    for var in ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_SA_TOKEN_PATH", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    with FakeKfpServer() as server:
        result = CliRunner().invoke(cli.cli, ["schedule", plain["census_wide"], "--host",
                                              server.url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (job,) = [c.json for c in server.calls("POST", f"{API}/recurringruns")]
        parameters = job["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]
        assert parameters["on_anomalies"]["defaultValue"] == "fail"
        assert "on_anomalies" not in job.get("runtime_config", {}).get("parameters", {})
        result = CliRunner().invoke(cli.cli, ["submit", plain["census_wide"], "--host", server.url,
                                              "--param", "on_anomalies=warn"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (run,) = [c.json for c in server.calls("POST", f"{API}/runs")]
        assert run["runtime_config"]["parameters"] == {"on_anomalies": "warn"}


def _gate_container(spec, tmp_path, artifact, on_anomalies):
    """The compiled AnomaliesGate command, fed an ExecutorInput as the OSS driver builds it."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    container = _containers(spec)["AnomaliesGate"]
    assert container["command"] == list(kubeflow.ENTRYPOINT)
    out = tmp_path / on_anomalies / "executor_output.json"
    executor_input = {
        "inputs": {"parameterValues": {"on_anomalies": on_anomalies}, "artifacts": {
            # As ML Metadata gives it back to the driver: a system.* title.
            "anomalies": {"artifacts": [{"name": "31", "uri": artifact.uri,
                                         "type": {"schemaTitle": "system.Artifact"},
                                         "metadata": {"split_names": artifact.split_names,
                                                      "span": 0.0}}]}}},
        "outputs": {"artifacts": {}, "outputFile": str(out)}}
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    env = dict(os.environ, PYTHONPATH=repo, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "model_garden.kubeflow.entrypoint", *args],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    return result, out


def test_the_compiled_gate_stops_a_run_on_real_anomalies(plain, tmp_path, data_root):
    """A 'Space-force' in adult.data, validated by TFX's ExampleValidator against the
    curated schema: the compiled gate fails with the list (fail), or passes (warn)."""
    from tests.test_anomalies_gate import SPACE_FORCE, _changed, _validated
    from model_garden.datasets import census_csv

    folder = os.path.join(data_root, "census")
    rows = census_csv.read_file(os.path.join(folder, "adult.data")).rows
    artifact = _validated(str(tmp_path / "validated"), {
        "train": _changed(rows, 17, workclass="Space-force"),
        "test": census_csv.read_file(os.path.join(folder, "adult.test")).rows})
    spec, _ = kubeflow.load_package(plain["census_wide"])

    failed, out = _gate_container(spec, tmp_path, artifact, "fail")
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert ("AnomaliesFound: 1 anomaly against the curated schema, stopped before Transform "
            "(on_anomalies=fail; fix the data or the schema, or set on_anomalies=warn to train "
            f"on it anyway): {SPACE_FORCE}\n") in failed.stderr
    assert not out.exists()

    passed, out = _gate_container(spec, tmp_path, artifact, "warn")
    assert passed.returncode == 0, passed.stderr[-3000:]
    assert f"anomaly (on_anomalies=warn, going on): {SPACE_FORCE}" in passed.stderr
    assert out.exists()
