"""`workbench.evaluate(...)`: run model(s) on every row of a dataset through the gateway, then score.

Rows run on worker threads (`concurrency` of them), never on an event loop of ours, so a notebook cell
(where Jupyter's loop is already running) and a script behave the same. The caller's thread only waits
and updates the progress display. Ctrl-C stops handing out rows, keeps every row already scored, returns
them, and marks the MLflow run KILLED. Each worker runs in a copy of the caller's context, so every call's
trace carries the evaluation's run id.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import string
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from workbench import config
from workbench.datasets.golden import GoldenDataset, resolve_data
from workbench.datasets.rows import GoldenRow, input_text, row_key
from workbench.errors import ConfigError, WorkbenchError
from workbench.evals.concurrency import AdaptiveLimit, Stopped, limited, use_limit
from workbench.evals.progress import Progress, rows_view
from workbench.evals.record import EvalRun
from workbench.evals.repeats import check_repeats, score_repeated
from workbench.evals.result import EvalResult
from workbench.evals.scoring import Score, ScoreInput, Scorer, ScorerSpec, as_scorer
from workbench.gateway import client
from workbench.gateway.calls import check_params
from workbench.gateway.models import validate_model
from workbench.tracing import context as tracing_context

if TYPE_CHECKING:
    from workbench.datasets.golden import DataLike
    from workbench.tracking.prompts import Prompt

__all__ = ["evaluate", "EvalHandle", "DEFAULT_SCORERS", "check_scorers"]

DEFAULT_SCORERS = ("exact_match", "token_f1")
NAN = float("nan")
_WAIT_S = 0.1


@dataclass
class _Plan:
    dataset: GoldenDataset
    rows: list[GoldenRow]
    keys: list[str]
    models: list[str]
    scorers: list[Scorer]
    template: Any  # None, a str template with {input}, or a registered Prompt
    judge: str | None
    cache: bool
    params: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    judge_repeats: int = 1
    judge_mode: str = "parse"


def _models(model: str | None, models: Any) -> list[str]:
    if model is not None and models is not None:
        raise ConfigError("pass model='...' or models=[...], not both")
    if models is not None and not isinstance(models, str | list | tuple):
        raise ConfigError(f"models={models!r:.80} must be a list of models, e.g. models=['fake/echo', 'local/smollm2']")
    chosen = [model] if model is not None else list(models) if models is not None else [config.settings().default_model]
    if isinstance(models, str):
        chosen = [models]
    if not chosen:
        raise ConfigError("models=[] is empty: pass at least one model, e.g. models=['fake/echo']")
    for name in chosen:  # every name checked before any model is paid for
        validate_model(name)
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"models={chosen!r} names a model twice")
    return chosen


def check_scorers(specs: Any, judge: str | None) -> list[Scorer]:
    if specs is None:
        specs = [*DEFAULT_SCORERS, "similarity"] if judge else list(DEFAULT_SCORERS)
    if isinstance(specs, str | Scorer) or callable(specs):
        specs = [specs]
    resolved: list[Scorer] = []
    seen: dict[str, int] = {}
    for spec in specs:
        scorer = as_scorer(spec)
        count = seen.get(scorer.name, 0)
        seen[scorer.name] = count + 1
        if count:  # two lambdas, or two regexes: keep both, under distinct names
            scorer = Scorer(f"{scorer.name}_{count + 1}", scorer.fn, scorer.kind, scorer.low, scorer.high)
        resolved.append(scorer)
    if not resolved:
        raise ConfigError("scorers=[] is empty: pass e.g. scorers=['exact_match', 'token_f1']")
    return resolved


def _check_template(template: Any) -> Any:
    if template is None:
        return None
    if hasattr(template, "format") and hasattr(template, "template") and hasattr(template, "version"):
        variables = tuple(getattr(template, "variables", ()) or ())
        if variables and set(variables) != {"input"}:
            raise ConfigError(f"prompt {template.name!r} v{template.version} uses {', '.join(variables)}: an "
                              "evaluation fills only {input}, the row's input")
        return template
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"prompt={template!r:.60} is not a template: pass e.g. prompt='Answer briefly: {{input}}'")
    if "{input}" not in template.replace("{{", "").replace("}}", ""):
        # without {input} the template goes before the input as it is: a {name} in it would be sent verbatim
        try:
            fields = sorted({f for _, f, _, _ in string.Formatter().parse(template) if f})
        except ValueError:
            fields = []
        if fields:
            raise ConfigError(f"prompt={template!r:.60} uses {{{fields[0]}}}: an evaluation fills only {{input}}, the "
                              "row's input; write {input} instead (or {{ and }} for literal braces)")
    _render(template, "x")
    return template


def _render(template: Any, text: str) -> str:
    if hasattr(template, "template") and hasattr(template, "version"):
        return template.format(input=text)
    if "{input}" not in template.replace("{{", "").replace("}}", ""):
        return f"{template}\n\n{text}"  # no placeholder: the template is an instruction put before the input
    try:
        return template.format(input=text)
    except (KeyError, IndexError) as exc:
        raise ConfigError(f"prompt template uses {{{exc.args[0]}}}: only {{input}} is filled; write {{{{ and }}}} "
                          "for literal braces") from None
    except ValueError as exc:
        raise ConfigError(f"prompt template cannot be formatted ({exc}); write {{{{ and }}}} for literal "
                          "braces") from None


def _payload(plan: _Plan, row: GoldenRow) -> Any:
    if plan.template is None:
        return row.input
    if isinstance(row.input, str):
        return _render(plan.template, row.input)
    messages = [dict(m) for m in row.input]  # a chat row: the template wraps its last user turn
    for message in reversed(messages):
        if message.get("role") == "user":
            message["content"] = _render(plan.template, str(message.get("content") or ""))
            break
    return messages


def _row_task(plan: _Plan, index: int, stop: threading.Event) -> list[dict[str, Any]] | None:
    """Call every model on one row, then score; None when stopped before finishing (the row is dropped)."""
    row, key = plan.rows[index], plan.keys[index]
    text = input_text(row.input)
    payload = _payload(plan, row)
    records: list[dict[str, Any]] = []
    for model in plan.models:
        if stop.is_set():
            return None
        record: dict[str, Any] = {"row": index, "row_key": key, "row_id": row.row_id, "input": text,
                                  "expected": row.expected, "model": model}
        try:
            response = limited(functools.partial(client.complete, payload, model, cache=plan.cache, tags=plan.tags,
                                                 **plan.params))
            record.update(output=response.text, error=None, latency_ms=response.latency_ms,
                          cost_usd=response.cost_usd or 0.0, cache_hit=response.cache_hit, trace_id=response.trace_id)
        except Stopped:  # stopped while waiting on a rate limit: the row is dropped
            return None
        except WorkbenchError as exc:  # a failed row is recorded, never stops the run
            record.update(output=None, error=f"{type(exc).__name__}: {exc}"[:1000], latency_ms=NAN, cost_usd=0.0,
                          cache_hit=False, trace_id=None)
        records.append(record)
    for scorer in plan.scorers:
        if stop.is_set():
            return None
        _score_all(plan, scorer, records, text, row, key)
    for record in records:
        record["judge_cost_usd"] = sum(record.pop(f"_{s.name}_cost", 0.0) for s in plan.scorers)
    return None if stop.is_set() else records  # a judge may have been cut short by the stop


def _put(record: dict[str, Any], scorer: Scorer, score: Score, extras: dict[str, Any] | None = None) -> None:
    record.update(extras or {})
    record[scorer.name] = score.value
    record[f"{scorer.name}_rationale"] = score.rationale
    record[f"{scorer.name}_failed"] = score.failed
    record[f"_{scorer.name}_cost"] = score.cost_usd
    if scorer.kind != "deterministic":
        record[f"{scorer.name}_raw"] = score.raw
        record[f"{scorer.name}_trace_id"] = score.trace_id


def _score_all(plan: _Plan, scorer: Scorer, records: list[dict[str, Any]], text: str, row: GoldenRow,
               key: str) -> None:
    def item(record: dict[str, Any], other: str | None = None, label: str = "expected answer") -> ScoreInput:
        return ScoreInput(text, record["output"], row.expected, plan.judge, key, other, label, mode=plan.judge_mode)

    def judged(one: ScoreInput) -> tuple[Score, dict[str, Any]]:
        return score_repeated(scorer, one, plan.judge_repeats)

    missing = Score(NAN, rationale="no output: the call failed")
    if scorer.kind != "pairwise":
        for record in records:
            _put(record, scorer, *((missing, {}) if record["output"] is None else judged(item(record))))
        return
    if len(records) == 1:  # one model: compared with the expected answer
        record = records[0]
        _put(record, scorer, *((missing, {}) if record["output"] is None else judged(item(record, row.expected))))
        return
    first, others = records[0], records[1:]
    complements = []
    for record in others:  # each model against the first one
        if record["output"] is None or first["output"] is None:
            _put(record, scorer, missing)
            continue
        score, extras = judged(item(record, first["output"], f"answer of {first['model']}"))
        _put(record, scorer, score, extras)
        if not math.isnan(score.value):
            complements.append(1.0 - score.value)
    value = sum(complements) / len(complements) if complements else NAN
    _put(first, scorer, Score(value, rationale="1 minus the other models' pairwise scores against this one"))


class _Execution:
    """The worker pool for one evaluation; the caller's thread collects rows and shows progress."""

    def __init__(self, plan: _Plan, concurrency: int, progress: bool, cancel: threading.Event | None) -> None:
        self.plan, self.concurrency = plan, concurrency
        self.stop = threading.Event()
        self.cancel = cancel
        self.done: dict[int, list[dict[str, Any]]] = {}
        self.show = progress
        self.interrupted = False
        self.limit = AdaptiveLimit(concurrency)  # AIMD on 429s: the workers share it

    def _collect(self, future: Future) -> None:
        records = future.result()
        if records is not None:
            self.done[records[0]["row"]] = records

    def failed(self) -> int:
        return sum(1 for recs in self.done.values() for r in recs if r["output"] is None)

    def run(self) -> list[dict[str, Any]]:
        progress = Progress(rows_view(len(self.plan.rows), f"evaluating {self.plan.dataset.name}"), self.show)
        progress.update(0, force=True)
        executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="workbench-eval")
        pending: set[Future] = set()
        token = use_limit(self.limit, self.stop)  # each worker's copied context carries it
        try:
            for index in range(len(self.plan.rows)):  # a context copy each: a Context runs in one thread at a time
                pending.add(executor.submit(contextvars.copy_context().run, _row_task, self.plan, index, self.stop))
            while pending:
                finished, pending = wait(pending, timeout=_WAIT_S, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._collect(future)
                progress.update(len(self.done), self.failed(), state=self.limit.describe())
                if self.cancel is not None and self.cancel.is_set():
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop.set()  # rows in flight finish their current call and are dropped
            for future in pending:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._collect(future)
                future.cancel()
        finally:
            token.var.reset(token)
            executor.shutdown(wait=not self.interrupted, cancel_futures=True)
        state = " · interrupted: rows scored so far kept" if self.interrupted else " · done"
        if self.limit.refusals:
            state += (f" · concurrency {self.limit.maximum} -> {self.limit.lowest} at the lowest, "
                      f"{self.limit.refusals} calls rate-limited and made again")
        progress.close(len(self.done), self.failed(), state)
        return [record for index in sorted(self.done) for record in self.done[index]]


def _table(plan: _Plan, records: list[dict[str, Any]]) -> Any:
    import pandas as pd

    columns = ["row", "row_key", "row_id", "input", "expected", "model", "output", "error", "latency_ms", "cost_usd",
               "cache_hit", "trace_id"]
    for scorer in plan.scorers:
        columns += [scorer.name, f"{scorer.name}_rationale", f"{scorer.name}_failed"]
        if scorer.kind != "deterministic":
            columns += [f"{scorer.name}_raw", f"{scorer.name}_trace_id"]
            if plan.judge_repeats > 1:
                columns += [f"{scorer.name}_repeats", f"{scorer.name}_sd", f"{scorer.name}_k"]
    columns.append("judge_cost_usd")
    frame = pd.DataFrame(records, columns=columns)
    for scorer in plan.scorers:
        frame[scorer.name] = pd.to_numeric(frame[scorer.name], errors="coerce")
        frame[f"{scorer.name}_failed"] = frame[f"{scorer.name}_failed"].fillna(False).astype(bool)
    return frame


def _plan(data: Any, model: str | None, models: Any, prompt: Any, scorers: Any, judge: str | None, cache: bool,
          params: dict[str, Any] | None, name: str) -> _Plan:
    dataset = resolve_data(data)
    rows = dataset.rows
    if not rows:
        raise WorkbenchError(f"golden dataset {dataset.name!r} has no rows: add some first, e.g. %golden add "
                             f"{dataset.name} after a %%llm cell, or .add(input, expected)")
    seen: dict[str, int] = {}
    keys = []
    for row in rows:  # stable keys pair the same rows across evaluations (duplicates numbered)
        base = row_key(row.input)
        keys.append(row_key(row.input, seen.get(base, 0)))
        seen[base] = seen.get(base, 0) + 1
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"params={params!r:.80} must be a dict of model settings, e.g. params={{'max_tokens': 64}}")
    check_params(params or {})  # a bad setting fails here, not once per row
    if judge is not None:
        validate_model(judge)
    return _Plan(dataset, rows, keys, _models(model, models), check_scorers(scorers, judge), _check_template(prompt),
                 judge, bool(cache), dict(params or {}), {"workbench.eval": name[:200]})


@overload
def evaluate(data: DataLike, model: str | None = None, *, models: str | Sequence[str] | None = None,
             prompt: str | Prompt | None = None, scorers: ScorerSpec | Sequence[ScorerSpec] | None = None,
             judge: str | None = None, concurrency: int = 8, name: str | None = None, experiment: str | None = None,
             cache: bool = True, params: dict[str, object] | None = None, progress: bool = True,
             wait: Literal[True] = True, judge_repeats: int = 1, judge_mode: str = "parse",
             _cancel: threading.Event | None = None) -> EvalResult: ...


@overload
def evaluate(data: DataLike, model: str | None = None, *, models: str | Sequence[str] | None = None,
             prompt: str | Prompt | None = None, scorers: ScorerSpec | Sequence[ScorerSpec] | None = None,
             judge: str | None = None, concurrency: int = 8, name: str | None = None, experiment: str | None = None,
             cache: bool = True, params: dict[str, object] | None = None, progress: bool = True,
             wait: Literal[False], judge_repeats: int = 1, judge_mode: str = "parse",
             _cancel: threading.Event | None = None) -> EvalHandle: ...


def evaluate(data: DataLike, model: str | None = None, *, models: str | Sequence[str] | None = None,
             prompt: str | Prompt | None = None, scorers: ScorerSpec | Sequence[ScorerSpec] | None = None,
             judge: str | None = None, concurrency: int = 8, name: str | None = None, experiment: str | None = None,
             cache: bool = True, params: dict[str, object] | None = None, progress: bool = True,
             wait: bool = True, judge_repeats: int = 1, judge_mode: str = "parse",
             _cancel: threading.Event | None = None) -> EvalResult | EvalHandle:
    """Run `model` (or each of `models`) on every row of `data`, score the answers, record an MLflow run.

    data: a GoldenDataset, a golden dataset's name, a DataFrame with `input`/`expected`, or a CSV/JSONL path.
    prompt: a template with `{input}` (or a registered Prompt); None sends each row's input as it is.
    scorers: names (exact_match, contains, json_valid, token_f1, similarity), workbench.scorers.regex/rubric/
    pairwise(...), or functions (input, output, expected) -> score; default exact_match and token_f1 (plus
    similarity when a judge is given). judge: the judge model (default: configure(judge_model=...)).
    params: model parameters (temperature, max_tokens...). wait=False returns an EvalHandle at once.
    judge_repeats: judge each judged row k times (sampled, seeds 0..k-1, each cached) and score the mean; the
    summary's `judge_noise` shows the judge's self-agreement. judge_mode: "parse" the judge's answer, or
    "logprobs": the probability-weighted mean of the score tokens (providers that return logprobs).
    Returns an EvalResult; after Ctrl-C, the rows scored so far (`.interrupted` is True).
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 256:
        raise ConfigError(f"concurrency={concurrency!r} must be a whole number from 1 to 256")
    check_repeats(judge_repeats, judge_mode)
    for label, value in (("name", name), ("experiment", experiment)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{label}={value!r:.60} must be a non-empty string (or None), e.g. {label}='baseline'")
    plan_name = name
    if not wait:
        return EvalHandle(lambda cancel: evaluate(data, model, models=models, prompt=prompt, scorers=scorers,
                                                  judge=judge, concurrency=concurrency, name=name,
                                                  experiment=experiment,
                                                  cache=cache, params=params, progress=False,
                                                  judge_repeats=judge_repeats, judge_mode=judge_mode,
                                                  _cancel=cancel))
    dataset_name = getattr(data, "name", None) or (data if isinstance(data, str) else "dataset")
    plan = _plan(data, model, models, prompt, scorers, judge, cache, params,
                 plan_name or f"{dataset_name}")
    plan.judge_repeats, plan.judge_mode = judge_repeats, judge_mode
    return _run(plan, concurrency, name, experiment, progress, _cancel)


def _run(plan: _Plan, concurrency: int, name: str | None, experiment: str | None, progress: bool,
         cancel: threading.Event | None) -> EvalResult:
    dataset = plan.dataset
    version = dataset.save() if dataset.stored else None  # the run points at exactly the rows it used
    digest = version.digest if version else dataset.digest
    uses_judge = any(s.kind != "deterministic" for s in plan.scorers)
    judge = (plan.judge or config.settings().effective_judge_model) if uses_judge else None
    template = getattr(plan.template, "template", plan.template)
    run_name = name or f"{dataset.name} · {', '.join(plan.models)}"
    run = EvalRun(experiment, run_name, {
        "model": ", ".join(plan.models), "dataset": dataset.name, "dataset_digest": digest,
        "dataset_version": version.version if version else None, "rows": len(plan.rows), "prompt": template,
        "prompt_name": getattr(plan.template, "name", None), "prompt_version": getattr(plan.template, "version", None),
        "judge": judge, "scorers": ", ".join(s.name for s in plan.scorers), "concurrency": concurrency,
        "cache": plan.cache, **{f"param.{k}": v for k, v in plan.params.items()},
        **({"judge_repeats": plan.judge_repeats, "judge_mode": plan.judge_mode} if uses_judge else {}),
    })
    ref = run.start()
    started = time.perf_counter()
    lineage: Any = contextlib.nullcontext()
    if getattr(plan.template, "name", None):
        lineage = tracing_context.lineage(prompt_name=plan.template.name, prompt_version=plan.template.version)
    try:
        with (tracing_context.use_run(ref) if ref else contextlib.nullcontext()), lineage:
            execution = _Execution(plan, concurrency, progress, cancel)
            records = execution.run()
    except BaseException:
        run.fail()
        raise
    result = EvalResult(_table(plan, records), list(plan.models), [s.name for s in plan.scorers], dataset.name, digest,
                        run_id=ref.run_id if ref else None, interrupted=execution.interrupted,
                        elapsed_s=time.perf_counter() - started, judge=judge, prompt=template,
                        dataset_version=version.version if version else None,
                        scales={s.name: (s.low, s.high) for s in plan.scorers},
                        judge_repeats=plan.judge_repeats if uses_judge else 1,
                        judge_mode=plan.judge_mode if uses_judge else "parse")
    run.finish(result, dataset, plan.rows, version.mlflow_dataset_id if version else None,
               "KILLED" if execution.interrupted else "FINISHED")
    return result


class EvalHandle:
    """An evaluation running in the background (`evaluate(..., wait=False)`): `.status`, `.wait()`, `.cancel()`,
    `.result`. No progress display: a background thread must never display."""

    def __init__(self, target: Any) -> None:
        self._cancel = threading.Event()
        self._result: EvalResult | None = None
        self._error: BaseException | None = None
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._main, target), name="workbench-eval-handle",
                                        daemon=True)
        self._thread.start()

    def _main(self, target: Any) -> None:
        try:
            self._result = target(self._cancel)
        except BaseException as exc:  # handed to the caller by wait()
            self._error = exc

    @property
    def status(self) -> str:
        if self._thread.is_alive():
            return "cancelling" if self._cancel.is_set() else "running"
        if self._error is not None:
            return "failed"
        return "cancelled" if self._result is not None and self._result.interrupted else "done"

    def wait(self, timeout: float | None = None) -> EvalResult | None:
        self._thread.join(timeout)
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        """Stop handing out rows; the rows already scored are kept in `.result`."""
        self._cancel.set()

    @property
    def result(self) -> EvalResult | None:
        return self._result

    def __repr__(self) -> str:
        return f"<EvalHandle {self.status}>"
