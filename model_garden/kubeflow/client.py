"""What ``model-garden upload|submit|schedule|runs`` add to ``kfp.Client`` (KFP SDK 2.5).

``kfp.Client`` and the ``kfp`` CLI already upload pipelines and versions,
look a pipeline up by name (``get_pipeline_id``), get-or-create experiments
(``create_experiment``), start runs and recurring runs from a package or an
uploaded version, and list runs. This module keeps only what they do not:

* :func:`connect` -- the endpoint from ``--host``/``$KF_PIPELINES_ENDPOINT``,
  in-cluster or a kubeconfig, checked before ``kfp.Client`` retries its health
  probe five times; a re-read service-account token file; a multi-user
  namespace kept in memory (``kfp.Client.set_user_namespace`` writes a file);
* :func:`coerce_params` -- ``--param KEY=VALUE`` strings typed as the
  PipelineSpec declares them (``kfp.Client`` and ``kfp run create`` send
  strings, which the v2 driver refuses for numbers and booleans);
* :func:`to_kfp_cron` -- a 5-field crontab line in the 6-field form KFP's
  scheduler reads;
* resolving ``--pipeline-name``/``--version-name`` to the ids
  ``kfp.Client.run_pipeline`` needs (it wants both ids, and has no version
  lookup by name);
* :class:`KfpError` -- one clear line for the command line instead of a
  ``kfp_server_api`` traceback; credentials are never in it.

Credentials (a bearer token, cookies, a token file) go to ``kfp.Client`` and
from there only into request headers: never into a file, a log or an error.
"""

import contextlib
import datetime
import json
import logging
import os
import re
import socket
import urllib.parse
import warnings
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

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
#: KFP's API server returns at most this many items a page (``maxPageSize``
#: in kubeflow/pipelines ``backend/src/apiserver/list/list.go``).
MAX_PAGE_SIZE = 200

_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"


class KfpError(Exception):
    """A user-facing failure talking to Kubeflow Pipelines (no traceback needed)."""


class KfpUnreachableError(KfpError):
    """The KFP endpoint does not answer (DNS, refused connection, time-out)."""


class KfpApiError(KfpError):
    """The KFP API answered with an HTTP error (``status``: its code)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --- connecting ---------------------------------------------------------------


def connect(host: Optional[str] = None, namespace: Optional[str] = None,
            existing_token: Optional[str] = None, cookies: Optional[str] = None, *,
            timeout: float = 10.0):
    """A ``kfp.Client``.

    Host, first found wins: ``host`` (e.g. ``http://localhost:8080`` after
    ``kubectl port-forward svc/ml-pipeline-ui 8080:80``, or a Kubeflow gateway
    ``https://kubeflow.example.com/pipeline``); ``$KF_PIPELINES_ENDPOINT``; in
    a pod, ``kfp.Client``'s in-cluster service; else a kubeconfig's API server
    proxy. Credentials: ``existing_token`` (``Authorization: Bearer``), else
    the token file ``$KF_PIPELINES_SA_TOKEN_PATH`` (re-read per request: the
    kubelet rotates projected tokens), else ``kfp``'s in-pod default.
    ``cookies`` (e.g. ``authservice_session=...``) go in the ``Cookie`` header.
    ``namespace``: the multi-user profile namespace, kept in memory only.

    Raises:
      KfpUnreachableError: nothing answers at the host.
      KfpError: no endpoint can be found, or it fails its health check.
    """
    import kfp
    from kfp.client import set_volume_credentials

    host = host or os.environ.get(ENDPOINT_ENV) or None
    if host:
        host = host.strip().rstrip("/")
        if not re.match(r"^https?://", host):
            host = "https://" + host  # what kfp.Client assumes, with a warning
        _check_reachable(host, timeout)
    elif not (os.environ.get(_IN_CLUSTER_ENV) or _kubeconfig_path()):
        raise KfpError(
            "no Kubeflow Pipelines endpoint: pass --host (e.g. http://localhost:8080 after "
            "`kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`) or set "
            f"{ENDPOINT_ENV}")

    credentials = None
    if not existing_token and os.environ.get(SA_TOKEN_PATH_ENV):
        token_path = os.environ[SA_TOKEN_PATH_ENV]
        if not os.path.isfile(token_path):
            raise KfpError(f"{SA_TOKEN_PATH_ENV} names no file: {token_path}")
        credentials = set_volume_credentials.ServiceAccountTokenVolumeCredentials(token_path)

    kwargs: Dict[str, Any] = dict(host=host, existing_token=existing_token or None,
                                  cookies=cookies or None, credentials=credentials)
    # kfp.Client(namespace=...) is also the in-cluster service's namespace when
    # no host is given: pass it only with a host (it then skips the probe).
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
            raise KfpError(f"Kubeflow Pipelines at {_safe_url(host)} failed its health check "
                           f"(/apis/v2beta1/healthz){detail}") from None
    if namespace:
        # What kfp.Client(namespace=...) does for a host, in memory, for all cases.
        client._context_setting["namespace"] = namespace  # pylint: disable=protected-access
    return client


def _safe_url(url: Optional[str]) -> str:
    """``url`` without user info, query or fragment (never print credentials)."""
    if not url:
        return "the in-cluster/kubeconfig endpoint"
    parts = urllib.parse.urlsplit(url)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _check_reachable(host: str, timeout: float) -> None:
    parts = urllib.parse.urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as e:
        raise KfpUnreachableError(f"cannot reach Kubeflow Pipelines at {_safe_url(host)}: "
                                  f"{e.strerror or e.__class__.__name__}") from None


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
        if record.exc_info and record.exc_info[1] is not None:
            self.failures.append(_api_exception_message(record.exc_info[1]))
        return False


@contextlib.contextmanager
def _quiet_kfp_healthz() -> Iterator[List[str]]:
    # kfp.Client() calls /healthz up to 5 times and logging.exception()s each
    # failure with a traceback on the root logger; collect them instead.
    flt = _HealthzFilter()
    logging.getLogger().addFilter(flt)
    try:
        yield flt.failures
    finally:
        logging.getLogger().removeFilter(flt)


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
                f"cannot talk to Kubeflow Pipelines at {_safe_url(host)}: {e.reason}") from None
        raise KfpApiError(e.status, f"Kubeflow Pipelines API: {_api_exception_message(e)}") from None
    except urllib3.exceptions.HTTPError as e:
        reason = getattr(e, "reason", None) or e
        raise KfpUnreachableError(f"cannot reach Kubeflow Pipelines at {_safe_url(host)}: "
                                  f"{reason.__class__.__name__}") from None
    except ValueError as e:  # kfp.Client's own checks: "Multiple pipelines with the name..."
        raise KfpError(str(e)) from None


def _host_of(client) -> Optional[str]:
    return getattr(getattr(client, "_existing_config", None), "host", None)


# --- the package and its parameters ---------------------------------------------


def read_spec(package_path: str) -> Dict[str, Any]:
    """The PipelineSpec of a compiled YAML (``model-garden compile``, ``kfp.compiler``).

    Raises:
      KfpError: no such file, not YAML, or not a KFP v2 PipelineSpec (checked
        here so that no request goes out for a wrong file).
    """
    if not os.path.isfile(package_path):
        raise KfpError(f"pipeline package not found: {package_path}")
    with open(package_path) as f:
        try:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            raise KfpError(f"{package_path} is not a pipeline package: {e}") from None
    if not docs or not isinstance(docs[0], dict) or not {"pipelineInfo", "root"} <= set(docs[0]):
        raise KfpError(f"{package_path} is not a KFP v2 PipelineSpec (no pipelineInfo/root)")
    return docs[0]


def coerce_params(spec: Mapping[str, Any], params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``params`` typed as the PipelineSpec declares them.

    Strings (from ``--param KEY=VALUE``) become ``int``, ``float``, ``bool``,
    or JSON lists/objects per the parameter's ``parameterType`` (or the
    deprecated ``type``, ``INT``/``DOUBLE``/``STRING``, that TFX writes);
    other values pass unchanged.

    Raises:
      KfpError: a name the pipeline does not declare, or a value that is not
        of the declared type.
    """
    declared = dict(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))
    out: Dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise KfpError(f"the pipeline has no parameter {key!r} (its parameters: {known})")
        definition = declared[key]
        kind = definition.get("parameterType") or _LEGACY_TYPES.get(definition.get("type"), "STRING")
        out[key] = _coerce(key, kind, value) if isinstance(value, str) else value
    return out


_LEGACY_TYPES = {"INT": "NUMBER_INTEGER", "DOUBLE": "NUMBER_DOUBLE", "STRING": "STRING"}
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _coerce(key: str, kind: str, value: str) -> Any:
    try:
        if kind == "NUMBER_INTEGER":
            return int(value)
        if kind == "NUMBER_DOUBLE":
            return float(value)
        if kind == "BOOLEAN":
            return _BOOLEANS[value.strip().lower()]
        if kind in ("LIST", "STRUCT"):
            parsed = json.loads(value)
            if not isinstance(parsed, list if kind == "LIST" else dict):
                raise ValueError(value)
            return parsed
    except (ValueError, KeyError):
        raise KfpError(f"parameter {key!r} is {kind}; cannot use {value!r}") from None
    return value


def to_kfp_cron(expression: str) -> str:
    """A cron expression in the 6-field form KFP's scheduler reads.

    KFP's ScheduledWorkflow controller parses cron with a seconds field first
    (robfig/cron): a 5-field crontab line would be read shifted by one field
    (``"0 3 * * *"`` = every hour at minute 3), so it gets ``"0 "`` prepended:
    ``"0 3 * * *"`` -> ``"0 0 3 * * *"`` (daily at 03:00, the controller's time
    zone, UTC by default). 6-field expressions and descriptors (``@daily``,
    ``@every 2h``) pass unchanged.

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
    raise ValueError(f"cron expression {expression!r} has {len(fields)} fields; expected 5 "
                     "(minute hour day month weekday) or 6 (with seconds first)")


# --- pipelines, runs, schedules ---------------------------------------------------


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [
        {"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def _pipeline_id(client, name: str, namespace: Optional[str]) -> Optional[str]:
    if not namespace:
        return client.get_pipeline_id(name)
    # kfp.Client.get_pipeline_id lists shared pipelines only; a private one
    # (uploaded with a namespace) is listed with its namespace.
    found = client.list_pipelines(filter=_name_filter(name), page_size=2,
                                  namespace=namespace).pipelines or []
    if len(found) > 1:
        raise KfpError(f"several pipelines are named {name!r}")
    return found[0].pipeline_id if found else None


def _version(client, pipeline_id: str, version_name: Optional[str]):
    """The version called ``version_name``, else the newest one."""
    if version_name:
        found = client.list_pipeline_versions(pipeline_id, filter=_name_filter(version_name),
                                              page_size=1)
    else:
        found = client.list_pipeline_versions(pipeline_id, sort_by="created_at desc",
                                              page_size=1)
    if not found.pipeline_versions:
        what = f"version {version_name!r}" if version_name else "versions"
        raise KfpError(f"pipeline {pipeline_id} has no {what}")
    return found.pipeline_versions[0]


def _utc_stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


def upload(client, package_path: str, name: Optional[str] = None,
           version: Optional[str] = None, *, description: Optional[str] = None,
           namespace: Optional[str] = None) -> Tuple[Any, Any, bool]:
    """A new pipeline ``name`` (default: the spec's), or a new version of it.

    A new pipeline's first version is named after it by KFP (``version`` is
    not used then); an existing pipeline gets version ``version`` (default
    ``<name>-<UTC time>``). ``namespace``: a private pipeline of that
    multi-user namespace.

    Returns:
      ``(pipeline_id, V2beta1PipelineVersion, new_pipeline)``.

    Raises:
      KfpError: a missing or invalid package, or an API failure.
    """
    spec = read_spec(package_path)  # also when named: no request for a wrong file
    name = name or spec["pipelineInfo"]["name"]
    with _translate_errors(_host_of(client)):
        pipeline_id = _pipeline_id(client, name, namespace)
        if pipeline_id is None:
            pipeline = client.upload_pipeline(package_path, pipeline_name=name,
                                              description=description, namespace=namespace)
            return pipeline.pipeline_id, _version(client, pipeline.pipeline_id, None), True
        created = client.upload_pipeline_version(
            package_path, version or f"{name}-{_utc_stamp()}", pipeline_id=pipeline_id,
            description=description)
        return pipeline_id, created, False


def _run_source(client, package_path: Optional[str], pipeline_name: Optional[str],
                version_name: Optional[str], namespace: Optional[str],
                enable_caching: Optional[bool]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(``kfp.Client`` source arguments, PipelineSpec) of a package or an uploaded version."""
    if bool(package_path) == bool(pipeline_name):
        raise KfpError("give exactly one of: a package file, a pipeline name")
    if package_path:
        return {"pipeline_package_path": package_path}, read_spec(package_path)
    if enable_caching is not None:
        # kfp.Client overrides caching in a package's spec only; a run of an
        # uploaded version has no such field (v2beta1 Run), so it would be ignored.
        raise KfpError("--caching/--no-caching applies to a PACKAGE file: KFP runs an "
                       "uploaded version with its compiled caching options")
    pipeline_id = _pipeline_id(client, pipeline_name, namespace)
    if pipeline_id is None:
        raise KfpError(f"no pipeline is named {pipeline_name!r}; upload it first")
    version = _version(client, pipeline_id, version_name)
    stored = client.get_pipeline_version(pipeline_id, version.pipeline_version_id).pipeline_spec
    stored = stored or {}
    if "pipelineInfo" not in stored and "pipeline_spec" in stored:  # spec + platform spec
        stored = stored["pipeline_spec"]
    return {"pipeline_id": pipeline_id, "version_id": version.pipeline_version_id}, stored


def _prepare_run(client, package_path, pipeline_name, version_name, namespace, enable_caching,
                 params, experiment):
    """What a run and a recurring run share: ``(kfp.Client keyword arguments (source,
    typed params, experiment id), the experiment, the pipeline's name)``."""
    source, spec = _run_source(client, package_path, pipeline_name, version_name,
                               namespace, enable_caching)
    typed = coerce_params(spec, params)
    exp = client.create_experiment(name=experiment, namespace=namespace)
    name = spec.get("pipelineInfo", {}).get("name", "pipeline")
    return {"experiment_id": exp.experiment_id, "params": typed, **source}, exp, name


def submit(client, package_path: Optional[str] = None, *, pipeline_name: Optional[str] = None,
           version_name: Optional[str] = None, params: Optional[Mapping[str, Any]] = None,
           experiment: str = DEFAULT_EXPERIMENT, run_name: Optional[str] = None,
           namespace: Optional[str] = None, pipeline_root: Optional[str] = None,
           enable_caching: Optional[bool] = None, service_account: Optional[str] = None):
    """Starts one run in ``experiment`` (created when missing).

    The pipeline is ``package_path`` (the spec travels inside the run) or the
    uploaded ``pipeline_name`` at ``version_name`` (default: the newest
    version). ``params`` are typed per the spec (:func:`coerce_params`); the
    other arguments are ``kfp.Client.run_pipeline``'s; ``run_name`` defaults
    to ``<pipeline>-<UTC time>``.

    Returns:
      ``(V2beta1Run, V2beta1Experiment)``.

    Raises:
      KfpError: bad arguments or parameters, or an API failure.
    """
    with _translate_errors(_host_of(client)):
        common, exp, name = _prepare_run(client, package_path, pipeline_name, version_name,
                                         namespace, enable_caching, params, experiment)
        run = client.run_pipeline(
            job_name=run_name or f"{name}-{_utc_stamp()}", pipeline_root=pipeline_root,
            enable_caching=enable_caching, service_account=service_account, **common)
        return run, exp


def schedule(client, package_path: Optional[str] = None, *, pipeline_name: Optional[str] = None,
             version_name: Optional[str] = None, cron: str = DEFAULT_CRON,
             max_concurrency: int = 1, no_catchup: bool = True,
             params: Optional[Mapping[str, Any]] = None, experiment: str = DEFAULT_EXPERIMENT,
             job_name: Optional[str] = None, namespace: Optional[str] = None,
             pipeline_root: Optional[str] = None, enable_caching: Optional[bool] = None,
             service_account: Optional[str] = None):
    """Creates an enabled recurring run (cron) in ``experiment``.

    ``cron`` may have 5 fields (:func:`to_kfp_cron`) or KFP's 6.
    ``max_concurrency=1`` keeps runs from overlapping; ``no_catchup=True``
    starts only the latest missed run after a pause instead of back-filling
    each. The source and other arguments are as in :func:`submit`.

    Returns:
      ``(V2beta1RecurringRun, V2beta1Experiment, the 6-field cron)``.

    Raises:
      KfpError: bad arguments or parameters, or an API failure.
    """
    try:
        kfp_cron = to_kfp_cron(cron)
    except ValueError as e:
        raise KfpError(str(e)) from None
    with _translate_errors(_host_of(client)):
        common, exp, name = _prepare_run(client, package_path, pipeline_name, version_name,
                                         namespace, enable_caching, params, experiment)
        job = client.create_recurring_run(
            job_name=job_name or f"{name}-schedule-{_utc_stamp()}",
            cron_expression=kfp_cron, max_concurrency=max_concurrency, no_catchup=no_catchup,
            enabled=True, pipeline_root=pipeline_root, enable_caching=enable_caching,
            service_account=service_account, **common)
        return job, exp, kfp_cron


def list_runs(client, experiment: Optional[str] = None, *, namespace: Optional[str] = None,
              limit: int = 50) -> List[Any]:
    """The newest ``limit`` (<= :data:`MAX_PAGE_SIZE`) runs, newest first (``V2beta1Run``).

    Raises:
      KfpError: no such experiment, or an API failure.
    """
    with _translate_errors(_host_of(client)):
        experiment_id = None
        if experiment:  # ValueError "No experiment is found with name ..." -> KfpError
            experiment_id = client.get_experiment(experiment_name=experiment,
                                                  namespace=namespace).experiment_id
        page = client.list_runs(page_size=min(limit, MAX_PAGE_SIZE), sort_by="created_at desc",
                                experiment_id=experiment_id, namespace=namespace)
        return list(page.runs or [])
