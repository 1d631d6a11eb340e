"""The pipeline factory: one recipe -> the standard TFX pipeline.

Every recipe runs the same graph (as in the TFX penguin template)::

    ExampleGen -> StatisticsGen -> ImportSchemaGen (curated) ---> ExampleValidator
                               \\-> SchemaGen (inferred, for comparison)
    ExampleValidator -> AnomaliesGate (on_anomalies: warn | fail) ..> Transform
    ExampleGen + schema -> Transform (preprocessing_fn) -> Trainer (run_fn)
    LatestBlessedModel (baseline) + Trainer -> Evaluator (TFMA) -> Pusher

Transform runs only after the AnomaliesGate succeeded (an ordering edge,
``add_upstream_node``, not an input: see
:mod:`model_garden.components.anomalies_gate`); with ``on_anomalies="fail"``
any anomaly of the data against the curated schema stops the pipeline there.

The Evaluator blesses a model when its threshold metric reaches the recipe's
threshold and does not fall below the latest blessed model's; only a blessed
model is pushed. ExampleGen reads the latest span, or a window of spans
(``spans``), of :mod:`model_garden.components.input_spans`.

What this run reads is resolved when the pipeline is built (local runners:
the pipeline is built right before it runs), or, with
``resolve_at_run_time`` (Kubeflow: compiled once, run on a schedule), by two
never-cached steps whose outputs are the inputs of ExampleGen and of the
baseline::

    InputSpans ---------(input_spans)----> ExampleGen
    LatestPushedVersion -(pushed_version)-> LatestBlessedModel
"""

import dataclasses
import json
import os
from typing import Any, List, Mapping, Optional

from model_garden.datasets import SplitSpec, get_dataset
from model_garden.pipelines.recipes import EvalSpec, Recipe

TRAIN_SPLIT = "train"
EVAL_SPLIT = "test"
SCHEMAS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "schemas")


@dataclasses.dataclass
class PipelineOptions:
    """What varies between two runs of one recipe.

    Attributes:
      input_base: folder of the dataset's raw files (local or ``gs://``).
      pipeline_root: root of the pipeline's artifacts.
      serving_dir: TF Serving model base path; the Pusher writes
        ``<serving_dir>/<version>/``.
      metadata_path: SQLite ML Metadata file (``None`` on Kubeflow, which
        brings its own MLMD).
      split: how examples are split into ``train`` and ``test``.
      train_steps: Trainer steps (``None``: the recipe's default).
      eval_steps: Trainer evaluation steps (``None``: the recipe's default).
      threshold: lower bound of the recipe's threshold metric (``None``:
        the recipe's default).
      change_tolerance: how far below the latest blessed model's value the
        threshold metric may fall and still be blessed (0: not at all).
      hyperparameters: overrides of fields of the recipe's Trainer config
        (``--set``; strings are converted to each field's type,
        :meth:`model_garden.trainers.configs.TrainerConfig.override`).
      beam_pipeline_args: Beam options for ExampleGen, StatisticsGen,
        Transform and Evaluator.
      schemas_dir: where the curated schema files are, as the executing
        machine sees them (the installed package by default; the image's
        path when compiling for Kubeflow).
      enable_cache: reuse unchanged components' outputs from ML Metadata.
      spans: ``None``: ``input_base`` is the dataset as is; K >= 1: it holds
        ``span-N`` folders and a run reads the last K of them.
      warm_start: the Trainer starts from the latest blessed model's weights
        (its ``base_model``) when there is one.
      resolve_at_run_time: add the ``InputSpans`` and ``LatestPushedVersion``
        steps (Kubeflow) instead of resolving both when the pipeline is built.
      example_gen_options: the dataset's own ExampleGen options (the image
        datasets' ``train_shards``, ``test_shards``, ``skip_bad_images``,
        ``labels_offset``; :mod:`model_garden.components.image_example_gen`).
      on_anomalies: what anomalies against the curated schema do: ``"warn"``
        (the AnomaliesGate logs them, the pipeline goes on) or ``"fail"``
        (it stops before Transform; :mod:`model_garden.components.anomalies_gate`).
      trainer_executor: dotted path of a Trainer executor class (a TFX
        ``GenericExecutor`` subclass) to use instead of TFX's, e.g. the
        Kubeflow compiler's ``model_garden.kubeflow.tfjob_trainer.Executor``
        (``None``: TFX's ``GenericExecutor``).
    """

    input_base: str
    pipeline_root: str
    serving_dir: str
    metadata_path: Optional[str] = None
    split: SplitSpec = dataclasses.field(default_factory=SplitSpec)
    train_steps: Optional[int] = None
    eval_steps: Optional[int] = None
    threshold: Optional[float] = None
    change_tolerance: float = 0.0
    hyperparameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
    schemas_dir: str = SCHEMAS_DIR
    enable_cache: bool = True
    trainer_executor: Optional[str] = None
    spans: Optional[int] = None
    warm_start: bool = False
    resolve_at_run_time: bool = False
    example_gen_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    on_anomalies: str = "warn"


def pipeline_name(recipe: Recipe) -> str:
    """The pipeline's name: ``model-garden-<recipe>``, DNS-safe for Kubeflow."""
    return "model-garden-" + recipe.name.replace("_", "-")


def make_eval_config(spec: EvalSpec, threshold: float, change_tolerance: float = 0.0):
    """The TFMA ``EvalConfig`` of a recipe.

    Args:
      spec: the recipe's evaluation spec.
      threshold: lower bound of ``spec.threshold_metric`` for a blessing.
      change_tolerance: the allowed drop against the baseline (the latest
        blessed model); TFX drops change thresholds when there is no baseline.

    Returns:
      A ``tfma.EvalConfig`` on the ``serving_default`` signature, with the
      overall slice plus ``spec.slices``.
    """
    import tensorflow_model_analysis as tfma
    from google.protobuf.wrappers_pb2 import BoolValue

    metrics = []
    for name in spec.metrics:
        config = dict(spec.metric_kwargs.get(name, {}))
        metric = tfma.MetricConfig(class_name=name, config=json.dumps(config) if config else "")
        if name == spec.threshold_metric:
            # The gate is on the overall slice only: MetricConfig.threshold
            # would hold every slice (e.g. each race) to the same bound.
            metric.per_slice_thresholds.add(
                slicing_specs=[tfma.SlicingSpec()],
                threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(lower_bound={"value": threshold}),
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                        absolute={"value": -(change_tolerance + 1e-10)},
                    ),
                ),
            )
        metrics.append(metric)
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key=spec.label_key,
                prediction_key=spec.prediction_key,
                preprocessing_function_names=[],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=list(keys)) for keys in spec.slices],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
        # Only the recipe's metrics: TFMA's defaults for a Keras model (its
        # compiled loss and metrics) reload the model in every combiner,
        # measured 58 s vs 18 s for the CIFAR-10 Evaluator.
        options=tfma.Options(include_default_metrics=BoolValue(value=False)),
    )


def _executor_spec(class_path: Optional[str]):
    """``ExecutorClassSpec`` of the executor class at ``class_path`` (``None``: none)."""
    if not class_path:
        return None
    from tfx.dsl.components.base import executor_spec
    from tfx.utils import import_utils

    return executor_spec.ExecutorClassSpec(import_utils.import_class_by_path(class_path))


def create_pipeline(recipe: Recipe, options: PipelineOptions):
    """Builds the TFX pipeline of ``recipe``.

    Args:
      recipe: a registered recipe.
      options: paths, split, steps, thresholds and Beam arguments.

    Returns:
      A ``tfx.dsl.Pipeline`` for BeamDagRunner, LocalDagRunner or
      KubeflowV2DagRunner.

    Raises:
      KeyError: the recipe names an unknown dataset.
      model_garden.trainers.configs.ConfigError: a bad ``--set`` override, or
        a config a run cannot use (``check_runnable``).
      ValueError: ``train_steps`` or ``eval_steps`` below 1; ``on_anomalies``
        neither ``"warn"`` nor ``"fail"``.
    """
    from tfx.dsl.components.base import executor_spec

    from model_garden.components import anomalies_gate as gate_lib
    from model_garden.components import evaluator as evaluator_lib
    from model_garden.components import input_spans as spans_lib
    from model_garden.components import latest_blessed_model as baseline_lib
    from model_garden.components import pusher as pusher_lib
    from model_garden.pipelines import tfx_api as tfx

    dataset = get_dataset(recipe.dataset)
    resolvers = []
    if options.resolve_at_run_time:
        spans_step = spans_lib.InputSpans(options.input_base, options.spans).with_id(
            spans_lib.COMPONENT_ID)
        version_step = baseline_lib.LatestPushedVersion(options.serving_dir).with_id(
            baseline_lib.VERSION_COMPONENT_ID)
        resolvers = [spans_step, version_step]
        input_spans = spans_step.outputs[spans_lib.INPUT_SPANS_KEY].future()[0].value
        pushed_version = version_step.outputs[baseline_lib.PUSHED_VERSION_KEY].future()[0].value
    else:
        input_spans = spans_lib.resolve_spans(options.input_base, options.spans).to_json()
        pushed_version = baseline_lib.latest_pushed_version(options.serving_dir)
    data = _data_components(dataset, recipe.schema_file, options, input_spans)
    example_gen, statistics_gen, schema_importer, inferred_schema, example_validator = data
    examples = example_gen.outputs["examples"]
    schema = schema_importer.outputs["schema"]
    gate = gate_lib.AnomaliesGate(example_validator.outputs["anomalies"],
                                  options.on_anomalies).with_id(gate_lib.COMPONENT_ID)
    transform = tfx.Transform(
        examples=examples,
        schema=schema,
        preprocessing_fn=recipe.preprocessing_fn,
        materialize=recipe.materialize,
        # Not materialized: no Beam pass computing post-transform statistics
        # over every decoded pixel (StatisticsGen covers the raw data).
        disable_statistics=not recipe.materialize,
    )
    # An ordering edge, not a data input: Transform's inputs (and so its cache
    # key, locally and on KFP) stay the examples and the curated schema, so a
    # changed on_anomalies re-runs the cheap gate only.
    transform.add_upstream_node(gate)
    baseline = baseline_lib.LatestBlessedModel(options.serving_dir, pushed_version).with_id(
        baseline_lib.COMPONENT_ID)
    # Typed and checked here, before any component runs (ConfigError names the valid keys).
    trainer_config = recipe.config.override(options.hyperparameters)
    trainer_config.check_runnable()
    train_steps = recipe.train_steps if options.train_steps is None else options.train_steps
    eval_steps = recipe.eval_steps if options.eval_steps is None else options.eval_steps
    if train_steps < 1 or eval_steps < 1:
        raise ValueError(f"train_steps ({train_steps}) and eval_steps ({eval_steps}) must be >= 1")
    trainer = tfx.Trainer(
        run_fn=recipe.run_fn,
        # Without materialized examples the run_fn applies the transform graph.
        examples=transform.outputs["transformed_examples"] if recipe.materialize else examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.TrainArgs(
            splits=[TRAIN_SPLIT], num_steps=train_steps
        ),
        eval_args=tfx.EvalArgs(
            splits=[EVAL_SPLIT], num_steps=eval_steps
        ),
        custom_config=trainer_config.to_custom_config(),
        base_model=baseline.outputs["model"] if options.warm_start else None,
        custom_executor_spec=_executor_spec(options.trainer_executor),
    )
    threshold = recipe.eval.threshold if options.threshold is None else options.threshold
    evaluator = tfx.Evaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=make_eval_config(recipe.eval, threshold, options.change_tolerance),
        example_splits=[EVAL_SPLIT],
    )
    # An empty baseline (nothing pushed yet) is no baseline.
    evaluator.executor_spec = executor_spec.BeamExecutorSpec(evaluator_lib.Executor)
    pusher = tfx.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.PushDestination(
            filesystem=tfx.PushDestination.Filesystem(
                base_directory=options.serving_dir
            )
        ),
    )
    # The model the destination already serves is not pushed again (a re-run).
    pusher.executor_spec = executor_spec.ExecutorClassSpec(pusher_lib.Executor)
    return _pipeline(pipeline_name(recipe), options,
                     resolvers + list(data)
                     + [gate, transform, baseline, trainer, evaluator, pusher])


def _data_components(dataset, schema_file: str, options: PipelineOptions, input_spans: str):
    """ExampleGen, StatisticsGen, CuratedSchema, InferredSchema, ExampleValidator."""
    from model_garden.pipelines import tfx_api as tfx

    example_gen = dataset.make_example_gen(options.input_base, options.split, input_spans,
                                           **options.example_gen_options)
    statistics_gen = tfx.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_importer = tfx.ImportSchemaGen(
        schema_file=os.path.join(options.schemas_dir, schema_file)
    ).with_id("CuratedSchema")
    inferred_schema = tfx.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    ).with_id("InferredSchema")
    example_validator = tfx.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_importer.outputs["schema"]
    )
    return example_gen, statistics_gen, schema_importer, inferred_schema, example_validator


def _pipeline(name: str, options: PipelineOptions, components):
    from model_garden.pipelines import tfx_api as tfx

    metadata = None
    if options.metadata_path:
        metadata = tfx.sqlite_metadata_connection_config(options.metadata_path)
    return tfx.Pipeline(
        pipeline_name=name,
        pipeline_root=options.pipeline_root,
        components=components,
        enable_cache=options.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(options.beam_pipeline_args),
    )


def data_pipeline_name(dataset_name: str) -> str:
    """The data pipeline's name: ``model-garden-data-<dataset>``."""
    return "model-garden-data-" + dataset_name.replace("_", "-")


def create_data_pipeline(dataset_name: str, options: PipelineOptions):
    """The data half of every recipe's pipeline, alone: convert and validate a dataset.

    ``ExampleGen -> StatisticsGen -> CuratedSchema (schemas/<dataset>.pbtxt)
    -> ExampleValidator`` (and the inferred schema), what ``model-garden
    convert`` runs; the Examples it writes are the sharded TFRecords.

    Raises:
      KeyError: an unknown dataset.
      FileNotFoundError: the dataset has no curated schema.
    """
    from model_garden.components import input_spans as spans_lib

    dataset = get_dataset(dataset_name)
    schema_file = f"{dataset.name}.pbtxt"
    if not os.path.isfile(os.path.join(options.schemas_dir, schema_file)):
        raise FileNotFoundError(f"{dataset.name}: no curated schema "
                                f"{os.path.join(options.schemas_dir, schema_file)}")
    input_spans = spans_lib.resolve_spans(options.input_base, options.spans).to_json()
    return _pipeline(data_pipeline_name(dataset.name), options,
                     list(_data_components(dataset, schema_file, options, input_spans)))
