"""GoldenDataset and `workbench.golden(name)`: a named set of examples with accepted answers.

A named dataset lives in the golden store (every add or edit is written at once, safe across kernels);
one made from a file or DataFrame without a name lives in memory until `.save(name)`. `.save()` records a
version: the content digest, and an MLflow evaluation dataset holding that state.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.datasets import files
from workbench.datasets.rows import GoldenRow, digest, input_text, row_key
from workbench.datasets.store import store
from workbench.datasets.versions import push_version
from workbench.errors import ConfigError, WorkbenchError
from workbench.verbatim import NO_MATH

if TYPE_CHECKING:
    from typing import TypeAlias

    import pandas as pd

__all__ = ["GoldenDataset", "DatasetVersion", "golden", "golden_names", "resolve_data"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
COLUMNS = ["input", "expected", "verified", "tags", "source", "notes", "row_id"]


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"golden dataset name {name!r} is not valid: use letters, digits, '_', '-' and '.', "
                          "e.g. golden('support-qa')")
    return name


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: int
    digest: str
    rows: int
    mlflow_dataset_id: str | None

    @property
    def short_digest(self) -> str:
        return self.digest[:12]


def _deterministic_ids(rows: list[GoldenRow]) -> list[GoldenRow]:
    """Rows read from data without an id get one from their content, so importing a file twice adds nothing."""
    seen: dict[str, int] = {}
    for row in rows:
        if row.row_id:
            continue
        key = row_key([row.input, row.expected])
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        row.row_id = row_key([row.input, row.expected], occurrence)
    return rows


class GoldenDataset:
    """Rows of `input`, `expected`, `verified`, `tags`, `source`, `notes`; `len()`, `.df`, `.add()`, `.save()`."""

    def __init__(self, name: str | None = None, rows: list[GoldenRow] | None = None, *, stored: bool = False) -> None:
        self.name = _check_name(name) if stored else (name or "dataset")
        self.stored = stored
        self._memory: list[GoldenRow] = list(rows or [])
        if stored:
            store().ensure(self.name)

    # -- reading
    @property
    def rows(self) -> list[GoldenRow]:
        if self.stored:
            return store().rows(self.name)
        return list(self._memory)

    def __len__(self) -> int:
        if self.stored:
            return store().count(self.name)
        return len(self._memory)

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __getitem__(self, index: int) -> GoldenRow:
        return self.rows[index]

    @property
    def df(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([row.to_dict() for row in self.rows], columns=COLUMNS)

    @property
    def digest(self) -> str:
        return digest(self.rows)

    def row(self, row_id: str) -> GoldenRow:
        for found in self.rows:
            if found.row_id == row_id:
                return found
        raise WorkbenchError(f"no row {row_id!r} in golden dataset {self.name!r}: see .df for the row ids")

    # -- writing
    def add(self, input: Any, expected: str | None = None, *, verified: bool = False, tags: Any = None,
            source: str | None = None, notes: str | None = None, row_id: str | None = None) -> GoldenRow:
        """Add one row (written at once for a named dataset) and return it."""
        fields: dict[str, Any] = {"input": input, "expected": expected, "verified": verified, "tags": tags or [],
                                  "source": source, "notes": notes}
        if row_id is not None:
            fields["row_id"] = str(row_id)
        row = GoldenRow(**fields)
        self._write([row])
        return row

    def extend(self, data: Any) -> int:
        """Add rows from a DataFrame, a list of dicts or GoldenRows, or another GoldenDataset; returns rows added
        (rows already there, by row id, are skipped)."""
        rows = _deterministic_ids(_rows_from(data, where="extend()"))
        return self._write(rows)

    def _write(self, rows: list[GoldenRow]) -> int:
        if self.stored:
            return store().append(self.name, rows)
        for row in rows:
            if not row.row_id:
                row.row_id = uuid.uuid4().hex[:16]
        known = {r.row_id for r in self._memory}
        fresh = [r for r in rows if r.row_id not in known]
        self._memory.extend(fresh)
        return len(fresh)

    def update(self, row_id: str, **fields: Any) -> GoldenRow:
        """Change fields of one row (e.g. expected=..., verified=True)."""
        unknown = sorted(set(fields) - set(COLUMNS[:-1]))
        if unknown:
            raise ConfigError(f"update() got {', '.join(unknown)}: fields are {', '.join(COLUMNS[:-1])}")
        current = self.row(row_id)
        changed = GoldenRow(**{**current.content(), **fields, "row_id": row_id})
        if self.stored:
            store().update(self.name, changed)
        else:
            self._memory = [changed if r.row_id == row_id else r for r in self._memory]
        return changed

    def remove(self, row_ids: str | list[str]) -> int:
        try:
            ids: list[Any] = [row_ids] if isinstance(row_ids, str) else list(row_ids)
        except TypeError:
            ids = [row_ids]
        if not all(isinstance(i, str) for i in ids):
            raise ConfigError(f"row_ids={row_ids!r:.80} must be a row id or a list of them: see .df for the row ids")
        if self.stored:
            return store().delete(self.name, ids)
        before = len(self._memory)
        self._memory = [r for r in self._memory if r.row_id not in set(ids)]
        return before - len(self._memory)

    # -- versions
    def save(self, name: str | None = None) -> DatasetVersion:
        """Record this state as a version (digest + MLflow evaluation dataset). An in-memory dataset is stored
        under `name` (or its own name) first."""

        if not self.stored:
            target = _check_name(name or self.name)
            rows = self._memory
            self.name, self.stored, self._memory = target, True, []
            store().ensure(target)
            store().append(target, rows)
        elif name is not None and name != self.name:
            _check_name(name)
            raise ConfigError(f"{self.name!r} is already stored: copy it with golden({name!r}).extend(ds)")
        rows = self.rows
        content = digest(rows)
        version, _created = store().add_version(self.name, content, len(rows))
        found = next(v for v in store().versions(self.name) if v["version"] == version)
        dataset_id = found["mlflow_dataset_id"]
        if dataset_id is None:
            dataset_id = push_version(self.name, version, content, rows)
            if dataset_id:
                store().set_mlflow_id(self.name, version, dataset_id)
        return DatasetVersion(self.name, version, content, len(rows), dataset_id)

    def versions(self) -> pd.DataFrame:
        import pandas as pd

        found = store().versions(self.name) if self.stored else []
        frame = pd.DataFrame(found, columns=["version", "digest", "rows", "created_at", "mlflow_dataset_id"])
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s")
        return frame

    def current_version(self) -> DatasetVersion | None:
        """The saved version whose digest matches the rows now, if any."""
        if not self.stored:
            return None
        rows = self.rows
        content = digest(rows)
        for found in store().versions(self.name):
            if found["digest"] == content:
                return DatasetVersion(self.name, found["version"], content, len(rows), found["mlflow_dataset_id"])
        return None

    # -- files and frames
    def to_jsonl(self, path: str | Path) -> Path:
        """Write the rows as JSONL (the portable form, for git); read back with GoldenDataset.from_jsonl."""
        return files.write_jsonl(self.rows, path)

    @classmethod
    def from_jsonl(cls, path: str | Path, name: str | None = None) -> GoldenDataset:
        return cls._from_rows(files.read_jsonl(path), name, Path(path).stem)

    @classmethod
    def from_csv(cls, path: str | Path, name: str | None = None) -> GoldenDataset:
        return cls._from_rows(files.read_csv(path), name, Path(path).stem)

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> GoldenDataset:
        return cls._from_rows(files.read_rows(path), name, Path(path).stem)

    @classmethod
    def from_dataframe(cls, df: Any, name: str | None = None) -> GoldenDataset:
        return cls._from_rows(_rows_from(df, where="DataFrame"), name, "dataframe")

    @classmethod
    def _from_rows(cls, rows: list[GoldenRow], name: str | None, default: str) -> GoldenDataset:
        rows = _deterministic_ids(rows)
        if name is None:
            return cls(_safe_default(default), rows)
        dataset = cls(name, stored=True)
        dataset.extend(rows)
        return dataset

    # -- display
    def __repr__(self) -> str:
        where = "stored" if self.stored else "in memory"
        return f"<GoldenDataset {self.name!r} {len(self)} rows, {where}, digest {self.digest[:12]}>"

    def _repr_html_(self) -> str:

        frame = self.df
        frame["input"] = frame["input"].map(lambda v: input_text(v)[:200])
        head = html.escape(repr(self))
        table = frame.drop(columns=['row_id']).to_html(max_rows=20, escape=True)
        return f"<div class='{NO_MATH}'><b>{head}</b>{table}</div>"


def _safe_default(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "-", stem).strip("-.") or "dataset"
    return cleaned[:100]


def _rows_from(data: Any, where: str) -> list[GoldenRow]:
    if isinstance(data, GoldenDataset):
        return data.rows
    if isinstance(data, GoldenRow):
        return [data]
    if isinstance(data, list):
        for i, r in enumerate(data, 1):
            if not isinstance(r, GoldenRow | dict):
                raise ConfigError(f"{where} item {i} is {r!r:.60}, not a dict: pass rows like "
                                  "{'input': '...', 'expected': '...'}")
        return [r if isinstance(r, GoldenRow) else files.row_from_mapping(r, f"{where} item {i}")
                for i, r in enumerate(data, 1)]
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        records = data.to_dict(orient="records")
        return [files.row_from_mapping(r, f"{where} row {i}") for i, r in enumerate(records)]
    if isinstance(data, str | Path):
        raise ConfigError(f"{where} got the path {str(data)!r}, not rows: read the file first and pass that, "
                          f"e.g. GoldenDataset.from_file({str(data)!r})")
    raise ConfigError(f"cannot read golden rows from {type(data).__name__}: pass a DataFrame with 'input' and "
                      "'expected' columns, a list of dicts, or a GoldenDataset")


if TYPE_CHECKING:
    # What evaluate(), calibrate() and fine-tunes accept as data: a dataset, a stored dataset's name, a CSV/JSONL
    # path, a DataFrame with input/expected columns, or a list of rows.
    DataLike: TypeAlias = GoldenDataset | str | Path | pd.DataFrame | list[GoldenRow | dict[str, object]]


def golden(name: str) -> GoldenDataset:
    """The golden dataset `name` in this home folder: loaded if it exists, created (empty) if not."""
    return GoldenDataset(name, stored=True)


def golden_names() -> list[str]:
    return store().names()


def resolve_data(data: DataLike) -> GoldenDataset:
    """What evaluate() accepts: a GoldenDataset, a stored dataset's name, a DataFrame, or a CSV/JSONL path."""
    if isinstance(data, GoldenDataset):
        return data
    if isinstance(data, Path) or (isinstance(data, str) and Path(data).suffix.lower() in (".csv", ".jsonl", ".json",
                                                                                          ".tsv", ".ndjson")):
        return GoldenDataset.from_file(data)
    if isinstance(data, str):
        if not store().exists(data):
            known = ", ".join(store().names()) or "none yet"
            raise WorkbenchError(f"no golden dataset {data!r} (known: {known}): create it with "
                                 f"workbench.golden({data!r}).add(...) or pass a CSV/JSONL path")
        return golden(data)
    if hasattr(data, "columns") or isinstance(data, list):
        return GoldenDataset.from_dataframe(data) if hasattr(data, "columns") else GoldenDataset(
            "list", _deterministic_ids(_rows_from(data, "data")))
    raise ConfigError(f"data={type(data).__name__} is not a dataset: pass a GoldenDataset, a dataset name, a "
                      "DataFrame with 'input' and 'expected' columns, or a CSV/JSONL path")
