"""A small in-process Kubeflow Pipelines API server for contract tests.

It answers the ``/apis/v2beta1`` REST endpoints that ``kfp.Client`` (SDK 2.5,
``kfp_server_api``) calls for uploading pipelines and versions, experiments,
runs, recurring runs and the health check, with JSON shaped as the real KFP
API server (grpc-gateway, snake_case field names, RFC 3339 times, empty lists
left out) sends it, and records every request (method, path, query, headers,
body; multipart parts decoded) for the test to assert on.

Like the real server it keeps state (a pipeline uploaded can be run by
version id), rejects what the real server rejects for these calls (duplicate
names, unknown experiment or version, a package that is not a PipelineSpec,
``max_concurrency`` outside [1, 10], a run with neither spec nor version),
and, when started with ``token=``/``cookie=``, answers 401 to requests
without them as a Kubeflow gateway does.

Listens on 127.0.0.1 on a free port in a daemon thread::

    with FakeKfpServer() as server:
        client = kfp.Client(host=server.url)
"""

import base64
import dataclasses
import datetime
import email.parser
import email.policy
import http.server
import itertools
import json
import threading
import urllib.parse
import uuid
from typing import Any, Dict, List, Optional, Tuple

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

API = "/apis/v2beta1"


@dataclasses.dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]  # lower-case names
    body: bytes
    json: Any = None
    files: Dict[str, Tuple[str, bytes]] = dataclasses.field(default_factory=dict)  # field -> (filename, bytes)

    def q(self, name: str) -> Optional[str]:
        """The (last) value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else None


class _ApiError(Exception):
    # grpc-gateway error body: {"error", "code" (gRPC), "message", "details"}
    GRPC = {400: 3, 401: 16, 404: 5, 409: 6, 500: 13}

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict:
        return {"error": self.message, "code": self.GRPC.get(self.status, 2),
                "message": self.message, "details": []}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _display_name_filter(raw: Optional[str]) -> Optional[str]:
    """The value of a ``display_name EQUALS`` predicate (the only filter kfp sends here)."""
    if not raw:
        return None
    doc = json.loads(raw)
    for pred in doc.get("predicates", []):
        op = pred.get("operation") or pred.get("op")
        if pred.get("key") in ("display_name", "name") and op in ("EQUALS", 1):
            return pred.get("stringValue", pred.get("string_value"))
    raise _ApiError(400, f"unsupported filter: {raw}")


class FakeKfpServer:
    """The fake KFP API server (see module docstring).

    Args:
      token: when set, every request must carry ``Authorization: Bearer <token>``.
      cookie: when set, every request's ``Cookie`` header must contain it.
      multi_user: what ``/healthz`` reports.
      max_page_size: list calls return at most this many items a page, with
        a ``next_page_token`` (the real server caps ``page_size`` at 200:
        ``maxPageSize`` in kubeflow/pipelines ``backend/src/apiserver/list/list.go``).
    """

    def __init__(self, token: Optional[str] = None, cookie: Optional[str] = None,
                 multi_user: bool = False, max_page_size: int = 200):
        self.token = token
        self.max_page_size = max_page_size
        self.cookie = cookie
        self.multi_user = multi_user
        self.requests: List[Recorded] = []
        self.pipelines: Dict[str, dict] = {}
        self.versions: Dict[str, List[dict]] = {}  # pipeline_id -> versions
        self.experiments: Dict[str, dict] = {}
        self.runs: Dict[str, dict] = {}
        self.recurring_runs: Dict[str, dict] = {}
        self._lock = threading.Lock()
        self._clock = itertools.count()
        self._httpd: Optional[http.server.ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeKfpServer":
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> "FakeKfpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------
    def calls(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Recorded]:
        """Recorded requests, optionally of one method and (exact) path."""
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or r.path == path)]

    def call_paths(self) -> List[Tuple[str, str]]:
        return [(r.method, r.path) for r in self.calls()]

    # -- API ---------------------------------------------------------------
    def _stamp(self) -> str:
        # Strictly increasing creation times so "created_at desc" is well defined.
        base = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
        return (base + datetime.timedelta(seconds=next(self._clock))).strftime(
            "%Y-%m-%dT%H:%M:%SZ")

    def handle(self, req: Recorded) -> Tuple[int, dict]:
        self._authorize(req)
        path, method = req.path, req.method
        if path == f"{API}/healthz" and method == "GET":
            return 200, {"multi_user": self.multi_user}
        if path == f"{API}/pipelines/upload" and method == "POST":
            return 200, self._upload_pipeline(req)
        if path == f"{API}/pipelines/upload_version" and method == "POST":
            return 200, self._upload_version(req)
        if path == f"{API}/pipelines" and method == "GET":
            return 200, self._list_pipelines(req)
        parts = path[len(API) + 1:].split("/") if path.startswith(API + "/") else []
        if len(parts) == 3 and parts[0] == "pipelines" and parts[2] == "versions" and method == "GET":
            return 200, self._list_versions(parts[1], req)
        if len(parts) == 4 and parts[0] == "pipelines" and parts[2] == "versions" and method == "GET":
            return 200, self._get_version(parts[1], parts[3])
        if path == f"{API}/experiments" and method == "POST":
            return 200, self._create_experiment(req)
        if path == f"{API}/experiments" and method == "GET":
            return 200, self._list_experiments(req)
        if len(parts) == 2 and parts[0] == "experiments" and method == "GET":
            if parts[1] not in self.experiments:
                raise _ApiError(404, f"experiment {parts[1]} not found")
            return 200, self.experiments[parts[1]]
        if path == f"{API}/runs" and method == "POST":
            return 200, self._create_run(req)
        if path == f"{API}/runs" and method == "GET":
            return 200, self._list_runs(req)
        if path == f"{API}/recurringruns" and method == "POST":
            return 200, self._create_recurring_run(req)
        raise _ApiError(404, f"Not Found: {method} {path}")

    def _authorize(self, req: Recorded) -> None:
        if self.token is not None and req.headers.get("authorization") != f"Bearer {self.token}":
            raise _ApiError(401, "Unauthenticated: missing or invalid bearer token")
        if self.cookie is not None and self.cookie not in req.headers.get("cookie", ""):
            raise _ApiError(401, "Unauthenticated: no session cookie")

    @staticmethod
    def _parse_spec(data: bytes) -> dict:
        try:
            docs = [d for d in yaml.safe_load_all(data) if d is not None]
            spec = docs[0]
            json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
        except Exception as e:  # pylint: disable=broad-except
            raise _ApiError(400, f"Failed to create a pipeline: invalid pipeline spec: {e}") from e
        return spec

    def _new_version(self, pipeline_id: str, name: str, description: str, spec: dict) -> dict:
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": str(uuid.uuid4()),
            "display_name": name,
            "created_at": self._stamp(),
            "pipeline_spec": spec,
        }
        if description:
            version["description"] = description
        self.versions.setdefault(pipeline_id, []).append(version)
        return version

    def _upload_pipeline(self, req: Recorded) -> dict:
        if "uploadfile" not in req.files:
            raise _ApiError(400, "Failed to create a pipeline: missing uploadfile")
        filename, data = req.files["uploadfile"]
        spec = self._parse_spec(data)
        name = req.q("name") or filename
        namespace = req.q("namespace") or ""
        if any(p["display_name"] == name and p.get("namespace", "") == namespace
               for p in self.pipelines.values()):
            raise _ApiError(409, f"Failed to create a pipeline: pipeline {name} already exists")
        pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": name,
                    "created_at": self._stamp()}
        if req.q("description"):
            pipeline["description"] = req.q("description")
        if namespace:
            pipeline["namespace"] = namespace
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self._new_version(pipeline["pipeline_id"], name, req.q("description"), spec)
        return pipeline

    def _upload_version(self, req: Recorded) -> dict:
        if "uploadfile" not in req.files:
            raise _ApiError(400, "Failed to create a pipeline version: missing uploadfile")
        pipeline_id = req.q("pipelineid")
        if pipeline_id not in self.pipelines:
            raise _ApiError(404, f"Failed to create a pipeline version: pipeline {pipeline_id} not found")
        name = req.q("name") or req.files["uploadfile"][0]
        if any(v["display_name"] == name for v in self.versions.get(pipeline_id, [])):
            raise _ApiError(409, f"Failed to create a pipeline version: version {name} already exists")
        spec = self._parse_spec(req.files["uploadfile"][1])
        return self._new_version(pipeline_id, name, req.q("description"), spec)

    def _page(self, items: List[dict], req: Recorded, key: str) -> dict:
        sort_by = req.q("sort_by") or ""
        if sort_by:
            field, _, order = sort_by.partition(" ")
            items = sorted(items, key=lambda x: x.get(field, ""), reverse=order == "desc")
        size = min(int(req.q("page_size") or 0) or self.max_page_size, self.max_page_size)
        offset = int(base64.b64decode(req.q("page_token")).decode()) if req.q("page_token") else 0
        page = items[offset:offset + size]
        out: Dict[str, Any] = {"total_size": len(items)}
        if page:
            out[key] = page
        if offset + size < len(items):
            out["next_page_token"] = base64.b64encode(str(offset + size).encode()).decode()
        return out

    def _list_pipelines(self, req: Recorded) -> dict:
        name = _display_name_filter(req.q("filter"))
        namespace = req.q("namespace") or ""
        items = [p for p in self.pipelines.values()
                 if (name is None or p["display_name"] == name)
                 and p.get("namespace", "") in ("", namespace)]
        return self._page(items, req, "pipelines")

    def _list_versions(self, pipeline_id: str, req: Recorded) -> dict:
        if pipeline_id not in self.pipelines:
            raise _ApiError(404, f"pipeline {pipeline_id} not found")
        name = _display_name_filter(req.q("filter"))
        items = [v for v in self.versions.get(pipeline_id, [])
                 if name is None or v["display_name"] == name]
        return self._page(items, req, "pipeline_versions")

    def _get_version(self, pipeline_id: str, version_id: str) -> dict:
        for version in self.versions.get(pipeline_id, []):
            if version["pipeline_version_id"] == version_id:
                return version
        raise _ApiError(404, f"pipeline version {version_id} not found")

    def _create_experiment(self, req: Recorded) -> dict:
        body = req.json or {}
        name = body.get("display_name")
        if not name:
            raise _ApiError(400, "Failed to create a new experiment: experiment name is empty")
        namespace = body.get("namespace") or ""
        if self.multi_user and not namespace:
            raise _ApiError(400, "Failed to create a new experiment: namespace is required "
                                 "in multi-user mode")
        if any(e["display_name"] == name and e.get("namespace", "") == namespace
               for e in self.experiments.values()):
            raise _ApiError(409, f"Failed to create a new experiment: experiment {name} exists")
        exp = {"experiment_id": str(uuid.uuid4()), "display_name": name,
               "created_at": self._stamp(), "storage_state": "AVAILABLE"}
        if body.get("description"):
            exp["description"] = body["description"]
        if namespace:
            exp["namespace"] = namespace
        self.experiments[exp["experiment_id"]] = exp
        return exp

    def _list_experiments(self, req: Recorded) -> dict:
        name = _display_name_filter(req.q("filter"))
        namespace = req.q("namespace") or ""
        items = [e for e in self.experiments.values()
                 if (name is None or e["display_name"] == name)
                 and e.get("namespace", "") == namespace]
        return self._page(items, req, "experiments")

    def _check_run_body(self, body: dict, what: str) -> None:
        if not body.get("display_name"):
            raise _ApiError(400, f"Failed to create a {what}: display name is empty")
        if body.get("experiment_id") not in self.experiments:
            raise _ApiError(404, f"Failed to create a {what}: experiment "
                                 f"{body.get('experiment_id')} not found")
        ref = body.get("pipeline_version_reference")
        if bool(ref) == bool(body.get("pipeline_spec")):
            raise _ApiError(400, f"Failed to create a {what}: give either a pipeline spec "
                                 "or a pipeline version reference")
        if ref:
            self._get_version(ref.get("pipeline_id"), ref.get("pipeline_version_id"))

    def _create_run(self, req: Recorded) -> dict:
        body = req.json or {}
        self._check_run_body(body, "run")
        run = dict(body)
        run.update({"run_id": str(uuid.uuid4()), "created_at": self._stamp(),
                    "scheduled_at": "1970-01-01T00:00:00Z", "finished_at": "1970-01-01T00:00:00Z",
                    "state": "PENDING", "storage_state": "AVAILABLE",
                    "state_history": [{"update_time": _now(), "state": "PENDING"}]})
        self.runs[run["run_id"]] = run
        return run

    def _list_runs(self, req: Recorded) -> dict:
        experiment_id = req.q("experiment_id")
        if experiment_id and experiment_id not in self.experiments:
            raise _ApiError(404, f"experiment {experiment_id} not found")
        items = [r for r in self.runs.values()
                 if not experiment_id or r.get("experiment_id") == experiment_id]
        return self._page(items, req, "runs")

    def _create_recurring_run(self, req: Recorded) -> dict:
        body = req.json or {}
        self._check_run_body(body, "recurring run")
        trigger = body.get("trigger") or {}
        cron = (trigger.get("cron_schedule") or {}).get("cron")
        periodic = (trigger.get("periodic_schedule") or {}).get("interval_second")
        if bool(cron) == bool(periodic):
            raise _ApiError(400, "Failed to create a recurring run: a cron or a periodic "
                                 "schedule is required")
        if cron and not cron.startswith("@") and len(cron.split()) not in (5, 6):
            raise _ApiError(400, f"Failed to create a recurring run: invalid cron {cron!r}")
        max_concurrency = int(body.get("max_concurrency") or 0)
        if not 1 <= max_concurrency <= 10:
            raise _ApiError(400, "Failed to create a recurring run: max concurrency of the "
                                 "recurring run should be in the range of [1, 10]")
        job = dict(body)
        job.update({"recurring_run_id": str(uuid.uuid4()), "created_at": self._stamp(),
                    "updated_at": _now(),
                    "status": "ENABLED" if body.get("mode") == "ENABLE" else "DISABLED"})
        self.recurring_runs[job["recurring_run_id"]] = job
        return job


class _Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeKfpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def _serve(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Recorded(method=method, path=url.path,
                       query=urllib.parse.parse_qs(url.query, keep_blank_values=True),
                       headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        ctype = self.headers.get("Content-Type", "")
        try:
            if ctype.startswith("multipart/form-data"):
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    f"Content-Type: {ctype}\r\n\r\n".encode() + body)
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    req.files[name] = (part.get_filename(), part.get_payload(decode=True))
            elif body:
                req.json = json.loads(body)
        except ValueError:
            pass
        with self.fake._lock:  # pylint: disable=protected-access
            self.fake.requests.append(req)
            try:
                status, payload = self.fake.handle(req)
            except _ApiError as e:
                status, payload = e.status, e.body()
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._serve("GET")

    def do_POST(self):  # noqa: N802
        self._serve("POST")

    def do_DELETE(self):  # noqa: N802
        self._serve("DELETE")
