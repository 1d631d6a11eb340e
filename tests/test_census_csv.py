"""The UCI Adult parser on the real adult.data / adult.test (no mocks)."""

import collections
import os
import re

import pytest

from model_garden.datasets import census_csv
from model_garden.datasets.census_csv import CensusFormatError


@pytest.fixture(scope="module")
def census_dir(data_root) -> str:
    """The byte-exact UCI Adult files (shared/data/census)."""
    return os.path.join(data_root, "census")


@pytest.fixture(scope="module")
def adult_names_counts(census_dir):
    """Instance counts stated in adult.names: (all, without unknowns)."""
    with open(os.path.join(census_dir, "adult.names")) as f:
        text = f.read()
    total = re.search(r"\(train=(\d+), test=(\d+)\)", text)
    known = re.search(r"removed \(train=(\d+), test=(\d+)\)", text)
    return (
        {"adult.data": int(total.group(1)), "adult.test": int(total.group(2))},
        {"adult.data": int(known.group(1)), "adult.test": int(known.group(2))},
    )


def _raw_label_counts(path):
    """Labels counted straight from the text: last field, '.' dropped."""
    counts = collections.Counter()
    with open(path) as f:
        for line in f:
            if "," in line:
                counts[line.rstrip().rsplit(", ", 1)[1].rstrip(".")] += 1
    return counts


@pytest.mark.parametrize(
    "name,labels",
    [
        # PROVENANCE.md: <=50K 24,720 / >50K 7,841; <=50K. 12,435 / >50K. 3,846.
        ("adult.data", {"<=50K": 24720, ">50K": 7841}),
        ("adult.test", {"<=50K": 12435, ">50K": 3846}),
    ],
)
def test_real_files_rows_and_labels(census_dir, adult_names_counts, name, labels):
    path = os.path.join(census_dir, name)
    result = census_csv.read_file(path)
    total, known = adult_names_counts
    assert len(result.rows) == total[name] == sum(labels.values())
    assert result.num_dropped == 0
    counts = collections.Counter(r["income_bracket"] for r in result.rows)
    assert counts == labels == _raw_label_counts(path)
    # "?" (unknown) is kept as a category; adult.names' count of complete rows.
    with_unknown = [r for r in result.rows if census_csv.MISSING in r.values()]
    assert len(result.rows) - len(with_unknown) == known[name]
    for row in with_unknown:
        missing = {k for k, v in row.items() if v == census_csv.MISSING}
        assert missing <= {"workclass", "occupation", "native_country"}
    for row in result.rows:
        assert list(row) == list(census_csv.COLUMNS)
        for col in census_csv.NUMERIC_COLUMNS:
            assert type(row[col]) is int
        for col in census_csv.CATEGORICAL_COLUMNS:
            assert type(row[col]) is str and row[col] == row[col].strip()


def test_first_rows_match_the_text(census_dir):
    for name in ("adult.data", "adult.test"):
        path = os.path.join(census_dir, name)
        with open(path) as f:
            lines = f.readlines()
        data_lines = [(i, l) for i, l in enumerate(lines, 1) if l.strip() and l[0] != "|"]
        number, first = data_lines[0]
        fields = first.rstrip("\n").split(", ")
        row = census_csv.read_file(path).rows[0]
        assert row["age"] == int(fields[0]) and row["workclass"] == fields[1]
        assert row["native_country"] == fields[13]
        assert row["income_bracket"] == fields[14].rstrip(".")
        assert not lines[-1].strip()  # the blank last line was skipped
    with open(os.path.join(census_dir, "adult.test")) as f:
        assert census_csv.parse_line(f.readline(), "adult.test", 1) is None


def test_official_cleaned_format_parses_the_same(census_dir, tmp_path):
    """census_dataset._download_and_clean_file's output reads identically."""
    src = os.path.join(census_dir, "adult.test")
    cleaned = tmp_path / "adult.test"
    with open(src) as f, open(cleaned, "w") as out:
        for line in f:
            line = line.strip().replace(", ", ",")
            if not line or "," not in line:
                continue
            if line[-1] == ".":
                line = line[:-1]
            out.write(line + "\n")
    assert census_csv.read_file(str(cleaned)).rows == census_csv.read_file(src).rows


def _broken_copy(census_dir, tmp_path, edits):
    """adult.data's first 200 lines with ``edits`` {line_number: fn(line)}."""
    with open(os.path.join(census_dir, "adult.data")) as f:
        lines = [next(f) for _ in range(200)]
    for number, edit in edits.items():
        lines[number - 1] = edit(lines[number - 1])
    path = tmp_path / "adult.data"
    path.write_text("".join(lines))
    return str(path)


def _drop_field(line, index=3):
    fields = line.rstrip("\n").split(", ")
    del fields[index]
    return ", ".join(fields) + "\n"


def _set_field(line, index, value):
    fields = line.rstrip("\n").split(", ")
    fields[index] = value
    return ", ".join(fields) + "\n"


@pytest.mark.parametrize(
    "edit,reason",
    [
        (_drop_field, "expected 15 fields, found 14"),
        (lambda l: _set_field(l, 0, "thirty"), "'age' is not an integer: 'thirty'"),
        (lambda l: _set_field(l, 0, "?"), "'age' is not an integer: '?'"),
        (lambda l: _set_field(l, 12, ""), "empty field 'hours_per_week'"),
        (lambda l: _set_field(l, 14, "50K"), "label '50K'"),
        (lambda l: l.rstrip("\n") + ", extra\n", "expected 15 fields, found 16"),
    ],
)
def test_bad_row_raises_with_file_and_line(census_dir, tmp_path, edit, reason):
    path = _broken_copy(census_dir, tmp_path, {57: edit})
    with pytest.raises(CensusFormatError) as info:
        census_csv.read_file(path)
    assert info.value.path == path and info.value.line == 57
    assert str(info.value).startswith(f"{path}:57: ")
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)


def test_drop_mode_counts_and_drops(census_dir, tmp_path, caplog):
    edits = {10: _drop_field, 120: lambda l: _set_field(l, 4, "nine")}
    path = _broken_copy(census_dir, tmp_path, edits)
    good = census_csv.read_file(os.path.join(census_dir, "adult.data")).rows[:200]
    with caplog.at_level("WARNING"):
        result = census_csv.read_file(path, on_bad_rows="drop")
    assert result.num_dropped == 2
    assert [n for n, _ in result.dropped] == [10, 120]
    assert result.rows == [r for i, r in enumerate(good, 1) if i not in edits]
    assert f"{path}: dropped 2 bad rows" in caplog.text
    assert f"{path}:120:" in caplog.text


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="on_bad_rows"):
        list(census_csv.iter_rows([], on_bad_rows="skip"))


@pytest.mark.parametrize("name", ["adult.data", "adult.test"])
def test_utf8_bom_is_stripped(census_dir, tmp_path, name):
    """Issue 13: a spreadsheet program re-saving the file puts a BOM first."""
    src = os.path.join(census_dir, name)
    copy = tmp_path / name
    with open(src, "rb") as f:
        copy.write_bytes(b"\xef\xbb\xbf" + f.read())
    original = census_csv.read_file(src).rows
    assert census_csv.read_file(str(copy)).rows == original
    # ... and as the ExampleGen reads it: byte lines through decode_lines.
    with open(copy, "rb") as f:
        rows = [r for _, r in census_csv.iter_rows(census_csv.decode_lines(f), str(copy))]
    assert rows == original


def test_a_bom_past_the_first_line_is_a_bad_row(census_dir, tmp_path):
    path = _broken_copy(census_dir, tmp_path, {3: lambda l: "\ufeff" + l})
    with pytest.raises(CensusFormatError, match=r":3: field 'age' is not an integer"):
        census_csv.read_file(path)


def test_a_line_that_is_not_utf8_names_file_and_line(census_dir, tmp_path):
    path = _broken_copy(census_dir, tmp_path, {})
    data = bytearray(open(path, "rb").read())
    third = data.index(b"\n", data.index(b"\n") + 1) + 1  # line 3 starts here
    data[third + 4] = 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(CensusFormatError) as info:
        census_csv.read_file(path)
    assert str(info.value).startswith(f"{path}:3: not UTF-8 text (byte 0xff at column 5)")
    result = census_csv.read_file(path, on_bad_rows="drop")
    assert [n for n, _ in result.dropped] == [3] and len(result.rows) == 199


@pytest.mark.parametrize("value", ["3_9", "+39", "\u0663\u0669", " 39 x"])
def test_numeric_fields_are_plain_decimal_integers(census_dir, tmp_path, value):
    path = _broken_copy(census_dir, tmp_path, {5: lambda l: _set_field(l, 0, value)})
    with pytest.raises(CensusFormatError, match=r":5: field 'age' is not an integer"):
        census_csv.read_file(path)
