"""GPUs and TPUs for one pod: the one set of Kubernetes/GKE names of the project.

Used by the compiler (the Trainer step's pod), the TFJob manifest (its
replicas) and ``kubernetes/nodepools/`` (the pools' labels and taints).
Sources: GKE's node labels ``cloud.google.com/gke-accelerator``,
``cloud.google.com/gke-tpu-accelerator`` and ``cloud.google.com/gke-tpu-topology``
(GKE docs, "Run GPUs in GKE" and "TPUs in GKE"); the device plugins'
extended resources ``nvidia.com/gpu`` and ``google.com/tpu``.
"""

import dataclasses
import math
import re
from typing import Any, Dict, Optional, Tuple

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
