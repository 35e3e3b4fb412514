"""`FineTuneJob`: one fine-tune in a child process, driven and recorded by the parent.

The child runs in its own session (`start_new_session=True`): the kernel's Ctrl-C reaches only this process, which
then asks the child to stop (SIGTERM to its process group), waits for it to save what it learned, and ends the
MLflow run KILLED. The child reports over a pipe; a reader thread turns lines into events, and the driver (the
caller's thread with `wait=True`, so it may display; a worker thread with `wait=False`, which never displays) logs
them to MLflow and updates the progress view. A crash, an out-of-memory kill or a training error in the child ends the
run FAILED with the tail of the child's log in the raised FineTuneError; the kernel survives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, FineTuneError, WorkbenchError
from workbench.evals.compare import gate
from workbench.evals.progress import Progress
from workbench.evals.runner import evaluate
from workbench.finetune.adapter import Adapter, install_folder
from workbench.finetune.options import TrainData, TrainOptions
from workbench.finetune.progress import UPDATE_S, train_view
from workbench.finetune.record import FineTuneRun
from workbench.tracing import context

__all__ = ["FineTuneJob", "EvalPlan", "CANCEL_GRACE_S"]

CANCEL_GRACE_S = 30.0  # the child saves its adapter before exiting; then it is killed
_POLL_S = 0.1
_FLUSH_S = 1.0


class EvalPlan:
    """Re-evaluation after training: base and adapter on a golden set, then the gate."""

    def __init__(self, data: Any, scorers: Any, metric: str | None, min_delta: float, prompt: Any,
                 params: dict[str, Any] | None = None, *, test: str = "superiority",
                 margin: float | None = None) -> None:
        self.data, self.scorers, self.metric, self.min_delta, self.prompt = data, scorers, metric, min_delta, prompt
        self.test, self.margin = test, margin  # the gate's test (workbench.gate): passed through
        self.params = params if params is not None else {"max_tokens": 64}


class FineTuneJob:
    """A running fine-tune: `.status`, `.wait()`, `.cancel()`, `.result` (the Adapter), `.losses`, `.run_id`."""

    def __init__(self, options: TrainOptions, data: TrainData, *, experiment: str | None = None,
                 evaluation: EvalPlan | None = None, tags: dict[str, str] | None = None) -> None:
        self.options, self.data, self.evaluation = options, data, evaluation
        self.started = time.perf_counter()
        self.status = "starting"  # starting, loading, training, saving, evaluating, done, cancelled, failed
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.step_times: list[float] = []  # wall clock (epoch s) at which each step ended, as the child saw it
        self.total_steps: int | None = None
        self.info: dict[str, Any] = {}  # what the child reported: load time, target modules, peak memory...
        self.first_step_s: float | None = None  # from the call to the first finished step
        self.result: Adapter | None = None
        self.error: BaseException | None = None
        self._events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._cancel_sent: float | None = None
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._tokens_per_s = 0.0
        self._work = Path(tempfile.mkdtemp(prefix=f"wb-finetune-{options.name}-"))
        self.record = FineTuneRun(options, data, experiment)
        self._spawn()
        try:
            self.record.start(self._work / "train.jsonl", {"method_impl": "trl.DPOTrainer" if options.method == "dpo"
                                                           else "peft+torch"}, tags or {})
        except BaseException:
            self._kill()
            self._cleanup()
            raise

    # --- the child -------------------------------------------------------------------------------------------------

    def _spawn(self) -> None:
        self.data.write_jsonl(self._work / "train.jsonl")
        (self._work / "adapter").mkdir()
        spec = {"options": {**vars(self.options), "extra": {}}, "data": str(self._work / "train.jsonl"),
                "out": str(self._work / "adapter")}
        (self._work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        self._log = open(self._work / "child.log", "wb")  # noqa: SIM115 - closed in _cleanup
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "workbench.finetune.child", str(self._work / "spec.json"), str(write_fd)],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                start_new_session=True, env=env, cwd=str(self._work))
        finally:
            os.close(write_fd)  # the child holds its copy: EOF on our side means the child is gone
        reader = threading.Thread(target=self._read, args=(read_fd,), name="workbench-finetune-pipe", daemon=True)
        reader.start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                with contextlib.suppress(ValueError):
                    self._events.put(json.loads(line))
        self._events.put({"event": "eof"})

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def _kill(self) -> None:
        if self._process.poll() is None:
            self._signal(signal.SIGKILL)
            self._process.wait()

    def _log_tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            self._log.flush()
            text = (self._work / "child.log").read_text(encoding="utf-8", errors="replace")
            return "\n".join(text.strip().splitlines()[-lines:])
        return ""

    # --- driving ---------------------------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Ask the child to stop at its next step; what it learned so far is kept in the KILLED run's artifacts."""
        if not self._finished.is_set() and not self._cancel.is_set():
            self._cancel.set()
            self._cancel_sent = time.monotonic()
            self._signal(signal.SIGTERM)

    def _state(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        eta = None
        if self.steps and self.total_steps and self.first_step_s is not None:
            per_step = (elapsed - self.first_step_s) / max(1, len(self.steps) - 1) if len(self.steps) > 1 else 0
            eta = per_step * (self.total_steps - self.steps[-1])
        return {"step": self.steps[-1] if self.steps else 0, "total": self.total_steps,
                "loss": self.losses[-1] if self.losses else None, "tokens_per_s": self._tokens_per_s,
                "eta_s": eta, "elapsed_s": elapsed, "phase": self.status}

    def _handle(self, event: dict[str, Any]) -> bool:
        """Apply one event; True when the child is done reporting."""
        kind = event.get("event")
        if kind == "loaded":
            self.status = "loading" if self.status == "starting" else self.status
            self.info.update(load_s=event.get("load_s"), source=event.get("source"))
        elif kind == "ready":
            self.status = "training"
            self.total_steps = event.get("steps")
            self.info.update({k: v for k, v in event.items() if k != "event"})
            self.record.tags({"workbench.target_modules": ",".join(event.get("target_modules") or []),
                              "workbench.device": str(event.get("device"))})
            for key in ("trainable_params", "total_params", "train_tokens"):
                if event.get(key) is not None:
                    self.record.metric(key, event[key])
        elif kind == "step":
            step, loss = int(event["step"]), float(event["loss"])
            if self.first_step_s is None:
                self.first_step_s = time.perf_counter() - self.started
                self.record.metric("time_to_first_step_s", self.first_step_s)
            self.steps.append(step)
            self.losses.append(loss)
            if event.get("t") is not None:
                self.step_times.append(float(event["t"]))
            self.record.metric("loss", loss, step)
            if event.get("tokens") and event.get("seconds"):
                self._tokens_per_s = event["tokens"] / event["seconds"]
                self.record.metric("tokens_per_s", self._tokens_per_s, step)
            for key, value in (event.get("extra") or {}).items():
                self.record.metric(key.replace("/", "_"), value, step)
        elif kind == "config_error":
            self.error = ConfigError(event["message"])
        elif kind == "error":
            self.error = FineTuneError(f"fine-tune {self.options.name!r} failed: {event['message']}")
        elif kind == "done":
            self.info.update({k: v for k, v in event.items() if k != "event"})
            self.status = "saving"
        return kind == "eof"

    def _pump(self, show: Any) -> None:
        """Consume events until the child has gone; Ctrl-C here cancels the child and goes on draining."""
        last_flush = time.monotonic()
        while True:
            try:
                try:
                    event = self._events.get(timeout=_POLL_S)
                except queue.Empty:
                    event = None
                if event is not None and self._handle(event):
                    break
                if self._cancel_sent is not None and time.monotonic() - self._cancel_sent > CANCEL_GRACE_S:
                    self._kill()  # it did not stop in time; the pipe closes and eof follows
                if time.monotonic() - last_flush > _FLUSH_S:
                    self.record.flush()
                    last_flush = time.monotonic()
                if show is not None:
                    show.update(self._state(), self.steps, self.losses)
            except KeyboardInterrupt:
                if self._cancel.is_set():  # a second Ctrl-C: stop waiting for a graceful exit
                    self._kill()
                self.cancel()
                self.status = "cancelling"
        self._process.wait()
        self.record.flush()

    def _drive(self, progress: bool) -> Adapter | None:
        show = Progress(train_view(f"{self.options.method} {self.options.name}"), progress, update_s=UPDATE_S)
        closed = False
        try:
            self._pump(show)
            adapter = self._conclude()
            self.status = "trained"
            show.close(self._state(), self.steps, self.losses)  # before the evaluations print their own progress
            closed = True
            if adapter is not None and self.evaluation is not None:
                self.status = "evaluating"
                self._evaluate(adapter, progress)
            self.status = "done"
            self.result = adapter
            return adapter
        except BaseException as exc:
            self.status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.error = self.error or exc
            self.record.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            if not closed and self.steps:  # a fine-tune that failed before training shows only its error
                show.close(self._state(), self.steps, self.losses)
            self._cleanup()
            self._finished.set()

    def _conclude(self) -> Adapter | None:
        """After the child exits: the error it reported, or the adapter logged (and registered unless cancelled)."""
        if self.error is not None:
            self.record.tags({"workbench.error": str(self.error)[:1000]})
            self.record.end("FAILED")
            raise self.error
        if "cancelled" not in self.info:  # exited without saying done: a crash or a kill
            code = self._process.returncode
            why = "was cancelled and killed" if self._cancel.is_set() else (
                f"was killed by signal {-code} (out of memory?)" if code is not None and code < 0 else
                f"exited with code {code}")
            tail = self._log_tail()
            self.error = FineTuneError(f"fine-tune {self.options.name!r}: the training process {why}; last lines of "
                                       f"its log: {tail.splitlines()[-1] if tail else '(empty)'}", log=tail)
            self.record.end("KILLED" if self._cancel.is_set() else "FAILED")
            if self._cancel.is_set():
                raise KeyboardInterrupt
            raise self.error
        for key in ("train_s", "peak_rss_mb", "peak_gpu_mb"):
            if self.info.get(key) is not None:
                self.record.metric(key, self.info[key])
        if self.losses:
            self.record.metric("final_loss", self.losses[-1])
        folder = self._work / "adapter"
        source = self.record.log_adapter(folder)
        if self.info.get("cancelled") or self._cancel.is_set():
            self.record.tags({"workbench.cancelled": "true"})
            self.record.end("KILLED")
            raise KeyboardInterrupt
        version = self.record.register(source)
        path = install_folder(folder, self.options.name, version)
        adapter = Adapter(self.options.name, version, f"local/{self.options.base}", self.options.method,
                          self.record.run_id, path, int(self.info.get("steps") or len(self.steps)), list(self.losses),
                          {k: float(v) for k, v in self.info.items()
                           if isinstance(v, int | float) and not isinstance(v, bool)})
        self.record.tags({"workbench.adapter_model": adapter.model, "workbench.adapter_version": version})
        if self.evaluation is None:
            self.record.end("FINISHED")
        return adapter

    def _evaluate(self, adapter: Adapter, progress: bool) -> None:
        plan = self.evaluation
        if plan is None or self.record.run_id is None or self.record.experiment_id is None:
            return  # no eval_data asked for, or no run to nest the evaluations under
        ref = context.RunRef(self.record.run_id, self.record.experiment_id)
        try:
            with context.use_run(ref):  # both evaluation runs nest under the fine-tune's run
                common = {"scorers": plan.scorers, "prompt": plan.prompt, "progress": progress,
                          "experiment": self.record.experiment, "params": plan.params}
                adapter.base_eval = evaluate(plan.data, adapter.base, name=f"{adapter.name}: base", **common)
                adapter.adapter_eval = evaluate(plan.data, adapter.model, name=f"{adapter.name}: adapter", **common)
            scorers = adapter.adapter_eval.scorers
            metric = plan.metric or ("token_f1" if "token_f1" in scorers else scorers[0])
            adapter.gate = gate(adapter.adapter_eval, adapter.base_eval, metric=metric, min_delta=plan.min_delta,
                                test=plan.test, margin=plan.margin)
        except BaseException as exc:
            self.record.tags({"workbench.error": f"re-evaluation: {exc}"[:1000]})
            self.record.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        verdict = adapter.gate
        self.record.tags({"workbench.eval.base_run": str(adapter.base_eval.run_id),
                          "workbench.eval.adapter_run": str(adapter.adapter_eval.run_id),
                          "workbench.golden_digest": adapter.adapter_eval.digest,
                          "workbench.gate": str(verdict),
                          **({"workbench.prompt_name": str(plan.prompt.name), "workbench.prompt_version":
                              str(plan.prompt.version)} if hasattr(plan.prompt, "version") else {})})
        for key, value in {"gate_passed": float(verdict.passed), "gate_delta": verdict.delta,
                           "gate_ci_low": verdict.ci_low, "gate_ci_high": verdict.ci_high,
                           "gate_p": verdict.p_adjusted, "gate_mde": verdict.mde,
                           f"eval_base_{verdict.metric}": verdict.mean_baseline,
                           f"eval_adapter_{verdict.metric}": verdict.mean_candidate}.items():
            if value == value:  # NaN when nothing was scored
                self.record.metric(key, value)
        self.record.end("FINISHED")

    def _cleanup(self) -> None:
        self._kill()
        with contextlib.suppress(OSError):
            self._log.close()
        shutil.rmtree(self._work, ignore_errors=True)

    # --- the public handle -----------------------------------------------------------------------------------------

    def run_foreground(self, progress: bool = True) -> Adapter | None:
        return self._drive(progress)

    def run_background(self) -> FineTuneJob:
        def main() -> None:
            with contextlib.suppress(BaseException):  # kept in .error; raised by wait()
                self._drive(False)

        self._thread = threading.Thread(target=main, name="workbench-finetune", daemon=True)
        self._thread.start()
        return self

    @property
    def run_id(self) -> str | None:
        return self.record.run_id

    def wait(self, timeout: float | None = None) -> Adapter | None:
        """Block until the fine-tune ends (Ctrl-C cancels it); the Adapter, or the error it failed with."""
        if self._thread is None:
            raise WorkbenchError("this job runs in the foreground already; it returns when it ends")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._finished.wait(_POLL_S):
                if deadline is not None and time.monotonic() > deadline:
                    return None
        except KeyboardInterrupt:
            self.cancel()
            self._finished.wait(CANCEL_GRACE_S + 5)
            raise
        if self.error is not None and not isinstance(self.error, KeyboardInterrupt):
            raise self.error
        return self.result

    def __repr__(self) -> str:
        state = self._state()
        loss = f", loss {state['loss']:.3f}" if state["loss"] is not None else ""
        return (f"<FineTuneJob {self.options.method} {self.options.name!r} {self.status}: step {state['step']}/"
                f"{state['total'] or '?'}{loss}>")
