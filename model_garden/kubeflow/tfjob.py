"""Distributed training as a Kubeflow Training Operator ``TFJob`` (``kubeflow.org/v1``).

:func:`render_tfjob` returns the manifest as a dict, e.g. to create it from a
pipeline step with the Kubernetes client under the ``model-garden-pipeline``
service account (``kubernetes/rbac.yaml`` grants ``tfjobs`` create/get/watch/
delete)::

    job = render_tfjob("mnist-train", image, command=["python", "-m", "my.trainer"],
                       chief=1, workers=2, accelerator=parse_gpu("nvidia-tesla-t4:1"))
    CustomObjectsApi().create_namespaced_custom_object(
        "kubeflow.org", "v1", job["metadata"]["namespace"], "tfjobs", job)

The Training Operator starts one pod per replica and sets ``TF_CONFIG``
(cluster spec plus this pod's task type and index) in the container named
``tensorflow``, which is what ``tf.distribute.MultiWorkerMirroredStrategy``
reads: the ``Chief`` replica is task ``chief:0`` (it also trains, and writes
checkpoints and the SavedModel), ``Worker`` replicas are ``worker:0..N-1``.
"""

import re
from typing import Dict, List, Mapping, Optional, Sequence

from model_garden.kubeflow.accelerators import Accelerator

#: The container the Training Operator injects TF_CONFIG into (and requires).
CONTAINER_NAME = "tensorflow"
#: Replica restart policies of kubeflow.org/v1 (common RestartPolicy).
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")

# Pod and service names are "<name>-worker-<i>": keep them within 63 characters.
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_NAME = 48


def render_tfjob(
    name: str,
    image: str,
    *,
    chief: int = 1,
    workers: int = 2,
    command: Sequence[str],
    accelerator: Optional[Accelerator] = None,
    namespace: str = "kubeflow",
    args: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
    service_account: Optional[str] = "model-garden-pipeline",
    restart_policy: str = "ExitCode",
    backoff_limit: int = 3,
    cpu: Optional[str] = None,
    memory: Optional[str] = None,
    labels: Optional[Mapping[str, str]] = None,
) -> Dict:
    """A ``kubeflow.org/v1`` ``TFJob`` with ``Chief`` and ``Worker`` replicas.

    Args:
      name: job name (DNS-1035 label, at most 48 characters).
      image: container image (the pipeline image, see ``Dockerfile``).
      chief: 0 or 1 ``Chief`` replica (with 0, worker 0 acts as chief).
      workers: number of ``Worker`` replicas.
      command: the training entry point, e.g. ``["python", "-m", "..."]``.
      accelerator: the GPUs (or TPU chips) of each training replica (chief
        and workers: with MultiWorkerMirroredStrategy the chief trains too),
        from :mod:`model_garden.kubeflow.accelerators`: its resource limit,
        the pool's toleration (:meth:`Accelerator.toleration`) and GKE's node
        label (:meth:`Accelerator.node_selector`, e.g.
        ``cloud.google.com/gke-accelerator: nvidia-tesla-t4``).
      namespace: where the job runs.
      args: arguments after ``command``.
      env: extra environment variables (``TF_USE_LEGACY_KERAS=1`` is set).
      service_account: the pods' service account (``None``: the default).
      restart_policy: per replica; ``ExitCode`` restarts a pod only for a
        retryable exit code (128-255, e.g. node preemption) and fails the job
        on a program error (1-127).
      backoff_limit: restarts allowed before the job fails.
      cpu: CPU request of each replica (e.g. ``"4"``).
      memory: memory request and limit of each replica (e.g. ``"16Gi"``).
      labels: extra labels on the job and its pods.

    Raises:
      ValueError: an invalid name, replica count, restart policy or an empty
        command.
    """
    if not (_NAME.match(name or "") and len(name) <= _MAX_NAME):
        raise ValueError(f"TFJob name {name!r} must be a DNS-1035 label of at most "
                         f"{_MAX_NAME} characters (a-z, 0-9, '-', starting with a letter)")
    if chief not in (0, 1):
        raise ValueError(f"chief must be 0 or 1, not {chief}")
    if workers < 0 or chief + workers < 1:
        raise ValueError(f"need at least one replica (chief={chief}, workers={workers})")
    if restart_policy not in RESTART_POLICIES:
        raise ValueError(f"restart_policy must be one of {RESTART_POLICIES}")
    if not command or not all(isinstance(c, str) and c for c in command):
        raise ValueError("command must be a non-empty list of strings")
    if not image:
        raise ValueError("image is required")

    all_labels = {"app.kubernetes.io/part-of": "model-garden",
                  "model-garden.io/tfjob": name, **(labels or {})}
    container: Dict = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": list(command),
        "env": [{"name": k, "value": str(v)}
                for k, v in {"TF_USE_LEGACY_KERAS": "1", **(env or {})}.items()],
    }
    if args:
        container["args"] = list(args)
    resources: Dict[str, Dict[str, str]] = {}
    if cpu:
        resources.setdefault("requests", {})["cpu"] = str(cpu)
    if memory:
        resources.setdefault("requests", {})["memory"] = str(memory)
        resources.setdefault("limits", {})["memory"] = str(memory)
    if accelerator:
        resources.setdefault("limits", {})[accelerator.resource] = str(accelerator.count)
    if resources:
        container["resources"] = resources

    pod_spec: Dict = {"containers": [container]}
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if accelerator:
        pod_spec["tolerations"] = [accelerator.toleration()]
        pod_spec["nodeSelector"] = accelerator.node_selector()

    def replica(count: int) -> Dict:
        return {
            "replicas": count,
            "restartPolicy": restart_policy,
            "template": {
                "metadata": {
                    "labels": dict(all_labels),
                    # An Istio sidecar would keep finished training pods running.
                    "annotations": {"sidecar.istio.io/inject": "false"},
                },
                "spec": _copy(pod_spec),
            },
        }

    replica_specs: Dict[str, Dict] = {}
    if chief:
        replica_specs["Chief"] = replica(chief)
    if workers:
        replica_specs["Worker"] = replica(workers)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(all_labels)},
        "spec": {
            "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": backoff_limit},
            "tfReplicaSpecs": replica_specs,
        },
    }


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def replica_counts(job: Mapping) -> Dict[str, int]:
    """``{"Chief": 1, "Worker": 2}`` of a rendered TFJob."""
    specs: Mapping[str, Mapping] = job["spec"]["tfReplicaSpecs"]
    return {kind: int(spec.get("replicas", 1)) for kind, spec in specs.items()}


__all__: List[str] = ["render_tfjob", "replica_counts", "CONTAINER_NAME", "RESTART_POLICIES"]
