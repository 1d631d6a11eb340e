"""Checks of values a user gives (CLI options, pipeline parameters), before anything runs.

Pure Python (no TensorFlow): ``model-garden --help`` and ``list`` import the
CLI, which imports this. Every check raises ``ValueError`` with a message
that names the value and says what would be accepted; the CLI turns it into
one click error.
"""

import math
import re
from typing import Optional

#: Metrics whose values are fractions in [0, 1] (TFMA / Keras class names):
#: a threshold outside [0, 1] can never bless a model (above 1) or always
#: does (below 0).
_FRACTION_METRICS = ("Accuracy", "AUC", "Precision", "Recall", "PrecisionAtRecall",
                     "RecallAtPrecision", "SensitivityAtSpecificity",
                     "SpecificityAtSensitivity")


def is_fraction_metric(metric: str) -> bool:
    """Whether the TFMA/Keras metric class ``metric`` takes values in [0, 1].

    Every ``...Accuracy`` (``SparseCategoricalAccuracy``, ``BinaryAccuracy``,
    ``SparseTopKCategoricalAccuracy``, ...), ``AUC``, ``Precision``, ``Recall``
    and their ``...At...`` forms.
    """
    return metric.endswith("Accuracy") or metric in _FRACTION_METRICS


def check_threshold(value: float, metric: str, what: str = "--threshold") -> float:
    """``value`` when it can gate ``metric``: a finite number, in [0, 1] for a fraction metric.

    Args:
      value: the lower bound of the blessing metric.
      metric: the metric's class name, e.g. ``"SparseCategoricalAccuracy"``.
      what: the option or parameter named in the message.

    Returns:
      ``float(value)``.

    Raises:
      ValueError: not a finite number, or outside [0, 1] for a fraction metric.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number")
    if is_fraction_metric(metric) and not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} {value!r} is outside [0, 1]: {metric} is a fraction "
                         f"(e.g. 0.98 for 98%)")
    return float(value)


# The container image reference grammar of distribution/reference (the
# parser Docker, containerd and Kubernetes' kubelet use), v0.5.0
# reference.go lines 4-26 and regexp.go:
#
#   reference        := name [ ":" tag ] [ "@" digest ]
#   name             := [domain '/'] remote-name
#   domain           := host [':' port-number]
#   host             := domain-name | IPv4address | \[ IPv6address \]
#   domain-name      := domain-component ['.' domain-component]*
#   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
#   port-number      := /[0-9]+/
#   path-component   := alpha-numeric [separator alpha-numeric]*
#   remote-name      := path-component ['/' path-component]*
#   alpha-numeric    := /[a-z0-9]+/
#   separator        := /[_.]|__|[-]+/
#   tag              := /[\w][\w.-]{0,127}/
#   digest           := digest-algorithm ":" digest-hex
#   digest-algorithm := component [ /[+.-_]/ component ]*, component := /[A-Za-z][A-Za-z0-9]*/
#   digest-hex       := /[0-9a-fA-F]{32,}/
#
# and the name (domain and path) at most 255 characters (NameTotalLengthMax).
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
           r"(?::[0-9]+)?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII)
_NAME_MAX = 255


def _repository(image: str) -> str:
    """The path part of ``image``: without its digest, tag and registry host (for messages)."""
    name = image.split("@")[0]
    head, sep, tail = name.rpartition(":")
    if sep and "/" not in tail:
        name = head
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return rest
    return name


def check_image_reference(image: str, what: str = "--image") -> str:
    """``image`` when it is a valid container image reference (``[host[:port]/]path[:tag][@digest]``).

    The grammar is distribution/reference's (see the comment above). As
    Docker does (``splitDockerDomain``), a first component is a registry host
    only when it holds a ``.`` or a ``:`` or is ``localhost``: so
    ``MyOrg/model-garden`` (uppercase) is refused, ``gcr.io/p/model-garden`` is not.

    Raises:
      ValueError: empty, whitespace, uppercase in the repository, a bad tag
        or digest, or a name over 255 characters; the message quotes ``image``.
    """
    hint = ("a container image reference such as gcr.io/PROJECT/model-garden:TAG "
            "(lowercase repository; see the Dockerfile)")
    if not image or not image.strip():
        raise ValueError(f"{what} {image!r} is empty: give {hint}")
    m = _REFERENCE.fullmatch(image)
    if m is None:
        why = ("it holds whitespace" if re.search(r"\s", image) else
               "the repository must be lowercase" if re.search(r"[A-Z]", _repository(image))
               else "it does not follow the reference grammar")
        raise ValueError(f"{what} {image!r} is not a valid image reference ({why}): give {hint}")
    domain = m.group("domain")
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        if not re.fullmatch(_PATH_COMPONENT, domain):
            raise ValueError(f"{what} {image!r} is not a valid image reference ({domain!r} is "
                             f"neither a registry host nor a lowercase repository): give {hint}")
    if len(m.group("name")) > _NAME_MAX:
        raise ValueError(f"{what} {image[:40]!r}...: the repository name is over {_NAME_MAX} "
                         "characters")
    return image


#: The characters of Google Cloud Storage bucket names (cloud.google.com/storage/
#: docs/buckets#naming): lowercase letters, digits, '-', '_' and '.', beginning and
#: ending with a letter or digit. (Their length, 3-63, is left to GCS.)
_GCS_BUCKET = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/]*)(?P<path>.*)",
                  re.DOTALL)


def check_storage_path(path: Optional[str], what: str) -> Optional[str]:
    """``path`` when it can name a folder: a local path, or a URL such as ``gs://BUCKET/DIR``.

    A local path may hold spaces. A URL (``scheme://...``) may not hold
    whitespace, must name its bucket or host, and a ``gs://`` bucket must be
    made of the characters of GCS bucket names. ``None`` (option not given) passes.

    Args:
      path: the folder, e.g. ``"gs://my-bucket/model-garden"``.
      what: the option named in the message, e.g. ``"--pipeline-root"``.

    Raises:
      ValueError: empty, a URL with whitespace or without a bucket, a bad
        GCS bucket name, or a ``gs:/`` with one slash.
    """
    if path is None:
        return None
    if not path.strip():
        raise ValueError(f"{what} {path!r} is empty: give a folder, e.g. gs://BUCKET/model-garden")
    if re.match(r"(?i)gs:/(?!/)", path):
        raise ValueError(f"{what} {path!r}: write gs://BUCKET/..., with two slashes")
    m = _URL.fullmatch(path)
    if m is None:
        return path
    if re.search(r"\s", path):
        raise ValueError(f"{what} {path!r} holds whitespace, which a {m.group('scheme')}:// "
                         "URL cannot hold: use folder names without spaces")
    bucket = m.group("authority")
    if not bucket:
        raise ValueError(f"{what} {path!r} names no bucket (or host): write "
                         f"{m.group('scheme')}://BUCKET/...")
    if m.group("scheme").lower() == "gs" and not _GCS_BUCKET.fullmatch(bucket):
        raise ValueError(f"{what} {path!r}: {bucket!r} is not a valid GCS bucket name "
                         "(lowercase letters, digits, '-', '_' or '.', starting and ending "
                         "with a letter or digit)")
    return path


#: What schema anomalies do to a run (``--on-anomalies``, pipeline parameter
#: ``on_anomalies``): ``warn`` lists them and goes on; ``fail`` stops the
#: pipeline before Transform (:mod:`model_garden.components.anomalies_gate`).
ON_ANOMALIES = ("warn", "fail")


def check_on_anomalies(value, what: str = "--on-anomalies") -> str:
    """``value`` when it is one of :data:`ON_ANOMALIES` (``"warn"``, ``"fail"``).

    Args:
      value: the policy, as a CLI option or a KFP run's parameter gives it.
      what: the option or parameter named in the message.

    Raises:
      ValueError: any other value (also a non-string); the message quotes it.
    """
    if not isinstance(value, str) or value not in ON_ANOMALIES:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(ON_ANOMALIES)}: "
                         "'warn' lists schema anomalies and goes on, 'fail' stops before "
                         "Transform")
    return value
