"""The `%%llm` cell magic and the `%llm ...` line forms.

Everything a cell does is one call of the Python API (workbench.complete / workbench.stream); this module
only parses, interpolates, displays and remembers. A WorkbenchError becomes one red line in the cell
(WORKBENCH_DEBUG=1 lets it raise with its traceback); any other exception raises as usual.

The floors below (gateway, tracing, tracking) are imported when a cell runs, not here: `%load_ext workbench`
imports the notebook floor alone, which keeps it within its 0.15 s budget (bench/bench_load_ext.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from IPython import display as ipython_display
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from workbench.errors import ConfigError, WorkbenchError
from workbench.notebook import display as show
from workbench.notebook.formats import extract_json, strip_fence
from workbench.notebook.guard import debug_enabled, one_line_errors, quiet_warnings
from workbench.notebook.history import HistoryEntry, Session
from workbench.notebook.interpolation import interpolate
from workbench.notebook.line_commands import commands_help, llm_line
from workbench.notebook.options import CellOptions, flags_help, parse_cell_line
from workbench.notebook.stopped import Stopped

if TYPE_CHECKING:
    from workbench.notebook.lineage import CellContext

__all__ = ["LLMMagics"]

_DOC = """Ask a model from a notebook cell, through the Workbench gateway.

    %%llm [flags]
    Prompt text; {name}, {name.attr}, {name[key]}, {x:.2f}, {In[3]} and {Out[3]} are filled in
    from the notebook once; write {{ and }} for literal braces (JSON examples survive).

The answer is displayed with a footer (model, tokens, cost, latency, cache hit, fallback); the
Response is kept in `_llm` (a dict of model -> Response when several -m are given) and in the
history. The magic returns nothing, so the answer is never shown twice.

Flags:

""" + flags_help() + """
Line forms:

""" + commands_help() + """
Errors (an unknown flag, a missing variable, a provider down, a budget refusal) show as one red
line that says how to fix it; set WORKBENCH_DEBUG=1 for the full traceback.
"""


_libraries_quiet = False


def _quiet_libraries() -> None:
    """litellm prints banners ("Provider List: ...") unless told not to; the first model-name check of a
    session can run before the gateway's own setup does, so say it here too, once."""
    global _libraries_quiet
    if not _libraries_quiet:
        import litellm

        litellm.suppress_debug_info = True
        _libraries_quiet = True


@magics_class
class LLMMagics(Magics):
    def __init__(self, shell: Any, session: Session | None = None) -> None:
        super().__init__(shell)
        self.session = session if session is not None else Session()

    @line_cell_magic
    @no_var_expand  # IPython would otherwise expand {x} and $x in the flags line
    @one_line_errors
    def llm(self, line: str, cell: str | None = None) -> Any:
        if cell is None:
            return llm_line(line, self.session)
        self._run_cell(line, cell)
        return None

    llm.__doc__ = _DOC

    # -- the cell form -------------------------------------------------------------------------------

    def _run_cell(self, line: str, cell: str) -> None:
        from workbench import config
        from workbench.gateway.models import validate_model
        from workbench.notebook.lineage import CellContext, in_cell

        options = parse_cell_line(line)
        if not cell.strip():
            raise ConfigError("the %%llm cell is empty: write the prompt on the lines below %%llm, e.g. 'Say hello'")
        cell = cell.lstrip("\n").rstrip()  # IPython adds a newline; stray blank lines would split the cache
        rendered = interpolate(cell, self.shell.user_ns)
        names = options.models or [config.settings().default_model]
        if options.chat and len(names) > 1:
            raise ConfigError(f"--chat {options.chat} follows one model at a time: pass a single -m (got {len(names)})")
        _quiet_libraries()
        for name in [*names, *options.fallbacks]:  # every name checked before any model is paid for
            validate_model(name)
        prompt_name, prompt_version = self._register_prompt(options.prompt, cell)
        context = CellContext(
            execution_count=self._execution_count(),
            cell_id=self.session.cell_id,
            template=cell,
            variables=rendered.names,
            line=line,
            chat=options.chat,
            notebook=self._notebook_path(),
            prompt_name=prompt_name,
            prompt_version=prompt_version,
        )
        prompt, system, chat_after = self._conversation(options, rendered.text)
        columns = [show.Column(name) for name in names]
        live = show.LiveDisplay()
        if len(columns) > 1:
            live.show(*show.render(columns, options.format))
        with quiet_warnings(), in_cell(context):
            for column in columns:
                self._ask(column, columns, live, options, prompt, system)
        self._remember(columns, options, context, rendered.text, chat_after)

    @staticmethod
    def _register_prompt(name: str | None, template: str) -> tuple[str | None, int | None]:
        if name is None:
            return None, None
        from workbench.tracking.prompts import register_prompt

        saved = register_prompt(name, template)
        return saved.name, int(saved.version)

    def _notebook_path(self) -> str | None:
        """ipykernel names the notebook in `__session__` (JupyterLab, VS Code); nbclient and IPython do not."""
        found = self.shell.user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
        return str(found) if found else None

    def _execution_count(self) -> int | None:
        """This cell's [n]. IPython 9 bumps execution_count before running a cell and 8 after it, but the
        cell's input is already in history under its own number in both."""
        if not self.session.store_history:
            return None
        history = getattr(self.shell, "history_manager", None)
        if history is not None and history.input_hist_parsed:
            return len(history.input_hist_parsed) - 1
        return self.shell.execution_count

    def _conversation(self, options: CellOptions, text: str) -> tuple[Any, str | None, list[dict[str, Any]] | None]:
        """(prompt or messages, system, the chat's turns after a successful answer minus that answer)."""
        if options.chat is None:
            return text, options.system, None
        turns = list(self.session.chats.get(options.chat, []))
        if options.system is not None:  # a new system prompt replaces the conversation's
            turns = [{"role": "system", "content": options.system}] + [t for t in turns if t["role"] != "system"]
        turns.append({"role": "user", "content": text})
        return turns, None, turns

    def _ask(self, column: show.Column, columns: list[show.Column], live: show.LiveDisplay, options: CellOptions,
             prompt: Any, system: str | None) -> None:
        """One model's call into its column. WorkbenchErrors stay in the column; Ctrl-C stops the cell."""
        from workbench.gateway import client  # through the module: tests spy on client.complete
        from workbench.gateway.hints import cell_syntax

        kwargs = dict(system=system, fallbacks=options.fallbacks, tags=options.tags, cache=options.cache,
                      **options.params())
        chunks: Any = None
        with cell_syntax():  # hints in the cell's own flags: --fallback, not fallbacks=[...]
            try:
                if options.stream:
                    column.state = "streaming"
                    live.show(*show.render(columns, options.format))
                    stream = client.stream(prompt, column.model, **kwargs)
                    chunks = iter(stream)
                    for _ in chunks:
                        column.text = stream.text
                        live.show(*show.render(columns, options.format), force=False)
                    response = stream.response
                    if response is None:  # a finished stream always has one; say so rather than fail on None
                        raise WorkbenchError(f"{column.model} ended its stream without an answer: ask again")
                else:
                    if live.shown:  # several columns: say which model is being asked now
                        column.state = "asking"
                        live.show(*show.render(columns, options.format))
                    response = client.complete(prompt, column.model, **kwargs)
                column.response, column.text = response, response.text
                self._shape(column, options.format)
            except KeyboardInterrupt as exc:
                if chunks is not None and hasattr(chunks, "close"):
                    chunks.close()  # lets the stream release its provider connection or generation thread
                column.state = "stopped"
                live.show(*show.render(columns, options.format))  # the cell says so, streaming or not
                if debug_enabled() or isinstance(exc, Stopped):
                    raise
                # one line instead of the frames (a local model's were 250 lines of transformers and torch)
                raise Stopped(f"{column.model} stopped (Ctrl-C); nothing was kept") from None
            except WorkbenchError as exc:
                if debug_enabled():
                    raise
                column.state, column.error = "error", exc
        live.show(*show.render(columns, options.format))

    @staticmethod
    def _shape(column: show.Column, fmt: str) -> None:
        """Turn the answer into what -f asks for; a json answer without JSON is an error in the column."""
        column.state = "done"
        if fmt == "json":
            try:
                model = column.response.model_used if column.response else column.model
                column.value = extract_json(column.text, model)
            except WorkbenchError as exc:
                column.state, column.error = "error", exc
        elif fmt == "code":
            column.value, column.language = strip_fence(column.text)

    def _remember(self, columns: list[show.Column], options: CellOptions, context: CellContext, prompt: str,
                  chat_after: list[dict[str, Any]] | None) -> None:
        """History, `_llm`, `-o NAME`, the chat's turns and the code cell: only after the whole cell ran."""
        for column in columns:
            error = None if column.error is None else f"{type(column.error).__name__}: {column.error}"
            self.session.add(HistoryEntry(context, column.model, prompt, options.format, column.response, error))
        answered = {c.model: c.response for c in columns if c.response is not None}
        if not answered:
            return
        value: Any = next(iter(answered.values())) if len(columns) == 1 else answered
        namespace = self.shell.user_ns
        namespace["_llm"] = value
        if options.out:
            namespace[options.out] = value
        if options.format == "json":
            parsed = [c.value for c in columns if c.state == "done"]
            if parsed:
                namespace["_llm_json"] = parsed[0] if len(columns) == 1 else {
                    c.model: c.value for c in columns if c.state == "done"}
        first = columns[0]
        if chat_after is not None and options.chat is not None and first.response is not None:
            self.session.chats[options.chat] = chat_after + [{"role": "assistant", "content": first.response.text}]
        if options.format == "code":
            code = next((c.value for c in columns if c.state == "done" and c.value), None)
            if code:
                self.shell.set_next_input(code)
        if options.trace:
            self._show_traces([c.response for c in columns if c.response is not None])
        if options.signals and any(getattr(r, "trace_id", None) for r in answered.values()):
            from workbench.notebook.signals_bar import signals_bar

            # Under the answer, from the main thread: each click becomes one workbench.feedback(...) call.
            ipython_display.display(signals_bar(answered if len(columns) > 1 else value))

    @staticmethod
    def _show_traces(responses: list[Any]) -> None:
        from workbench.tracing.view import show_trace

        for response in responses:
            ipython_display.display(show_trace(response))  # a TraceView: the tree bundle with its HTML fallback
