"""Thin functions over ``kfp.Client`` (KFP SDK 2.5, REST API ``v2beta1``).

What ``model-garden compile`` writes (a KFP v2 ``PipelineSpec`` YAML) goes to a
Kubeflow Pipelines cluster through these functions:

* :func:`connect` -- a ``kfp.Client`` whose host, namespace and credentials
  come the ways ``kfp.Client`` takes them;
* :func:`upload` -- a new pipeline, or a new version of an existing one;
* :func:`submit` -- one run, from a package file or an uploaded version;
* :func:`schedule` -- a recurring run (cron);
* :func:`list_runs` -- ``(id, name, state, created_at)`` of recent runs.

Credentials (a bearer token, cookies, a service-account token file) are
handed to ``kfp.Client`` and from there only travel in request headers: they
are never written to a file, logged or put into an exception message.

Errors are :class:`KfpError` (a subclass per cause) so that the command line
can print one clear line instead of a traceback.
"""

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import socket
import tempfile
import urllib.parse
import warnings
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

import yaml

#: The endpoint variable ``kfp.Client`` reads when no host is given.
ENDPOINT_ENV = "KF_PIPELINES_ENDPOINT"
#: A file holding a (projected, audience-bound) service-account token;
#: ``kfp``'s ``ServiceAccountTokenVolumeCredentials`` reads it per request.
SA_TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
#: Experiment used when none is named (the KFP UI's default experiment).
DEFAULT_EXPERIMENT = "Default"
#: Nightly at 03:00 (5-field cron; see :func:`to_kfp_cron`).
DEFAULT_CRON = "0 3 * * *"
#: KFP's API server accepts ``max_concurrency`` in this range.
MAX_CONCURRENCY_RANGE = (1, 10)

_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
_FILTER_EQUALS = "EQUALS"


class KfpError(Exception):
    """A user-facing failure talking to Kubeflow Pipelines (no traceback needed)."""


class KfpUnreachableError(KfpError):
    """The KFP endpoint does not answer (DNS, refused connection, time-out)."""


class KfpApiError(KfpError):
    """The KFP API answered with an HTTP error.

    Attributes:
      status: the HTTP status code.
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Uploaded:
    """What :func:`upload` created."""

    pipeline_id: str
    pipeline_name: str
    version_id: str
    version_name: str
    new_pipeline: bool


@dataclasses.dataclass(frozen=True)
class Submitted:
    """What :func:`submit` created."""

    run_id: str
    run_name: str
    experiment_id: str
    experiment_name: str


@dataclasses.dataclass(frozen=True)
class Scheduled:
    """What :func:`schedule` created."""

    recurring_run_id: str
    name: str
    experiment_id: str
    experiment_name: str
    cron: str


class RunSummary(NamedTuple):
    """One row of :func:`list_runs`."""

    id: str
    name: str
    state: str
    created_at: Optional[datetime.datetime]


# --- connecting ---------------------------------------------------------------


def connect(
    host: Optional[str] = None,
    namespace: Optional[str] = None,
    existing_token: Optional[str] = None,
    cookies: Optional[str] = None,
    *,
    timeout: float = 10.0,
):
    """A ``kfp.Client`` for the KFP API, credentials taken as ``kfp`` takes them.

    Host, first found wins:

    1. ``host`` (e.g. ``http://localhost:8080`` after
       ``kubectl port-forward svc/ml-pipeline-ui 8080:80``, or the Kubeflow
       gateway ``https://kubeflow.example.com/pipeline``);
    2. ``$KF_PIPELINES_ENDPOINT``;
    3. inside a pod (``$KUBERNETES_SERVICE_HOST`` set): the in-cluster service
       ``ml-pipeline.kubeflow.svc.cluster.local:8888``;
    4. a kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``): the API server's
       service proxy.

    Credentials, first found wins: ``existing_token`` (sent as
    ``Authorization: Bearer ...``); else the token file named by
    ``$KF_PIPELINES_SA_TOKEN_PATH`` (re-read before every request, as the
    kubelet rotates projected tokens); else, in a pod, ``kfp``'s default
    projected token ``/var/run/secrets/kubeflow/pipelines/token``.
    ``cookies`` (e.g. ``authservice_session=...`` from a Dex login) go in the
    ``Cookie`` header, alone or with a token.

    ``namespace`` is the user (profile) namespace of a multi-user deployment;
    leave it ``None`` for single-user KFP. It is kept in memory only: unlike
    ``kfp.Client.set_user_namespace`` nothing is written to
    ``~/.config/kfp/context.json``.

    Args:
      host: KFP API endpoint.
      namespace: multi-user profile namespace.
      existing_token: a bearer token obtained outside (``gcloud auth
        print-access-token``, an OIDC id token, ...).
      cookies: a ``Cookie`` header value.
      timeout: seconds to wait for a TCP connection to ``host``.

    Raises:
      KfpUnreachableError: nothing answers at the host.
      KfpError: no endpoint can be found, or the endpoint fails its health
        check.
    """
    import kfp
    from kfp.client import set_volume_credentials

    host = host or os.environ.get(ENDPOINT_ENV) or None
    if host:
        host = _normalize_host(host)
        _check_reachable(host, timeout)
    elif not (os.environ.get(_IN_CLUSTER_ENV) or _kubeconfig_path()):
        raise KfpError(
            "no Kubeflow Pipelines endpoint: pass --host (e.g. http://localhost:8080 after "
            "`kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`) or set "
            f"{ENDPOINT_ENV}"
        )

    credentials = None
    if not existing_token and os.environ.get(SA_TOKEN_PATH_ENV):
        token_path = os.environ[SA_TOKEN_PATH_ENV]
        if not os.path.isfile(token_path):
            raise KfpError(f"{SA_TOKEN_PATH_ENV} names no file: {token_path}")
        credentials = set_volume_credentials.ServiceAccountTokenVolumeCredentials(token_path)

    kwargs: Dict[str, Any] = dict(
        host=host, existing_token=existing_token or None, cookies=cookies or None,
        credentials=credentials,
    )
    # kfp.Client(namespace=...) is both the user namespace and, without a host,
    # the namespace of the in-cluster ml-pipeline service: pass it only when a
    # host is given, and otherwise keep the default service namespace.
    if namespace and host:
        kwargs["namespace"] = namespace
    with _quiet_kfp_healthz() as failures, warnings.catch_warnings():
        # "This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later".
        warnings.simplefilter("ignore", FutureWarning)
        try:
            with _translate_errors(host):
                client = kfp.Client(**kwargs)
        except TimeoutError:
            detail = f": {failures[-1]}" if failures else ""
            raise KfpError(
                f"Kubeflow Pipelines at {_safe_url(host)} failed its health check "
                f"(/apis/v2beta1/healthz){detail}"
            ) from None
    if namespace:
        # What kfp.Client(namespace=...) does for a remote host, for the
        # in-cluster and kubeconfig cases too (in memory only).
        client._context_setting["namespace"] = namespace  # pylint: disable=protected-access
    return client


def _normalize_host(host: str) -> str:
    # kfp.Client itself defaults a scheme-less host to https with a warning.
    host = host.strip().rstrip("/")
    if not re.match(r"^https?://", host):
        host = "https://" + host
    return host


def _safe_url(url: Optional[str]) -> str:
    """``url`` without user info, query or fragment (never print credentials)."""
    if not url:
        return "the in-cluster/kubeconfig endpoint"
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _check_reachable(host: str, timeout: float) -> None:
    parts = urllib.parse.urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or e.__class__.__name__
        raise KfpUnreachableError(
            f"cannot reach Kubeflow Pipelines at {_safe_url(host)}: {reason}"
        ) from None


def _kubeconfig_path() -> Optional[str]:
    for path in (os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep):
        path = os.path.expanduser(path)
        if path and os.path.isfile(path):
            return path
    return None


class _HealthzFilter(logging.Filter):
    """Drops kfp's retry tracebacks for /healthz and keeps one line per failure."""

    def __init__(self):
        super().__init__()
        self.failures: List[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "healthz" not in record.getMessage():
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            self.failures.append(_api_exception_message(exc))
        return False


@contextlib.contextmanager
def _quiet_kfp_healthz() -> Iterator[List[str]]:
    # kfp.Client() calls /healthz up to 5 times, logging.exception() each
    # failure with a traceback on the root logger; collect them instead.
    flt = _HealthzFilter()
    root = logging.getLogger()
    root.addFilter(flt)
    try:
        yield flt.failures
    finally:
        root.removeFilter(flt)


def _api_exception_message(exc: BaseException) -> str:
    """Status, reason and the server's own message; never request headers."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or ""
    message = ""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            doc = json.loads(body)
            message = doc.get("message") or doc.get("error") or ""
        except (ValueError, AttributeError):
            message = body.strip().splitlines()[0][:200]
    text = f"HTTP {status} {reason}".strip() if status else str(reason or exc.__class__.__name__)
    return f"{text}: {message}" if message else text


@contextlib.contextmanager
def _translate_errors(host: Optional[str]) -> Iterator[None]:
    import kfp_server_api
    import urllib3

    try:
        yield
    except kfp_server_api.ApiException as e:
        if not e.status:  # urllib3 SSL/protocol failure wrapped by kfp_server_api
            raise KfpUnreachableError(
                f"cannot talk to Kubeflow Pipelines at {_safe_url(host)}: {e.reason}"
            ) from None
        raise KfpApiError(e.status, f"Kubeflow Pipelines API: {_api_exception_message(e)}") from None
    except urllib3.exceptions.HTTPError as e:
        reason = getattr(e, "reason", None) or e
        raise KfpUnreachableError(
            f"cannot reach Kubeflow Pipelines at {_safe_url(host)}: "
            f"{reason.__class__.__name__}"
        ) from None


def _host_of(client) -> Optional[str]:
    return getattr(getattr(client, "_existing_config", None), "host", None)


# --- package files ------------------------------------------------------------


def _read_package(package_path: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    """(PipelineSpec dict, runtimeConfig of a PipelineJob JSON or ``None``).

    Accepts the compiled YAML (``model-garden compile``, ``kfp.compiler``;
    a second YAML document, the platform spec, is allowed) and the PipelineJob
    JSON that ``KubeflowV2DagRunner`` writes by default.
    """
    if not os.path.isfile(package_path):
        raise KfpError(f"pipeline package not found: {package_path}")
    with open(package_path) as f:
        try:
            if package_path.endswith(".json"):
                docs = [json.load(f)]
            else:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except (ValueError, yaml.YAMLError) as e:
            raise KfpError(f"{package_path} is not a pipeline package: {e}") from None
    if not docs or not isinstance(docs[0], dict):
        raise KfpError(f"{package_path} is not a pipeline package (empty or not a mapping)")
    doc = docs[0]
    if "pipelineSpec" in doc:  # PipelineJob (KubeflowV2DagRunner's pipeline.json)
        return doc["pipelineSpec"], doc.get("runtimeConfig") or {}
    if "pipelineInfo" not in doc or "root" not in doc:
        raise KfpError(f"{package_path} is not a KFP v2 PipelineSpec (no pipelineInfo/root)")
    return doc, None


@contextlib.contextmanager
def _uploadable(package_path: str) -> Iterator[Tuple[str, Dict[str, Any], Optional[str]]]:
    """(path kfp can read, PipelineSpec, pipeline root of a PipelineJob).

    kfp 2.5 reads ``.yaml``/``.yml``/``.zip``/``.tar.gz`` only: a PipelineJob
    JSON becomes a temporary YAML of its ``pipelineSpec``, with the job's
    ``gcsOutputDirectory`` as the spec's ``defaultPipelineRoot``.
    """
    spec, runtime = _read_package(package_path)
    if runtime is None and package_path.endswith((".yaml", ".yml")):
        yield package_path, spec, None
        return
    spec = dict(spec)
    root = (runtime or {}).get("gcsOutputDirectory")
    if root and not spec.get("defaultPipelineRoot"):
        spec["defaultPipelineRoot"] = root
    with tempfile.TemporaryDirectory(prefix="model-garden-kfp-") as tmp:
        path = os.path.join(tmp, "pipeline.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(spec, f, sort_keys=False)
        yield path, spec, root


def pipeline_parameters(spec: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The runtime parameters a PipelineSpec declares: name -> definition.

    Each definition has ``parameterType`` (``STRING``, ``NUMBER_INTEGER``,
    ``NUMBER_DOUBLE``, ``BOOLEAN``, ``LIST``, ``STRUCT``) and maybe
    ``defaultValue`` / ``isOptional``, or, as TFX writes it, the deprecated
    ``type`` (``INT``, ``DOUBLE``, ``STRING``).
    """
    return dict(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))


def coerce_params(spec: Mapping[str, Any], params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``params`` typed as the PipelineSpec declares them.

    Strings (from ``--param KEY=VALUE``) become ``int``, ``float``, ``bool``,
    or JSON lists/objects according to the parameter's ``parameterType``;
    other values pass unchanged.

    Raises:
      KfpError: a name the pipeline does not declare, or a value that is not
        of the declared type.
    """
    declared = pipeline_parameters(spec)
    out: Dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise KfpError(f"the pipeline has no parameter {key!r} (its parameters: {known})")
        definition = declared[key]
        # TFX's KubeflowV2DagRunner still writes the deprecated `type` (INT, DOUBLE, STRING).
        kind = definition.get("parameterType") or _LEGACY_TYPES.get(definition.get("type"), "STRING")
        out[key] = _coerce(key, kind, value) if isinstance(value, str) else value
    return out


_LEGACY_TYPES = {"INT": "NUMBER_INTEGER", "DOUBLE": "NUMBER_DOUBLE", "STRING": "STRING"}


def _coerce(key: str, kind: str, value: str) -> Any:
    try:
        if kind == "NUMBER_INTEGER":
            return int(value)
        if kind == "NUMBER_DOUBLE":
            return float(value)
        if kind == "BOOLEAN":
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if kind in ("LIST", "STRUCT"):
            parsed = json.loads(value)
            if not isinstance(parsed, list if kind == "LIST" else dict):
                raise ValueError(value)
            return parsed
    except ValueError:
        raise KfpError(f"parameter {key!r} is {kind}; cannot use {value!r}") from None
    return value


# --- pipelines and versions ---------------------------------------------------


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [
        {"operation": _FILTER_EQUALS, "key": "display_name", "stringValue": name}]})


def _find_pipeline_id(client, name: str, namespace: Optional[str]) -> Optional[str]:
    found = client.list_pipelines(filter=_name_filter(name), page_size=2, namespace=namespace)
    pipelines = found.pipelines or []
    if len(pipelines) > 1:
        raise KfpError(f"several pipelines are named {name!r}")
    return pipelines[0].pipeline_id if pipelines else None


def _find_version(client, pipeline_id: str, version_name: Optional[str]):
    if version_name:
        found = client.list_pipeline_versions(
            pipeline_id, filter=_name_filter(version_name), page_size=2)
    else:
        found = client.list_pipeline_versions(
            pipeline_id, sort_by="created_at desc", page_size=1)
    versions = found.pipeline_versions or []
    if not versions:
        if version_name:
            raise KfpError(f"pipeline {pipeline_id} has no version {version_name!r}")
        raise KfpError(f"pipeline {pipeline_id} has no versions")
    return versions[0]


def _default_version_name(pipeline_name: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{pipeline_name}-{stamp}"


def upload(
    client,
    package_path: str,
    name: Optional[str] = None,
    version: Optional[str] = None,
    *,
    description: Optional[str] = None,
    namespace: Optional[str] = None,
) -> Uploaded:
    """Uploads a package: a new pipeline ``name``, or a new version of it.

    When no pipeline is called ``name``, KFP creates it with a first version
    of the same name (KFP's upload API names a new pipeline's first version
    after the pipeline; ``version`` is not used then). When it exists, the
    package becomes its version ``version`` (default ``<name>-<UTC time>``).

    Args:
      client: from :func:`connect`.
      package_path: the compiled PipelineSpec (``.yaml``) or a PipelineJob
        ``.json``.
      name: pipeline name (default: the spec's ``pipelineInfo.name``).
      version: name of the new version of an existing pipeline.
      description: shown in the KFP UI.
      namespace: multi-user namespace of a private pipeline (default: a
        shared pipeline).

    Raises:
      KfpError: a missing or invalid package, or an API failure.
    """
    with _uploadable(package_path) as (path, spec, _), _translate_errors(_host_of(client)):
        name = name or spec["pipelineInfo"]["name"]
        pipeline_id = _find_pipeline_id(client, name, namespace)
        if pipeline_id is None:
            pipeline = client.upload_pipeline(
                path, pipeline_name=name, description=description, namespace=namespace)
            first = _find_version(client, pipeline.pipeline_id, None)
            return Uploaded(pipeline.pipeline_id, name, first.pipeline_version_id,
                            first.display_name, True)
        version = version or _default_version_name(name)
        created = client.upload_pipeline_version(
            path, version, pipeline_id=pipeline_id, description=description)
        return Uploaded(pipeline_id, name, created.pipeline_version_id, created.display_name,
                        False)


# --- runs ---------------------------------------------------------------------


@dataclasses.dataclass
class _Source:
    package_path: Optional[str]
    pipeline_id: Optional[str]
    version_id: Optional[str]
    spec: Dict[str, Any]
    pipeline_root: Optional[str]


@contextlib.contextmanager
def _resolve_source(client, package_path, pipeline_id, version_id, pipeline_name,
                    version_name, namespace) -> Iterator[_Source]:
    given = [x for x in (package_path, pipeline_id, pipeline_name) if x]
    if len(given) != 1:
        raise KfpError("give exactly one of: a package file, a pipeline id, a pipeline name")
    if package_path:
        with _uploadable(package_path) as (path, spec, root):
            yield _Source(path, None, None, spec, root)
        return
    if pipeline_name:
        pipeline_id = _find_pipeline_id(client, pipeline_name, namespace)
        if pipeline_id is None:
            raise KfpError(f"no pipeline is named {pipeline_name!r}; upload it first")
    if not version_id:
        version_id = _find_version(client, pipeline_id, version_name).pipeline_version_id
    stored = client.get_pipeline_version(pipeline_id, version_id).pipeline_spec or {}
    if "pipelineInfo" not in stored and "pipeline_spec" in stored:
        stored = stored["pipeline_spec"]
    yield _Source(None, pipeline_id, version_id, stored, None)


def _run_name(spec: Mapping[str, Any], prefix: str = "") -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = spec.get("pipelineInfo", {}).get("name", "pipeline")
    return f"{base}-{prefix}{stamp}"


def submit(
    client,
    package_path: Optional[str] = None,
    *,
    pipeline_id: Optional[str] = None,
    version_id: Optional[str] = None,
    pipeline_name: Optional[str] = None,
    version_name: Optional[str] = None,
    params: Optional[Mapping[str, Any]] = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: Optional[str] = None,
    namespace: Optional[str] = None,
    pipeline_root: Optional[str] = None,
    enable_caching: Optional[bool] = None,
    service_account: Optional[str] = None,
) -> Submitted:
    """Starts one run in ``experiment`` (created when missing).

    The pipeline is either ``package_path`` (the spec travels inside the run)
    or an uploaded version: ``pipeline_id``/``pipeline_name`` with
    ``version_id``/``version_name`` (default: the newest version).

    Args:
      client: from :func:`connect`.
      package_path: compiled PipelineSpec YAML (or PipelineJob JSON).
      pipeline_id: an uploaded pipeline, by id.
      version_id: its version, by id.
      pipeline_name: an uploaded pipeline, by name.
      version_name: its version, by name.
      params: runtime parameters; strings are typed per the spec
        (:func:`coerce_params`).
      experiment: experiment name.
      run_name: default ``<pipeline>-<UTC time>``.
      namespace: multi-user namespace (default: the client's).
      pipeline_root: artifact root for this run (default: the spec's
        ``defaultPipelineRoot``, else KFP's configured default).
      enable_caching: override the compiled caching options for every task.
      service_account: Kubernetes service account the run's pods use (e.g.
        ``model-garden-pipeline`` from ``kubernetes/``).

    Raises:
      KfpError: bad arguments or parameters, or an API failure.
    """
    with _translate_errors(_host_of(client)), _resolve_source(
            client, package_path, pipeline_id, version_id, pipeline_name, version_name,
            namespace) as src:
        typed = coerce_params(src.spec, params)
        exp = client.create_experiment(name=experiment, namespace=namespace)
        run_name = run_name or _run_name(src.spec)
        run = client.run_pipeline(
            experiment_id=exp.experiment_id,
            job_name=run_name,
            pipeline_package_path=src.package_path,
            params=typed,
            pipeline_id=src.pipeline_id,
            version_id=src.version_id,
            pipeline_root=pipeline_root or src.pipeline_root,
            enable_caching=enable_caching,
            service_account=service_account,
        )
        return Submitted(run.run_id, run.display_name or run_name, exp.experiment_id, experiment)


def to_kfp_cron(expression: str) -> str:
    """A cron expression in the 6-field form KFP's scheduler reads.

    KFP's ScheduledWorkflow controller parses cron with a seconds field
    first (``second minute hour day-of-month month day-of-week``, robfig/cron).
    A classic 5-field crontab line would be read shifted by one field
    (``"0 3 * * *"`` = every hour at minute 3), so a 5-field expression gets
    ``"0 "`` prepended: ``"0 3 * * *"`` -> ``"0 0 3 * * *"`` (daily at 03:00).
    6-field expressions and descriptors (``@daily``, ``@every 2h``) pass
    unchanged. Times are in the controller's time zone (UTC by default).

    Raises:
      ValueError: not 5 or 6 fields.
    """
    expression = " ".join(expression.split())
    if expression.startswith("@"):
        return expression
    fields = expression.split(" ")
    if len(fields) == 5:
        return "0 " + expression
    if len(fields) == 6:
        return expression
    raise ValueError(
        f"cron expression {expression!r} has {len(fields)} fields; expected 5 "
        "(minute hour day month weekday) or 6 (with seconds first)"
    )


def schedule(
    client,
    package_path: Optional[str] = None,
    *,
    pipeline_id: Optional[str] = None,
    version_id: Optional[str] = None,
    pipeline_name: Optional[str] = None,
    version_name: Optional[str] = None,
    cron: str = DEFAULT_CRON,
    max_concurrency: int = 1,
    no_catchup: bool = True,
    params: Optional[Mapping[str, Any]] = None,
    experiment: str = DEFAULT_EXPERIMENT,
    job_name: Optional[str] = None,
    namespace: Optional[str] = None,
    pipeline_root: Optional[str] = None,
    enable_caching: Optional[bool] = None,
    service_account: Optional[str] = None,
    start_time: Optional[str] = None,
    end_time: Optional[str] = None,
) -> Scheduled:
    """Creates an enabled recurring run (cron schedule) in ``experiment``.

    ``cron`` may have 5 fields (converted by :func:`to_kfp_cron`) or KFP's
    6. ``max_concurrency=1`` keeps runs from overlapping and
    ``no_catchup=True`` starts only the latest missed run after a pause,
    instead of back-filling every missed one. The pipeline source and the
    other arguments are as in :func:`submit`; ``start_time``/``end_time``
    are RFC 3339 strings.

    Raises:
      KfpError: bad arguments or parameters, or an API failure.
    """
    try:
        kfp_cron = to_kfp_cron(cron)
    except ValueError as e:
        raise KfpError(str(e)) from None
    low, high = MAX_CONCURRENCY_RANGE
    if not low <= max_concurrency <= high:
        raise KfpError(f"max_concurrency must be in [{low}, {high}], not {max_concurrency}")
    with _translate_errors(_host_of(client)), _resolve_source(
            client, package_path, pipeline_id, version_id, pipeline_name, version_name,
            namespace) as src:
        typed = coerce_params(src.spec, params)
        exp = client.create_experiment(name=experiment, namespace=namespace)
        job_name = job_name or _run_name(src.spec, prefix="schedule-")
        job = client.create_recurring_run(
            experiment_id=exp.experiment_id,
            job_name=job_name,
            start_time=start_time,
            end_time=end_time,
            cron_expression=kfp_cron,
            max_concurrency=max_concurrency,
            no_catchup=no_catchup,
            params=typed,
            pipeline_package_path=src.package_path,
            pipeline_id=src.pipeline_id,
            version_id=src.version_id,
            enabled=True,
            pipeline_root=pipeline_root or src.pipeline_root,
            enable_caching=enable_caching,
            service_account=service_account,
        )
        return Scheduled(job.recurring_run_id, job.display_name or job_name,
                         exp.experiment_id, experiment, kfp_cron)


def list_runs(
    client,
    experiment: Optional[str] = None,
    *,
    namespace: Optional[str] = None,
    limit: int = 50,
) -> List[RunSummary]:
    """The newest runs, newest first: ``(id, name, state, created_at)``.

    Args:
      client: from :func:`connect`.
      experiment: only runs of this experiment (by name).
      namespace: multi-user namespace (default: the client's).
      limit: at most this many runs (pages of up to 100 are fetched).

    Raises:
      KfpError: no such experiment, or an API failure.
    """
    with _translate_errors(_host_of(client)):
        experiment_id = None
        if experiment:
            try:
                experiment_id = client.get_experiment(
                    experiment_name=experiment, namespace=namespace).experiment_id
            except ValueError as e:  # "No experiment is found with name ..."
                raise KfpError(str(e)) from None
        rows: List[RunSummary] = []
        token = ""
        while len(rows) < limit:
            page = client.list_runs(
                page_token=token, page_size=min(100, limit - len(rows)),
                sort_by="created_at desc", experiment_id=experiment_id, namespace=namespace)
            for run in page.runs or []:
                rows.append(RunSummary(run.run_id, run.display_name, run.state or "",
                                       run.created_at))
            token = page.next_page_token or ""
            if not token:
                break
        return rows[:limit]
