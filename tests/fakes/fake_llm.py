#!/usr/bin/env python3
"""fake_llm - a loopback fake of three LLM providers, for tests and benchmarks.

Speaks the wire protocols the real SDKs and our C clients speak, streaming (SSE) and not:
    OpenAI Chat Completions   POST /v1/chat/completions, GET /v1/models   (base URL .../v1)
    Anthropic Messages        POST /v1/messages, GET /v1/models           (base URL ...)
    Google Gemini             POST /v1beta/models/{model}:generateContent
                              POST /v1beta/models/{model}:streamGenerateContent?alt=sse
and fails on demand: per-key scripts queued through /_control/script, or built-in key prefixes
(fake-401..., fake-429..., fake-500..., fake-529..., fake-reset..., fake-hang..., fake-stall...).
See tests/fakes/README.md for the whole contract.

Standard library only: one asyncio loop, a small HTTP/1.1 parser, tokens paced by
asyncio.sleep, so one process holds 500+ concurrent streams at low CPU.

    python3 tests/fakes/fake_llm.py --listen 127.0.0.1:0 --port-file run/fake.port
    from fake_llm import FakeLLM; with FakeLLM() as fake: ... fake.base_url ...
"""

import argparse
import asyncio
import collections
import concurrent.futures
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 64 * 1024  # request line + headers; larger is a 400
MAX_BODY = 8 * 1024 * 1024  # prompts are big, but not this big
LOG_MAX = 100000  # request log entries kept (a long benchmark must not grow without bound)

KINDS = ("ok", "401", "429", "500", "529", "reset", "hang", "stall", "badjson")
ERROR_KINDS = ("401", "429", "500", "529")
PREFIXES = (("fake-401", "401"), ("fake-429", "429"), ("fake-500", "500"), ("fake-529", "529"),
            ("fake-reset", "reset"), ("fake-hang", "hang"), ("fake-stall", "stall"))
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def split_tokens(text):
    """Roughly one word per token, each keeping its leading whitespace; joins back to text."""
    toks = re.findall(r"\s*\S+", text)
    rest = text[len("".join(toks)):]  # trailing whitespace has no word to ride on
    if rest:
        toks.append(rest)
    return toks


def count_words(text):
    return len(re.findall(r"\S+", text or ""))


def _text_of(content):
    """Text of an OpenAI/Anthropic message content: a string or a list of {type:text} blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


class ProviderError(Exception):
    """A request the real provider would refuse with 400 (shape is the provider's)."""


class BadRequest(Exception):
    """A request this HTTP parser does not accept; answered 400 and the connection closed."""


# ---------------------------------------------------------------------------------------------
# Providers: request parsing and the exact bodies and SSE events each one sends.


class Call:
    """What one provider request asked for, after validation."""

    def __init__(self, model, stream, prompt, system, max_tokens, all_text, include_usage=False):
        self.model = model
        self.stream = stream
        self.prompt = prompt  # last user message text
        self.system = system  # system text or None
        self.max_tokens = max_tokens  # None when the request set no limit
        self.prompt_tokens = count_words(all_text) + count_words(system)
        self.include_usage = include_usage  # OpenAI stream_options.include_usage
        self.finish = "end_turn"  # or "max_tokens"; each provider spells it its own way
        self.id = uuid.uuid4().hex[:24]
        self.created = int(time.time())


class Provider:
    """Defaults shared by the providers; each subclass is one wire protocol."""
    content_type = "application/json"
    sse_end_of_event = b"\n\n"

    @classmethod
    def sse_start(cls, c):
        return b""  # OpenAI's role chunk and Gemini's first event both come with a token

    @classmethod
    def _data(cls, obj):
        return b"data: " + _json(obj) + cls.sse_end_of_event

    @classmethod
    def sse_error(cls, status, err):
        return cls._data(err)  # OpenAI and Gemini: the error body as one more data event


class OpenAI(Provider):
    name = "openai"
    FINISH = {"end_turn": "stop", "max_tokens": "length"}
    ERRORS = {  # kind: (type, code, message)
        "401": ("invalid_request_error", "invalid_api_key", "Incorrect API key provided. You "
                "can find your API key at https://platform.openai.com/account/api-keys."),
        "insufficient_quota": ("insufficient_quota", "insufficient_quota", "You exceeded your "
                               "current quota, please check your plan and billing details."),
        "429": ("requests", "rate_limit_exceeded",
                "Rate limit reached for requests. Please try again later."),
        "500": ("server_error", None,
                "The server had an error while processing your request. Sorry about that!"),
        "529": ("server_error", None,
                "The engine is currently overloaded, please try again later.")}
    models = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini")

    @staticmethod
    def key(req):
        auth = req.headers.get("authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else ""

    @staticmethod
    def parse(req, body):
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise ProviderError("you must provide a model parameter")
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
            raise ProviderError("'messages' must be a non-empty array of objects")
        system = next((_text_of(m.get("content")) for m in msgs
                       if m.get("role") in ("system", "developer")), None)
        users = [_text_of(m.get("content")) for m in msgs if m.get("role") == "user"]
        mt = body.get("max_completion_tokens", body.get("max_tokens"))
        so = body.get("stream_options") or {}
        return Call(body["model"], body.get("stream") is True, users[-1] if users else "",
                    system, mt if isinstance(mt, int) else None,
                    " ".join(_text_of(m.get("content")) for m in msgs
                             if m.get("role") not in ("system", "developer")),
                    include_usage=isinstance(so, dict) and so.get("include_usage") is True)

    @classmethod
    def error(cls, kind, status, message=None, code=None):
        if kind == "400":
            etype, ecode, msg = "invalid_request_error", None, message
        else:
            etype, ecode, msg = cls.ERRORS[code if kind == "429" and code in cls.ERRORS else kind]
        return status or (503 if kind == "529" else int(kind)), \
            {"error": {"message": msg, "type": etype, "param": None, "code": ecode}}

    @classmethod
    def _chunk(cls, c, delta, finish=None):
        d = {"id": "chatcmpl-" + c.id, "object": "chat.completion.chunk", "created": c.created,
             "model": c.model, "system_fingerprint": "fp_fake",
             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                          "finish_reason": finish}]}
        if c.include_usage:
            d["usage"] = None  # the real API adds usage:null to every chunk when asked for usage
        return cls._data(d)

    @classmethod
    def sse_token(cls, c, tok, i, n):
        role = cls._chunk(c, {"role": "assistant", "content": "", "refusal": None})
        return (role if i == 0 else b"") + cls._chunk(c, {"content": tok})

    @classmethod
    def sse_end(cls, c, n, finish):
        out = b"" if n else cls._chunk(c, {"role": "assistant", "content": "", "refusal": None})
        out += cls._chunk(c, {}, cls.FINISH[finish])
        if c.include_usage:
            out += cls._data({
                "id": "chatcmpl-" + c.id, "object": "chat.completion.chunk", "created": c.created,
                "model": c.model, "system_fingerprint": "fp_fake", "choices": [],
                "usage": cls._usage(c, n)})
        return out + b"data: [DONE]\n\n"

    @staticmethod
    def _usage(c, n):
        return {"prompt_tokens": c.prompt_tokens, "completion_tokens": n,
                "total_tokens": c.prompt_tokens + n}

    @classmethod
    def full(cls, c, text, n, finish):
        return {"id": "chatcmpl-" + c.id, "object": "chat.completion", "created": c.created,
                "model": c.model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                     "refusal": None},
                             "logprobs": None, "finish_reason": cls.FINISH[finish]}],
                "usage": cls._usage(c, n)}

    @classmethod
    def model_list(cls):
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 1700000000,
                                            "owned_by": "fake"} for m in cls.models]}


class Anthropic(Provider):
    name = "anthropic"
    models = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-3-5-haiku-latest")

    @staticmethod
    def key(req):
        return req.headers.get("x-api-key", "").strip()

    @staticmethod
    def parse(req, body):
        # The real API checks the version header before anything in the body.
        if not req.headers.get("anthropic-version"):
            raise ProviderError("anthropic-version: header is required")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise ProviderError("model: Field required")
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise ProviderError("max_tokens: Field required")
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
            raise ProviderError("messages: at least one message is required")
        system = body.get("system")
        system = _text_of(system) if system is not None else None
        users = [_text_of(m.get("content")) for m in msgs if m.get("role") == "user"]
        return Call(body["model"], body.get("stream") is True, users[-1] if users else "",
                    system, mt, " ".join(_text_of(m.get("content")) for m in msgs))

    @staticmethod
    def error(kind, status, message=None, code=None):
        etype, msg = {"400": ("invalid_request_error", message),
                      "401": ("authentication_error", "invalid x-api-key"),
                      "429": ("rate_limit_error", "Number of request tokens has exceeded your "
                                                  "per-minute rate limit"),
                      "500": ("api_error", "Internal server error"),
                      "529": ("overloaded_error", "Overloaded")}[kind]
        return status or int(kind), {"type": "error", "error": {"type": etype, "message": msg}}

    @staticmethod
    def _ev(name, data):
        return b"event: " + name.encode() + b"\ndata: " + _json(data) + b"\n\n"

    @classmethod
    def sse_start(cls, c):
        msg = {"id": "msg_" + c.id, "type": "message", "role": "assistant", "content": [],
               "model": c.model, "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": c.prompt_tokens, "output_tokens": 1}}
        return (cls._ev("message_start", {"type": "message_start", "message": msg})
                + cls._ev("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "text", "text": ""}})
                + cls._ev("ping", {"type": "ping"}))

    @classmethod
    def sse_token(cls, c, tok, i, n):
        return cls._ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": tok}})

    @classmethod
    def sse_end(cls, c, n, finish):
        return (cls._ev("content_block_stop", {"type": "content_block_stop", "index": 0})
                + cls._ev("message_delta", {"type": "message_delta",
                                            "delta": {"stop_reason": finish,
                                                      "stop_sequence": None},
                                            "usage": {"output_tokens": n}})
                + cls._ev("message_stop", {"type": "message_stop"}))

    @classmethod
    def sse_error(cls, status, err):
        return cls._ev("error", err)

    @classmethod
    def full(cls, c, text, n, finish):
        return {"id": "msg_" + c.id, "type": "message", "role": "assistant", "model": c.model,
                "content": [{"type": "text", "text": text}], "stop_reason": finish,
                "stop_sequence": None,
                "usage": {"input_tokens": c.prompt_tokens, "output_tokens": n}}

    @classmethod
    def model_list(cls):
        data = [{"type": "model", "id": m, "display_name": m,
                 "created_at": "2025-01-01T00:00:00Z"} for m in cls.models]
        return {"data": data, "has_more": False, "first_id": data[0]["id"],
                "last_id": data[-1]["id"]}


class Gemini(Provider):
    name = "gemini"
    # Gemini frames its SSE events with CRLF ("data: ...\r\n\r\n"), unlike OpenAI and
    # Anthropic; a client that splits only on "\n\n" breaks on the real service.
    sse_end_of_event = b"\r\n\r\n"
    content_type = "application/json; charset=UTF-8"
    models = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash")
    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
              404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}

    @staticmethod
    def key(req):
        return (req.headers.get("x-goog-api-key") or req.query.get("key", [""])[0]).strip()

    @staticmethod
    def parse(req, body):
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents \
                or not all(isinstance(c, dict) for c in contents):
            raise ProviderError("* GenerateContentRequest.contents: contents is not specified")

        def text(c):
            parts = c.get("parts") if isinstance(c, dict) else None
            return "".join(p.get("text", "") for p in parts or ()
                           if isinstance(p, dict) and isinstance(p.get("text"), str))

        users = [text(c) for c in contents if c.get("role", "user") == "user"]
        si = body.get("systemInstruction", body.get("system_instruction"))
        gc = body.get("generationConfig") or {}
        mt = gc.get("maxOutputTokens") if isinstance(gc, dict) else None
        return Call(req.model, req.stream, users[-1] if users else "",
                    text(si) if si is not None else None, mt if isinstance(mt, int) else None,
                    " ".join(text(c) for c in contents))

    @classmethod
    def error(cls, kind, status, message=None, code=None):
        if kind in ("400", "401"):
            status = status or 400  # Gemini refuses a bad key with 400, not 401
        status = status or {"429": 429, "500": 500, "529": 503}[kind]
        msg = {"400": message, "401": "API key not valid. Please pass a valid API key.",
               "429": "Resource has been exhausted (e.g. check quota).",
               "500": "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting",
               "529": "The model is overloaded. Please try again later."}[kind]
        err = {"code": status, "message": msg, "status": cls.STATUS.get(status, "UNKNOWN")}
        if kind == "401":
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                               "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                               "metadata": {"service": "generativelanguage.googleapis.com"}}]
        return status, {"error": err}

    @classmethod
    def _resp(cls, c, text, n, finish=None):
        cand = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = {"end_turn": "STOP", "max_tokens": "MAX_TOKENS"}[finish]
        return {"candidates": [cand],
                "usageMetadata": {"promptTokenCount": c.prompt_tokens, "candidatesTokenCount": n,
                                  "totalTokenCount": c.prompt_tokens + n},
                "modelVersion": c.model, "responseId": c.id}

    @classmethod
    def sse_token(cls, c, tok, i, n):
        return cls._data(cls._resp(c, tok, i + 1, c.finish if i == n - 1 else None))

    @classmethod
    def sse_end(cls, c, n, finish):
        # The finish reason rode on the last token; only an empty answer needs its own event.
        return b"" if n else cls._data(cls._resp(c, "", 0, finish))

    @classmethod
    def full(cls, c, text, n, finish):
        return cls._resp(c, text, n, finish)

    @classmethod
    def model_list(cls):
        return {"models": [{"name": "models/" + m, "displayName": m, "version": "001",
                            "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                            "supportedGenerationMethods": ["generateContent", "countTokens"]}
                           for m in cls.models]}


GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/([^/:]+):(generateContent|streamGenerateContent)$")


# ---------------------------------------------------------------------------------------------
# Shared state: script queues and the request log. Touched only from the loop's thread.


class Step:
    """One scripted behaviour; missing timings fall back to the server's defaults."""

    FIELDS = {"kind": str, "text": str, "tokens": list, "tokens_per_s": (int, float),
              "first_token_ms": (int, float), "retry_after": (int, float), "after_tokens": int,
              "status": int, "code": str}

    def __init__(self, kind="ok", **kw):
        if kind not in KINDS:
            raise ValueError("kind must be one of " + ", ".join(KINDS))
        for name, value in kw.items():
            if name not in self.FIELDS:
                raise ValueError("unknown step field %r" % name)
            if value is not None and (not isinstance(value, self.FIELDS[name])
                                      or isinstance(value, bool)):
                raise ValueError("step field %r has the wrong type" % name)
        if kw.get("tokens") is not None and not all(isinstance(t, str) for t in kw["tokens"]):
            raise ValueError("tokens must be strings")
        if (kw.get("tokens_per_s") or 1) <= 0:
            raise ValueError("tokens_per_s must be positive")
        self.kind = kind
        self.text = kw.get("text")
        self.tokens = kw.get("tokens")
        self.tokens_per_s = kw.get("tokens_per_s")
        self.first_token_ms = kw.get("first_token_ms")
        self.retry_after = kw.get("retry_after")
        self.after_tokens = kw.get("after_tokens")
        self.status = kw.get("status")
        self.code = kw.get("code")  # OpenAI 429 flavour: rate_limit_exceeded | insufficient_quota


class State:
    def __init__(self, tokens_per_s=20.0, first_token_ms=300.0, tokens=20, quiet=True):
        self.tokens_per_s = tokens_per_s
        self.first_token_ms = first_token_ms
        self.tokens = tokens
        self.quiet = quiet
        self.queues = collections.defaultdict(collections.deque)
        self.log = collections.deque(maxlen=LOG_MAX)
        self.seq = 0
        self.tick = 0  # one counter for arrivals and ends: their order, without clocks
        self.active_streams = 0
        self.tasks = set()  # connection handlers, cancelled on shutdown
        # pace streamed tokens on absolute deadlines (a benchmark's fake under load then keeps
        # its tokens per second instead of falling behind by the loop's lateness per token)
        self.exact_pace = False

    def add_script(self, key, steps):
        if not isinstance(key, str) or not isinstance(steps, list) \
                or not all(isinstance(s, dict) for s in steps):
            raise ValueError('body must be {"key": str, "steps": [object, ...]}')
        parsed = [Step(**s) for s in steps]  # all or nothing: a bad step queues none
        self.queues[key].extend(parsed)
        return len(self.queues[key])

    def pick(self, key):
        """The step for one request: the key's queue, then "*"'s, then the key prefix, then ok."""
        for k in (key, "*"):
            q = self.queues.get(k)
            if q:
                return q.popleft()
        if not key:
            return Step("401")
        for prefix, kind in PREFIXES:
            if key.startswith(prefix):
                return Step(kind, retry_after=1 if kind == "429" else None)
        return Step("ok")

    def reset(self):
        self.queues.clear()
        self.log.clear()

    def record(self, provider, path, key, model=None, stream=False):
        self.seq += 1
        self.tick += 1
        # arrived/ended: one counter shared by all requests (order without clocks, for tests);
        # *_mono: time.monotonic() (CLOCK_MONOTONIC, shared by the processes of one machine), so
        # a benchmark can compare them with its own clock: the request's arrival, the moment
        # the first token was handed to the socket, the end of the answer (null until then).
        rec = {"seq": self.seq, "provider": provider, "path": path, "key": key, "model": model,
               "stream": stream, "prompt": None, "system": None, "status": None,
               "outcome": None, "tokens_sent": 0, "client_gone": False,
               "arrived": self.tick, "ended": None,
               "started_mono": time.monotonic(), "first_token_mono": None, "ended_mono": None}
        self.log.append(rec)
        return rec


# ---------------------------------------------------------------------------------------------
# HTTP/1.1: just enough of RFC 9112 for clients that send Content-Length bodies.


class Request:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.version = version
        self.headers = headers  # lower-cased names; a repeated header keeps its last value
        self.body = body
        parts = urlsplit(target)
        self.path = parts.path
        self.query = parse_qs(parts.query)
        self.model = None  # Gemini: from the path
        self.stream = False  # Gemini: from the method name


async def read_request(reader, writer):
    """The next request on the connection, None on a clean close between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise BadRequest("truncated request head")
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large")
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1].startswith("/"):
        raise BadRequest("malformed request line")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        # No obsolete line folding, no whitespace before the colon (RFC 9112 section 5).
        if not sep or not name or name != name.strip() or not re.fullmatch(r"[!-~]+", name):
            raise BadRequest("malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest("request bodies must carry Content-Length")
    cl = headers.get("content-length", "0")
    if not cl.isdigit() or int(cl) > MAX_BODY:
        raise BadRequest("bad Content-Length")
    if headers.get("expect", "").lower() == "100-continue" and int(cl) > 0:
        # libcurl sends Expect for large bodies and waits a second for this unless answered.
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await reader.readexactly(int(cl)) if int(cl) else b""
    return Request(parts[0], parts[1], parts[2], headers, body)


class Conn:
    """One client connection: response writing, chunked framing, and disconnect detection."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.http10 = False
        self.keep_alive = True
        self.aborted = False

    def gone(self):
        # EOF from the client (it closed) or a transport already torn down by a reset.
        return self.writer.transport.is_closing() or self.reader.at_eof() \
            or self.reader.exception() is not None

    async def send(self, data):
        if self.gone():
            raise ConnectionResetError("client went away")
        self.writer.write(data)
        await self.writer.drain()

    def _head(self, status, headers):
        out = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
        out += ["%s: %s" % kv for kv in headers]
        if not self.keep_alive:
            out.append("Connection: close")
        return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")

    async def respond(self, status, body, content_type="application/json", headers=()):
        if not isinstance(body, bytes):
            body = _json(body)
        await self.send(self._head(status, [("Content-Type", content_type),
                                            ("Content-Length", str(len(body))), *headers])
                        + body)

    async def start_stream(self, headers=()):
        hs = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), *headers]
        if self.http10:
            self.keep_alive = False  # no chunked framing in 1.0: the body ends at close
        else:
            hs.append(("Transfer-Encoding", "chunked"))
        await self.send(self._head(200, hs))

    async def chunk(self, data):
        if data:
            await self.send(data if self.http10 else b"%x\r\n%s\r\n" % (len(data), data))

    async def end_stream(self):
        if not self.http10:
            await self.send(b"0\r\n\r\n")

    def abort(self):
        """Close with a TCP RST (SO_LINGER 0), as a crashing or cut-off upstream does."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.aborted = True
        self.keep_alive = False
        self.writer.transport.abort()

    async def wait_gone(self):
        """Blocks until the client closes (hang and stall never answer on their own)."""
        self.keep_alive = False
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass


# ---------------------------------------------------------------------------------------------
# Request handling


def default_tokens(provider, model, n):
    words = ["Fake", " answer", " from", " " + provider, " model", " " + model + ":"]
    words += [" tok%d" % i for i in range(1, max(0, n - len(words)) + 1)]
    return words[:n]


async def handle_control(st, conn, req):
    path, method = req.path, req.method
    try:
        if path == "/_control/health" and method == "GET":
            return await conn.respond(200, {"ok": True, "active_streams": st.active_streams})
        if path == "/_control/requests" and method == "GET":
            return await conn.respond(200, list(st.log))
        if path == "/_control/reset" and method == "POST":
            st.reset()
            return await conn.respond(200, {"ok": True})
        if path == "/_control/script" and method == "POST":
            body = json.loads(req.body or b"null")
            n = st.add_script(body.get("key") if isinstance(body, dict) else None,
                              body.get("steps") if isinstance(body, dict) else None)
            return await conn.respond(200, {"ok": True, "queued": n})
    except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
        return await conn.respond(400, {"ok": False, "error": str(e)})
    return await conn.respond(404, {"ok": False, "error": "no such control endpoint"})


def route(req):
    """(provider, what) for a provider path; what is "chat" or "models"; None when unknown."""
    p, m = req.path, req.method
    if p == "/v1/chat/completions" and m == "POST":
        return OpenAI, "chat"
    if p == "/v1/messages" and m == "POST":
        return Anthropic, "chat"
    if p == "/v1/models" and m == "GET":
        # One path, two providers: the credential header says which SDK is calling.
        if "x-api-key" in req.headers and "authorization" not in req.headers:
            return Anthropic, "models"
        return OpenAI, "models"
    if p == "/v1beta/models" and m == "GET":
        return Gemini, "models"
    g = GEMINI_PATH.match(p)
    if g and m == "POST":
        req.model, req.stream = g.group(1), g.group(2) == "streamGenerateContent"
        return Gemini, "chat"
    return None


async def handle(st, conn, req):
    if req.path.startswith("/_control/"):
        return await handle_control(st, conn, req)
    r = route(req)
    if r is None:
        rec = st.record("unknown", req.path, None)
        rec["status"], rec["outcome"] = 404, "not_found"
        return await conn.respond(404, {"error": {"message": "Unknown path %s %s"
                                                             % (req.method, req.path)}})
    prov, what = r
    key = prov.key(req)
    rec = st.record(prov.name, req.path, key, req.model, req.stream)
    try:
        call = None
        if what == "chat":
            try:
                body = json.loads(req.body or b"null")
                if not isinstance(body, dict):
                    raise ProviderError("the request body must be a JSON object")
                if prov is Gemini and req.stream and req.query.get("alt") != ["sse"]:
                    raise ProviderError("fake_llm streams only with ?alt=sse")
                call = prov.parse(req, body)
            except (ValueError, ProviderError) as e:
                status, err = prov.error("400", 400, str(e))
                rec["status"], rec["outcome"] = status, "bad_request"
                return await conn.respond(status, err, prov.content_type)
            rec.update(model=call.model, stream=call.stream, prompt=call.prompt,
                       system=call.system)
        await run_step(st, conn, prov, call, st.pick(key), rec)
    except (ConnectionError, OSError):
        rec["client_gone"] = True
        conn.keep_alive = False
    finally:
        st.tick += 1
        rec["ended"] = st.tick
        if not st.quiet:
            print("fake_llm #%d %s %s key=%s -> %s %s tokens=%d%s"
                  % (rec["seq"], prov.name, req.path, key, rec["status"], rec["outcome"],
                     rec["tokens_sent"], " client_gone" if rec["client_gone"] else ""),
                  file=sys.stderr, flush=True)


async def run_step(st, conn, prov, call, step, rec):
    """Plays one scripted step; call is None for a model listing."""
    rec["outcome"] = step.kind
    err_headers = [("Retry-After", "%g" % step.retry_after)] if step.retry_after else []
    if prov is Anthropic:
        err_headers.append(("request-id", "req_fake_%d" % rec["seq"]))
    mid_stream_error = step.kind in ERROR_KINDS and step.after_tokens is not None \
        and call is not None and call.stream
    if step.kind in ERROR_KINDS and not mid_stream_error:
        status, err = prov.error(step.kind, step.status, code=step.code)
        rec["status"] = status
        return await conn.respond(status, err, prov.content_type, err_headers)
    if step.kind == "hang":
        await conn.wait_gone()
        rec["client_gone"] = True
        return
    if call is None:  # GET models: no generation, so reset cuts at once and the rest list
        if step.kind == "reset":
            return conn.abort()
        rec["status"] = 200
        return await conn.respond(200, prov.model_list(), prov.content_type)

    tps = step.tokens_per_s or st.tokens_per_s
    first_s = (step.first_token_ms if step.first_token_ms is not None
               else st.first_token_ms) / 1000.0
    if step.tokens is not None:
        tokens = list(step.tokens)
    elif step.text is not None:
        tokens = split_tokens(step.text)
    else:
        tokens = default_tokens(prov.name, call.model, st.tokens)
    if call.max_tokens is not None and len(tokens) > call.max_tokens:
        tokens, call.finish = tokens[:max(call.max_tokens, 0)], "max_tokens"
    n = len(tokens)
    cut = step.after_tokens if step.after_tokens is not None else \
        {"reset": 3, "stall": 2, "badjson": 1}.get(step.kind, n)

    if not call.stream:
        return await run_plain(conn, prov, call, step, rec, tokens, first_s, tps)

    # Streaming: headers at once, as the real services do, then tokens at the scripted pace.
    rec["status"] = 200
    st.active_streams += 1
    try:
        await conn.start_stream(err_headers if prov is Anthropic else ())
        await conn.chunk(prov.sse_start(call))
        t_first = time.monotonic() + first_s
        await asyncio.sleep(first_s)
        for i in range(n + 1):
            if i > 0:
                if st.exact_pace:  # token i is due at t_first + i/tps, however late the loop is
                    await asyncio.sleep(max(0.0, t_first + i / tps - time.monotonic()))
                else:
                    await asyncio.sleep(1.0 / tps)
            if conn.gone():
                rec["client_gone"] = True
                conn.keep_alive = False
                return
            if i == min(cut, n):
                if step.kind == "reset":
                    return conn.abort()
                if step.kind == "stall":
                    await conn.wait_gone()
                    rec["client_gone"] = True
                    return
                if step.kind == "badjson":
                    await conn.chunk(b'data: {"choices": [{"delta": {"content": "unterminated\n\n')
                if mid_stream_error:
                    status, err = prov.error(step.kind, step.status, code=step.code)
                    await conn.chunk(prov.sse_error(status, err))
                    return await conn.end_stream()
            if i == n:
                break
            await conn.chunk(prov.sse_token(call, tokens[i], i, n))
            if i == 0:
                rec["first_token_mono"] = time.monotonic()
            rec["tokens_sent"] = i + 1
        await conn.chunk(prov.sse_end(call, n, call.finish))
        await conn.end_stream()
        rec["ended_mono"] = time.monotonic()
    finally:
        st.active_streams -= 1


async def run_plain(conn, prov, call, step, rec, tokens, first_s, tps):
    """A non-streaming answer arrives whole, after the time the tokens would have taken."""
    n = len(tokens)
    await asyncio.sleep(first_s + max(0, n - 1) / tps)
    if conn.gone():
        rec["client_gone"] = True
        conn.keep_alive = False
        return
    if step.kind == "reset":
        return conn.abort()
    body = _json(prov.full(call, "".join(tokens), n, call.finish))
    rec["status"] = 200
    if step.kind == "stall":  # promise the whole body, deliver half, then nothing
        await conn.send(conn._head(200, [("Content-Type", prov.content_type),
                                         ("Content-Length", str(len(body)))])
                        + body[:len(body) // 2])
        await conn.wait_gone()
        rec["client_gone"] = True
        return
    if step.kind == "badjson":
        body = body[:len(body) // 2]  # a 200 whose body does not parse
    await conn.respond(200, body, prov.content_type)
    rec["tokens_sent"] = n
    rec["first_token_mono"] = rec["ended_mono"] = time.monotonic()  # all tokens at once


async def serve_conn(st, reader, writer):
    conn = Conn(reader, writer)
    task = asyncio.current_task()
    st.tasks.add(task)
    try:
        while conn.keep_alive:
            try:
                req = await read_request(reader, writer)
            except BadRequest as e:
                conn.keep_alive = False
                await conn.respond(400, {"error": {"message": str(e)}})
                break
            if req is None:
                break
            conn.http10 = req.version == "HTTP/1.0"
            conn.keep_alive = req.headers.get("connection", "").lower() != "close" and (
                not conn.http10 or req.headers.get("connection", "").lower() == "keep-alive")
            await handle(st, conn, req)
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    except asyncio.CancelledError:  # server shutdown
        pass
    finally:
        st.tasks.discard(task)
        if not conn.aborted:
            writer.transport.close()


async def start(st, host, port):
    # A deep backlog: a benchmark opens hundreds of connections at once, and SYNs dropped
    # from a short queue come back only after a one-second retransmit.
    return await asyncio.start_server(lambda r, w: serve_conn(st, r, w), host, port,
                                      limit=MAX_HEAD, backlog=4096, reuse_address=True)


async def shutdown(st, server):
    server.close()
    for t in list(st.tasks):
        t.cancel()
    if st.tasks:
        await asyncio.wait(list(st.tasks), timeout=2)
    await server.wait_closed()


# ---------------------------------------------------------------------------------------------
# In-process use from pytest


class FakeLLM:
    """The fake on an ephemeral port, its loop in a background thread.

        with FakeLLM(first_token_ms=0, tokens_per_s=1000) as fake:
            requests.post(fake.openai_base_url + "/chat/completions", ...)
            fake.script("sk-a", [{"kind": "429", "retry_after": 2}])
            fake.requests()
    """

    def __init__(self, host="127.0.0.1", port=0, tokens_per_s=20, first_token_ms=300,
                 tokens=20, quiet=True):
        self.host = host
        self._st = State(tokens_per_s, first_token_ms, tokens, quiet)
        self._loop = asyncio.new_event_loop()
        self._ready = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(port,), name="fake_llm",
                                        daemon=True)
        self._thread.start()
        self.port = self._ready.result(timeout=10)
        self.base_url = "http://%s:%d" % (host, self.port)
        self.openai_base_url = self.base_url + "/v1"
        self.anthropic_base_url = self.base_url
        self.gemini_base_url = self.base_url

    def _run(self, port):
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(start(self._st, self.host, port))
        except BaseException as e:
            self._ready.set_exception(e)
            return
        self._stop = asyncio.Event()
        self._ready.set_result(server.sockets[0].getsockname()[1])
        self._loop.run_until_complete(self._stop.wait())
        self._loop.run_until_complete(shutdown(self._st, server))
        self._loop.close()

    def _call(self, fn, *args):
        fut = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        return fut.result(timeout=10)

    def script(self, key, steps):
        """Appends steps (dicts as for POST /_control/script) to key's queue ("*": any key)."""
        return self._call(self._st.add_script, key, list(steps))

    def requests(self):
        """The request log, as GET /_control/requests returns it (copies)."""
        return self._call(lambda: [dict(r) for r in self._st.log])

    def reset(self):
        self._call(self._st.reset)

    def health(self):
        return self._call(lambda: {"ok": True, "active_streams": self._st.active_streams})

    def stop(self):
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv=None):
    ap = argparse.ArgumentParser(description="Loopback fake of OpenAI, Anthropic and Gemini.")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free one)")
    ap.add_argument("--port-file", help="write the bound port here (atomically)")
    ap.add_argument("--tokens-per-s", type=float, default=20.0)
    ap.add_argument("--first-token-ms", type=float, default=300.0)
    ap.add_argument("--tokens", type=int, default=20, help="tokens in the default answer")
    ap.add_argument("--quiet", action="store_true", help="no per-request lines on stderr")
    ap.add_argument("--exact-pace", action="store_true",
                    help="token i of a stream at first-token time + i/tokens-per-s (benchmarks: "
                         "no drift when the loop is busy); default: a sleep between tokens")
    a = ap.parse_args(argv)
    host, _, port = a.listen.rpartition(":")
    if not host or not port.isdigit() or a.tokens_per_s <= 0 or a.tokens < 0:
        ap.error("bad --listen, --tokens-per-s or --tokens")
    st = State(a.tokens_per_s, a.first_token_ms, a.tokens, a.quiet)
    st.exact_pace = a.exact_pace

    async def run():
        server = await start(st, host, int(port))
        bound = server.sockets[0].getsockname()[1]
        if a.port_file:
            tmp = "%s.tmp.%d" % (a.port_file, os.getpid())
            with open(tmp, "w") as f:
                f.write("%d\n" % bound)
            os.replace(tmp, a.port_file)  # readers never see a half-written file
        print("fake_llm listening on %s:%d" % (host, bound), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await shutdown(st, server)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
