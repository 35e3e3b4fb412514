"""Odd golden-dataset files (issue 11, "the rest of the surface"): every documented format and encoding reads,
and a bad file is one line naming the problem, never a traceback or a silently dropped row."""

from __future__ import annotations

import codecs
import json

import pytest

import workbench
from workbench.datasets.golden import GoldenDataset
from workbench.errors import WorkbenchError


def test_tsv_reads_with_tabs(tmp_path):
    path = tmp_path / "golden.tsv"
    path.write_text("input\texpected\nCapital of France?\tParis, the city\n", encoding="utf-8")
    rows = GoldenDataset.from_file(path).rows
    assert [(r.input, r.expected) for r in rows] == [("Capital of France?", "Paris, the city")]


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_with_a_byte_order_mark_reads(tmp_path, bom, codec):
    path = tmp_path / "golden.csv"
    path.write_bytes(bom + "input,expected\r\nQuestion é?,Réponse\r\n".encode(codec))
    assert [(r.input, r.expected) for r in GoldenDataset.from_file(path).rows] == [("Question é?", "Réponse")]


def test_a_long_csv_field_reads(tmp_path):
    path = tmp_path / "golden.csv"
    path.write_text("input,expected\n" + "x" * 200_000 + ",a\n", encoding="utf-8")
    assert len(GoldenDataset.from_file(path).rows[0].input) == 200_000


@pytest.mark.parametrize("name, content, needle", [
    ("deep.jsonl", '{"input": ' + "[" * 100_000 + "]" * 100_000 + "}\n", "deep.jsonl line 1: JSON nested too deeply"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json: JSON nested too deeply"),
    ("dup.jsonl", '{"id": "r1", "input": "q1"}\n{"id": "r1", "input": "q2"}\n',
     "dup.jsonl line 2: row id 'r1' is already used at dup.jsonl line 1"),
    ("dup.csv", "id,input\nr1,q1\nr1,q2\n", "dup.csv line 3: row id 'r1' is already used at dup.csv line 2"),
    ("dup.json", '[{"id": 7, "input": "q1"}, {"id": 7, "input": "q2"}]', "dup.json item 2: row id '7'"),
    ("cols.csv", "input,Input,expected\nq,q2,a\n", "cols.csv line 1: column 'Input' appears twice"),
    ("surrogate.jsonl", '{"input": "bad \\ud800 text"}\n', "surrogate.jsonl line 1: input holds '\\ud800'"),
])
def test_a_bad_file_is_one_line_and_adds_nothing(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    golden = workbench.golden("odd-files")
    golden.add("already here", expected="kept")
    with pytest.raises(WorkbenchError) as caught:
        golden.extend(GoldenDataset.from_file(path))
    assert needle in str(caught.value) and "\n" not in str(caught.value)
    assert [r.input for r in golden.rows] == ["already here"]  # nothing saved is lost, nothing half-added


def test_a_lone_surrogate_added_from_python_is_one_line():
    golden = workbench.golden("odd-rows")
    with pytest.raises(WorkbenchError, match="expected holds '\\\\udcff'"):
        golden.add("question", expected="answer from caf\udcff folder")
    assert len(golden) == 0
    json.dumps([r.to_dict() for r in golden.rows])
