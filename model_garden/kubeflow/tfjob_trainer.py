"""Trainer executor that trains on several replicas as a Kubeflow Training Operator TFJob.

``model-garden compile RECIPE --workers N`` (N > 1) selects :class:`Executor`
as the Trainer's ``custom_executor_spec``. Inside the pipeline step it:

1. applies the run-time ``train_steps``/``eval_steps``
   (:mod:`model_garden.kubeflow.runtime_parameters`) and sets
   ``custom_config["strategy"] = "multi_worker"``;
2. writes the Trainer invocation to ``<model_run_dir>/tfjob/fn_args.json`` on
   the pipeline root (:func:`model_garden.kubeflow.tfjob_entry.dump_invocation`);
3. creates a ``kubeflow.org/v1`` TFJob (:func:`model_garden.kubeflow.tfjob.render_tfjob`):
   1 Chief + N-1 Workers in the pipeline image, each running
   ``python -m model_garden.kubeflow.tfjob_entry --fn-args <that file>``,
   with the GPUs (and the GPU pool's node selector and toleration) when the
   pipeline was compiled with ``--gpu``; owned by the step's pod
   (``KFP_POD_NAME``/``KFP_POD_UID``), so Kubernetes deletes it with the pod;
4. polls it with the Kubernetes Python client (in-cluster config in a pod,
   else ``$KUBECONFIG``) until a ``Succeeded`` or ``Failed`` condition;
5. fails the step (``RuntimeError``) on ``Failed``, on a timeout (after
   deleting the job), when the job disappears, or when the chief wrote no
   SavedModel; on success it deletes the job (its pods are done).

The step's service account needs ``tfjobs`` create/get/delete in the job's
namespace (``kubernetes/rbac.yaml``: ``model-garden-pipeline``).
"""

import dataclasses
import hashlib
import json
import logging
import os
import secrets
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from tfx.types import standard_component_specs as specs

from model_garden.kubeflow import runtime_parameters
from model_garden.kubeflow import tfjob
from model_garden.kubeflow import tfjob_entry

#: Execution property holding :class:`TFJobConfig` as JSON (added by the compiler).
TFJOB_CONFIG_KEY = "tfjob"
GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"
ENTRY_COMMAND = ("python", "-m", "model_garden.kubeflow.tfjob_entry")
#: Where a pod's namespace is (the service account mount).
SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
DEFAULT_NAMESPACE = "kubeflow"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"


@dataclasses.dataclass(frozen=True)
class TFJobConfig:
    """How the Trainer step runs its TFJob.

    Attributes:
      image: container image of every replica (the pipeline image).
      workers: training replicas in all, >= 2: 1 Chief + ``workers - 1`` Workers.
      gpus_per_replica: ``nvidia.com/gpu`` of each replica (0: CPU only).
      gpu_type: GKE GPU type for the replicas' node selector
        (``cloud.google.com/gke-accelerator``), with ``gpus_per_replica`` > 0.
      namespace: the TFJob's namespace (``None``: the step pod's, else ``kubeflow``).
      service_account: the replicas' service account (GCS access).
      poll_interval_s: seconds between two status reads.
      timeout_s: seconds to wait for a terminal condition (``None``: no limit;
        the TFJob's ``backoffLimit`` still bounds restarts).
      delete_on_success: delete the TFJob once it succeeded.
    """

    image: str
    workers: int
    gpus_per_replica: int = 0
    gpu_type: Optional[str] = None
    namespace: Optional[str] = None
    service_account: Optional[str] = "model-garden-pipeline"
    poll_interval_s: float = 15.0
    timeout_s: Optional[float] = None
    delete_on_success: bool = True

    def __post_init__(self):
        if not self.image:
            raise ValueError("TFJobConfig.image is required")
        if not isinstance(self.workers, int) or self.workers < 2:
            raise ValueError(f"a TFJob Trainer needs workers >= 2, not {self.workers!r}")
        if self.gpus_per_replica < 0:
            raise ValueError(f"gpus_per_replica must be >= 0, not {self.gpus_per_replica}")
        if self.gpu_type and not self.gpus_per_replica:
            raise ValueError(f"gpu_type {self.gpu_type!r} without gpus_per_replica")
        if self.poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s must be > 0, not {self.poll_interval_s}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TFJobConfig":
        """Parses :meth:`to_json`'s output.

        Raises:
          ValueError: not JSON, unknown keys, or invalid values.
        """
        try:
            values = json.loads(text)
        except (TypeError, ValueError) as e:
            raise ValueError(f"execution property {TFJOB_CONFIG_KEY!r} is not JSON: {e}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown TFJob settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


class TFJobFailedError(RuntimeError):
    """The TFJob ended in a ``Failed`` condition (message names the job and reason)."""


def job_state(job: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """The TFJob's latest true condition: ``(type, condition)``.

    Returns:
      ``("Succeeded"|"Failed"|"Running"|"Created"|"Restarting"|..., condition)``;
      ``("Pending", {})`` before the operator wrote any condition. A true
      ``Succeeded`` or ``Failed`` condition wins over later ones.
    """
    conditions = [c for c in ((job.get("status") or {}).get("conditions") or [])
                  if str(c.get("status")) == "True"]
    for terminal in ("Failed", "Succeeded"):
        for condition in conditions:
            if condition.get("type") == terminal:
                return terminal, condition
    if conditions:
        return conditions[-1].get("type", "Unknown"), conditions[-1]
    return "Pending", {}


def build_tfjob(config: TFJobConfig, name: str, namespace: str, fn_args_uri: str,
                owner: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The TFJob manifest of one Trainer run.

    Args:
      config: the TFJob settings.
      name: the job name (DNS-1035, at most 48 characters).
      namespace: where it runs.
      fn_args_uri: the invocation file every replica reads.
      owner: ``{"name": ..., "uid": ...}`` of the step's pod (same namespace),
        set as the job's owner so that deleting the pod deletes the job.
    """
    job = tfjob.render_tfjob(
        name, config.image, chief=1, workers=config.workers - 1,
        command=list(ENTRY_COMMAND), args=["--fn-args", fn_args_uri],
        gpus_per_worker=config.gpus_per_replica, namespace=namespace,
        service_account=config.service_account,
        labels={"model-garden.io/component": "trainer"})
    if config.gpu_type:
        for spec in job["spec"]["tfReplicaSpecs"].values():
            spec["template"]["spec"]["nodeSelector"][GKE_GPU_LABEL] = config.gpu_type
    if owner:
        job["metadata"]["ownerReferences"] = [{
            "apiVersion": "v1", "kind": "Pod", "name": owner["name"], "uid": owner["uid"],
            "blockOwnerDeletion": False, "controller": False}]
    return job


def job_name(serving_model_dir: str) -> str:
    """``mg-trainer-<8 hex of the output>-<5 random>``: unique per attempt, <= 48 characters."""
    digest = hashlib.sha256(serving_model_dir.encode()).hexdigest()[:8]
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return f"mg-trainer-{digest}-" + "".join(secrets.choice(alphabet) for _ in range(5))


def pod_namespace() -> Optional[str]:
    """The namespace of the pod this runs in (``None`` outside a pod)."""
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE_FILE) as f:
            return f.read().strip() or None
    except OSError:
        return None


def kubernetes_api_client():
    """A ``kubernetes.client.ApiClient``: in-cluster config in a pod, else ``$KUBECONFIG``.

    Raises:
      kubernetes.config.ConfigException: neither is available.
    """
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


def follow_tfjob(api, namespace: str, name: str, *, poll_interval_s: float,
                 timeout_s: Optional[float] = None, max_api_errors: int = 5,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> Dict[str, Any]:
    """Polls the TFJob until it succeeds.

    Args:
      api: a ``kubernetes.client.CustomObjectsApi``.
      namespace, name: the job.
      poll_interval_s: seconds between reads.
      timeout_s: give up after this long (``None``: never).
      max_api_errors: consecutive failed reads (5xx, connection) tolerated.
      sleep, clock: time functions.

    Returns:
      The job as last read (with the ``Succeeded`` condition).

    Raises:
      TFJobFailedError: a ``Failed`` condition (reason and message included).
      TimeoutError: ``timeout_s`` passed first.
      RuntimeError: the job disappeared (404) or too many failed reads.
    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    deadline = None if timeout_s is None else clock() + timeout_s
    last_state, errors = None, 0
    while True:
        try:
            job = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            errors = 0
        except ApiException as e:
            if e.status == 404:
                raise RuntimeError(f"TFJob {namespace}/{name} disappeared while training") from None
            if e.status and e.status < 500 and e.status != 429:
                raise RuntimeError(f"cannot read TFJob {namespace}/{name}: HTTP {e.status} "
                                   f"{e.reason}") from None
            errors += 1
            if errors > max_api_errors:
                raise RuntimeError(f"cannot read TFJob {namespace}/{name}: {errors} failed "
                                   f"reads in a row, last HTTP {e.status}") from None
            job = None
        except (OSError, HTTPError) as e:  # connection refused/reset, retries exhausted
            errors += 1
            if errors > max_api_errors:
                raise RuntimeError(f"cannot reach the Kubernetes API for TFJob "
                                   f"{namespace}/{name}: {e}") from None
            job = None
        if job is not None:
            state, condition = job_state(job)
            if state != last_state:
                logging.info("TFJob %s/%s: %s %s", namespace, name, state,
                             condition.get("message", ""))
                last_state = state
            if state == "Succeeded":
                return job
            if state == "Failed":
                raise TFJobFailedError(
                    f"TFJob {namespace}/{name} failed: {condition.get('reason', 'no reason')}: "
                    f"{condition.get('message', 'no message')} (kubectl -n {namespace} describe "
                    f"tfjob {name}; kubectl -n {namespace} logs -l "
                    f"training.kubeflow.org/job-name={name})")
        if deadline is not None and clock() >= deadline:
            raise TimeoutError(f"TFJob {namespace}/{name} did not finish within {timeout_s} s "
                               f"(last state: {last_state or 'unread'})")
        sleep(poll_interval_s)


class Executor(runtime_parameters.TrainerExecutor):
    """Trains with the recipe's ``run_fn`` on a TFJob (see the module docstring)."""

    def Do(self, input_dict: Dict[str, List], output_dict: Dict[str, List],
           exec_properties: Dict[str, Any]) -> None:
        """Runs the Trainer as a TFJob and waits for it.

        Args:
          input_dict, output_dict: the Trainer's artifacts (``examples``,
            ``transform_graph``, ``schema``; ``model``, ``model_run``).
          exec_properties: the Trainer's, plus ``tfjob`` (:class:`TFJobConfig`
            JSON) and the run-time ``train_steps``/``eval_steps``.

        Raises:
          ValueError: no or invalid ``tfjob`` settings, or bad step counts.
          TFJobFailedError: the job failed.
          TimeoutError: the job did not finish within ``timeout_s``.
          RuntimeError: the job disappeared, the API was unreachable, or no
            SavedModel was written.
          kubernetes.client.exceptions.ApiException: the job could not be
            created (e.g. 403 without the RBAC of kubernetes/rbac.yaml, 422 invalid).
        """
        from kubernetes import client
        from tfx.dsl.io import fileio
        from tfx.utils import json_utils

        self._log_startup(input_dict, output_dict, exec_properties)
        exec_properties = dict(exec_properties)
        if not exec_properties.get(TFJOB_CONFIG_KEY):
            raise ValueError(f"execution property {TFJOB_CONFIG_KEY!r} (TFJob settings) is missing")
        config = TFJobConfig.from_json(exec_properties.pop(TFJOB_CONFIG_KEY))
        steps = runtime_parameters.apply_step_overrides(exec_properties)
        custom_config = json_utils.loads(exec_properties.get(specs.CUSTOM_CONFIG_KEY) or "null")
        exec_properties[specs.CUSTOM_CONFIG_KEY] = json_utils.dumps(
            {**(custom_config or {}), "strategy": "multi_worker"})

        fn_args = self._GetFnArgs(input_dict, output_dict, exec_properties)
        fn_args_uri = tfjob_entry.dump_invocation(
            os.path.join(fn_args.model_run_dir, "tfjob", "fn_args.json"),
            input_dict, output_dict, exec_properties)
        here = pod_namespace()
        namespace = config.namespace or here or DEFAULT_NAMESPACE
        owner = None
        if os.environ.get("KFP_POD_NAME") and os.environ.get("KFP_POD_UID") and (
                here is None or here == namespace):
            owner = {"name": os.environ["KFP_POD_NAME"], "uid": os.environ["KFP_POD_UID"]}
        name = job_name(fn_args.serving_model_dir)
        job = build_tfjob(config, name, namespace, fn_args_uri, owner)

        api = client.CustomObjectsApi(kubernetes_api_client())
        logging.info("creating TFJob %s/%s: %d replicas, %d GPU(s) each, %s; invocation %s",
                     namespace, name, config.workers, config.gpus_per_replica, steps, fn_args_uri)
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
        try:
            follow_tfjob(api, namespace, name, poll_interval_s=config.poll_interval_s,
                         timeout_s=config.timeout_s)
        except TimeoutError:
            _delete(api, namespace, name)
            raise
        if config.delete_on_success:
            _delete(api, namespace, name)
        if not fileio.exists(fn_args.serving_model_dir):
            raise RuntimeError(f"TFJob {namespace}/{name} succeeded but its chief wrote no "
                               f"SavedModel to {fn_args.serving_model_dir}")
        logging.info("TFJob %s/%s trained the model: %s", namespace, name,
                     fn_args.serving_model_dir)


def _delete(api, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status != 404:
            logging.warning("could not delete TFJob %s/%s: HTTP %s %s", namespace, name,
                            e.status, e.reason)
