"""Golden datasets: robust file reading, the sqlite store, versions (digest + MLflow dataset), %golden."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import workbench
from workbench.datasets.golden import GoldenDataset
from workbench.errors import ConfigError, WorkbenchError


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One MLflow store for the module: creating a sqlite store costs seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def mlflow_store(shared_store, monkeypatch):
    from workbench import config

    monkeypatch.setenv("WORKBENCH_TRACKING_URI", shared_store)
    config.reset_settings()
    return shared_store


# -- files ------------------------------------------------------------------------------------------------------


def test_csv_with_bom_crlf_quoted_newlines_and_blank_lines(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_bytes(b'\xef\xbb\xbfinput,expected,verified,tags\r\n"What is 2+2?",4,yes,"math, easy"\r\n\r\n'
                     b'"Two\r\nlines",ok,,\r\n\r\n')
    rows = GoldenDataset.from_csv(path).rows
    assert [r.input for r in rows] == ["What is 2+2?", "Two\nlines"]
    assert rows[0].expected == "4" and rows[0].verified is True and rows[0].tags == ["easy", "math"]
    assert rows[1].verified is False


@pytest.mark.parametrize("content, needle", [
    ('input,expected\n"fine",1\n"unterminated,2\nmore,3\n', "line 3"),
    ("input,expected\nok,1\na,b,c\n", "line 3: 3 fields"),
    ("question_missing,expected\nx,1\n", "no 'input' column"),
    ("", "empty"),
])
def test_bad_csv_names_the_line(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(WorkbenchError, match=needle):
        GoldenDataset.from_csv(path)


def test_bad_jsonl_and_bad_encoding_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "a", "expected": "b"}\n\n{"input": oops}\n', encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"bad.jsonl line 3: not valid JSON"):
        GoldenDataset.from_jsonl(path)
    path.write_text('{"input": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(WorkbenchError, match="line 2: a JSON list"):
        GoldenDataset.from_jsonl(path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"input,expected\ncaf\xe9,1\n")
    with pytest.raises(WorkbenchError, match="latin.csv line 2: byte 0xe9 is not UTF-8"):
        GoldenDataset.from_csv(latin)


def test_jsonl_round_trip_keeps_messages_and_ids(tmp_path):
    data = GoldenDataset.from_dataframe(__import__("pandas").DataFrame({
        "input": ["plain", [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]],
        "expected": ["p", "hello"]}))
    path = data.to_jsonl(tmp_path / "g.jsonl")
    back = GoldenDataset.from_jsonl(path)
    assert [r.to_dict() for r in back.rows] == [r.to_dict() for r in data.rows]
    assert back.digest == data.digest
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"input", "expected", "verified", "tags", "source", "notes", "row_id"}


# -- the store --------------------------------------------------------------------------------------------------


def test_golden_add_update_remove_and_idempotent_import(tmp_path):
    qa = workbench.golden("qa")
    assert len(qa) == 0
    row = qa.add("What is the capital of France?", "Paris", tags=["geo"], source="cell 3")
    assert len(workbench.golden("qa")) == 1  # written at once: a new handle sees it
    qa.update(row.row_id, expected="Paris.", verified=True)
    assert qa.row(row.row_id).verified and qa.row(row.row_id).expected == "Paris."
    csv = tmp_path / "more.csv"
    csv.write_text("input,expected\na,1\nb,2\na,1\n", encoding="utf-8")
    assert qa.extend(GoldenDataset.from_csv(csv)) == 3  # the duplicate row is its own row
    assert qa.extend(GoldenDataset.from_csv(csv)) == 0  # importing the same file again adds nothing
    assert list(qa.df.columns) == ["input", "expected", "verified", "tags", "source", "notes", "row_id"]
    assert qa.remove(row.row_id) == 1 and len(qa) == 3
    with pytest.raises(ConfigError, match="not valid"):
        workbench.golden("bad name!")
    with pytest.raises(ConfigError, match="update\\(\\) got colour"):
        qa.update(qa.rows[0].row_id, colour="red")


def test_save_records_versions_by_digest_and_an_mlflow_dataset(mlflow_store):
    qa = workbench.golden("versions")
    qa.add("q1", "a1")
    first = qa.save()
    assert first.version == 1 and len(first.digest) == 64 and first.mlflow_dataset_id
    assert qa.save() == first  # nothing changed: same version
    qa.add("q2", "a2")
    second = qa.save()
    assert second.version == 2 and second.digest != first.digest
    assert list(qa.versions()["version"]) == [1, 2]
    from mlflow.genai.datasets import get_dataset

    stored = get_dataset(dataset_id=second.mlflow_dataset_id)
    assert stored.name == "versions.v2" and len(stored.to_df()) == 2
    assert stored.tags["workbench.digest"] == second.digest
    memory = GoldenDataset.from_dataframe(__import__("pandas").DataFrame({"input": ["x"], "expected": ["y"]}))
    assert not memory.stored
    saved = memory.save("from-frame")
    assert memory.stored and saved.rows == 1 and len(workbench.golden("from-frame")) == 1


_WRITER = textwrap.dedent("""
    import sys
    import workbench
    qa = workbench.golden("shared")
    for i in range(200):
        qa.add(f"{sys.argv[1]} question {i}", f"answer {i}")
""")


def test_two_processes_adding_rows_lose_nothing(workbench_home):
    env = {**__import__("os").environ, "WORKBENCH_HOME": str(workbench_home)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, name], env=env) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    rows = workbench.golden("shared").rows
    assert len(rows) == 400 and len({r.input for r in rows}) == 400


# -- %golden -----------------------------------------------------------------------------------------------------


def _run(ip, source):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = ip.run_cell(source, store_history=True)
    assert result.error_in_exec is None, result.error_in_exec
    captured.value = result.result  # what the cell returned (Out[n])
    return captured


def test_golden_add_from_the_last_llm_call(ip):
    _run(ip, "%%llm -m fake/echo\nWhat is MLflow?")
    out = _run(ip, "%golden add qa")
    assert "added to qa (1 rows)" in out.stdout and "unverified" in out.stdout
    _run(ip, "%%llm -m fake/echo -o answer\nWhat is a span?")
    _run(ip, '%golden add qa --response answer --expected "A timed step of a trace." --verified --tags x,y')
    _run(ip, "%golden add qa --out 1")
    rows = workbench.golden("qa").rows
    assert [r.input for r in rows] == ["What is MLflow?", "What is a span?", "What is MLflow?"]
    assert rows[0].expected == "What is MLflow?" and rows[0].source.startswith("tr-")
    assert rows[1].expected == "A timed step of a trace." and rows[1].verified and rows[1].tags == ["x", "y"]
    shown = _run(ip, "%golden show qa").value
    assert "3 rows" in repr(shown) and "What is a span?" in shown._repr_html_()
    data = _run(ip, "%golden edit qa").value._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and "update(row_id" in data["text/plain"]


def test_golden_add_without_a_call_is_one_red_line(ip):
    out = _run(ip, "%golden add qa")
    assert out.outputs[0].data["text/plain"].startswith("WorkbenchError: no %%llm answer yet")
    out = _run(ip, "%golden frobnicate qa")
    assert "ConfigError: %golden: argument action" in out.outputs[0].data["text/plain"]


# -- QA pass: bad input is one clear line and loses nothing ------------------------------------------------------


@pytest.mark.parametrize("path", [5, None, ""])
def test_a_path_that_is_not_a_path_is_a_config_error(path):
    for read in (GoldenDataset.from_csv, GoldenDataset.from_jsonl, GoldenDataset.from_file):
        with pytest.raises(ConfigError, match="is not a file path"):
            read(path)


def test_a_csv_header_without_an_input_column_fails_at_line_1(tmp_path):
    (tmp_path / "q.csv").write_text("question;answer\n")
    with pytest.raises(WorkbenchError, match=r"q.csv line 1: no 'input' column \(got question;answer\)"):
        GoldenDataset.from_csv(tmp_path / "q.csv")


def test_bad_extend_remove_and_save_arguments_keep_the_rows():
    ds = workbench.golden("qa")
    ds.add("What is 2+2?", "4")
    with pytest.raises(ConfigError, match="item 2 is 'b', not a dict"):
        ds.extend([{"input": "a"}, "b"])
    with pytest.raises(ConfigError, match=r"got the path 'more.csv', not rows.*from_file\('more.csv'\)"):
        ds.extend("more.csv")
    with pytest.raises(ConfigError, match="row_ids=5"):
        ds.remove(5)
    with pytest.raises(ConfigError, match="name 'a b' is not valid"):
        ds.save("a b")
    assert [r.input for r in workbench.golden("qa").rows] == ["What is 2+2?"]


def test_to_jsonl_to_an_unwritable_path_is_one_line(tmp_path):
    ds = workbench.golden("qa")
    ds.add("q", "a")
    (tmp_path / "a-file").write_text("x")
    for target in (tmp_path / "a-file" / "out.jsonl", tmp_path):
        with pytest.raises(WorkbenchError, match="cannot write") as caught:
            ds.to_jsonl(target)
        assert "\n" not in str(caught.value)
    assert not list(tmp_path.glob("*.tmp")) and len(workbench.golden("qa")) == 1


def test_golden_show_of_an_unknown_name_creates_nothing(ip):
    for action in ("show", "edit", "save"):
        out = _run(ip, f"%golden {action} nope")
        assert out.outputs[0].data["text/plain"].startswith("WorkbenchError: no golden dataset 'nope'")
    from workbench.datasets.golden import golden_names

    assert "nope" not in golden_names()
