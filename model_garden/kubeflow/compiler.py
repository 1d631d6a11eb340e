"""Compile a recipe for Kubeflow Pipelines v2: PipelineSpec + Kubernetes platform spec.

``model-garden compile RECIPE ...`` calls :func:`compile_kubeflow`, which
builds the recipe's TFX pipeline (:func:`model_garden.pipelines.factory.create_pipeline`),
adapts it for a KFP v2 cluster (below), compiles it with TFX's
``KubeflowV2DagRunner`` and writes one YAML file the way ``kfp``'s own
compiler does (``kfp.compiler.pipeline_spec_builder.write_pipeline_spec_to_file``):

* document 1, the ``PipelineSpec`` (schema 2.1.0: the KFP v2 backend reads
  ``parameterType``/``parameterValues``; TFX's default 2.0.0 form carries the
  deprecated ``type``/``constantValue`` fields that it does not resolve);
* document 2, only with ``--gpu``/``--tpu`` on a single-pod Trainer, the
  ``PlatformSpec``: ``platforms.kubernetes.deploymentSpec.executors.Trainer_executor``
  holds the ``KubernetesExecutorConfig`` (``nodeSelector``, ``tolerations``)
  the KFP backend applies to that step's pod.

What the compiler adds to the pipeline (all in this module, the factory's
graph is unchanged):

Accelerators (``--gpu TYPE:COUNT`` or ``--tpu TYPE:TOPOLOGY``)
    Only the Trainer gets them. Its container gets a ``ResourceSpec``
    (``with_platform_config``) whose ``accelerator.type`` is the Kubernetes
    resource name (``nvidia.com/gpu``, ``google.com/tpu``) and ``count`` the
    number of devices: the KFP v2 backend turns that into
    ``resources.limits[type] = count`` (the Vertex AI form, e.g.
    ``NVIDIA_TESLA_T4``, does not schedule on GKE). The platform spec adds the
    GKE node selector (``cloud.google.com/gke-accelerator``; for TPUs
    ``cloud.google.com/gke-tpu-accelerator`` and
    ``cloud.google.com/gke-tpu-topology``) and the toleration of the node
    pool's taint (``nvidia.com/gpu=present:NoSchedule``,
    ``google.com/tpu=present:NoSchedule``, see ``kubernetes/nodepools/``).
    With ``--workers N`` > 1 the step only supervises a TFJob: the GPUs go to
    the TFJob's replicas instead (:mod:`model_garden.kubeflow.tfjob_trainer`).

Beam runner (``--beam-runner direct|dataflow|flink|spark``)
    :func:`beam_runner_args` builds the Beam options; they are given to the
    components whose executor is a ``BeamExecutorSpec`` (ExampleGen,
    StatisticsGen, Transform, Evaluator): what ``Pipeline.finalize`` does with
    a pipeline's ``beam_pipeline_args`` (``add_beam_pipeline_args_to_component``).
    They are not set as the pipeline-level ``beam_pipeline_args`` because
    ``KubeflowV2DagRunner`` would then append them to the command line of
    every other container too (Trainer, Pusher, ...), where they mean nothing.

Run-time parameters (``root.inputDefinitions``, overridable per run)
    ``train_steps`` (int), ``eval_steps`` (int), ``threshold`` (float), with
    the compiled values as defaults. TFX 1.16 accepts a ``RuntimeParameter``
    only for a whole execution property (``train_args`` as a JSON string,
    ``eval_config`` as a whole), never inside ``TrainArgs.num_steps`` or a
    TFMA threshold; so each is a typed ``RuntimeParameter`` execution
    property of the Trainer / Evaluator, applied by the executors of
    :mod:`model_garden.kubeflow.runtime_parameters`. The pipeline root is
    the spec's ``defaultPipelineRoot``; a run overrides it with KFP's own
    run-level pipeline root (``model-garden submit --pipeline-root``).

Multi-worker training (``--workers N``)
    N > 1 selects the Trainer executor
    :class:`model_garden.kubeflow.tfjob_trainer.Executor` (TFX
    ``custom_executor_spec``): the step creates a ``kubeflow.org/v1`` TFJob
    with 1 Chief + N-1 Workers in the same image and follows it.
"""

import dataclasses
import math
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from model_garden.pipelines.factory import PipelineOptions, create_pipeline
from model_garden.pipelines.recipes import Recipe
from model_garden.pipelines.runners import IMAGE_PACKAGE_ROOT

__all__ = [
    "IMAGE_PACKAGE_ROOT", "Accelerator", "parse_gpu", "parse_tpu", "beam_runner_args",
    "build_pipeline", "compile_kubeflow", "load_package", "BEAM_RUNNERS", "RUNTIME_PARAMETERS",
]

#: The step whose pod gets the accelerator and the node-pool placement.
ACCELERATED_COMPONENTS = ("Trainer",)
#: Kubernetes extended resources of GPUs and TPUs (the device plugins' names).
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
#: Node labels GKE puts on accelerator nodes.
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
#: The taints of kubernetes/nodepools/{gpu,tpu}-nodepool.yaml (GKE sets the same).
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
TPU_TAINT = {"key": TPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
#: Chips of one host per GKE TPU type: a pipeline step is one pod on one host.
TPU_CHIPS_PER_HOST = {
    "tpu-v4-podslice": 4,
    "tpu-v5p-slice": 4,
    "tpu-v5-lite-device": 8,
    "tpu-v5-lite-podslice": 8,
    "tpu-v6e-slice": 8,
}
_GPU_TYPE = re.compile(r"^nvidia-[a-z0-9]+(-[a-z0-9]+)*$")
_TOPOLOGY = re.compile(r"^[1-9][0-9]*(x[1-9][0-9]*){1,2}$")

BEAM_RUNNERS = ("direct", "dataflow", "flink", "spark")
#: SDK harness address of a Beam worker pool sidecar (Flink/Spark on Kubernetes).
BEAM_WORKER_POOL = "localhost:50000"

#: Pipeline parameters a run can override: name -> (type, where it goes).
RUNTIME_PARAMETERS = {
    "train_steps": (int, "Trainer: TrainArgs.num_steps"),
    "eval_steps": (int, "Trainer: EvalArgs.num_steps"),
    "threshold": (float, "Evaluator: lower bound of the blessing metric"),
}
TFJOB_EXECUTOR = "model_garden.kubeflow.tfjob_trainer.Executor"
TRAINER_EXECUTOR = "model_garden.kubeflow.runtime_parameters.TrainerExecutor"


# --- accelerators -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """A GPU or TPU request for one pod.

    Attributes:
      kind: ``"gpu"`` or ``"tpu"``.
      type: the GKE node label value: a GPU type (``nvidia-tesla-t4``) or a
        TPU type (``tpu-v5-lite-podslice``).
      count: devices (GPUs, or TPU chips) in the pod, >= 1.
      topology: TPU slice topology (``2x2``); ``None`` for GPUs.
    """

    kind: str
    type: str
    count: int
    topology: Optional[str] = None

    @property
    def resource(self) -> str:
        """The Kubernetes resource name: ``nvidia.com/gpu`` or ``google.com/tpu``."""
        return GPU_RESOURCE if self.kind == "gpu" else TPU_RESOURCE

    def node_selector(self) -> Dict[str, str]:
        """The labels a node of the right pool has (GKE sets them)."""
        if self.kind == "gpu":
            return {GKE_GPU_LABEL: self.type}
        return {GKE_TPU_LABEL: self.type, GKE_TPU_TOPOLOGY_LABEL: self.topology}

    def toleration(self) -> Dict[str, str]:
        """The Kubernetes toleration of the pool's taint (``operator: Equal``)."""
        taint = GPU_TAINT if self.kind == "gpu" else TPU_TAINT
        return {"key": taint["key"], "operator": "Equal", "value": taint["value"],
                "effect": taint["effect"]}

    def resource_spec(self):
        """The TFX ``platform_config``: a KFP ``ResourceSpec`` with the accelerator."""
        from kfp.pipeline_spec import pipeline_spec_pb2

        resource_spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
        return resource_spec(accelerator=resource_spec.AcceleratorConfig(
            type=self.resource, count=self.count))


def _split_pair(flag: str, text: str, second: str, example: str) -> Tuple[str, str]:
    first, sep, rest = (text or "").partition(":")
    if not sep or not rest:
        raise ValueError(f"{flag} {text!r} is missing its {second}: use TYPE:{second}, "
                         f"e.g. {flag} {example}")
    if not first:
        raise ValueError(f"{flag} {text!r} is missing its TYPE: use TYPE:{second}, "
                         f"e.g. {flag} {example}")
    return first, rest


def parse_gpu(text: str) -> Accelerator:
    """``"nvidia-tesla-t4:1"`` -> a GPU :class:`Accelerator`.

    Args:
      text: ``TYPE:COUNT``; TYPE is a GKE GPU type, the value of the node
        label ``cloud.google.com/gke-accelerator`` (``nvidia-tesla-t4``,
        ``nvidia-l4``, ``nvidia-tesla-a100``, ...), COUNT the GPUs of the pod.

    Raises:
      ValueError: no COUNT, no TYPE, a COUNT that is not a whole number >= 1,
        or a TYPE that is not a GKE GPU type.
    """
    gpu_type, count = _split_pair("--gpu", text, "COUNT", "nvidia-tesla-t4:1")
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"--gpu {text!r}: COUNT must be a whole number >= 1, not {count!r}")
    if not _GPU_TYPE.match(gpu_type):
        raise ValueError(f"--gpu {text!r}: TYPE {gpu_type!r} is not a GKE GPU type (the "
                         f"{GKE_GPU_LABEL} node label, e.g. nvidia-tesla-t4, nvidia-l4)")
    return Accelerator("gpu", gpu_type, int(count))


def parse_tpu(text: str) -> Accelerator:
    """``"tpu-v5-lite-podslice:2x2"`` -> a TPU :class:`Accelerator` of 4 chips.

    Args:
      text: ``TYPE:TOPOLOGY``; TYPE is a GKE TPU type (the node label
        ``cloud.google.com/gke-tpu-accelerator``, a key of
        :data:`TPU_CHIPS_PER_HOST`), TOPOLOGY its slice shape (``2x2``,
        ``2x2x1``). The chip count is the product of the topology's sides.

    Raises:
      ValueError: no TOPOLOGY, no TYPE, an unknown TYPE, a malformed TOPOLOGY,
        or a slice with more chips than one host has (a multi-host slice needs
        one pod per host; a pipeline step is one pod).
    """
    tpu_type, topology = _split_pair("--tpu", text, "TOPOLOGY", "tpu-v5-lite-podslice:2x2")
    if tpu_type not in TPU_CHIPS_PER_HOST:
        raise ValueError(f"--tpu {text!r}: unknown TPU type {tpu_type!r}; known: "
                         f"{', '.join(sorted(TPU_CHIPS_PER_HOST))}")
    if not _TOPOLOGY.match(topology):
        raise ValueError(f"--tpu {text!r}: TOPOLOGY {topology!r} must look like 2x2 or 2x2x1")
    chips = math.prod(int(side) for side in topology.split("x"))
    per_host = TPU_CHIPS_PER_HOST[tpu_type]
    if chips > per_host:
        raise ValueError(f"--tpu {text!r}: a {topology} slice has {chips} chips over several "
                         f"hosts ({tpu_type} hosts have {per_host}); a pipeline step is one pod "
                         "on one host: use a single-host topology")
    return Accelerator("tpu", tpu_type, chips, topology)


# --- Beam ---------------------------------------------------------------------------


def beam_runner_args(
    runner: str = "direct",
    *,
    image: str,
    pipeline_root: str,
    project: Optional[str] = None,
    region: Optional[str] = None,
    temp_location: Optional[str] = None,
    flink_master: Optional[str] = None,
    spark_master: Optional[str] = None,
    direct_num_workers: int = 0,
    extra: Sequence[str] = (),
) -> List[str]:
    """The Beam options of the Beam components for one runner.

    Args:
      runner: ``direct`` (DirectRunner inside each step's pod,
        multi-processing), ``dataflow`` (Google Cloud Dataflow, Runner v2,
        workers in ``image``), ``flink`` (a Flink cluster), ``spark`` (a
        Spark cluster). Flink and Spark run the Python SDK harness in a Beam
        worker pool sidecar of their task managers/executors
        (``--environment_type=EXTERNAL``, :data:`BEAM_WORKER_POOL`), which can
        be ``image`` started with ``--worker_pool``.
      image: the pipeline image (Dataflow's ``--sdk_container_image``).
      pipeline_root: the pipeline root (``gs://``); Dataflow's default temp
        location is ``<pipeline_root>/tmp/dataflow``.
      project, region: Dataflow's GCP project and region.
      temp_location: Dataflow's ``--temp_location`` (``gs://``).
      flink_master: the Flink JobManager, ``HOST:PORT``.
      spark_master: the Spark master URL, ``spark://HOST:PORT``.
      direct_num_workers: DirectRunner processes (0: one per core of the pod).
      extra: more Beam options, appended (a later option wins, e.g.
        ``--environment_type=DOCKER``).

    Returns:
      ``["--runner=...", ...]``.

    Raises:
      ValueError: an unknown runner, a missing option the runner needs, or
        an option of another runner.
    """
    if runner not in BEAM_RUNNERS:
        raise ValueError(f"unknown beam runner {runner!r}; choose one of {', '.join(BEAM_RUNNERS)}")
    given = {"--beam-project": (project, "dataflow"), "--beam-region": (region, "dataflow"),
             "--beam-temp-location": (temp_location, "dataflow"),
             "--flink-master": (flink_master, "flink"), "--spark-master": (spark_master, "spark")}
    for flag, (value, owner) in given.items():
        if value and runner != owner:
            raise ValueError(f"{flag} only applies to --beam-runner {owner}, not {runner}")
    if direct_num_workers and runner != "direct":
        raise ValueError(f"--direct-num-workers only applies to --beam-runner direct, not {runner}")
    if direct_num_workers < 0:
        raise ValueError(f"--direct-num-workers must be >= 0, not {direct_num_workers}")
    if runner == "direct":
        args = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                f"--direct_num_workers={direct_num_workers}"]
    elif runner == "dataflow":
        missing = [f for f, v in (("--beam-project", project), ("--beam-region", region)) if not v]
        if missing:
            raise ValueError(f"--beam-runner dataflow needs {' and '.join(missing)} "
                             "(the GCP project and region of the Dataflow jobs)")
        if not temp_location:
            if not pipeline_root.startswith("gs://"):
                raise ValueError("--beam-runner dataflow needs --beam-temp-location gs://... "
                                 f"(the pipeline root {pipeline_root!r} is not on GCS)")
            temp_location = pipeline_root.rstrip("/") + "/tmp/dataflow"
        if not temp_location.startswith("gs://"):
            raise ValueError(f"--beam-temp-location {temp_location!r} must be a gs:// path")
        args = ["--runner=DataflowRunner", f"--project={project}", f"--region={region}",
                f"--temp_location={temp_location}", "--experiments=use_runner_v2",
                f"--sdk_container_image={image}", "--sdk_location=container"]
    elif runner == "flink":
        if not flink_master:
            raise ValueError("--beam-runner flink needs --flink-master HOST:PORT "
                             "(the Flink JobManager's REST address)")
        args = ["--runner=FlinkRunner", f"--flink_master={flink_master}",
                "--environment_type=EXTERNAL", f"--environment_config={BEAM_WORKER_POOL}"]
    else:
        if not spark_master:
            raise ValueError("--beam-runner spark needs --spark-master spark://HOST:PORT")
        args = ["--runner=SparkRunner", f"--spark_master_url={spark_master}",
                "--environment_type=EXTERNAL", f"--environment_config={BEAM_WORKER_POOL}"]
    for arg in extra:
        if not arg.startswith("--"):
            raise ValueError(f"--beam-arg {arg!r} must be a Beam option like --name=value")
    return args + list(extra)


# --- the pipeline -------------------------------------------------------------------


def _component(pipeline, component_id: str):
    for component in pipeline.components:
        if component.id == component_id:
            return component
    raise KeyError(f"the pipeline has no component {component_id!r}")


def build_pipeline(
    recipe: Recipe,
    options: PipelineOptions,
    image: str,
    *,
    accelerator: Optional[Accelerator] = None,
    beam_args: Sequence[str] = (),
    workers: int = 1,
    tfjob_namespace: Optional[str] = None,
):
    """The recipe's TFX pipeline, adapted for KFP v2 (see the module docstring).

    Args:
      recipe: the recipe.
      options: paths as the cluster sees them (``gs://``); its
        ``beam_pipeline_args`` go first, before ``beam_args``.
      image: the pipeline image (TFJob replicas run in it too).
      accelerator: the Trainer's GPU or TPU, or ``None``.
      beam_args: Beam options of the Beam components (:func:`beam_runner_args`).
      workers: training replicas; > 1 trains in a TFJob (1 Chief + N-1 Workers).
      tfjob_namespace: the TFJob's namespace (default: the step pod's).

    Returns:
      A ``tfx.dsl.Pipeline`` for ``KubeflowV2DagRunner``.

    Raises:
      ValueError: ``workers`` < 1; a TPU with ``workers`` > 1; a strategy
        other than ``multi_worker`` with ``workers`` > 1, ``multi_worker``
        with one worker, or other than ``tpu``/``auto`` with a TPU.
    """
    from tfx import v1 as tfx
    from tfx.dsl.components.base import executor_spec
    from tfx.orchestration.pipeline import add_beam_pipeline_args_to_component

    from model_garden.kubeflow import runtime_parameters as rp

    if workers < 1:
        raise ValueError(f"--workers must be >= 1, not {workers}")
    tpu = accelerator is not None and accelerator.kind == "tpu"
    if workers > 1 and tpu:
        raise ValueError("--workers > 1 trains with MultiWorkerMirroredStrategy on CPUs or "
                         "GPUs; a TPU slice trains in one pod with TPUStrategy: drop --workers")
    hyperparameters = {**recipe.hyperparameters, **options.hyperparameters}
    chosen = options.hyperparameters.get("strategy")  # --strategy / --set strategy=...
    if workers > 1:
        if chosen not in (None, "multi_worker"):
            raise ValueError(f"--workers {workers} trains with strategy multi_worker, not "
                             f"{chosen!r}: drop the strategy setting")
        hyperparameters["strategy"] = "multi_worker"
    elif hyperparameters.get("strategy") == "multi_worker":
        raise ValueError("strategy multi_worker needs a cluster (TF_CONFIG): compile with "
                         "--workers N (N >= 2) to train in a TFJob")
    if tpu:
        if chosen not in (None, "auto", "tpu"):
            raise ValueError(f"--tpu trains with strategy tpu, not {chosen!r}")
        hyperparameters["strategy"] = "tpu"
    pipeline = create_pipeline(recipe, dataclasses.replace(
        options, beam_pipeline_args=[], hyperparameters=hyperparameters,
        trainer_executor=TFJOB_EXECUTOR if workers > 1 else TRAINER_EXECUTOR))

    beam_args = list(options.beam_pipeline_args) + list(beam_args)
    for component in pipeline.components:
        if component.id == "Evaluator":
            component.executor_spec = executor_spec.BeamExecutorSpec(rp.EvaluatorExecutor)
        if beam_args:
            add_beam_pipeline_args_to_component(component, beam_args)

    trainer = _component(pipeline, "Trainer")
    evaluator = _component(pipeline, "Evaluator")
    defaults = {
        "train_steps": options.train_steps or recipe.train_steps,
        "eval_steps": options.eval_steps or recipe.eval_steps,
        "threshold": float(recipe.eval.threshold if options.threshold is None
                           else options.threshold),
    }
    for name, (ptype, where) in RUNTIME_PARAMETERS.items():
        node = evaluator if name == "threshold" else trainer
        node.exec_properties[name] = tfx.dsl.experimental.RuntimeParameter(
            name=name, ptype=ptype, default=ptype(defaults[name]), description=where)
    evaluator.exec_properties[rp.THRESHOLD_METRIC] = recipe.eval.threshold_metric

    if workers > 1:
        from model_garden.kubeflow import tfjob_trainer

        config = tfjob_trainer.TFJobConfig(
            image=image, workers=workers, namespace=tfjob_namespace,
            gpus_per_replica=accelerator.count if accelerator else 0,
            gpu_type=accelerator.type if accelerator else None)
        trainer.exec_properties[tfjob_trainer.TFJOB_CONFIG_KEY] = config.to_json()
    elif accelerator is not None:
        for component_id in ACCELERATED_COMPONENTS:
            _component(pipeline, component_id).with_platform_config(accelerator.resource_spec())
    return pipeline


def kubernetes_executor_config(accelerator: Accelerator) -> Dict[str, Any]:
    """The ``KubernetesExecutorConfig`` (as JSON) placing a pod on the accelerator pool.

    ``nodeSelector`` is built with the ``kfp-kubernetes`` proto of the lock
    (``kfp.kubernetes.kubernetes_executor_config_pb2``, 1.0.0). That version
    predates ``tolerations`` (``repeated Toleration tolerations = 12`` with
    ``key``/``operator``/``value``/``effect``/``toleration_seconds``, added in
    a later kfp-kubernetes whose kfp >= 2.6 needs protobuf 4, which TFX 1.16's
    stack here does not allow), so the toleration is written in that message's
    JSON form. KFP backends from 2.2.0 apply it (2.1.0 ignores tolerations,
    kubeflow/pipelines#10727; the pod then stays Pending on the tainted pool).
    """
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb

    message = k8s_pb.KubernetesExecutorConfig()
    message.node_selector.labels.update(accelerator.node_selector())
    config = json_format.MessageToDict(message)
    config["tolerations"] = [accelerator.toleration()]
    return config


def platform_spec(executor_configs: Mapping[str, Mapping[str, Any]]):
    """A KFP ``PlatformSpec`` with Kubernetes configs per executor label."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PlatformSpec()
    if executor_configs:
        json_format.ParseDict({"platforms": {"kubernetes": {"deploymentSpec": {
            "executors": {k: dict(v) for k, v in executor_configs.items()}}}}}, spec)
    return spec


def _set_parameter_defaults(spec: Dict[str, Any], pipeline) -> None:
    """Writes each runtime parameter's default and description into the spec."""
    declared = spec["root"].setdefault("inputDefinitions", {}).setdefault("parameters", {})
    for component in pipeline.components:
        for value in component.exec_properties.values():
            if type(value).__name__ == "RuntimeParameter" and value.name in declared:
                entry = declared[value.name]
                entry["defaultValue"] = value.default
                entry["isOptional"] = True
                if value.description:
                    entry["description"] = value.description


def compile_kubeflow(
    recipe: Recipe,
    options: PipelineOptions,
    image: str,
    output_path: str,
    *,
    accelerator: Optional[Accelerator] = None,
    beam_args: Sequence[str] = (),
    workers: int = 1,
    tfjob_namespace: Optional[str] = None,
) -> Dict[str, Any]:
    """Compiles ``recipe`` into a Kubeflow Pipelines v2 package (YAML).

    Args:
      recipe: the recipe.
      options: paths as the cluster sees them (``gs://`` pipeline root and
        input base); ``metadata_path`` must be ``None``.
      image: the pipeline container image every component runs in.
      output_path: the ``.yaml``/``.yml`` file to write (via a temporary file
        and a rename).
      accelerator, beam_args, workers, tfjob_namespace: see :func:`build_pipeline`.

    Returns:
      The PipelineSpec (document 1) as a dict.

    Raises:
      ValueError: ``output_path`` is not ``.yaml``/``.yml``, ``metadata_path``
        is set, or an argument :func:`build_pipeline` rejects.
    """
    from google.protobuf import json_format
    from kfp.compiler import pipeline_spec_builder
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx import v1 as tfx
    from tfx import version as tfx_version

    if not output_path.endswith((".yaml", ".yml")):
        raise ValueError(f"the output {output_path!r} must be a .yaml or .yml file")
    if options.metadata_path:
        raise ValueError("metadata_path must be None on Kubeflow (KFP brings its own MLMD)")
    pipeline = build_pipeline(recipe, options, image, accelerator=accelerator,
                              beam_args=beam_args, workers=workers,
                              tfjob_namespace=tfjob_namespace)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),
    )
    spec = runner.run(pipeline, write_out=False)["pipelineSpec"]
    # Runs without an explicit root write under the compiled one.
    spec["defaultPipelineRoot"] = options.pipeline_root
    _set_parameter_defaults(spec, pipeline)

    configs = {}
    if accelerator is not None and workers == 1:
        configs = {f"{c}_executor": kubernetes_executor_config(accelerator)
                   for c in ACCELERATED_COMPONENTS}
    pipeline_spec = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    description = (f"model-garden recipe {recipe.name}: {recipe.description}. "
                   f"Compiled by TFX {tfx_version.__version__} KubeflowV2DagRunner.")
    directory = os.path.dirname(os.path.abspath(output_path))
    tmp = os.path.join(directory, f".{os.path.basename(output_path)}.tmp.yaml")
    pipeline_spec_builder.write_pipeline_spec_to_file(
        pipeline_spec, description, platform_spec(configs), tmp)
    os.replace(tmp, output_path)
    return spec


def load_package(path: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(PipelineSpec dict, PlatformSpec dict or ``{}``) of a compiled YAML file."""
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    return docs[0], (docs[1] if len(docs) > 1 else {})

