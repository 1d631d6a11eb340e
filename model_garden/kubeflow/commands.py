"""``model-garden upload|submit|schedule|runs``: a compiled pipeline on a KFP cluster.

Click commands over ``kfp.Client`` and what :mod:`model_garden.kubeflow.client`
adds to it, added to the ``model-garden`` group with ``cli.add_command`` (see
:data:`COMMANDS`); for everything else (runs' details, archiving, deleting)
use the ``kfp`` CLI of the same ``kfp`` package::

    model-garden compile mnist -o mnist.yaml --image ... --pipeline-root gs://...
    model-garden upload mnist.yaml --pipeline-name mnist --version-name v2
    model-garden submit --pipeline-name mnist --experiment mnist --param train_steps=2000
    model-garden schedule --pipeline-name mnist --cron "0 3 * * *" --experiment nightly
    model-garden runs --experiment mnist

Connection: ``--host`` or ``$KF_PIPELINES_ENDPOINT`` (else in-cluster or the
kubeconfig proxy). Credentials: ``$MODEL_GARDEN_KFP_TOKEN`` (or ``--token``,
which a shell history keeps: prefer the variable), ``$KF_PIPELINES_SA_TOKEN_PATH``
(a token file), ``$MODEL_GARDEN_KFP_COOKIES`` / ``--cookies``. Credentials
are never printed, also not in error messages.
"""

import contextlib
import json
from typing import Dict, Iterator, Optional, Tuple

import click

from model_garden import validate
from model_garden.kubeflow import client as kfp_client
from model_garden.option_groups import option_group

TOKEN_ENV = "MODEL_GARDEN_KFP_TOKEN"
COOKIES_ENV = "MODEL_GARDEN_KFP_COOKIES"


_connection_options = option_group(
    click.option("--host", envvar=kfp_client.ENDPOINT_ENV, show_envvar=True,
                 help="KFP API endpoint, e.g. http://localhost:8080 (after `kubectl -n "
                      "kubeflow port-forward svc/ml-pipeline-ui 8080:80`). Default: the "
                      "in-cluster service, else the kubeconfig's API server proxy."),
    click.option("--namespace", default=None,
                 help="Multi-user KFP: your profile namespace."),
    click.option("--token", envvar=TOKEN_ENV, show_envvar=True, default=None,
                 show_default=False,
                 help="Bearer token sent as the Authorization header (prefer the "
                      "environment variable; never printed). $KF_PIPELINES_SA_TOKEN_PATH "
                      "names a token file instead."),
    click.option("--cookies", envvar=COOKIES_ENV, show_envvar=True, default=None,
                 show_default=False,
                 help="Cookie header value, e.g. authservice_session=... (never printed)."),
)


_source_options = option_group(
    click.argument("package", required=False,
                   type=click.Path(exists=True, dir_okay=False, readable=True)),
    click.option("--pipeline-name", default=None,
                 help="An uploaded pipeline, instead of a PACKAGE file."),
    click.option("--version-name", default=None,
                 help="Its version (default: the newest)."),
)


def _storage_path(ctx, param, value):
    """A click callback: :func:`model_garden.validate.check_storage_path` on the option."""
    try:
        return validate.check_storage_path(value, param.opts[0])
    except ValueError as e:
        raise click.BadParameter(str(e).removeprefix(param.opts[0] + " "), ctx=ctx,
                                 param=param) from None


_run_options = option_group(
    click.option("--experiment", default=kfp_client.DEFAULT_EXPERIMENT, show_default=True,
                 help="Experiment name (created when missing)."),
    click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                 help="Runtime parameter, typed as the pipeline declares it; repeatable."),
    click.option("--pipeline-root", default=None, callback=_storage_path,
                 help="Artifact root for the run (default: the pipeline's, else KFP's)."),
    click.option("--service-account", default=None,
                 help="Kubernetes service account of the run's pods "
                      "(e.g. model-garden-pipeline, kubernetes/rbac.yaml)."),
    click.option("--caching/--no-caching", "enable_caching", default=None,
                 help="Override the compiled caching option of every step (a PACKAGE "
                      "file only: an uploaded version runs with its own)."),
)


def _parse_params(pairs: Tuple[str, ...]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        out[key.strip()] = value
    return out


def _redact(text: str, secrets: Tuple[Optional[str], ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def _user_errors(*secrets: Optional[str]) -> Iterator[None]:
    """KfpError and argument errors as one line (exit 1), never a traceback."""
    try:
        yield
    except (kfp_client.KfpError, ValueError, OSError) as e:  # ValueError: kfp.Client's checks
        raise click.ClickException(_redact(str(e), secrets)) from None


def _connect(host, namespace, token, cookies):
    return kfp_client.connect(host=host, namespace=namespace, existing_token=token,
                              cookies=cookies)


def _check_source(package, pipeline_name, version_name):
    if bool(package) == bool(pipeline_name):
        raise click.UsageError("give a PACKAGE file or --pipeline-name (one of them)")
    if version_name and not pipeline_name:
        raise click.UsageError("--version-name goes with --pipeline-name")


@click.command("upload")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--pipeline-name", default=None,
              help="Pipeline name (default: the spec's pipelineInfo.name).")
@click.option("--version-name", default=None,
              help="Version name when the pipeline exists (default: <name>-<UTC time>).")
@click.option("--description", default=None, help="Shown in the KFP UI.")
@_connection_options
def upload(package, pipeline_name, version_name, description, host, namespace, token, cookies):
    """Upload PACKAGE (a compiled PipelineSpec YAML) as a pipeline or a new version."""
    with _user_errors(token, cookies):
        client = _connect(host, namespace, token, cookies)
        pipeline_id, version, new = kfp_client.upload(
            client, package, pipeline_name, version_name, description=description,
            namespace=namespace)
    name = pipeline_name or kfp_client.read_spec(package)["pipelineInfo"]["name"]
    what = "new pipeline" if new else "new version of pipeline"
    click.echo(f"{what} {name!r} ({pipeline_id}): "
               f"version {version.display_name!r} ({version.pipeline_version_id})")


def _start(call, package, pipeline_name, version_name, params, connection, **kwargs):
    """``call`` (:func:`kfp_client.submit` or ``schedule``) on the checked source and
    ``--param`` values, over a client for ``connection`` = (host, namespace, token, cookies)."""
    host, namespace, token, cookies = connection
    _check_source(package, pipeline_name, version_name)
    parsed = _parse_params(params)
    with _user_errors(token, cookies):
        client = _connect(host, namespace, token, cookies)
        return call(client, package, pipeline_name=pipeline_name, version_name=version_name,
                    params=parsed, namespace=namespace, **kwargs)


@click.command("submit")
@_source_options
@click.option("--run-name", default=None, help="Default: <pipeline>-<UTC time>.")
@_run_options
@_connection_options
def submit(package, pipeline_name, version_name, run_name, experiment, params, pipeline_root,
           service_account, enable_caching, host, namespace, token, cookies):
    """Start one run of PACKAGE, or of an uploaded --pipeline-name."""
    run, exp = _start(kfp_client.submit, package, pipeline_name, version_name, params,
                      (host, namespace, token, cookies), run_name=run_name,
                      experiment=experiment, pipeline_root=pipeline_root,
                      enable_caching=enable_caching, service_account=service_account)
    click.echo(f"run {run.display_name!r} ({run.run_id}) in experiment "
               f"{experiment!r} ({exp.experiment_id})")


@click.command("schedule")
@_source_options
@click.option("--cron", default=kfp_client.DEFAULT_CRON, show_default=True,
              help="5-field crontab (a seconds field '0' is prepended for KFP) or KFP's "
                   "6-field form (seconds first); UTC.")
@click.option("--max-concurrency", default=1, show_default=True, type=click.IntRange(1, 10),
              help="Runs of this schedule allowed at once.")
@click.option("--catchup/--no-catchup", default=False, show_default=True,
              help="After a pause, back-fill every missed run (--catchup) or start only "
                   "the latest.")
@click.option("--job-name", default=None, help="Default: <pipeline>-schedule-<UTC time>.")
@_run_options
@_connection_options
def schedule(package, pipeline_name, version_name, cron, max_concurrency, catchup, job_name,
             experiment, params, pipeline_root, service_account, enable_caching, host,
             namespace, token, cookies):
    """Create a recurring run (cron) of PACKAGE, or of an uploaded --pipeline-name.

    \b
    Each run of the schedule is one turn of the retraining loop, when the
    package was compiled with --spans K (and, optionally, --warm-start):
      1. new data lands as the next span folder, <input_base>/span-N/
         (e.g. gsutil cp -r DATA gs://BUCKET/model-garden/data/mnist/span-3/);
      2. InputSpans (never cached) lists the spans, takes the last K and
         fingerprints their files; its output is ExampleGen's input;
      3. no new span: ExampleGen ... Trainer are served from KFP's cache and
         nothing is retrained; a new span: they run again on the window, the
         Trainer warm-starting from the latest blessed model with --warm-start;
      4. LatestPushedVersion and LatestBlessedModel (never cached) give the
         Evaluator the model being served as its baseline;
      5. the Evaluator blesses the model only if it reaches the threshold and
         is not worse than the baseline; the Pusher pushes only a new blessed
         model, as a new version under the push destination.
    Keep caching on (the default) for step 3; --max-concurrency 1 keeps two
    runs from racing for the same push destination.
    """
    job, _exp, kfp_cron = _start(
        kfp_client.schedule, package, pipeline_name, version_name, params,
        (host, namespace, token, cookies), cron=cron, max_concurrency=max_concurrency,
        no_catchup=not catchup, job_name=job_name, experiment=experiment,
        pipeline_root=pipeline_root, enable_caching=enable_caching,
        service_account=service_account)
    click.echo(f"recurring run {job.display_name!r} ({job.recurring_run_id}) in experiment "
               f"{experiment!r}: cron {kfp_cron!r}")


@click.command("runs")
@click.option("--experiment", default=None, help="Only this experiment's runs.")
@click.option("--limit", default=20, show_default=True,
              type=click.IntRange(1, kfp_client.MAX_PAGE_SIZE),
              help="Newest runs to show (KFP's API returns at most "
                   f"{kfp_client.MAX_PAGE_SIZE} at once).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@_connection_options
def runs(experiment, limit, as_json, host, namespace, token, cookies):
    """List the newest runs: id, name, state, created."""
    with _user_errors(token, cookies):
        client = _connect(host, namespace, token, cookies)
        rows = kfp_client.list_runs(client, experiment, namespace=namespace, limit=limit)
    if as_json:
        for row in rows:
            click.echo(json.dumps({
                "id": row.run_id, "name": row.display_name, "state": row.state or "",
                "created_at": row.created_at.isoformat() if row.created_at else None}))
        return
    table = [("RUN ID", "NAME", "STATE", "CREATED")] + [
        (r.run_id, r.display_name or "", r.state or "",
         r.created_at.isoformat() if r.created_at else "") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])


#: For ``for c in COMMANDS: cli.add_command(c)``.
COMMANDS = (upload, submit, schedule, runs)
