"""The cache answers only the question asked (issue 11, items 11-13): the resolved adapter version, canonical keys
(pydantic schemas, headers, nothing unkeyable), and no empty or tool-calling answer cached."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

import workbench as wb
from workbench.gateway.accounting import cache_size
from workbench.gateway.calls import prepare
from workbench.providers import fake
from workbench.providers.local import resolvers


def _key(prompt: str = "hi", model: str = "fake/echo", **params: object) -> str:
    return prepare(prompt, model, system=None, fallbacks=(), tags=None, cache=True, timeout=None, params=params).key


@pytest.fixture
def adapters(tmp_path):
    """A resolver of our own whose 'latest' version we move, as a new fine-tune would."""
    saved = dict(resolvers.ADAPTER_RESOLVERS)
    resolvers.ADAPTER_RESOLVERS.clear()
    latest = {"support": "1"}

    def folder(version: str):
        found = tmp_path / "adapters" / "support" / f"v{version}"
        if not found.is_dir():  # a version's files never change
            found.mkdir(parents=True)
            (found / "adapter_config.json").write_text(json.dumps({"r": int(version)}))
        return found

    def resolve(name: str, version: str | None):
        return folder(version or latest[name]) if name in latest else None

    resolvers.set_adapter_resolver(resolve, name="test")
    yield latest
    resolvers.ADAPTER_RESOLVERS.clear()
    resolvers.ADAPTER_RESOLVERS.update(saved)


def test_an_adapter_named_without_a_version_is_keyed_on_the_version_it_resolves_to(adapters):
    model = "local/smollm2+adapter:support"
    before = _key(model=model)
    assert _key(model=model) == before  # the same version: the same question
    assert _key(model=model + "@1") == before  # and its explicit spelling
    adapters["support"] = "2"  # a new fine-tune is registered
    after = _key(model=model)
    assert after != before and after == _key(model=model + "@2")


def test_an_unknown_adapter_is_not_cached_and_the_provider_says_why(adapters):
    assert _key(model="local/smollm2+adapter:nobody") == ""


def test_a_redefined_pydantic_response_format_is_another_question():
    class Answer(BaseModel):
        city: str

    first = _key(response_format=Answer)
    assert _key(response_format=Answer) == first

    class Answer(BaseModel):  # noqa: F811 - the cell run again with a new field
        city: str
        country: str

    assert _key(response_format=Answer) != first
    assert wb.complete("hi", "fake/echo", response_format=Answer).cache_hit is False


def test_headers_are_in_the_key_and_credentials_only_as_digests():
    plain = _key()
    one = _key(extra_headers={"X-Tenant": "a", "Authorization": "Bearer sk-secret-value-123"})
    assert one not in ("", plain)
    assert _key(extra_headers={"X-Tenant": "b", "Authorization": "Bearer sk-secret-value-123"}) != one
    assert _key(extra_headers={"X-Tenant": "a", "Authorization": "Bearer sk-other-value-456"}) != one
    from workbench.gateway.cache import key_material

    material = key_material("fake/echo", [{"role": "user", "content": "hi"}], {},
                            {"Authorization": "Bearer sk-secret-value-123"})
    assert "sk-secret-value-123" not in material and "sha256:" in material


def test_what_cannot_be_keyed_is_not_cached():
    class Opaque:
        pass

    value = Opaque()
    first = wb.complete("hi there", "fake/echo", extra_body={"o": value})
    second = wb.complete("hi there", "fake/echo", extra_body={"o": value})
    assert not first.cache_hit and not second.cache_hit
    assert cache_size() == 0


def test_tool_calls_are_returned_traced_and_never_cached(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000")
    tool_call = {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    for _ in range(2):
        response = wb.complete("weather in Oslo?", "openai/gpt-4o-mini", mock_tool_calls=[tool_call],
                               tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])
        assert response.cache_hit is False  # litellm's mock also says "This is a mock request": still not cached
        assert [c["function"]["name"] for c in response.tool_calls] == ["get_weather"]
        assert response.tool_calls[0]["id"] == "call_1"
        assert json.loads(response.tool_calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    assert cache_size() == 0
    from workbench.tracing import memory

    trace = memory.recent(response.trace_id)
    outputs = [span.outputs for span in trace.spans if span.kind == "llm"][0]
    assert outputs["tool_calls"][0]["function"]["name"] == "get_weather"


def test_an_empty_answer_is_not_cached_and_a_long_one_is():
    fake.enqueue(["", "a real answer"])
    assert wb.complete("q", "fake/script").text == ""
    assert wb.complete("q", "fake/script").text == "a real answer"  # asked again, not served the empty one
    assert wb.complete("q", "fake/script").cache_hit  # the whole answer is cached
    assert cache_size() == 1
