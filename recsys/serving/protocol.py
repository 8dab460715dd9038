"""The HTTP/1.1 protocol of ``recsys serve``: uvicorn's, with limits on the request head
and JSON answers for the requests that never reach the app.

uvicorn answers a request it cannot parse with a plain-text 400, and its httptools
parser puts no limit on headers. ``http_protocol()`` gives the class the CLI passes to
uvicorn (``http=``): with httptools (what ``uvicorn[standard]`` installs),

* a request target over ``MAX_TARGET`` bytes gets 414 ``uri_too_long``;
* a request head (request line and headers) over ``MAX_HEAD`` bytes, or with more than
  ``MAX_HEADERS`` header fields, gets 431 ``headers_too_large``;
* anything the parser refuses gets 400 ``bad_request``;

each as ``{"error": code, "detail": message}`` with ``Connection: close``. Without
httptools, h11 stops heads over ``MAX_HEAD`` and every refusal is that JSON 400.
"""

from __future__ import annotations

import asyncio

import orjson

MAX_TARGET = 8 * 1024   # bytes of the request target (path and query)
MAX_HEAD = 64 * 1024    # bytes of the request line and headers
MAX_HEADERS = 100       # header fields
LINGER = 2.0            # seconds a refused connection is drained before it is closed

_REASONS = {400: b"Bad Request", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}
_MALFORMED = (400, "bad_request", "the request is not valid HTTP/1.1")


def refusal(status: int, error: str, detail: str, extra_headers=()) -> bytes:
    """The bytes of a whole JSON error response that closes the connection."""
    body = orjson.dumps({"error": error, "detail": detail})
    head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Error"))]
    for name, value in extra_headers:
        head.append(name + b": " + value + b"\r\n")
    head.append(b"content-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % len(body))
    return b"".join(head) + body


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that is over a limit."""


class _JsonRefusals:
    """What both protocols share: refusing with JSON instead of uvicorn's text.

    After a refusal the connection is closed the way web servers close it ("lingering"):
    the answer is sent with a FIN, and what the client still sends is read and dropped
    until it closes or ``LINGER`` seconds pass, so that the client reads the answer
    instead of a reset.
    """

    _refusal: tuple[int, str, str] | None = None
    _dropping = False
    _linger = None

    def data_received(self, data: bytes) -> None:
        if not self._dropping:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:  # uvicorn calls it for parser errors
        self._refuse(*(self._refusal or _MALFORMED))

    def _refuse(self, status: int, error: str, detail: str) -> None:
        transport = self.transport
        if self._dropping or transport.is_closing():
            return
        self._dropping = True
        cycle, started = getattr(self, "cycle", None), False
        if cycle is not None and not cycle.response_complete:
            # a request of this connection is being answered (the error came in its body,
            # or in a request sent behind it): it is cut off, and what it sends dropped
            started = cycle.response_started
            cycle.disconnected = True
            cycle.waiting_for_100_continue = False  # no "100 Continue" after the refusal
            cycle.message_event.set()
        if getattr(self, "pipeline", None):  # httptools: requests queued behind it
            self.pipeline.clear()
        if started:  # half an answer is out: nothing more can be said on this connection
            transport.close()
            return
        transport.write(refusal(status, error, detail, self.server_state.default_headers))
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._linger = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def eof_received(self):
        if self._dropping:
            self.transport.close()
            return None
        return super().eof_received()

    def connection_lost(self, exc) -> None:
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)


def _target_too_long() -> tuple[int, str, str]:
    return 414, "uri_too_long", f"the request target is over the limit of {MAX_TARGET} bytes"


def _head_too_large() -> tuple[int, str, str]:
    return (431, "headers_too_large", f"the request head is over the limit of {MAX_HEAD} "
                                      f"bytes or {MAX_HEADERS} header fields")


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's h11 protocol below
    HttpToolsProtocol = None

if HttpToolsProtocol is not None:

    class JsonHttpToolsProtocol(_JsonRefusals, HttpToolsProtocol):
        """httptools, with the head limits and JSON refusals.

        The head is measured twice: the request target and header fields as the parser
        reports them, and the bytes received while a head is still incomplete (counted
        from the end of the previous head), which bounds a head that never ends.
        """

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._in_head, self._head_bytes = True, 0
            self._n_headers = self._field_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > MAX_HEAD:
                self._refuse(*_head_too_large())

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._n_headers = self._field_bytes = 0

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > MAX_TARGET:
                self._refusal = _target_too_long()
                raise _Refused

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            self._n_headers += 1
            self._field_bytes += len(name) + len(value) + 4  # "name: value\r\n"
            if (self._n_headers > MAX_HEADERS
                    or len(self.url) + self._field_bytes > MAX_HEAD):
                self._refusal = _head_too_large()
                raise _Refused

        def on_headers_complete(self) -> None:
            self._in_head, self._head_bytes = False, 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_head = True
            super().on_message_complete()

        def _unsupported_upgrade_warning(self) -> None:  # not a missing library: no ws here
            self.logger.info("Upgrade request answered as plain HTTP (no websockets here).")


from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402


class JsonH11Protocol(_JsonRefusals, H11Protocol):
    """h11 (heads limited by ``h11_max_incomplete_event_size``), with JSON refusals."""


def http_protocol() -> type:
    """The protocol class for uvicorn's ``http=``; pass ``h11_max_incomplete_event_size=
    MAX_HEAD`` with it (the h11 protocol's limit)."""
    return JsonH11Protocol if HttpToolsProtocol is None else JsonHttpToolsProtocol
