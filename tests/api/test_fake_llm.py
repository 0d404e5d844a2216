"""Self-test of the fake LLM provider (tests/fakes/fake_llm.py); needs no running stack.

conftest.py's session-wide autouse fixture `stack` polls IDEAFORGE_BASE_URL/health/live and
ends the whole pytest session when the stack is down. These tests talk only to a FakeLLM they
start themselves, so this module overrides `stack` for its own tests (a fixture of the same
name in the test module wins over conftest's; other modules still get the real check).
"""

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKES = os.path.join(TOP, "tests", "fakes")
sys.path.insert(0, FAKES)

from fake_llm import FakeLLM, default_tokens, split_tokens  # noqa: E402

PROMPT = "Write a haiku about queues"
TIMEOUT = 10


@pytest.fixture(scope="session")
def stack():
    """Overrides conftest's stack check: nothing here needs the IdeaForge stack."""
    return None


@pytest.fixture(scope="module")
def fake_server():
    with FakeLLM(first_token_ms=0, tokens_per_s=1000) as f:
        yield f


@pytest.fixture
def fake(fake_server):
    fake_server.reset()
    yield fake_server
    fake_server.reset()


def expected(provider, model, n=20):
    return "".join(default_tokens(provider, model, n))


# ---------------------------------------------------------------------------------------------
# Clients as the SDKs call the three APIs


def openai(fake, key="sk-test", stream=False, model="gpt-4o", timeout=TIMEOUT, **extra):
    body = {"model": model, "stream": stream,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": PROMPT}], **extra}
    return requests.post(fake.openai_base_url + "/chat/completions", json=body, stream=stream,
                         headers={"Authorization": "Bearer " + key}, timeout=timeout)


def anthropic(fake, key="sk-ant-test", stream=False, model="claude-sonnet-4-5", timeout=TIMEOUT,
              version="2023-06-01", **extra):
    body = {"model": model, "max_tokens": 1024, "stream": stream, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]}
    body.update(extra)
    headers = {"x-api-key": key}
    if version:
        headers["anthropic-version"] = version
    return requests.post(fake.anthropic_base_url + "/v1/messages", json=body, stream=stream,
                         headers=headers, timeout=timeout)


def gemini(fake, key="AIza-test", stream=False, model="gemini-2.5-flash", timeout=TIMEOUT,
           key_in_query=False, **extra):
    url = "%s/v1beta/models/%s:%s" % (fake.gemini_base_url, model,
                                      "streamGenerateContent?alt=sse" if stream
                                      else "generateContent")
    headers = {}
    if key_in_query:
        url += ("&" if "?" in url else "?") + "key=" + key
    else:
        headers["x-goog-api-key"] = key
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]}, **extra}
    return requests.post(url, json=body, stream=stream, headers=headers, timeout=timeout)


CLIENTS = {"openai": openai, "anthropic": anthropic, "gemini": gemini}
MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


def sse_events(r):
    """[(event name or None, data string)] of an SSE response, read as it arrives."""
    events, name, data = [], None, []
    for line in r.iter_lines(decode_unicode=True):
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
    return events


def stream_text(provider, r):
    """Concatenated answer text of a streaming response, in each provider's own shape."""
    out = []
    for name, data in sse_events(r):
        if data == "[DONE]":
            continue
        j = json.loads(data)
        if provider == "openai" and j["choices"]:
            out.append(j["choices"][0]["delta"].get("content") or "")
        elif provider == "anthropic" and name == "content_block_delta":
            out.append(j["delta"]["text"])
        elif provider == "gemini":
            out.append(j["candidates"][0]["content"]["parts"][0]["text"])
    return "".join(out)


def read_partial(provider, r):
    """Text received before the stream broke, and the exception that broke it."""
    got = []
    with pytest.raises((requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ConnectionError)) as exc:
        for line in r.iter_lines(decode_unicode=True):
            if not line.startswith("data: "):
                continue
            j = json.loads(line[6:])
            if provider == "openai":
                got.append(j["choices"][0]["delta"].get("content") or "")
            elif provider == "anthropic" and j["type"] == "content_block_delta":
                got.append(j["delta"]["text"])
            elif provider == "gemini":
                got.append(j["candidates"][0]["content"]["parts"][0]["text"])
    return "".join(got), exc


def wait_log(fake, pred, timeout=10):
    """The request log once pred(log) holds (the server finishes a record after the client)."""
    deadline = time.monotonic() + timeout
    while True:
        log = fake.requests()
        if pred(log):
            return log
        assert time.monotonic() < deadline, "request log never matched: %r" % log
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# Success shapes


def test_openai_stream_events_and_usage(fake):
    r = openai(fake, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Transfer-Encoding"] == "chunked"
    ev = [d for _, d in sse_events(r)]
    assert ev[-1] == "[DONE]"
    chunks = [json.loads(d) for d in ev[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"].startswith("chatcmpl-")
               and c["model"] == "gpt-4o" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "",
                                                "refusal": None}
    tokens = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert tokens == default_tokens("openai", "gpt-4o", 20)
    assert "".join(tokens) == "Fake answer from openai model gpt-4o: tok1 tok2" + "".join(
        " tok%d" % i for i in range(3, 15))
    assert chunks[-2]["choices"] == [{"index": 0, "delta": {}, "logprobs": None,
                                      "finish_reason": "stop"}]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 20
    assert chunks[-1]["usage"]["total_tokens"] == chunks[-1]["usage"]["prompt_tokens"] + 20


def test_openai_stream_without_usage_has_no_usage_chunk(fake):
    ev = [d for _, d in sse_events(openai(fake, stream=True))]
    chunks = [json.loads(d) for d in ev[:-1]]
    assert ev[-1] == "[DONE]"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_openai_plain_and_models(fake):
    r = openai(fake)
    assert r.status_code == 200
    j = r.json()
    assert j["object"] == "chat.completion"
    assert j["choices"][0]["message"] == {"role": "assistant", "refusal": None,
                                          "content": expected("openai", "gpt-4o")}
    assert j["choices"][0]["finish_reason"] == "stop"
    assert j["usage"]["completion_tokens"] == 20
    assert j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"] + 20
    m = requests.get(fake.openai_base_url + "/models", timeout=TIMEOUT,
                     headers={"Authorization": "Bearer sk-test"})
    assert m.status_code == 200 and m.json()["object"] == "list"
    assert "gpt-4o" in [x["id"] for x in m.json()["data"]]
    bad = requests.get(fake.openai_base_url + "/models", timeout=TIMEOUT,
                       headers={"Authorization": "Bearer fake-401-x"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"


def test_max_tokens_truncates_with_each_providers_reason(fake):
    j = openai(fake, max_tokens=4).json()
    assert j["choices"][0]["finish_reason"] == "length"
    assert j["choices"][0]["message"]["content"] == "Fake answer from openai"
    j = anthropic(fake, max_tokens=3).json()
    assert j["stop_reason"] == "max_tokens" and j["content"][0]["text"] == "Fake answer from"
    j = gemini(fake, generationConfig={"maxOutputTokens": 2}).json()
    assert j["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_anthropic_stream_events(fake):
    r = anthropic(fake, stream=True)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
    ev = sse_events(r)
    names = [n for n, _ in ev]
    assert names == (["message_start", "content_block_start", "ping"]
                     + ["content_block_delta"] * 20
                     + ["content_block_stop", "message_delta", "message_stop"])
    datas = [json.loads(d) for _, d in ev]
    assert all(d["type"] == n for (n, _), d in zip(ev, datas))
    start = datas[0]["message"]
    assert start["role"] == "assistant" and start["model"] == "claude-sonnet-4-5"
    assert start["usage"]["input_tokens"] > 0
    assert datas[1]["content_block"] == {"type": "text", "text": ""}
    assert "".join(d["delta"]["text"] for d in datas[3:23]) \
        == expected("anthropic", "claude-sonnet-4-5")
    assert all(d["delta"]["type"] == "text_delta" and d["index"] == 0 for d in datas[3:23])
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"
    assert datas[-2]["usage"]["output_tokens"] == 20


def test_anthropic_plain_and_validation(fake):
    j = anthropic(fake).json()
    assert j["type"] == "message" and j["role"] == "assistant"
    assert j["content"] == [{"type": "text", "text": expected("anthropic", "claude-sonnet-4-5")}]
    assert j["stop_reason"] == "end_turn" and j["usage"]["output_tokens"] == 20
    r = anthropic(fake, version=None)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in r.json()["error"]["message"]
    r = anthropic(fake, max_tokens=None)
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert "max_tokens" in r.json()["error"]["message"]
    m = requests.get(fake.anthropic_base_url + "/v1/models", timeout=TIMEOUT,
                     headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert m.status_code == 200 and m.json()["data"][0]["type"] == "model"


@pytest.mark.parametrize("key_in_query", [False, True])
def test_gemini_stream_events(fake, key_in_query):
    r = gemini(fake, stream=True, key_in_query=key_in_query, key="AIza-q")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
    ev = [json.loads(d) for _, d in sse_events(r)]
    assert len(ev) == 20
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in ev) \
        == expected("gemini", "gemini-2.5-flash")
    assert all(e["candidates"][0]["content"]["role"] == "model"
               and e["modelVersion"] == "gemini-2.5-flash" for e in ev)
    assert [e["candidates"][0].get("finishReason") for e in ev] == [None] * 19 + ["STOP"]
    assert ev[-1]["usageMetadata"]["candidatesTokenCount"] == 20
    assert fake.requests()[0]["key"] == "AIza-q"


def test_gemini_plain(fake):
    j = gemini(fake).json()
    cand = j["candidates"][0]
    assert cand["content"] == {"role": "model",
                               "parts": [{"text": expected("gemini", "gemini-2.5-flash")}]}
    assert cand["finishReason"] == "STOP"
    assert j["usageMetadata"]["candidatesTokenCount"] == 20


# ---------------------------------------------------------------------------------------------
# Errors: each provider's status and shape


ERRORS = {
    ("openai", "401"): (401, lambda j: j["error"]["code"] == "invalid_api_key"
                        and j["error"]["param"] is None
                        and j["error"]["type"] == "invalid_request_error"),
    ("openai", "429"): (429, lambda j: j["error"]["code"] == "rate_limit_exceeded"),
    ("openai", "500"): (500, lambda j: j["error"]["type"] == "server_error"),
    ("openai", "529"): (503, lambda j: j["error"]["type"] == "server_error"),
    ("anthropic", "401"): (401, lambda j: j == {"type": "error", "error": {
        "type": "authentication_error", "message": "invalid x-api-key"}}),
    ("anthropic", "429"): (429, lambda j: j["error"]["type"] == "rate_limit_error"),
    ("anthropic", "500"): (500, lambda j: j["error"]["type"] == "api_error"),
    ("anthropic", "529"): (529, lambda j: j["error"]["type"] == "overloaded_error"),
    ("gemini", "401"): (400, lambda j: j["error"]["status"] == "INVALID_ARGUMENT"
                        and j["error"]["code"] == 400
                        and j["error"]["details"][0]["reason"] == "API_KEY_INVALID"),
    ("gemini", "429"): (429, lambda j: j["error"]["status"] == "RESOURCE_EXHAUSTED"),
    ("gemini", "500"): (500, lambda j: j["error"]["status"] == "INTERNAL"),
    ("gemini", "529"): (503, lambda j: j["error"]["status"] == "UNAVAILABLE"),
}


@pytest.mark.parametrize("provider,kind", sorted(ERRORS))
@pytest.mark.parametrize("stream", [False, True])
def test_error_shapes_by_key_prefix(fake, provider, kind, stream):
    status, check = ERRORS[(provider, kind)]
    r = CLIENTS[provider](fake, key="fake-%s-abc" % kind, stream=stream)
    assert r.status_code == status
    assert check(r.json()), r.text
    assert r.headers.get("Retry-After") == ("1" if kind == "429" else None)
    rec = fake.requests()[-1]
    assert (rec["status"], rec["outcome"], rec["provider"]) == (status, kind, provider)


@pytest.mark.parametrize("provider", sorted(CLIENTS))
def test_missing_key_is_refused(fake, provider):
    status, check = ERRORS[(provider, "401")]
    r = CLIENTS[provider](fake, key="")
    assert r.status_code == status and check(r.json())


def test_scripted_errors_retry_after_status_and_quota(fake):
    fake.script("sk-a", [{"kind": "429", "retry_after": 2},
                         {"kind": "429", "code": "insufficient_quota"},
                         {"kind": "529", "status": 500}])
    r = openai(fake, key="sk-a")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    r = openai(fake, key="sk-a")
    assert r.status_code == 429 and "Retry-After" not in r.headers
    assert r.json()["error"]["code"] == "insufficient_quota"
    r = openai(fake, key="sk-a")
    assert r.status_code == 500


def test_anthropic_overload_mid_stream(fake):
    fake.script("*", [{"kind": "529", "after_tokens": 2}])
    ev = sse_events(anthropic(fake, stream=True))
    assert [n for n, _ in ev][-3:] == ["content_block_delta", "content_block_delta", "error"]
    assert json.loads(ev[-1][1])["error"]["type"] == "overloaded_error"


# ---------------------------------------------------------------------------------------------
# Broken connections


@pytest.mark.parametrize("provider", sorted(CLIENTS))
def test_reset_after_three_tokens(fake, provider):
    fake.script("*", [{"kind": "reset", "tokens_per_s": 20}])
    r = CLIENTS[provider](fake, key="sk-r", stream=True)
    assert r.status_code == 200
    got, _ = read_partial(provider, r)
    assert got == "".join(default_tokens(provider, MODELS[provider], 3))
    rec = wait_log(fake, lambda log: log and log[-1]["outcome"] == "reset")[-1]
    assert rec["tokens_sent"] == 3


def test_reset_by_key_prefix_and_after_tokens(fake):
    r = openai(fake, key="fake-reset-1", stream=True)
    got, _ = read_partial("openai", r)
    assert got == "Fake answer from"
    fake.script("sk-r", [{"kind": "reset", "after_tokens": 5, "tokens_per_s": 20}])
    got, _ = read_partial("openai", openai(fake, key="sk-r", stream=True))
    assert got == "Fake answer from openai model"


def test_hang_times_out_on_the_client(fake):
    with pytest.raises(requests.exceptions.ReadTimeout):
        anthropic(fake, key="fake-hang-1", stream=True, timeout=1)
    log = wait_log(fake, lambda log: log and log[-1]["client_gone"])
    assert log[-1]["outcome"] == "hang" and log[-1]["status"] is None


def test_stall_sends_two_tokens_then_nothing(fake):
    r = gemini(fake, key="fake-stall-1", stream=True, timeout=1)
    assert r.status_code == 200
    got, _ = read_partial("gemini", r)
    assert got == "Fake answer"
    r.close()
    log = wait_log(fake, lambda log: log and log[-1]["client_gone"])
    assert log[-1]["outcome"] == "stall" and log[-1]["tokens_sent"] == 2


def test_client_gone_mid_stream_is_recorded(fake):
    fake.script("sk-slow", [{"kind": "ok", "tokens_per_s": 5, "tokens": ["a"] * 100}])
    r = openai(fake, key="sk-slow", stream=True)
    lines = r.iter_lines()
    assert next(lines).startswith(b"data: ")
    r.close()
    rec = wait_log(fake, lambda log: log and log[-1]["client_gone"])[-1]
    assert rec["outcome"] == "ok" and rec["tokens_sent"] < 100
    assert fake.health()["active_streams"] == 0


def test_badjson(fake):
    fake.script("*", [{"kind": "badjson"}, {"kind": "badjson"}])
    r = openai(fake)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    bad = [d for _, d in sse_events(openai(fake, stream=True))]
    with pytest.raises(ValueError):
        for d in bad[:-1]:
            json.loads(d)


# ---------------------------------------------------------------------------------------------
# Scripts and the request log


def test_script_queue_order_key_then_star_then_prefix(fake):
    fake.script("sk-q", [{"kind": "500"}, {"kind": "ok", "text": "hello  queued world "}])
    fake.script("*", [{"kind": "401"}])
    fake.script("sk-q", [{"kind": "ok", "tokens": ["x", "y"]}])
    assert openai(fake, key="sk-q").status_code == 500
    assert openai(fake, key="sk-q").json()["choices"][0]["message"]["content"] \
        == "hello  queued world "
    assert openai(fake, key="sk-q").json()["choices"][0]["message"]["content"] == "xy"
    assert openai(fake, key="sk-q").status_code == 401  # the "*" step, once
    assert openai(fake, key="sk-q").status_code == 200
    fake.script("*", [{"kind": "ok", "text": "any key"}])
    assert openai(fake, key="fake-500-x").json()["choices"][0]["message"]["content"] == "any key"
    assert openai(fake, key="fake-500-x").status_code == 500
    assert split_tokens("hello  queued world ") == ["hello", "  queued", " world", " "]


def test_script_text_streams_word_by_word(fake):
    fake.script("*", [{"kind": "ok", "text": "One two  three"}])
    r = anthropic(fake, stream=True)
    texts = [json.loads(d)["delta"]["text"] for n, d in sse_events(r)
             if n == "content_block_delta"]
    assert texts == ["One", " two", "  three"]


def test_control_endpoints_over_http(fake):
    base = fake.base_url
    r = requests.post(base + "/_control/script", timeout=TIMEOUT,
                      json={"key": "sk-h", "steps": [{"kind": "429", "retry_after": 3}]})
    assert r.status_code == 200 and r.json()["queued"] == 1
    assert requests.post(base + "/_control/script", timeout=TIMEOUT,
                         json={"key": "sk-h", "steps": [{"kind": "nope"}]}).status_code == 400
    assert gemini(fake, key="sk-h").headers["Retry-After"] == "3"
    log = requests.get(base + "/_control/requests", timeout=TIMEOUT).json()
    assert [(x["key"], x["status"]) for x in log] == [("sk-h", 429)]
    assert requests.get(base + "/_control/health", timeout=TIMEOUT).json() \
        == {"ok": True, "active_streams": 0}
    assert requests.post(base + "/_control/reset", timeout=TIMEOUT).json() == {"ok": True}
    assert requests.get(base + "/_control/requests", timeout=TIMEOUT).json() == []


def test_request_log_records_each_call(fake):
    openai(fake, key="sk-1", stream=True).content
    anthropic(fake, key="sk-2").content
    gemini(fake, key="sk-3", stream=True, model="gemini-2.5-pro").content
    log = wait_log(fake, lambda log: len(log) == 3 and all(x["outcome"] for x in log))
    want = [("openai", "sk-1", "gpt-4o", True, "/v1/chat/completions"),
            ("anthropic", "sk-2", "claude-sonnet-4-5", False, "/v1/messages"),
            ("gemini", "sk-3", "gemini-2.5-pro", True,
             "/v1beta/models/gemini-2.5-pro:streamGenerateContent")]
    assert [(x["provider"], x["key"], x["model"], x["stream"], x["path"]) for x in log] == want
    for x in log:
        assert x["prompt"] == PROMPT and x["system"] == "Be brief."
        assert (x["status"], x["outcome"], x["tokens_sent"], x["client_gone"]) \
            == (200, "ok", 20, False)
    assert [x["seq"] for x in log] == sorted(x["seq"] for x in log)


# ---------------------------------------------------------------------------------------------
# HTTP details and scale


def raw(fake, data, read_until_close=True):
    with socket.create_connection(("127.0.0.1", fake.port), timeout=TIMEOUT) as s:
        s.sendall(data)
        out = b""
        while read_until_close:
            b = s.recv(65536)
            if not b:
                break
            out += b
        return out


def test_http_parser_rejects_and_keeps_alive(fake):
    assert raw(fake, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(fake, b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(fake, b"GET /x HTTP/1.1\r\nBad Header: x\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # Two requests on one connection, the second asking to close; Expect: 100-continue honoured.
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
           b"Content-Length: %d\r\n" % len(body))
    out = raw(fake, req + b"Expect: 100-continue\r\n\r\n" + body
              + req + b"Connection: close\r\n\r\n" + body)
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert out.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert out.count(b'"chat.completion"') == 2
    assert raw(fake, b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n") \
        .startswith(b"HTTP/1.1 404 ")


def test_200_concurrent_streams(fake):
    clients = [("openai", openai), ("anthropic", anthropic), ("gemini", gemini)]

    def one(i):
        provider, fn = clients[i % 3]
        with fn(fake, key="sk-c%d" % i, stream=True, timeout=60) as r:
            assert r.status_code == 200
            return provider, stream_text(provider, r)

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(200)))
    assert len(results) == 200
    for provider, text in results:
        assert text == expected(provider, MODELS[provider])
    log = wait_log(fake, lambda log: len(log) == 200 and all(x["outcome"] for x in log))
    assert all(x["tokens_sent"] == 20 and not x["client_gone"] for x in log)
    assert fake.health()["active_streams"] == 0


def test_cli_port_file_and_sigterm(tmp_path):
    port_file = tmp_path / "fake.port"
    p = subprocess.Popen([sys.executable, os.path.join(FAKES, "fake_llm.py"),
                          "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                          "--first-token-ms", "0", "--tokens", "8", "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        port = int(port_file.read_text())
        assert line == "fake_llm listening on 127.0.0.1:%d" % port
        r = requests.post("http://127.0.0.1:%d/v1/chat/completions" % port, timeout=TIMEOUT,
                          headers={"Authorization": "Bearer k"},
                          json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert r.json()["choices"][0]["message"]["content"] \
            == "Fake answer from openai model m: tok1 tok2"
        assert requests.get("http://127.0.0.1:%d/_control/health" % port,
                            timeout=TIMEOUT).json()["ok"] is True
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        assert p.stderr.read() == ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
