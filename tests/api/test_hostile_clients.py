"""Slow and hostile clients (issue 14 item 4).

nginx holds a slow client, never an API thread (nginx/ideaforge.conf.in states the limits):
slowloris connections (headers trickled), slow uploads (a body trickled) and a client that
reads its answer very slowly leave every API thread free, which /status reports
(threads.busy) while the slow clients are still connected. Hostile input gets the documented
4xx, always as JSON {"detail": ...}:

    header line over 8 KiB                     400 (nginx)
    more than max_headers (100) headers        400 "Too many request headers"
    request line / query string over 8 KiB     414 (nginx)
    body over client_max_body_size (10 MiB)    413 (nginx)
    body over the route's cap                  413 "Request body too large (limit N bytes)"
    JSON nested deeper than max_json_depth     400 "Malformed JSON body"
    JSON body that is not UTF-8                400 "Malformed JSON body: not UTF-8"
    NUL byte in a JSON body                    400 "Malformed JSON body"
    \\u0000 in a JSON string                   422 (string_type: no NUL character)
    NUL (%00), invalid UTF-8 in a query        400 "Invalid query string: ..."
    NUL (%00) in the path                      400 (nginx)
    invalid UTF-8 in a path parameter          422 (uuid_parsing)
"""

import os
import re
import socket
import threading
import time
import uuid

import pytest
import requests

from conftest import BASE_URL, RUN_DIR, ApiLog, api_pids, wait_for
from product_helpers import client, make_tenant, make_user, token_for

HOST, PORT = BASE_URL.split("//", 1)[1].split(":")[0], int(BASE_URL.rsplit(":", 1)[1])


def _site_value(key):
    with open(os.path.join(RUN_DIR, "site.conf")) as f:
        m = re.search(r"^\s*%s\s+([^;]+);" % key, f.read(), re.M)
    return m.group(1).strip() if m else None


def _seconds(v):
    return int(v[:-1]) * (60 if v.endswith("m") else 1) if v[-1] in "sm" else int(v)


def threads_busy():
    r = requests.get(BASE_URL + "/status", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["threads"]["busy"]


def threads_total():
    r = requests.get(BASE_URL + "/status", timeout=30)
    return r.json()["threads"]["total"]


@pytest.fixture(scope="module")
def user():
    t = make_tenant("hostile")
    _, email = make_user(t, "hostile")
    tok = token_for(email)
    return tok


def _connect():
    s = socket.create_connection((HOST, PORT), timeout=30)
    return s


# ---------------------------------------------------------------------------------------------
# Slow clients


def test_nginx_states_the_slow_client_limits():
    assert _site_value("client_header_timeout") == "15s"
    assert _site_value("client_body_timeout") == "15s"
    assert _site_value("send_timeout") == "60s"
    assert _site_value("large_client_header_buffers") == "4 8k"
    assert _site_value("fastcgi_request_buffering") == "on"
    assert _site_value("fastcgi_buffering") == "on"


def test_slowloris_ties_up_no_api_thread_and_nginx_drops_it():
    n = threads_total() * 2 + 8  # more connections than the API has threads
    socks = []
    try:
        for _ in range(n):
            s = _connect()
            s.sendall(b"GET /api/db/phases HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
        for _ in range(3):
            time.sleep(1)
            for s in socks:
                s.sendall(b"a")
        # every API thread is free, and the API answers others at once
        assert threads_busy() == 0
        for _ in range(5):
            assert requests.get(BASE_URL + "/api/db/phases", timeout=10).status_code == 200
        # nginx closes them after client_header_timeout without a byte more (a 408 is not
        # even sent: the connection just ends)
        timeout = _seconds(_site_value("client_header_timeout"))

        def closed(s):
            s.settimeout(timeout + 20)
            try:
                data = s.recv(4096)
            except OSError:
                return True
            return data == b"" or data.startswith(b"HTTP/1.1 408")
        assert all(closed(s) for s in socks[:3])
    finally:
        for s in socks:
            s.close()


def test_slow_upload_ties_up_no_api_thread(user):
    log = ApiLog()
    body = b'{"name": "slow upload", "description": "' + b"x" * 5000 + b'"}'
    socks = []
    try:
        for _ in range(threads_total() + 4):
            s = _connect()
            s.sendall(("POST /api/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n"
                       "Connection: close\r\n\r\n" % (user, len(body))).encode() + body[:10])
            socks.append(s)
        for i in range(3):
            time.sleep(1)
            for s in socks:
                s.sendall(body[10 + i:11 + i])
        # the API has not seen any of them: no thread busy, no access line
        assert threads_busy() == 0
        assert not re.search(r'method=POST route="/api/products"', log.text())
        # and the upload completes normally once the client finishes
        s = socks[0]
        s.sendall(body[13:])
        data = b""
        s.settimeout(30)
        while True:  # Connection: close
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
    finally:
        for s in socks:
            s.close()


def test_slow_reader_holds_no_api_thread(user):
    # an answer far bigger than the socket buffers: three messages of 400 KiB
    c = client(user)
    pid = c.post("/api/products", json={"name": "slow reader"}).json()["id"]
    session = str(uuid.uuid4())
    for i in range(3):
        r = c.post("/api/db/conversation-history", json={
            "session_id": session, "product_id": pid, "message_type": "user",
            "content": "y" * 400000})
        assert r.status_code == 200, r.text
    path = "/api/db/conversation-history?session_id=" + session
    log = ApiLog()
    socks = []
    try:
        for _ in range(4):
            s = _connect()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Connection: close\r\n\r\n" % (path, user)).encode())
            socks.append(s)
        # the API finished every one of them (access lines written, status 200) although the
        # clients have read nothing; no thread is busy
        wait_for(lambda: len(re.findall(r'route="/api/db/conversation-history" .*status=200',
                                        log.text())) >= 4,
                 timeout=30, message="the API to finish the 4 answers")
        assert threads_busy() == 0
        # and the answer waits for it, whole, in nginx (its start is a 200)
        data = b""
        while len(data) < 12:
            data += socks[0].recv(4096)
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------------------------
# Hostile input: the documented 4xx, as JSON


def _json_error(r, status, detail=None):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    d = r.json()["detail"]
    if detail is not None:
        text = d if isinstance(d, str) else str(d)
        assert detail in text, d
    return d


def _post(user, data, path="/api/products"):
    return requests.post(BASE_URL + path, data=data, timeout=30,
                         headers={"Authorization": "Bearer " + user,
                                  "Content-Type": "application/json"})


def test_huge_header_is_400(user):
    r = requests.get(BASE_URL + "/api/products", timeout=30,
                     headers={"Authorization": "Bearer " + user, "X-Big": "a" * 10000})
    _json_error(r, 400)


def test_too_many_headers_is_400(user):
    h = {"X-H%d" % i: "v" for i in range(150)}
    h["Authorization"] = "Bearer " + user
    _json_error(requests.get(BASE_URL + "/api/products", headers=h, timeout=30), 400,
                "Too many request headers")


def test_huge_query_string_is_414(user):
    r = requests.get(BASE_URL + "/api/products?x=" + "a" * 9000, timeout=30,
                     headers={"Authorization": "Bearer " + user})
    _json_error(r, 414)


def test_huge_body_is_413(user):
    _json_error(_post(user, b'{"name":"' + b"a" * (11 << 20) + b'"}'), 413)
    _json_error(_post(user, b'{"name":"' + b"a" * (300 << 10) + b'"}'), 413,
                "Request body too large (limit 262144 bytes)")


def test_deeply_nested_json_is_400(user):
    _json_error(_post(user, b'{"name":"x","description":' + b"[" * 100 + b"]" * 100 + b"}"),
                400, "Malformed JSON body")
    # a million brackets: refused by the value count before json-c builds anything
    _json_error(_post(user, b"[" * 100000 + b"]" * 100000), 413, "too many values")


def test_invalid_utf8_json_is_400(user):
    for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        _json_error(_post(user, b'{"name":"a' + bad + b'b"}'), 400,
                    "Malformed JSON body: not UTF-8")


def test_nul_bytes_in_json_are_refused(user):
    _json_error(_post(user, b'{"name":"a\x00b"}'), 400, "Malformed JSON body")
    _json_error(_post(user, b'{"name":"a\\u0000b"}'), 422, "NUL")


def test_nul_and_invalid_utf8_in_the_query_are_400(user):
    h = {"Authorization": "Bearer " + user}
    for q in ("product_id=%00", "search=a%00b", "search=%ff", "search=%C0%AF", "%00=x"):
        r = requests.get(BASE_URL + "/api/db/knowledge-articles?" + q, headers=h, timeout=30)
        _json_error(r, 400, "Invalid query string")
    assert requests.get(BASE_URL + "/api/db/knowledge-articles?search=caf%C3%A9", headers=h,
                        timeout=30).status_code == 200


def test_nul_and_invalid_utf8_in_the_path_are_4xx(user):
    h = {"Authorization": "Bearer " + user}
    _json_error(requests.get(BASE_URL + "/api/products/%00", headers=h, timeout=30), 400)
    _json_error(requests.get(BASE_URL + "/api/products/%ff%fe", headers=h, timeout=30), 422,
                "uuid_parsing")
