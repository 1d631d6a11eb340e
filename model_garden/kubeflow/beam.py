"""Beam options of the Beam components (ExampleGen, StatisticsGen, Transform, Evaluator) on a cluster."""

from typing import List, Optional, Sequence

BEAM_RUNNERS = ("direct", "dataflow", "flink", "spark")
#: SDK harness address of a Beam worker pool sidecar (Flink/Spark on Kubernetes).
BEAM_WORKER_POOL = "localhost:50000"


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
