"""Parser for the UCI Adult ("Census Income") files, pure Python.

The files (``adult.data``, ``adult.test``; Becker & Kohavi 1996) are
C4.5-style text:

* no header; one record per line, fields separated by ``", "``;
* lines starting with ``|`` are comments (``adult.test`` starts with
  ``|1x3 Cross validator``) and blank lines (both files end with one) are
  skipped;
* ``adult.test`` labels end with a period (``<=50K.``, ``>50K.``); they are
  normalized to ``<=50K`` / ``>50K`` as the official
  ``official/r1/wide_deep/census_dataset.py`` cleaning does. Files already
  cleaned by that script (``","`` separators, no periods) parse the same.

Columns (:data:`COLUMNS`, the names of ``census_dataset._CSV_COLUMNS``): the
six :data:`NUMERIC_COLUMNS` become Python ``int``, the other nine ``str``.

Missing values: UCI writes an unknown value as ``"?"`` (``adult.names``,
"Convert Unknown to ?"). It occurs only in ``workclass``, ``occupation`` and
``native_country``, and it is KEPT as the category string ``"?"``, exactly as
the official model reads it (its ``workclass`` vocabulary lists ``'?'``); the
curated schema lists ``"?"`` in those domains. A ``"?"`` (or anything else not
an integer) in a numeric column is a format error, never an imputed value.

Encoding: UTF-8 (the UCI files are ASCII). A UTF-8 byte order mark at the
start of the file (what a spreadsheet program writes when it re-saves the
file) is accepted and stripped; a line that is not UTF-8 is a format error.
Lines end at ``\n`` only (``\r\n`` is accepted), the same in
:func:`read_file` and in the ExampleGen, which reads bytes (see
:func:`decode_lines`).

Errors: a row with the wrong number of fields, a numeric field that is not a
plain decimal integer (``-?[0-9]+``: no ``1_000``, no non-ASCII digits), an
empty field, a line that is not UTF-8 or a label other than the two classes
raises :class:`CensusFormatError` naming the file and 1-based line number;
columns are never shifted or padded. With ``on_bad_rows="drop"`` such rows
are skipped, logged one by one and counted instead.
"""

import dataclasses
import logging
import re
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income_bracket",
)
NUMERIC_COLUMNS = (
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
)
LABEL_KEY = "income_bracket"
#: The 14 raw feature columns (every column but the label), in file order.
FEATURE_COLUMNS = tuple(c for c in COLUMNS if c != LABEL_KEY)
CATEGORICAL_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c not in NUMERIC_COLUMNS)
#: Label classes in class-id order: 0 = ``<=50K``, 1 = ``>50K``
#: (census_dataset.input_fn: ``classes = tf.equal(labels, '>50K')``).
LABEL_CLASSES = ("<=50K", ">50K")
MISSING = "?"
ON_BAD_ROWS = ("raise", "drop")

Row = Dict[str, Union[int, str]]
_NUMERIC = frozenset(NUMERIC_COLUMNS)
#: A numeric field: a plain decimal integer (``int()`` alone would also take
#: ``1_000``, ``+5`` and non-ASCII digits such as ``"\u0663"``).
_INTEGER = re.compile(r"-?[0-9]+")
BOM = "\ufeff"


class _Undecodable(str):
    """What :func:`decode_lines` yields for a line that is not UTF-8: the line
    with its bad bytes replaced, and why. :func:`parse_line` raises on it, so
    ``on_bad_rows="drop"`` drops it like any other bad row."""

    reason: str = ""


class CensusFormatError(ValueError):
    """A malformed Adult row; ``path`` and ``line`` (1-based) say where."""

    def __init__(self, path: str, line: int, reason: str):
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


def parse_line(line: str, path: str = "<string>", line_number: int = 0) -> Optional[Row]:
    """Parses one line of ``adult.data`` / ``adult.test``.

    Args:
      line: the text line, with or without its line ending (on line 1, a
        leading byte order mark is stripped).
      path: file name for error messages.
      line_number: 1-based line number for error messages.

    Returns:
      ``None`` for a blank or ``|`` comment line, else a dict with the 15
      :data:`COLUMNS`: ``int`` for :data:`NUMERIC_COLUMNS`, ``str`` otherwise,
      ``income_bracket`` normalized to one of :data:`LABEL_CLASSES`.

    Raises:
      CensusFormatError: wrong field count, empty field, non-integer numeric
        field, unknown label, or a line :func:`decode_lines` could not decode.
    """
    if isinstance(line, _Undecodable):
        raise CensusFormatError(path, line_number, f"not UTF-8 text ({line.reason})")
    text = line.rstrip("\r\n")
    if line_number == 1 and text.startswith(BOM):
        text = text[len(BOM):]
    if not text.strip() or text.lstrip().startswith("|"):
        return None
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != len(COLUMNS):
        raise CensusFormatError(
            path, line_number, f"expected {len(COLUMNS)} fields, found {len(fields)}"
        )
    row: Row = {}
    for name, value in zip(COLUMNS, fields):
        if not value:
            raise CensusFormatError(
                path, line_number, f"empty field {name!r} (UCI writes unknown as '?')"
            )
        if name in _NUMERIC:
            if not _INTEGER.fullmatch(value):
                raise CensusFormatError(
                    path, line_number, f"field {name!r} is not an integer: {value!r}"
                )
            row[name] = int(value)
        else:
            row[name] = value
    label = str(row[LABEL_KEY])
    if label.endswith("."):
        label = label[:-1]
    if label not in LABEL_CLASSES:
        raise CensusFormatError(
            path, line_number, f"label {row[LABEL_KEY]!r} is not one of {LABEL_CLASSES}"
        )
    row[LABEL_KEY] = label
    return row


@dataclasses.dataclass
class ParseResult:
    """Rows of one file and what was dropped.

    Attributes:
      rows: the parsed rows, in file order.
      dropped: ``(line_number, reason)`` of each dropped row
        (``on_bad_rows="drop"`` only).
    """

    rows: List[Row]
    dropped: List[Tuple[int, str]] = dataclasses.field(default_factory=list)

    @property
    def num_dropped(self) -> int:
        return len(self.dropped)


def iter_rows(
    lines: Iterable[str], path: str = "<string>", on_bad_rows: str = "raise",
    dropped: Optional[List[Tuple[int, str]]] = None,
) -> Iterator[Tuple[int, Row]]:
    """Yields ``(line_number, row)`` for each record of ``lines``.

    Args:
      lines: the file's lines.
      path: file name for error and log messages.
      on_bad_rows: ``"raise"`` (default) or ``"drop"``.
      dropped: with ``"drop"``, ``(line_number, reason)`` of each dropped row
        is appended here.

    Raises:
      CensusFormatError: a bad row and ``on_bad_rows="raise"``.
      ValueError: ``on_bad_rows`` is not one of :data:`ON_BAD_ROWS`.
    """
    if on_bad_rows not in ON_BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {ON_BAD_ROWS}, not {on_bad_rows!r}")
    for number, line in enumerate(lines, start=1):
        try:
            row = parse_line(line, path, number)
        except CensusFormatError as e:
            if on_bad_rows == "raise":
                raise
            logging.warning("dropping bad row: %s", e)
            if dropped is not None:
                dropped.append((number, e.reason))
            continue
        if row is not None:
            yield number, row


def decode_lines(raw_lines: Iterable[bytes]) -> Iterator[str]:
    """The lines of a file read as bytes (split at ``\n``), decoded as UTF-8.

    A line that is not UTF-8 is yielded as a marker that :func:`parse_line`
    refuses with its line number; nothing is raised here.
    """
    for raw in raw_lines:
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = _Undecodable(raw.decode("utf-8", errors="replace"))
            line.reason = f"byte 0x{raw[e.start]:02x} at column {e.start + 1}"
            yield line


def read_file(path: str, on_bad_rows: str = "raise") -> ParseResult:
    """Parses a whole Adult file.

    Args:
      path: ``adult.data`` or ``adult.test`` (any path; read as UTF-8, a
        leading byte order mark stripped).
      on_bad_rows: ``"raise"`` or ``"drop"``; with ``"drop"`` the count of
        dropped rows is logged and returned in :class:`ParseResult`.

    Raises:
      CensusFormatError: a bad row (one that is not UTF-8 included) and
        ``on_bad_rows="raise"``.
      OSError: the file cannot be read.
    """
    dropped: List[Tuple[int, str]] = []
    with open(path, "rb") as f:
        rows = [row for _, row in iter_rows(decode_lines(f), path, on_bad_rows, dropped)]
    if dropped:
        logging.warning("%s: dropped %d bad rows", path, len(dropped))
    return ParseResult(rows, dropped)
