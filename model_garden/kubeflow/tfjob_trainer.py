"""Trainer executor that trains on several replicas as a Kubeflow Training Operator TFJob.

``model-garden compile RECIPE --workers N`` (N > 1) selects :class:`Executor`
as the Trainer's ``custom_executor_spec``. Inside the pipeline step it:

1. applies the run-time ``train_steps``/``eval_steps``
   (:mod:`model_garden.kubeflow.runtime_parameters`) and sets
   ``custom_config["strategy"] = "multi_worker"``;
2. names the TFJob after the step's output (:func:`job_name`: a hash of the
   Trainer's ``serving_model_dir``, which KFP's driver fixes once per task,
   so every attempt of one task computes the same name) and looks it up;
3. when there is none, writes the Trainer invocation to
   ``<model_run_dir>/tfjob/fn_args.json`` on the pipeline root
   (:func:`model_garden.kubeflow.tfjob_entry.dump_invocation`) and creates a
   ``kubeflow.org/v1`` TFJob (:func:`model_garden.kubeflow.tfjob.render_tfjob`):
   1 Chief + N-1 Workers in the pipeline image, each running
   ``python -m model_garden.kubeflow.tfjob_entry --fn-args <that file>``,
   with the GPUs, GKE's GPU node label and the GPU pool's toleration
   (:mod:`model_garden.kubeflow.accelerators`) when the pipeline was compiled
   with ``--gpu``; owned by the step's pod (``KFP_POD_NAME``/``KFP_POD_UID``),
   so Kubernetes deletes it with the pod;
4. polls it with the Kubernetes Python client (in-cluster config in a pod,
   else ``$KUBECONFIG``) until a ``Succeeded`` or ``Failed`` condition;
5. fails the step (``RuntimeError``) on ``Failed``, on a timeout (after
   deleting the job), when the job disappears, or when the chief wrote no
   SavedModel; on success it deletes the job (its pods are done).

Retries re-attach (what Google Cloud Pipeline Components' launchers do after a
pre-emption: ``gcp_launcher/job_remote_runner.py`` keeps the job's name in
the task's ``gcp_resources`` output and, on a retry, polls that job instead of
creating one). KFP retries a task by running its executor pod again with the
same executor input, so the same output URIs and the same :func:`job_name`.
What a retried attempt finds under that name:

* a job still running (or pending, created, restarting): it follows that job
  and adds its own pod to the job's ``ownerReferences``, so the job outlives
  the pre-empted first pod (Kubernetes collects it only once all its owners
  are gone) and no second job trains into the same output;
* a ``Succeeded`` job: it takes its result (the SavedModel in
  ``serving_model_dir``) without training again;
* a ``Failed`` job: it deletes it and creates a new one. The step's retry
  budget (KFP's ``retry`` policy) is what a user gives a failed training to
  try again; keeping the failed job would fail every retry at once. The
  failure's reason is logged first, and the last attempt's failed job is
  kept for ``kubectl describe``.

The step's service account needs ``tfjobs`` create/get/patch/delete in the
job's namespace (``kubernetes/rbac.yaml``: ``model-garden-pipeline``).
"""

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from tfx.types import standard_component_specs as specs

from model_garden.kubeflow import accelerators
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
#: States of a TFJob found under the step's name that a retry follows.
_TERMINAL = ("Succeeded", "Failed")


@dataclasses.dataclass(frozen=True)
class TFJobConfig:
    """How the Trainer step runs its TFJob.

    Attributes:
      image: container image of every replica (the pipeline image).
      workers: training replicas in all, >= 2: 1 Chief + ``workers - 1`` Workers.
      gpus_per_replica: ``nvidia.com/gpu`` of each replica (0: CPU only).
      gpu_type: GKE GPU type for the replicas' node selector
        (``cloud.google.com/gke-accelerator``), required with
        ``gpus_per_replica`` > 0.
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
        if self.gpus_per_replica:
            if not self.gpu_type:
                raise ValueError(f"gpus_per_replica={self.gpus_per_replica} needs a gpu_type "
                                 f"(the {accelerators.GKE_GPU_LABEL} node label value)")
            self.accelerator()  # a valid GKE GPU type
        if self.poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s must be > 0, not {self.poll_interval_s}")

    def accelerator(self) -> Optional[accelerators.Accelerator]:
        """The replicas' GPUs (``None``: CPU only).

        Raises:
          ValueError: ``gpu_type`` is not a GKE GPU type.
        """
        if not self.gpus_per_replica:
            return None
        return accelerators.parse_gpu(f"{self.gpu_type}:{self.gpus_per_replica}")

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
        accelerator=config.accelerator(), namespace=namespace,
        service_account=config.service_account,
        labels={"model-garden.io/component": "trainer"})
    if owner:
        job["metadata"]["ownerReferences"] = [owner_reference(owner)]
    return job


def owner_reference(owner: Mapping[str, str]) -> Dict[str, Any]:
    """The ``ownerReferences`` entry naming the step's pod (not a controller)."""
    return {"apiVersion": "v1", "kind": "Pod", "name": owner["name"], "uid": owner["uid"],
            "blockOwnerDeletion": False, "controller": False}


def job_name(serving_model_dir: str) -> str:
    """``mg-trainer-<16 hex of the output>``: the same for every attempt of one task.

    ``serving_model_dir`` lies under the Trainer's ``model`` output URI, which
    KFP's driver sets once per task (from the pipeline root, the run and the
    task's name) and hands unchanged to each retry of the executor pod; 64 bits of its
    SHA-256 keep two tasks' names apart. At most 48 characters.
    """
    digest = hashlib.sha256(serving_model_dir.encode()).hexdigest()[:16]
    return f"mg-trainer-{digest}"


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
        from kubernetes.client.exceptions import ApiException
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
        here = pod_namespace()
        namespace = config.namespace or here or DEFAULT_NAMESPACE
        owner = None
        if os.environ.get("KFP_POD_NAME") and os.environ.get("KFP_POD_UID") and (
                here is None or here == namespace):
            owner = {"name": os.environ["KFP_POD_NAME"], "uid": os.environ["KFP_POD_UID"]}
        name = job_name(fn_args.serving_model_dir)
        api = client.CustomObjectsApi(kubernetes_api_client())

        if not _attach(api, namespace, name, owner, config.poll_interval_s):
            fn_args_uri = tfjob_entry.dump_invocation(
                os.path.join(fn_args.model_run_dir, "tfjob", "fn_args.json"),
                input_dict, output_dict, exec_properties)
            job = build_tfjob(config, name, namespace, fn_args_uri, owner)
            logging.info("creating TFJob %s/%s: %d replicas, %d GPU(s) each, %s; invocation %s",
                         namespace, name, config.workers, config.gpus_per_replica, steps,
                         fn_args_uri)
            try:
                api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
            except ApiException as e:
                if e.status != 409:
                    raise
                # Another attempt of this task created it since the lookup: follow it.
                logging.info("TFJob %s/%s was created meanwhile: following it", namespace, name)
        try:
            follow_tfjob(api, namespace, name, poll_interval_s=config.poll_interval_s,
                         timeout_s=config.timeout_s)
        except TimeoutError:
            _delete(api, namespace, name)
            raise
        if not fileio.exists(fn_args.serving_model_dir):
            raise RuntimeError(f"TFJob {namespace}/{name} succeeded but its chief wrote no "
                               f"SavedModel to {fn_args.serving_model_dir}")
        if config.delete_on_success:
            _delete(api, namespace, name)
        logging.info("TFJob %s/%s trained the model: %s", namespace, name,
                     fn_args.serving_model_dir)


def _attach(api, namespace: str, name: str, owner: Optional[Mapping[str, str]],
            poll_interval_s: float, delete_timeout_s: float = 120.0) -> bool:
    """Whether an earlier attempt's TFJob ``name`` is there to follow.

    A running (or succeeded) job: ``True``, after adding ``owner`` to its
    ``ownerReferences``. A failed one is deleted (``False``: create anew).
    No job: ``False``. See the module docstring.
    """
    existing = _read(api, namespace, name)
    if existing is None:
        return False
    state, condition = job_state(existing)
    if state == "Failed":
        logging.warning("TFJob %s/%s of an earlier attempt of this step failed (%s: %s); "
                        "deleting it to train again", namespace, name,
                        condition.get("reason", "no reason"), condition.get("message", ""))
        _delete(api, namespace, name)
        deadline = time.monotonic() + delete_timeout_s
        while _read(api, namespace, name) is not None:  # finalizers may delay the delete
            if time.monotonic() >= deadline:
                raise RuntimeError(f"TFJob {namespace}/{name} of an earlier attempt failed and "
                                   f"was not deleted within {delete_timeout_s} s")
            time.sleep(poll_interval_s)
        return False
    logging.info("re-attaching to TFJob %s/%s (%s), started by an earlier attempt of this step",
                 namespace, name, state)
    if owner and state not in _TERMINAL:
        _add_owner(api, namespace, existing, owner)
    return True


def _read(api, namespace: str, name: str) -> Optional[Dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException

    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _add_owner(api, namespace: str, job: Mapping[str, Any], owner: Mapping[str, str]) -> None:
    """Adds this attempt's pod to the job's owners (a JSON merge patch of the full list)."""
    from kubernetes.client.exceptions import ApiException

    name = job["metadata"]["name"]
    owners = list(job["metadata"].get("ownerReferences") or [])
    if any(o.get("uid") == owner["uid"] for o in owners):
        return
    owners.append(owner_reference(owner))
    try:
        # No resourceVersion precondition: the operator's status writes bump it
        # all the time, and attempts of one task do not run at once.
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                           {"metadata": {"ownerReferences": owners}})
    except ApiException as e:
        # Training goes on; only the garbage collection of the job depends on it.
        logging.warning("could not add pod %s as an owner of TFJob %s/%s: HTTP %s %s (the "
                        "job is deleted with the earlier attempt's pod)", owner["name"],
                        namespace, name, e.status, e.reason)


def _delete(api, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status != 404:
            logging.warning("could not delete TFJob %s/%s: HTTP %s %s", namespace, name,
                            e.status, e.reason)
