"""Reading golden rows from CSV and JSONL files robustly: a UTF-8 BOM, CRLF, newlines inside quoted fields
and blank lines are fine; a bad file raises one WorkbenchError naming the line and the problem."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

from workbench.datasets.rows import GoldenRow
from workbench.errors import ConfigError, WorkbenchError

__all__ = ["read_rows", "read_csv", "read_jsonl", "write_jsonl", "row_from_mapping", "as_path", "COLUMN_ALIASES"]

# Column names people use for the same thing (first match wins).
COLUMN_ALIASES = {
    "input": ("input", "prompt", "question", "inputs", "request", "messages"),
    "expected": ("expected", "expected_answer", "expected_output", "answer", "reference", "ground_truth",
                 "expectations", "expected_response", "output"),
    "verified": ("verified",),
    "tags": ("tags",),
    "source": ("source",),
    "notes": ("notes", "note", "comment"),
    "row_id": ("row_id", "id"),
}


def as_path(path: Any, what: str = "path") -> Path:
    """`path` as a Path, or a ConfigError naming what was passed instead."""
    if not isinstance(path, str | Path) or not str(path).strip():
        raise ConfigError(f"{what}={path!r:.80} is not a file path: pass e.g. 'golden.csv' or 'golden.jsonl'")
    return Path(path).expanduser()


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    # Excel's "Unicode Text" and PowerShell write UTF-16 with a byte-order mark: read it rather than refuse
    encoding = "utf-16" if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-16":
            raise WorkbenchError(f"{path.name}: not valid UTF-16 after its byte-order mark ({exc.reason}); "
                                 "save the file as UTF-8") from None
        line = raw[: exc.start].count(b"\n") + 1
        raise WorkbenchError(f"{path.name} line {line}: byte {raw[exc.start]:#x} is not UTF-8; save the file as "
                             "UTF-8 (Excel: 'CSV UTF-8')") from None


def _pick(mapping: dict[str, Any], field: str) -> tuple[bool, Any]:
    lowered = {str(k).strip().lower(): v for k, v in mapping.items()}
    for alias in COLUMN_ALIASES[field]:
        if alias in lowered:
            return True, lowered[alias]
    return False, None


def _unwrap(value: Any, keys: tuple[str, ...]) -> Any:
    """MLflow-style {'inputs': {'question': ...}} records: take the single (or the named) inner value."""
    if isinstance(value, dict) and value:
        for key in keys:
            if key in value:
                return value[key]
        if len(value) == 1:
            return next(iter(value.values()))
    return value


_FIELD_LIMIT = 1 << 24  # csv's default (128 KiB) refuses a long prompt; 16 MiB still stops a runaway quote
_DEEP = "nested too deeply to read (over Python's recursion limit); flatten it"


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise WorkbenchError(f"{where}: JSON {_DEEP}") from None


def _check_unique(rows: list[GoldenRow], places: list[str]) -> list[GoldenRow]:
    """Two rows of one file with the same explicit id: the second would be silently skipped. Say so instead."""
    seen: dict[str, str] = {}
    for row, where in zip(rows, places, strict=True):
        if not row.row_id:
            continue
        if row.row_id in seen:
            raise WorkbenchError(f"{where}: row id {row.row_id!r} is already used at {seen[row.row_id]}; give each "
                                 "row its own id (or drop the id column: ids are then derived from the content)")
        seen[row.row_id] = where
    return rows


def row_from_mapping(mapping: dict[str, Any], where: str) -> GoldenRow:
    """A GoldenRow from a dict with `input` (or an alias) and optionally `expected`, `verified`, `tags`..."""
    found, value = _pick(mapping, "input")
    if not found:
        raise WorkbenchError(f"{where}: no 'input' column (got {', '.join(map(str, mapping)) or 'nothing'}); "
                             "name the prompt column 'input' and the answer 'expected'")
    value = _unwrap(value, ("question", "input", "prompt", "messages", "request"))
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        with contextlib.suppress(ValueError):  # messages stored as JSON text in a CSV cell; else the text itself
            value = _json(value, where)
    fields: dict[str, Any] = {"input": value}
    for name in ("expected", "verified", "tags", "source", "notes", "row_id"):
        present, got = _pick(mapping, name)
        if present and got is not None and got != "":
            fields[name] = _unwrap(got, ("expected_response", "expected", "answer")) if name == "expected" else got
    # no id in the data: "" asks the dataset for a content-derived id (re-importing a file adds nothing)
    fields["row_id"] = str(fields.get("row_id") or "")
    try:
        return GoldenRow(**fields)
    except ConfigError as exc:
        raise WorkbenchError(f"{where}: {exc}") from None


def read_csv(path: str | Path) -> list[GoldenRow]:
    path = as_path(path)
    text = _decode(path).replace("\r\n", "\n").replace("\r", "\n")  # Windows and old-Mac line ends
    # strict: an unterminated quote is an error at its line, not one giant field
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, delimiter=delimiter)
    rows: list[GoldenRow] = []
    places: list[str] = []
    header: list[str] | None = None
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue  # blank lines
            if header is None:
                header = [cell.strip() for cell in record]
                twice = sorted({c for c in header if c and [h.lower() for h in header].count(c.lower()) > 1})
                if twice:
                    raise WorkbenchError(f"{path.name} line {line}: column {twice[0]!r} appears twice in the header; "
                                         "rename or remove one (only one can be used)")
                if not _pick(dict.fromkeys(header), "input")[0]:  # caught here even when no row follows
                    raise WorkbenchError(f"{path.name} line {line}: no 'input' column (got {', '.join(header)}); "
                                         "name the prompt column 'input' and the answer 'expected'")
                continue
            if len(record) != len(header):
                raise WorkbenchError(f"{path.name} line {line}: {len(record)} fields where the header has "
                                     f"{len(header)} ({', '.join(header)}); quote fields that contain commas")
            rows.append(row_from_mapping(dict(zip(header, record, strict=True)), f"{path.name} line {line}"))
            places.append(f"{path.name} line {line}")
    except csv.Error as exc:
        raise WorkbenchError(f"{path.name} line {start}: {exc}; check the quotes on that line") from None
    if header is None:
        raise WorkbenchError(f"{path.name} is empty: write a header line 'input,expected' and one row per example")
    return _check_unique(rows, places)


def read_jsonl(path: str | Path) -> list[GoldenRow]:
    path = as_path(path)
    rows: list[GoldenRow] = []
    places: list[str] = []
    for number, line in enumerate(_decode(path).splitlines(), 1):  # splitlines: CRLF and CR too
        if not line.strip():
            continue
        try:
            record = _json(line, f"{path.name} line {number}")
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"{path.name} line {number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                                 "each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise WorkbenchError(f"{path.name} line {number}: a JSON {type(record).__name__}, not an object like "
                                 '{"input": "...", "expected": "..."}')
        rows.append(row_from_mapping(record, f"{path.name} line {number}"))
        places.append(f"{path.name} line {number}")
    return _check_unique(rows, places)


def read_rows(path: str | Path) -> list[GoldenRow]:
    """Rows from a .csv, .tsv, .jsonl or .json file (by extension)."""
    path = as_path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise WorkbenchError(f"no file {path}: check the path (relative paths start at {Path.cwd()})")
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    if suffix == ".json":
        try:
            data = _json(_decode(path), path.name)
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"{path.name} line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise WorkbenchError(f"{path.name}: expected a JSON list of objects (or use JSONL: one object a line)")
        places = [f"{path.name} item {i}" for i in range(1, len(data) + 1)]
        return _check_unique([row_from_mapping(r if isinstance(r, dict) else {"input": r}, where)
                              for r, where in zip(data, places, strict=True)], places)
    if suffix in (".csv", ".tsv", ".txt"):
        return read_csv(path)
    raise ConfigError(f"{path.name}: unknown file type {suffix!r}; use .csv or .jsonl")


def write_jsonl(rows: list[GoldenRow], path: str | Path) -> Path:
    """One JSON object a line, UTF-8, LF: diffs well in git and reads back with read_jsonl."""
    path = as_path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
        tmp.replace(path)  # atomic: a reader never sees half a file
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise WorkbenchError(f"cannot write {path}: {exc.strerror or exc}; pass a file path in a writable "
                             "folder") from None
    return path
