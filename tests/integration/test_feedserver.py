"""The static feed server (streams/commands/feedserver.py) over real HTTP: status codes, validators,
conditional requests, gzip, HEAD, traversal, in-memory feeds and the blocking ``run``."""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from streams.commands.feedserver import FeedDirServer, accepts_gzip, clean_path, content_type
from streams.tooling.samplefeeds import synthetic_feed

ROOT = Path(__file__).resolve().parents[2]
RSS = (
    b'<?xml version="1.0" encoding="windows-1256"?>\n<!-- a comment first -->\n'
    b'<rss version="2.0"><channel><title>t</title>'
    + b"<item><title>x</title></item>" * 40
    + b"</channel></rss>\n"
)
ATOM = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>a</title></feed>'
MTIME = 1_780_000_000  # 2026-05-28, a whole second


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def request(
    srv: FeedDirServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    """Raw http.client: the path goes on the wire exactly as written (no client-side
    normalisation of ``..``)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


def raw_get(srv: FeedDirServer, target: bytes) -> int:
    """A request line sent byte for byte, for targets http.client would refuse."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[FeedDirServer, Path]]:
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "feed.xml").write_bytes(RSS)
    (root / "sub" / "news.atom").write_bytes(ATOM)
    (root / ".hidden.xml").write_bytes(RSS)
    (tmp_path / "secret.xml").write_bytes(b"<rss>secret</rss>")
    (root / "escape.xml").symlink_to(tmp_path / "secret.xml")
    os.utime(root / "feed.xml", (MTIME, MTIME))
    with FeedDirServer(root, host="127.0.0.1", port=0) as srv:
        yield srv, root


def test_get_serves_bytes_with_type_and_validators(site: tuple[FeedDirServer, Path]) -> None:
    srv, _ = site
    assert srv.base_url == f"http://127.0.0.1:{srv.port}"
    r = request(srv, "/feed.xml")
    assert r.status == 200 and r.body == RSS
    assert r.headers["content-type"] == "application/rss+xml; charset=windows-1256"
    assert r.headers["etag"].startswith('"') and not r.headers["etag"].startswith('W/"')
    assert parsedate_to_datetime(r.headers["last-modified"]).timestamp() == MTIME
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in r.headers
    atom = request(srv, "/sub/news.atom")
    assert atom.status == 200 and atom.body == ATOM
    assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert atom.headers["etag"] != r.headers["etag"]


def test_conditional_requests_answer_304(site: tuple[FeedDirServer, Path]) -> None:
    srv, _ = site
    first = request(srv, "/feed.xml")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"nope", W/{etag}'},  # a list, and weak comparison
        {"If-None-Match": "*"},
        {"If-Modified-Since": last_modified},
        {"If-Modified-Since": format_datetime(datetime.now(UTC), usegmt=True)},
    ):
        r = request(srv, "/feed.xml", headers=headers)
        assert r.status == 304, headers
        assert r.body == b""
        assert r.headers["etag"] == etag and r.headers["last-modified"] == last_modified
    for headers in (
        {"If-None-Match": '"stale"'},
        {"If-Modified-Since": "Thu, 01 Jan 2026 00:00:00 GMT"},
        {"If-Modified-Since": "not a date"},
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
        {"If-None-Match": '"stale"', "If-Modified-Since": last_modified},
    ):
        assert request(srv, "/feed.xml", headers=headers).status == 200, headers
    assert srv.counts[304] == 5


def test_a_changed_file_gets_a_new_etag(site: tuple[FeedDirServer, Path]) -> None:
    srv, root = site
    old = request(srv, "/feed.xml").headers["etag"]
    (root / "feed.xml").write_bytes(RSS.replace(b"<title>x</title>", b"<title>y</title>"))
    os.utime(root / "feed.xml", (MTIME + 60, MTIME + 60))
    r = request(srv, "/feed.xml", headers={"If-None-Match": old})
    assert r.status == 200 and b"<title>y</title>" in r.body
    assert r.headers["etag"] != old
    assert parsedate_to_datetime(r.headers["last-modified"]).timestamp() == MTIME + 60


def test_gzip_when_accepted(site: tuple[FeedDirServer, Path]) -> None:
    srv, _ = site
    plain = request(srv, "/feed.xml")
    r = request(srv, "/feed.xml", headers={"Accept-Encoding": "br;q=1.0, gzip;q=0.8"})
    assert r.status == 200 and r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(r.body) == RSS and len(r.body) < len(RSS)
    assert int(r.headers["content-length"]) == len(r.body)
    assert r.headers["etag"] != plain.headers["etag"]
    assert r.headers["content-type"] == plain.headers["content-type"]
    again = request(srv, "/feed.xml", headers={"Accept-Encoding": "gzip"})
    assert again.body == r.body, "compressed once, the same bytes every time"
    # either representation's ETag validates
    for etag in (r.headers["etag"], plain.headers["etag"]):
        cond = {"Accept-Encoding": "gzip", "If-None-Match": etag}
        assert request(srv, "/feed.xml", headers=cond).status == 304
    refused = request(srv, "/feed.xml", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.body == RSS


def test_head_has_headers_and_no_body(site: tuple[FeedDirServer, Path]) -> None:
    srv, _ = site
    get = request(srv, "/feed.xml")
    head = request(srv, "/feed.xml", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) == len(RSS)
    for name in ("etag", "last-modified", "content-type"):
        assert head.headers[name] == get.headers[name]
    assert (
        request(
            srv, "/feed.xml", method="HEAD", headers={"If-None-Match": get.headers["etag"]}
        ).status
        == 304
    )
    assert request(srv, "/nope.xml", method="HEAD").status == 404


def test_unknown_paths_and_other_methods(site: tuple[FeedDirServer, Path]) -> None:
    srv, _ = site
    assert request(srv, "/missing.xml").status == 404
    assert request(srv, "/sub").status == 404  # a directory is not a file
    assert request(srv, "/feed.xml", method="POST").status == 405
    listing = request(srv, "/")
    assert listing.status == 200
    assert listing.body.decode().split() == ["escape.xml", "feed.xml", "sub/news.atom"]


@pytest.mark.parametrize(
    "target",
    [
        b"/../secret.xml",
        b"/sub/../../secret.xml",
        b"/%2e%2e/secret.xml",
        b"/%2E%2E%2Fsecret.xml",
        b"/sub/%2e%2e/%2e%2e/secret.xml",
        b"/..%5csecret.xml",
        b"/escape.xml",  # a symlink out of the directory
        b"/.hidden.xml",
        b"/sub/./../.hidden.xml",
        b"/feed.xml%00.txt",
        b"//etc/passwd",
    ],
)
def test_nothing_outside_the_directory(site: tuple[FeedDirServer, Path], target: bytes) -> None:
    srv, _ = site
    assert raw_get(srv, target) in (400, 404)


def test_dot_segments_on_the_wire_are_refused(site: tuple[FeedDirServer, Path]) -> None:
    srv, _ = site
    # Clients remove dot segments before sending (RFC 3986 5.2.4): a ".." on the wire is a
    # probe, refused even when it would stay inside the directory.
    assert raw_get(srv, b"/sub/../feed.xml") == 404
    assert raw_get(srv, b"/sub/./news.atom") == 200


def test_in_memory_feeds_can_change_while_serving() -> None:
    feeds = {f"feeds/{n}.xml": synthetic_feed(n, 5, full_text=False, seed=9) for n in range(50)}
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    with FeedDirServer.from_mapping(feeds, last_modified=when) as srv:
        r = request(srv, "/feeds/3.xml")
        assert r.status == 200 and r.body == feeds["feeds/3.xml"]
        assert r.headers["content-type"].startswith(("application/rss+xml", "application/atom+xml"))
        assert parsedate_to_datetime(r.headers["last-modified"]) == when
        assert (
            request(srv, "/feeds/3.xml", headers={"If-None-Match": r.headers["etag"]}).status == 304
        )
        newer = synthetic_feed(3, 5, full_text=False, seed=9, generation=1)
        srv.put("feeds/3.xml", newer)
        r2 = request(srv, "/feeds/3.xml", headers={"If-None-Match": r.headers["etag"]})
        assert r2.status == 200 and r2.body == newer
        srv.remove("/feeds/3.xml")
        assert request(srv, "/feeds/3.xml").status == 404
        assert srv.counts == {200: 2, 304: 1, 404: 1}
        with pytest.raises(ValueError):
            srv.put("../x.xml", b"x")


def test_conditional_gets_are_cheap() -> None:
    """Many conditional GETs on one keep-alive connection: a regression alarm, not a benchmark
    (the benchmark does 10,000 from another process)."""
    feeds = {f"{n}.xml": synthetic_feed(n, 20, full_text=False, seed=1) for n in range(200)}
    with FeedDirServer.from_mapping(feeds) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        etags = {}
        for name in feeds:
            conn.request("GET", f"/{name}", headers={"Accept-Encoding": "gzip"})
            resp = conn.getresponse()
            resp.read()
            etags[name] = resp.getheader("ETag")
        start = time.perf_counter()
        for _ in range(5):
            for name, etag in etags.items():
                conn.request(
                    "GET", f"/{name}", headers={"If-None-Match": etag, "Accept-Encoding": "gzip"}
                )
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 304
        elapsed = time.perf_counter() - start
        conn.close()
    assert srv.counts[304] == 1000
    assert elapsed < 10, f"1,000 conditional GETs took {elapsed:.1f}s"


def test_demo_directory_serves_every_demo_feed() -> None:
    demo = yaml.safe_load((ROOT / "deploy" / "feeds" / "demo.yaml").read_text(encoding="utf-8"))
    with FeedDirServer(ROOT / "deploy" / "feeds" / "demo") as srv:
        for feed in demo["feeds"]:
            path = urlsplit(feed["url"]).path
            r = request(srv, path, headers={"Accept-Encoding": "gzip"})
            assert r.status == 200, path
            assert r.headers["content-type"].startswith(
                ("application/rss+xml", "application/atom+xml")
            )
            assert (
                gzip.decompress(r.body)
                == (ROOT / "deploy" / "feeds" / "demo" / path.lstrip("/")).read_bytes()
            )


def test_start_reports_a_port_in_use() -> None:
    with FeedDirServer(ROOT / "deploy" / "feeds" / "demo") as srv, pytest.raises(OSError):
        FeedDirServer(ROOT / "deploy" / "feeds" / "demo", port=srv.port).start()


def test_run_blocks_and_serves(tmp_path: Path) -> None:
    (tmp_path / "f.xml").write_bytes(RSS)
    with socket.socket() as probe:  # a free port for the child
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        f"from streams.commands.feedserver import run; run({str(tmp_path)!r}, '127.0.0.1', {port})"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/f.xml")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                break
            except OSError:
                assert child.poll() is None, child.communicate()[1].decode()
                assert time.monotonic() < deadline, "run() did not start serving"
                time.sleep(0.1)
        assert resp.status == 200 and body == RSS
    finally:
        child.terminate()
        out, err = child.communicate(timeout=20)
    assert out == b"", "nothing is printed or logged per request by default"
    assert b"GET /f.xml" not in err


# ---- the small pure helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("identity", False),
        ("br", False),
        ("", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accepts_gzip(value: str, expected: bool) -> None:
    assert accepts_gzip(value) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a.xml", "a.xml"),
        ("a/./b.xml", "a/b.xml"),
        ("//a//b.xml", "a/b.xml"),
        ("/../a.xml", None),
        ("a/../../b", None),
        ("/.git/config", None),
        ("a\\..\\b", None),
        ("a\x00b", None),
        ("/", None),
    ],
)
def test_clean_path(path: str, expected: str | None) -> None:
    assert clean_path(path) == expected


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        (
            "a.xml",
            b'<?xml version="1.0" encoding="ISO-8859-1"?><rss/>',
            "application/rss+xml; charset=iso-8859-1",
        ),
        (
            "a.xml",
            b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
            "application/atom+xml; charset=utf-8",
        ),
        ("a.xml", b'<?xml version="1.0"?><rdf:RDF/>', "application/rdf+xml; charset=utf-8"),
        ("a.xml", b"<opml version='2.0'/>", "application/xml; charset=utf-8"),
        (
            "feed",
            b"<?xml version='1.0' encoding='utf-8'?>\n<rss/>",
            "application/rss+xml; charset=utf-8",
        ),
        ("a.atom", b"", "application/atom+xml; charset=utf-8"),
        ("list.opml", b"<opml/>", "text/x-opml; charset=utf-8"),
        ("README.md", b"# x", "text/markdown; charset=utf-8"),
        ("blob.bin", b"\x00\x01", "application/octet-stream"),
    ],
)
def test_content_type(name: str, head: bytes, expected: str) -> None:
    assert content_type(name, head) == expected
