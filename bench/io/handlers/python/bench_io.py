"""weft bench's I/O tier (not a shipped example): steps that wait, as plain
``def`` handlers (the worker's threads) and ``async def`` handlers (its event
loop).

- ``io.sleep`` / ``io.sleep_async``: wait ``context.ms`` milliseconds
  (``time.sleep`` / ``asyncio.sleep``), return ``{id, slept_ms}``.
- ``io.http`` / ``io.http_async``: GET ``context.url`` from the bench's own
  test server (``urllib.request`` / a minimal HTTP/1.1 GET over
  ``asyncio.open_connection``), return ``{id, status, echo}``. They fetch
  nothing but ``WEFT_BENCH_IO_ORIGIN`` (http://127.0.0.1:<port>, set by
  weft bench for its workers), ignore proxy settings and follow no redirect:
  bench code, but never an open fetcher.
"""

import asyncio
import json
import os
import re
import time
import urllib.request

import weft

TIMEOUT_S = 10
_ORIGIN = re.compile(r"http://127\.0\.0\.1:(\d{1,5})")
# A plain path and query: nothing that could change the request line or the host.
_PATH = re.compile(r"/[A-Za-z0-9/_.~?=&%-]*")


def _target(step):
    """(port, path) of context.url on the test server, or PermanentError saying why it is refused."""
    origin = os.environ.get("WEFT_BENCH_IO_ORIGIN")
    m = _ORIGIN.fullmatch(origin or "")
    if not m:
        raise weft.PermanentError(
            f"WEFT_BENCH_IO_ORIGIN is {json.dumps(origin)}, expected http://127.0.0.1:<port> "
            "(weft bench sets it for its workers); the I/O benchmark's handlers fetch nothing else"
        )
    url = step.context.get("url")
    path = url[len(origin):] if isinstance(url, str) and url.startswith(origin + "/") else None
    if path is None or not _PATH.fullmatch(path):
        raise weft.PermanentError(
            f"context.url is {json.dumps(url)}; the I/O benchmark's handlers fetch only {origin}/… "
            "(weft bench's own test server, WEFT_BENCH_IO_ORIGIN) with a plain path and query, so it is refused"
        )
    return int(m.group(1)), path


def _wait_ms(step):
    ms = step.context.get("ms")
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
        raise weft.PermanentError(f"context.ms must be a whole number of milliseconds, got {json.dumps(ms)}")
    return ms


def _answer(step, status, body, path):
    if status != 200:
        raise RuntimeError(f"the bench's test server answered {status} to GET {path}: {body[:200]!r}")
    return {"id": step.context.get("id"), "status": status, "echo": json.loads(body).get("id")}


@weft.step_handler("io.sleep")
def sleep(step):
    ms = _wait_ms(step)
    time.sleep(ms / 1000)
    return {"id": step.context.get("id"), "slept_ms": ms}


@weft.step_handler("io.sleep_async")
async def sleep_async(step):
    ms = _wait_ms(step)
    await asyncio.sleep(ms / 1000)
    return {"id": step.context.get("id"), "slept_ms": ms}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is then an HTTPError, never a request elsewhere


# No ProxyHandler settings from the environment: the request goes to 127.0.0.1 itself.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


@weft.step_handler("io.http")
def http(step):
    port, path = _target(step)
    with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT_S) as r:
        return _answer(step, r.status, r.read(), path)


async def _get(port, path):
    """HTTP/1.1 GET with Connection: close; returns (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise RuntimeError(f"the bench's test server sent something that is not an HTTP/1.x response: {raw[:200]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "identity") != "identity":
        raise RuntimeError(f"the bench's test server answered with Transfer-Encoding {headers['transfer-encoding']}, which this minimal client does not read")
    length = headers.get("content-length")
    return int(parts[1]), body[: int(length)] if length and length.isdigit() else body


@weft.step_handler("io.http_async")
async def http_async(step):
    port, path = _target(step)
    status, body = await asyncio.wait_for(_get(port, path), TIMEOUT_S)
    return _answer(step, status, body, path)
