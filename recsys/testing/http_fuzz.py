"""Random HTTP requests for fuzzing the service, and the contract its answers must keep.

``random_request(rng)`` draws a request (method, target, headers, body) that is usually
close to a real one: the service's own paths and parameters with odd values, JSON bodies
of the right shape with wrong parts, mutated bytes, odd or duplicated headers, chunked
bodies, oversized targets and heads, and some plain garbage. ``Request.raw()`` gives its
bytes for a socket. ``violation(...)`` checks one answer against the contract: no 5xx,
and a JSON body (``{"error", "detail"}`` for every 4xx), except the HTML pages of /docs.
Used by tests/test_service_fuzz.py (seeded, short) and scripts/fuzz_service.py (long).
No web framework is imported here.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

import numpy as np

from recsys.testing.fuzz import mutate

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "BREW"]
ODD_IDS = ["1", "7", "0", "-1", "1.0", "1e3", "1e400", "nan", "inf", "99999999999999999999",
           "%ff", "%00", "%2F", "..", "%E2%98%83", "a b", "x" * 300, "", "true", "null",
           "%", "%zz", "1;2", "1?", "1#", "\u00e9"]
ODD_VALUES = ["", "0", "1", "5", "10", "50", "51", "-1", "1e3", "ten", "true", "false",
              "True", "yes", "maybe", "popular", "none", "%00", "9" * 30, "1.5", "0x10"]
PARAMS = ["n", "exclude_seen", "fallback", "strict", "x", "", "n[]"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/problem+json", "application/JSON", "json", "", "*/*",
                 "application/json; charset=latin-1", "application/json;;;"]


@dataclass
class Request:
    method: str
    target: str
    headers: list = field(default_factory=list)  # (name, value) text pairs
    body: bytes = b""
    chunked: bool = False
    raw_bytes: bytes | None = None  # garbage sent as it is

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def raw(self) -> bytes:
        if self.raw_bytes is not None:
            return self.raw_bytes
        lines = [f"{self.method} {self.target} HTTP/1.1", "Host: fuzz"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                            for part in _pieces(self.body)) + b"0\r\n\r\n"
        else:
            if self.body or self.method in ("POST", "PUT", "PATCH"):
                if not any(name.lower() == "content-length" for name, _ in self.headers):
                    lines.append(f"Content-Length: {len(self.body)}")
            body = self.body
        return "\r\n".join(lines).encode("latin-1", "replace") + b"\r\n\r\n" + body


def _pieces(body: bytes, size: int = 700) -> list:
    return [body[i:i + size] for i in range(0, len(body), size)]


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def random_json(rng, depth: int = 0):
    """A random JSON value, small, with the service's field names among its keys."""
    kind = int(rng.integers(9 if depth < 4 else 6))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(2))
    if kind == 2:
        return int(rng.integers(-10, 100)) if rng.random() < 0.8 else int(
            rng.integers(-(2**62), 2**62)) * 8
    if kind == 3:
        return float(rng.normal(0, 1e3)) if rng.random() < 0.9 else float(rng.choice(
            [1e308, -1e308, 5e-324, 0.5]))
    if kind == 4:
        return _pick(rng, ODD_IDS)
    if kind == 5:
        return _pick(rng, ["user", "item", "rating", "pairs", "ratings", "n", ""])
    if kind in (6, 7):
        keys = ["user", "item", "rating", "pairs", "ratings", "n", "exclude_rated", "x"]
        return {_pick(rng, keys): random_json(rng, depth + 1)
                for _ in range(int(rng.integers(0, 4)))}
    return [random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 5)))]


def _entry(rng, kind: str):
    """A /predict pair or a fold-in rating: mostly right, sometimes one part wrong."""
    good = ({"user": int(rng.integers(1, 120)), "item": int(rng.integers(1, 100))}
            if kind == "pairs" else
            {"item": int(rng.integers(1, 100)), "rating": float(rng.integers(1, 6))})
    if rng.random() < 0.3:
        key = _pick(rng, list(good) + ["x"])
        good[key] = random_json(rng, 2)
    if rng.random() < 0.05:
        good.pop(_pick(rng, list(good)), None)
    return good


def random_body(rng, path: str) -> bytes:
    """A body for POST ``path``: well-shaped with odd parts, mutated, or anything."""
    kind = "ratings" if path == "/recommendations" else "pairs"
    roll = rng.random()
    if roll < 0.15:
        return json.dumps(random_json(rng)).encode()
    doc = {kind: [_entry(rng, kind) for _ in range(int(rng.integers(0, 12)))]}
    if kind == "ratings" and rng.random() < 0.5:
        doc["n"] = random_json(rng, 3) if rng.random() < 0.3 else int(rng.integers(1, 60))
    if rng.random() < 0.1:
        doc[_pick(rng, ["x", "exclude_rated", "n"])] = random_json(rng, 2)
    if rng.random() < 0.05:  # many entries: the bounded-work paths
        doc[kind] = [_entry(rng, kind) for _ in range(int(rng.integers(200, 3000)))]
    text = json.dumps(doc).encode()
    if roll < 0.35:
        return mutate(text, rng)
    if roll < 0.4:
        return text.replace(b"1", b"NaN", 1).replace(b"2", b"1e999", 1)
    return text


def random_target(rng) -> str:
    roll = rng.random()
    u, i = _pick(rng, ODD_IDS), _pick(rng, ODD_IDS)
    if rng.random() < 0.5:
        u, i = str(int(rng.integers(1, 120))), str(int(rng.integers(1, 100)))
    path = _pick(rng, [f"/users/{u}/recommendations", f"/items/{i}/similar", "/predict",
                       "/recommendations", "/health", "/model", "/admin/reload",
                       "/openapi.json", "/", "/users", "/users//recommendations",
                       f"/users/{u}/recommendations/", f"/items/{i}", "/%2e%2e/health",
                       "//health", "/predict/", "*", "/docs", "/redoc", "/metrics",
                       "/docs/assets/swagger-ui.css"])
    if roll < 0.05:
        path = "/" + "a" * int(rng.integers(8000, 20000))
    query = "&".join(f"{_pick(rng, PARAMS)}={_pick(rng, ODD_VALUES)}"
                     for _ in range(int(rng.integers(0, 4))))
    return path + ("?" + query if query else "")


def random_headers(rng, has_body: bool) -> list:
    headers = []
    if has_body or rng.random() < 0.2:
        if rng.random() < 0.85:
            headers.append(("Content-Type", _pick(rng, CONTENT_TYPES)))
    if rng.random() < 0.1:
        headers.append(("Authorization", _pick(rng, ["Bearer ", "Bearer wrong", "Basic x",
                                                     "Bearer " + "t" * 5000])))
    if rng.random() < 0.1:
        headers.append(("Accept", _pick(rng, ["*/*", "text/html", "application/json", ""])))
    if rng.random() < 0.05:
        headers.append(("Expect", "100-continue"))
    if rng.random() < 0.05:
        headers += [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Version", "13"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]
    if rng.random() < 0.05:
        headers.append(("X-Odd", _pick(rng, ["\u00ff\u00fe", " spaced ", "a" * 9000, "\t"])))
    if rng.random() < 0.02:
        headers += [(f"X-{k}", "v" * 700) for k in range(int(rng.integers(90, 130)))]
    if rng.random() < 0.03:
        headers.append(("Content-Length", _pick(rng, ["abc", "-1", "1 2", "00"])))
    return headers


def random_request(rng) -> Request:
    """One random request (seeded by ``rng``, a numpy Generator)."""
    if rng.random() < 0.04:  # garbage, or a mutated valid head
        valid = b"GET /health HTTP/1.1\r\nHost: fuzz\r\n\r\n"
        raw = mutate(valid, rng) if rng.random() < 0.7 else bytes(
            rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8))
        if not raw.strip():  # blank lines before a request are allowed: it would wait
            raw = b"\x00" + raw
        return Request("?", "?", raw_bytes=raw + b"\r\n\r\n")
    method = "POST" if rng.random() < 0.45 else _pick(rng, METHODS)
    target = random_target(rng)
    if method == "POST" and rng.random() < 0.8:
        target = _pick(rng, ["/predict", "/recommendations", "/predict?strict=true",
                             "/predict?strict=" + _pick(rng, ODD_VALUES)])
    body = random_body(rng, target.split("?")[0]) if method in ("POST", "PUT", "PATCH") \
        else b""
    return Request(method, target, random_headers(rng, bool(body)), body,
                   chunked=bool(body) and rng.random() < 0.1)


def violation(request: Request, status: int, content_type: str | None, body: bytes
              ) -> str | None:
    """What breaks the contract in this answer, or None."""
    if status >= 500:
        return f"{status} answer"
    if request.method == "HEAD" or status in (204, 304) or status < 200:
        return None
    if status == 200 and request.path.startswith(("/docs", "/metrics")):
        return None  # the documented HTML page and its assets, the Prometheus text
    if not (content_type or "").startswith("application/json"):
        return f"{status} answer with Content-Type {content_type!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"{status} answer whose body is not JSON: {body[:80]!r}"
    if status >= 400 and not (isinstance(doc, dict) and doc.get("error") and "detail" in doc):
        return f"{status} answer without error and detail: {body[:80]!r}"
    return None


class NoAnswer(Exception):
    """The server closed the connection, or kept silent, without answering."""


def exchange(port: int, request: Request, timeout: float = 10.0, host: str = "127.0.0.1"
             ) -> tuple[int, str | None, bytes]:
    """Send ``request`` on a new connection: (status, Content-Type, body) of the answer
    (interim 1xx answers skipped)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(request.raw())
        except OSError:  # the server answered early and stopped reading: read it
            pass
        buffer = b""

        def more():
            nonlocal buffer
            try:
                chunk = sock.recv(65536)
            except OSError as exc:
                raise NoAnswer(f"{type(exc).__name__}: {exc}") from None
            if not chunk:
                raise NoAnswer(f"connection closed after {len(buffer)} bytes: {buffer[:80]!r}")
            buffer += chunk

        while True:
            while b"\r\n\r\n" not in buffer:
                more()
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            if status >= 200:
                break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if request.method == "HEAD" or status in (204, 304):
            return status, headers.get("content-type"), b""
        if "content-length" not in headers:
            raise NoAnswer(f"{status} answer without Content-Length")
        length = int(headers["content-length"])
        while len(buffer) < length:
            more()
        return status, headers.get("content-type"), buffer[:length]
