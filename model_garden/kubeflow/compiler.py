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
    ``train_steps`` (int), ``eval_steps`` (int), ``threshold`` (float) and
    ``on_anomalies`` (``warn``/``fail``, the AnomaliesGate's, whole as TFX
    allows, checked by its executor), with the compiled values as defaults. TFX 1.16 accepts a ``RuntimeParameter``
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
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import yaml

from model_garden.kubeflow.accelerators import Accelerator, kubernetes_executor_config, parse_gpu, parse_tpu
from model_garden.kubeflow.beam import BEAM_RUNNERS, beam_runner_args
from model_garden.pipelines.factory import PipelineOptions, create_pipeline
from model_garden.pipelines.recipes import Recipe
from model_garden.pipelines.runners import IMAGE_PACKAGE_ROOT

__all__ = [
    "IMAGE_PACKAGE_ROOT", "Accelerator", "parse_gpu", "parse_tpu", "beam_runner_args",
    "build_pipeline", "compile_kubeflow", "load_package", "BEAM_RUNNERS", "RUNTIME_PARAMETERS",
]

#: The step whose pod gets the accelerator and the node-pool placement.
ACCELERATED_COMPONENTS = ("Trainer",)
#: Pipeline parameters a run can override: name -> (type, where it goes).
RUNTIME_PARAMETERS = {
    "train_steps": (int, "Trainer: TrainArgs.num_steps"),
    "eval_steps": (int, "Trainer: EvalArgs.num_steps"),
    "threshold": (float, "Evaluator: lower bound of the blessing metric"),
    "on_anomalies": (str, "AnomaliesGate: schema anomalies stop the run before Transform "
                          "(fail) or are logged (warn)"),
}
#: The step whose execution property each runtime parameter replaces.
PARAMETER_STEPS = {"train_steps": "Trainer", "eval_steps": "Trainer", "threshold": "Evaluator",
                   "on_anomalies": "AnomaliesGate"}
TFJOB_EXECUTOR = "model_garden.kubeflow.tfjob_trainer.Executor"
COMPONENT_PREFIX, EXECUTOR_PREFIX = "comp-", "exec-"
#: What the containers run: TFX's entry point for Vertex AI, and ours around it.
TFX_ENTRYPOINT = ("python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor")
ENTRYPOINT = ("python", "-m", "model_garden.kubeflow.entrypoint")
#: The argument (after TFX's inputs spec) by which :data:`ENTRYPOINT` gets the
#: component's ``outputDefinitions``: the open-source backend may type outputs
#: ``system.*`` (``model_garden.kubeflow.entrypoint.OUTPUTS_SPEC_FLAG``).
OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"
#: The executor kinds the open-source backend runs: ``container`` and
#: ``importer`` (kubeflow/pipelines ``backend/src/v2/compiler/argocompiler/dag.go``
#: fails on ``resolver`` with "resolver executors not implemented").
SUPPORTED_EXECUTOR_KINDS = ("container", "importer")
#: Tasks that must run on every pipeline run: they read what changed outside
#: the pipeline (new spans, new pushes); their outputs feed cached steps.
NEVER_CACHED = ("InputSpans", "LatestPushedVersion")
TRAINER_EXECUTOR = "model_garden.kubeflow.runtime_parameters.TrainerExecutor"


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
    hyperparameters = dict(options.hyperparameters)
    chosen = hyperparameters.get("strategy")  # --strategy / --set strategy=...
    if workers > 1:
        if chosen not in (None, "multi_worker"):
            raise ValueError(f"--workers {workers} trains with strategy multi_worker, not "
                             f"{chosen!r}: drop the strategy setting")
        hyperparameters["strategy"] = "multi_worker"
    elif recipe.config.override(hyperparameters).strategy == "multi_worker":
        raise ValueError("strategy multi_worker needs a cluster (TF_CONFIG): compile with "
                         "--workers N (N >= 2) to train in a TFJob")
    if tpu:
        if chosen not in (None, "auto", "tpu"):
            raise ValueError(f"--tpu trains with strategy tpu, not {chosen!r}")
        hyperparameters["strategy"] = "tpu"
    pipeline = create_pipeline(recipe, dataclasses.replace(
        options, beam_pipeline_args=[], hyperparameters=hyperparameters,
        trainer_executor=TFJOB_EXECUTOR if workers > 1 else TRAINER_EXECUTOR,
        resolve_at_run_time=True))

    beam_args = list(options.beam_pipeline_args) + list(beam_args)
    for component in pipeline.components:
        if component.id == "Evaluator":
            component.executor_spec = executor_spec.BeamExecutorSpec(rp.EvaluatorExecutor)
        if beam_args:
            add_beam_pipeline_args_to_component(component, beam_args)

    trainer = _component(pipeline, "Trainer")
    evaluator = _component(pipeline, "Evaluator")
    defaults = {
        # `is None`, never `or`: a 0 must not become the recipe's default
        # (create_pipeline has refused steps < 1 above).
        "train_steps": recipe.train_steps if options.train_steps is None else options.train_steps,
        "eval_steps": recipe.eval_steps if options.eval_steps is None else options.eval_steps,
        "threshold": float(recipe.eval.threshold if options.threshold is None
                           else options.threshold),
        "on_anomalies": options.on_anomalies,
    }
    for name, (ptype, where) in RUNTIME_PARAMETERS.items():
        node = _component(pipeline, PARAMETER_STEPS[name])
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


def platform_spec(executor_configs: Mapping[str, Mapping[str, Any]]):
    """A KFP ``PlatformSpec`` with Kubernetes configs per executor label."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PlatformSpec()
    if executor_configs:
        json_format.ParseDict({"platforms": {"kubernetes": {"deploymentSpec": {
            "executors": {k: dict(v) for k, v in executor_configs.items()}}}}}, spec)
    return spec


def component_key(component_id: str) -> str:
    """The ``components`` key of a step, as kfp's compiler writes it: ``comp-<id>``.

    ``kfp.local`` (kfp 2.17, ``kfp/local/dag_orchestrator.py``) cuts the
    ``comp-`` prefix off every key, so TFX's bare ``ExampleGen`` became
    ``leGen`` there.
    """
    return COMPONENT_PREFIX + component_id


def executor_label(component_id: str) -> str:
    """The ``deploymentSpec.executors`` key of a step, as kfp writes it: ``exec-<id>``."""
    return EXECUTOR_PREFIX + component_id


def adapt_for_open_source_backend(spec: Dict[str, Any]) -> None:
    """Rewrites TFX's PipelineSpec (a dict, in place) for the open-source KFP v2 backend.

    * component keys ``comp-<id>`` and executor labels ``exec-<id>``, the
      names kfp's own compiler gives (``kfp.local`` relies on the prefix);
    * every container runs :mod:`model_garden.kubeflow.entrypoint` instead of
      TFX's ``kubeflow_v2_run_executor`` (same arguments, plus the
      component's ``outputDefinitions`` as :data:`OUTPUTS_SPEC_FLAG`);
    * no ``lifecycle`` hooks (``preCacheCheck`` is run by Vertex AI only);
    * ``taskOutputParameter.producerTask`` names the producing task (TFX
      1.16's ``step_builder`` appends ``_task``, which names no task);
    * the cache is off for the run-time resolution steps
      (:data:`NEVER_CACHED`).

    Raises:
      ValueError: an executor of a kind other than container or importer
        (see :data:`SUPPORTED_EXECUTOR_KINDS`).
    """
    renames = {name: component_key(name) for name in spec["components"]}
    executors = spec["deploymentSpec"]["executors"]
    new_executors, outputs_specs = {}, {}
    for name, component in list(spec["components"].items()):
        label = component.get("executorLabel")
        if label:
            component["executorLabel"] = executor_label(name)
            new_executors[executor_label(name)] = executors[label]
            outputs_specs[executor_label(name)] = component.get("outputDefinitions", {})
    spec["components"] = {renames[k]: v for k, v in spec["components"].items()}
    spec["deploymentSpec"]["executors"] = new_executors
    for label, executor in new_executors.items():
        kinds = set(executor) - set(SUPPORTED_EXECUTOR_KINDS)
        if kinds:
            raise ValueError(f"executor {label} is a {sorted(kinds)[0]} executor, which the "
                             "open-source KFP backend does not run")
        container = executor.get("container")
        if container is None:
            continue
        container.pop("lifecycle", None)
        if container.get("command") == list(TFX_ENTRYPOINT):
            container["command"] = list(ENTRYPOINT)
            args = container.setdefault("args", [])
            if OUTPUTS_SPEC_FLAG not in args:
                # After TFX's own flags, before the Beam arguments.
                after = next((f for f in ("--json_serialized_inputs_spec_args",
                                          "--json_serialized_invocation_args") if f in args), None)
                at = args.index(after) + 2 if after else 0
                args[at:at] = [OUTPUTS_SPEC_FLAG,
                               json.dumps(outputs_specs[label], indent=2, sort_keys=True)]
    for task_name, task in spec["root"]["dag"]["tasks"].items():
        task["componentRef"]["name"] = renames[task["componentRef"]["name"]]
        for parameter in task.get("inputs", {}).get("parameters", {}).values():
            producer = parameter.get("taskOutputParameter")
            if producer and producer["producerTask"] not in spec["root"]["dag"]["tasks"]:
                producer["producerTask"] = producer["producerTask"][:-len("_task")]
        if task_name in NEVER_CACHED:
            task["cachingOptions"] = {}


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


def compile_kubeflow(recipe: Recipe, options: PipelineOptions, image: str, output_path: str,
                     **build_args) -> Dict[str, Any]:
    """Compiles ``recipe`` into a Kubeflow Pipelines v2 package (YAML).

    Args:
      recipe: the recipe.
      options: paths as the cluster sees them (``gs://`` pipeline root and
        input base); ``metadata_path`` must be ``None``.
      image: the pipeline container image every component runs in.
      output_path: the ``.yaml``/``.yml`` file to write (via a temporary file
        and a rename).
      **build_args: the keyword arguments of :func:`build_pipeline`
        (``accelerator``, ``beam_args``, ``workers``, ``tfjob_namespace``).

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
    pipeline = build_pipeline(recipe, options, image, **build_args)
    accelerator, workers = build_args.get("accelerator"), build_args.get("workers", 1)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),
    )
    spec = runner.run(pipeline, write_out=False)["pipelineSpec"]
    # Runs without an explicit root write under the compiled one.
    spec["defaultPipelineRoot"] = options.pipeline_root
    _set_parameter_defaults(spec, pipeline)
    adapt_for_open_source_backend(spec)

    configs = {}
    if accelerator is not None and workers == 1:
        configs = {executor_label(c): kubernetes_executor_config(accelerator)
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

