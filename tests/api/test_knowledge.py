"""Knowledge base (API.md 1.5 knowledge-articles, 1.12 upload): articles, full-text search
ranking and its substring fallback, and multipart uploads (types, UTF-8, size limit)."""

import pytest

from conftest import psql, psql_one
from product_helpers import detail, multipart, uid, world  # noqa: F401 (fixture)

ART_KEYS = {"id", "product_id", "title", "content", "source", "metadata", "created_at"}


def add(http, pid, title, content, **kw):
    body = {"product_id": pid, "title": title, "content": content}
    body.update(kw)
    r = http.post("/api/db/knowledge-articles", json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def search(http, pid, q, **params):
    params.update({"product_id": pid, "search": q})
    r = http.get("/api/db/knowledge-articles", params=params)
    assert r.status_code == 200, r.text
    return [a["title"] for a in r.json()["articles"]]


@pytest.fixture(scope="module")
def kb(world):
    pid = world.new_product("Knowledge")
    o = world.owner.http
    add(o, pid, "Pricing strategy", "How we charge customers: tiers and discounts.")
    add(o, pid, "Onboarding notes", "The pricing page confuses new users during onboarding.")
    add(o, pid, "Pricing FAQ", "Pricing questions. Pricing answers. More pricing.")
    add(o, pid, "Architecture", "Services talk through a queue; the processing is async.")
    add(o, pid, "Discounts", "100% off for the first month; 50_percent later. Use the_code.")
    return pid


def test_create_and_list(world):
    pid = world.new_product()
    ed = world.user("editor").http
    r = ed.post("/api/db/knowledge-articles", json={
        "product_id": pid, "title": "First", "content": "c1", "metadata": {"k": 1}})
    assert r.status_code == 200 and set(r.json()) == {"id", "created_at"}
    add(ed, pid, "Second", "c2", source="confluence")
    arts = world.client("viewer").get("/api/db/knowledge-articles",
                                      params={"product_id": pid}).json()["articles"]
    assert [a["title"] for a in arts] == ["Second", "First"]  # newest first
    assert all(set(a) == ART_KEYS for a in arts)
    assert arts[0]["source"] == "confluence" and arts[1]["source"] == "manual"
    assert arts[1]["metadata"] == {"k": 1}
    assert psql_one("SELECT tenant_id FROM knowledge_articles WHERE id = $1",
                    arts[0]["id"]) == world.tenant_a
    one = world.owner.http.get("/api/db/knowledge-articles",
                               params={"product_id": pid, "limit": 1}).json()["articles"]
    assert [a["title"] for a in one] == ["Second"]


@pytest.mark.parametrize("body,status,loc", [
    ({"title": "t", "content": "c"}, 400, None),
    ({"product_id": None, "title": "t", "content": "c"}, 400, None),
    ({"product_id": "P", "content": "c"}, 422, "title"),
    ({"product_id": "P", "title": "t"}, 422, "content"),
    ({"product_id": "P", "title": " ", "content": "c"}, 422, "title"),
    ({"product_id": "P", "title": "t", "content": "c", "source": "email"}, 422, "source"),
    ({"product_id": "P", "title": "t" * 501, "content": "c"}, 422, "title"),
    ({"product_id": "bad", "title": "t", "content": "c"}, 422, "product_id"),
])
def test_create_validation(world, body, status, loc):
    pid = world.new_product(shares=False)
    body = {k: (pid if v == "P" else v) for k, v in body.items()}
    r = world.owner.http.post("/api/db/knowledge-articles", json=body)
    assert r.status_code == status, r.text
    if loc:
        assert ["body", loc] in [e["loc"] for e in r.json()["detail"]]
    else:
        assert detail(r) == "product_id is required"


def test_delete(world):
    pid = world.new_product()
    aid = add(world.owner.http, pid, "Gone", "soon")
    r = world.user("admin").http.delete("/api/db/knowledge-articles/" + aid)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert psql_one("SELECT count(*) FROM knowledge_articles WHERE id = $1", aid) == "0"
    r = world.owner.http.delete("/api/db/knowledge-articles/" + aid)
    assert r.status_code == 404 and detail(r) == "Knowledge article not found"


def test_search_ranks_title_and_frequency(world, kb):
    titles = search(world.owner.http, kb, "pricing")
    # title matches (weight A) first, the more frequent one first; a body-only match after
    assert titles == ["Pricing FAQ", "Pricing strategy", "Onboarding notes"]


def test_search_websearch_syntax(world, kb):
    assert search(world.owner.http, kb, '"pricing page"') == ["Onboarding notes"]
    assert search(world.owner.http, kb, "pricing -onboarding") == ["Pricing FAQ",
                                                                   "Pricing strategy"]
    # stemming: "charging" finds "charge"
    assert search(world.owner.http, kb, "charging") == ["Pricing strategy"]


def test_search_substring_fallback(world, kb):
    # a stop word only: full-text search has no lexeme, substring match instead
    assert set(search(world.owner.http, kb, "the")) >= {"Onboarding notes", "Architecture"}
    # part of a word: no full-text match, still found by substring (the original's ILIKE)
    assert search(world.owner.http, kb, "rocess") == ["Architecture"]
    # punctuation only: both articles with a ";", newest first
    assert search(world.owner.http, kb, ";") == ["Discounts", "Architecture"]


def test_search_escapes_like_wildcards(world, kb):
    assert search(world.owner.http, kb, "%") == ["Discounts"]
    assert search(world.owner.http, kb, "0_p") == ["Discounts"]
    assert search(world.owner.http, kb, "e_c") == ["Discounts"]
    assert search(world.owner.http, kb, "_") == ["Discounts"]
    assert search(world.owner.http, kb, "zz%zz") == []


def test_search_is_scoped(world, kb):
    # without product_id: the caller's visible products only
    r = world.user("viewer").http.get("/api/db/knowledge-articles",
                                      params={"search": "pricing", "limit": 200})
    assert "Pricing FAQ" in [a["title"] for a in r.json()["articles"]]
    r = world.user("stranger").http.get("/api/db/knowledge-articles",
                                        params={"search": "pricing", "limit": 200})
    assert all(a["product_id"] != kb for a in r.json()["articles"])
    r = world.user("outsider").http.get("/api/db/knowledge-articles",
                                        params={"search": "pricing", "product_id": kb})
    assert r.status_code == 403
    r = world.owner.http.get("/api/db/knowledge-articles",
                             params={"search": "x" * 501, "product_id": kb})
    assert r.status_code == 422


# ---------------------------------------------------------------- upload

def upload(http, pid, filename, data, ctype="text/plain", extra=None):
    fields = {"product_id": pid} if pid is not None else {}
    fields.update(extra or {})
    files = {"file": (filename, data, ctype)} if filename is not None else {}
    return http.post("/api/documents/upload", files=multipart(fields, files))


def test_upload_markdown(world):
    pid = world.new_product()
    ed = world.user("editor")
    body = "\ufeff# Release plan\n\nShip in Q3. Ünïcödé ✓\n".encode("utf-8")
    r = upload(ed.http, pid, "docs/plan.md", body, "text/markdown")
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"document_id", "message"} and j["message"] == "File uploaded successfully"
    row = psql("SELECT product_id, tenant_id, title, content, source, metadata->>'filename', "
               "metadata->>'content_type', metadata->>'size', metadata->>'user_id' "
               "FROM knowledge_articles WHERE id = $1", j["document_id"])
    assert row == [(pid, world.tenant_a, "plan.md", "# Release plan\n\nShip in Q3. Ünïcödé ✓\n",
                    "local_upload", "plan.md", "text/markdown", str(len(body)), ed.id)]
    # and it is searchable at once
    assert search(ed.http, pid, "release") == ["plan.md"]


@pytest.mark.parametrize("filename,ctype,content_type", [
    ("a.txt", "text/plain", "text/plain"),
    ("a.json", "application/json", "application/json"),
    ("a.csv", "text/csv", "text/csv"),
    ("a.xml", "text/xml", "application/xml"),
    ("a.xml", "application/xml", "application/xml"),
    ("notes.MD", "application/octet-stream", "text/markdown"),  # by extension
    ("data", "text/csv", "text/csv"),                          # by content type
])
def test_upload_types(world, filename, ctype, content_type):
    pid = world.new_product(shares=False)
    r = upload(world.owner.http, pid, filename, b"a,b\n1,2\n", ctype)
    assert r.status_code == 200, r.text
    assert psql_one("SELECT metadata->>'content_type' FROM knowledge_articles WHERE id = $1",
                    r.json()["document_id"]) == content_type


def test_upload_refusals(world):
    pid = world.new_product()
    o = world.owner.http
    count = lambda: psql_one("SELECT count(*) FROM knowledge_articles WHERE product_id = $1",
                             pid)
    r = upload(o, pid, "x.exe", b"MZ\x90\x00", "application/octet-stream")
    assert r.status_code == 415 and "Unsupported file type" in detail(r)
    r = upload(o, pid, "x.pdf", b"%PDF-1.4", "application/pdf")
    assert r.status_code == 415
    r = upload(o, pid, "latin1.txt", "café".encode("latin-1"))
    assert r.status_code == 400 and "UTF-8" in detail(r)
    r = upload(o, pid, "nul.txt", b"a\x00b")
    assert r.status_code == 400 and "UTF-8" in detail(r)
    r = upload(o, pid, "overlong.txt", b"\xc0\xaf")
    assert r.status_code == 400
    r = upload(o, pid, "surrogate.txt", b"\xed\xa0\x80")
    assert r.status_code == 400
    r = upload(o, pid, "empty.txt", b"")
    assert r.status_code == 400 and detail(r) == "File is empty"
    r = upload(o, None, "a.txt", b"hello")
    assert r.status_code == 400 and detail(r) == "product_id is required"
    r = upload(o, "not-a-uuid", "a.txt", b"hello")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "product_id"]
    r = upload(o, pid, None, None)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "file"]
    r = upload(o, pid, "big.txt", b"a" * (5 * 1024 * 1024 + 1))
    assert r.status_code == 413 and "5 MiB" in detail(r)
    r = upload(o, pid, "huge.txt", b"a" * (11 * 1024 * 1024))
    assert r.status_code == 413  # over the server's 10 MiB body cap
    r = o.post("/api/documents/upload", json={"product_id": pid})
    assert r.status_code == 415
    r = o.post("/api/documents/upload", data=b"--x\r\nbroken",
               headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400 and detail(r) == "Malformed multipart/form-data body"
    r = upload(world.user("viewer").http, pid, "a.txt", b"hello")
    assert r.status_code == 403
    assert count() == "0"
    # exactly 5 MiB is accepted
    r = upload(o, pid, "limit.txt", b"a" * (5 * 1024 * 1024))
    assert r.status_code == 200, r.text


def raw_upload(http, pid, disposition_filename, data):
    """A hand-written multipart body (requests would percent-encode the file name)."""
    b = b"----b0undary"
    body = (b"preamble\r\n--" + b + b"\r\n"
            b'Content-Disposition: form-data; name="product_id"\r\n\r\n' + pid.encode() +
            b"\r\n--" + b + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="' + disposition_filename +
            b'"\r\nContent-Type: text/plain\r\n\r\n' + data + b"\r\n--" + b + b"--\r\nepilogue")
    return http.post("/api/documents/upload", data=body, headers={
        "Content-Type": 'multipart/form-data; boundary="' + b.decode() + '"'})


def test_upload_hostile_filename(world):
    pid = world.new_product(shares=False)
    r = raw_upload(world.owner.http, pid, b"..\\..\\etc/pass\x01wd\x7f.txt", b"hi\r\n--not")
    assert r.status_code == 200, r.text
    assert psql("SELECT title, encode(convert_to(content, 'UTF8'), 'hex') "
                "FROM knowledge_articles WHERE id = $1",
                r.json()["document_id"]) == [("passwd.txt", b"hi\r\n--not".hex())]
    r = raw_upload(world.owner.http, pid, b"\xff\xfe.txt", b"x")
    assert r.status_code == 200, r.text
    assert psql_one("SELECT title FROM knowledge_articles WHERE id = $1",
                    r.json()["document_id"]) == "Untitled document"
