"""A loopback Kubernetes API server for ``kubeflow.org/v1`` TFJobs (contract tests).

Serves what the TFJob Trainer executor uses, over real HTTP on 127.0.0.1,
so the ``kubernetes`` Python client runs unmodified (configured from a
kubeconfig file that :meth:`FakeKubernetes.write_kubeconfig` writes):

* ``POST   /apis/kubeflow.org/v1/namespaces/{ns}/tfjobs``: like a real API
  server with strict field validation it answers ``422 Invalid`` (a
  ``Status`` naming the bad fields) when the body is not a valid TFJob per
  ``tests/schemas/tfjob-kubeflow-v1.json`` (pod templates against the
  Kubernetes ``PodTemplateSpec``, metadata against ``ObjectMeta``, unknown
  fields rejected), ``409 AlreadyExists`` for a known name, else ``201``
  with the stored object (``uid``, ``creationTimestamp``, ``resourceVersion``).
* ``GET    .../tfjobs/{name}``: the job; each read moves its status one step
  along the scenario, as the Training Operator would: no conditions ->
  ``Created`` -> ``Running`` -> the outcome (``Succeeded``, ``Failed``, or
  ``Running`` forever). Reaching ``Succeeded`` first calls ``on_succeeded``
  with the job (a test plays the chief there, e.g. writes the SavedModel).
* ``PATCH  .../tfjobs/{name}``: a JSON merge patch (RFC 7386, the
  ``application/merge-patch+json`` that ``patch_namespaced_custom_object``
  sends; other patch types get ``415``) of ``metadata.labels``,
  ``metadata.annotations`` or ``metadata.ownerReferences``; the result is
  validated as on create (``422``), ``resourceVersion`` goes up.
* ``DELETE .../tfjobs/{name}``: removes it (``200 Success``; ``404`` if unknown).

Requests need ``Authorization: Bearer <token>`` (401 otherwise). Every request
is recorded in :attr:`FakeKubernetes.requests` as
``(method, path, headers, body)`` (header names in lower case).
"""

import copy
import json
import os
import re
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

import jsonschema
import referencing
import yaml
from kubernetes_validate import utils as kv_utils

SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")
TFJOB_SCHEMA = os.path.join(SCHEMAS, "tfjob-kubeflow-v1.json")
K8S_VERSION = "1.30"  # the oldest GKE minor the project targets
_PATH = re.compile(r"^/apis/kubeflow\.org/v1/namespaces/([a-z0-9-]+)/tfjobs(?:/([a-z0-9.-]+))?$")
OUTCOMES = ("Succeeded", "Failed", "Running")


def strict(schema):
    """``additionalProperties: false`` wherever an object lists its properties."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def tfjob_errors(job: Any, version: str = K8S_VERSION) -> List[str]:
    """What a cluster with the TFJob CRD and strict field validation rejects.

    Returns:
      ``["spec/tfReplicaSpecs/Worker/replicas: 'two' is not of type 'integer'", ...]``;
      empty for a valid ``kubeflow.org/v1`` TFJob.
    """
    if not isinstance(job, dict):
        return [f"body is {type(job).__name__}, not an object"]
    errors = []
    if job.get("apiVersion") != "kubeflow.org/v1" or job.get("kind") != "TFJob":
        errors.append(f"apiVersion/kind {job.get('apiVersion')}/{job.get('kind')} "
                      "is not kubeflow.org/v1 TFJob")
    ver = [v for v in kv_utils.all_versions()
           if kv_utils.major_minor(v) <= kv_utils.major_minor(version)][-1]
    definitions = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{ver}-local-strict/_definitions.json", version)
    registry = referencing.Registry().with_resource(
        definitions["$id"], referencing.Resource.from_contents(definitions))
    with open(TFJOB_SCHEMA) as f:
        schema = strict(json.load(f))
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    meta = jsonschema.Draft202012Validator(
        {"$ref": definitions["$id"] + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        registry=registry)
    found = list(validator.iter_errors(job)) + list(meta.iter_errors(job.get("metadata", {})))
    errors += [f"{'/'.join(map(str, e.path))}: {e.message}" for e in found]
    if not (job.get("metadata") or {}).get("name"):
        errors.append("metadata/name: required")
    return errors


class FakeKubernetes:
    """The fake API server (a context manager: started on enter, stopped on exit).

    Args:
      outcome: where every job's status ends: ``Succeeded``, ``Failed`` or
        ``Running`` (never finishes).
      steps_before_outcome: reads showing ``Created``/``Running`` first.
      on_succeeded: called with the stored job when it turns ``Succeeded``.
      token: the bearer token clients must send.
    """

    def __init__(self, outcome: str = "Succeeded", steps_before_outcome: int = 2,
                 on_succeeded: Optional[Callable[[Dict], None]] = None,
                 token: str = "fake-k8s-token"):
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self.outcome = outcome
        self.steps_before_outcome = steps_before_outcome
        self.on_succeeded = on_succeeded
        self.token = token
        self.jobs: Dict[Tuple[str, str], Dict[str, Any]] = {}
        #: Per job (namespace, name): an outcome that overrides ``outcome`` until deleted.
        self.job_outcomes: Dict[Tuple[str, str], str] = {}
        self.reads: Dict[Tuple[str, str], int] = {}
        self.requests: List[Tuple[str, str, Dict[str, str], Any]] = []
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> "FakeKubernetes":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def write_kubeconfig(self, path: str, namespace: str = "kubeflow") -> str:
        """A kubeconfig for this server (bearer token auth); returns ``path``."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                      "namespace": namespace}}],
        }
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        return path

    def calls(self, method: str) -> List[Tuple[str, str, Dict[str, str], Any]]:
        return [r for r in self.requests if r[0] == method]

    # --- the API --------------------------------------------------------------------

    def _status(self, job: Dict[str, Any], reads: int) -> Dict[str, Any]:
        """The status after ``reads`` reads: the first ``reads`` phases of the scenario."""
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        ref = f"TFJob {job['metadata']['namespace']}/{job['metadata']['name']}"
        messages = {
            "Created": ("TFJobCreated", f"{ref} is created."),
            "Running": ("TFJobRunning", f"{ref} is running."),
            "Succeeded": ("TFJobSucceeded", f"{ref} successfully completed."),
            "Failed": ("TFJobFailed", f"{ref} has failed because 1 Worker replica(s) failed."),
        }
        outcome = self.job_outcomes.get(
            (job["metadata"]["namespace"], job["metadata"]["name"]), self.outcome)
        phases = ["Created", "Running"][:self.steps_before_outcome]
        if outcome != "Running" or "Running" not in phases:
            phases.append(outcome)
        shown = phases[:reads]
        conditions = []
        for i, kind in enumerate(shown):
            current = i == len(shown) - 1
            reason, message = messages[kind]
            # The operator keeps Created true and sets Running false once done.
            conditions.append({"type": kind, "status": "True" if current or kind == "Created"
                               else "False", "reason": reason, "message": message,
                               "lastTransitionTime": now, "lastUpdateTime": now})
        return {"conditions": conditions} if conditions else {}

    def handle(self, method: str, path: str, headers: Dict[str, str],
               body: Any) -> Tuple[int, Dict[str, Any]]:
        with self._lock:
            headers = {k.lower(): v for k, v in headers.items()}
            self.requests.append((method, path, headers, body))
            if headers.get("authorization") != f"Bearer {self.token}":
                return 401, _status_body(401, "Unauthorized", "Unauthorized")
            match = _PATH.match(path.split("?")[0])
            if not match:
                return 404, _status_body(404, "NotFound", f"the server could not find {path}")
            namespace, name = match.groups()
            if method == "POST" and name is None:
                errors = tfjob_errors(body)
                if errors:
                    return 422, _status_body(422, "Invalid", "TFJob is invalid: " + "; ".join(errors))
                if (body.get("metadata") or {}).get("namespace", namespace) != namespace:
                    return 400, _status_body(400, "BadRequest", "namespace of body and URL differ")
                key = (namespace, body["metadata"]["name"])
                if key in self.jobs:
                    return 409, _status_body(409, "AlreadyExists",
                                             f'tfjobs.kubeflow.org "{key[1]}" already exists')
                job = copy.deepcopy(body)
                job["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()),
                                       resourceVersion="1", creationTimestamp=datetime.now(
                                           timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
                self.jobs[key] = job
                self.reads[key] = 0
                return 201, job
            key = (namespace, name)
            if name is None or key not in self.jobs:
                return 404, _status_body(404, "NotFound", f'tfjobs.kubeflow.org "{name}" not found')
            if method == "GET":
                self.reads[key] += 1
                job = self.jobs[key]
                was = _state(job)
                job["status"] = self._status(job, self.reads[key])
                if _state(job) == "Succeeded" and was != "Succeeded" and self.on_succeeded:
                    self.on_succeeded(copy.deepcopy(job))
                return 200, job
            if method == "PATCH":
                if headers.get("content-type", "").split(";")[0] != "application/merge-patch+json":
                    return 415, _status_body(415, "UnsupportedMediaType",
                                             "the body of the request was in an unknown format")
                if not isinstance(body, dict) or set(body) - {"metadata"} or set(
                        body.get("metadata") or {}) - _PATCHABLE_METADATA:
                    return 422, _status_body(422, "Invalid", "this fake patches only "
                                             f"metadata.{sorted(_PATCHABLE_METADATA)}")
                job = _merge_patch(self.jobs[key], body)
                errors = tfjob_errors(job)
                if errors:
                    return 422, _status_body(422, "Invalid", "TFJob is invalid: " + "; ".join(errors))
                job["metadata"]["resourceVersion"] = str(int(job["metadata"]["resourceVersion"]) + 1)
                self.jobs[key] = job
                return 200, job
            if method == "DELETE":
                del self.jobs[key]
                self.job_outcomes.pop(key, None)
                return 200, _status_body(200, "", "", status="Success")
            return 405, _status_body(405, "MethodNotAllowed", f"{method} is not allowed")


_PATCHABLE_METADATA = {"labels", "annotations", "ownerReferences"}


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _state(job: Dict[str, Any]) -> Optional[str]:
    for condition in (job.get("status") or {}).get("conditions", []):
        if condition["status"] == "True" and condition["type"] in ("Succeeded", "Failed"):
            return condition["type"]
    return None


def _status_body(code: int, reason: str, message: str, status: str = "Failure") -> Dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status,
            "message": message, "reason": reason, "code": code}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubernetes

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        code, payload = self.fake.handle(method, self.path, dict(self.headers.items()), body)
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server API)
        self._serve("GET")

    def do_POST(self):  # noqa: N802
        self._serve("POST")

    def do_PATCH(self):  # noqa: N802
        self._serve("PATCH")

    def do_DELETE(self):  # noqa: N802
        self._serve("DELETE")

    def log_message(self, *args):  # quiet
        pass
