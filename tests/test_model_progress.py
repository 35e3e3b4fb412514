"""The first answer of a new user: converting the bundled model shows a progress line in the cell, not a silent [*].

providers/local/progress.py is the registry at the provider floor; notebook/model_progress subscribes on %load_ext.
"""

from __future__ import annotations

import pytest
from IPython.utils.capture import capture_output

from workbench.providers.local import progress as local_progress
from workbench.providers.local import weights as local_model
from workbench.providers.local.progress import ModelProgress


def _texts(captured) -> list[str]:
    return [output.data.get("text/plain", "") for output in captured.outputs]


def test_a_listener_that_fails_does_not_stop_the_work():
    seen: list[ModelProgress] = []

    def broken(progress: ModelProgress) -> None:
        raise RuntimeError("display is gone")

    remove_broken = local_progress.add_listener(broken)
    remove = local_progress.add_listener(seen.append)
    try:
        with local_progress.stage("m") as step:
            step(0.5, "halfway")
    finally:
        remove_broken()
        remove()
    assert [(p.fraction, p.done) for p in seen] == [(0.0, False), (0.5, False), (1.0, True)]
    local_progress.report(ModelProgress("m", 0.1, "after removal", 0.0))
    assert len(seen) == 3


def test_the_notebook_shows_one_updating_line(ip):
    with capture_output() as captured, local_progress.stage("smollm2") as step:
        step(0.4, "converting the weights")
    texts = _texts(captured)
    assert texts[0].startswith("Preparing local/smollm2 once (first use, about 20-25 s): starting... 0%"), texts
    assert texts[-1].startswith("local/smollm2 is ready: prepared once in"), texts


@pytest.mark.slow
def test_a_new_user_sees_the_conversion_progress_in_the_cell(ip, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL_CACHE", str(tmp_path / "models"))
    seen: list[ModelProgress] = []
    remove = local_progress.add_listener(seen.append)
    local_model.unload_models()
    try:
        with capture_output() as captured:
            result = ip.run_cell('import workbench as wb\nwb.complete("Say hi.", "local/smollm2", max_tokens=2)')
        assert result.error_in_exec is None, result.error_in_exec
    finally:
        remove()
        local_model.unload_models()  # later tests load from the real cache again
    # two preparations, each reported from 0 to done: the GGUF conversion, then the CTranslate2 engine
    conversion = [p for p in seen if p.about == "about 20-25 s"]
    engine = [p for p in seen if p.about == "a few seconds"]
    assert len(conversion) + len(engine) == len(seen) and engine and seen.index(engine[0]) > seen.index(conversion[-1])
    for reports in (conversion, engine):
        fractions = [p.fraction for p in reports]
        assert fractions == sorted(fractions) and reports[-1].done and fractions[-1] == 1.0
    assert any(0.3 < p.fraction < 0.9 for p in conversion)  # the tensor loop reports as it goes
    assert any("fast engine" in p.message for p in engine)
    texts = _texts(captured)
    assert texts[0].startswith("Preparing local/smollm2 once (first use, about 20-25 s)")
    assert any(text.startswith("Preparing local/smollm2 once (first use, a few seconds)") for text in texts), texts
    assert texts[-1].startswith("local/smollm2 is ready: prepared once in"), texts
