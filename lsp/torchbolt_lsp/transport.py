"""The server's stdio transport: JSON-RPC framing that a bad client cannot wedge.

pygls' own stdio loop reads `Content-Length` bytes blindly (a huge length is a `MemoryError` or a
wait for bytes that never come), drops a message whose header is glued to the end of the previous
body, and answers a request whose params do not validate with silence. This reader instead:

- keeps one bounded buffer, fed by whatever bytes are available, and frames messages out of it;
- skips garbage and malformed headers, and rejects lengths over `MAX_BODY` (logged), then
  resynchronises on the next `Content-Length:` header;
- recovers a message whose declared length is wrong when the next header shows where it ends;
- answers a request that does not parse or validate with a JSON-RPC error (ParseError or
  InvalidParams naming the bad field), so every request gets a reply;
- when it falls behind a client that sends the whole document on every keystroke (an edit burst, a
  formatter on a big file), never decodes a full-document `didChange` that a later one in the backlog
  replaces: decoding a 1 MB body is most of what such a message costs, and the answer to the next
  request depends only on the newest text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcParseError

if TYPE_CHECKING:
    from pygls.protocol import JsonRPCProtocol

log = logging.getLogger("torchbolt_lsp.transport")

#: The largest message accepted (a 20,000-line file sent whole is about 1 MB).
MAX_BODY = 64 * 1024 * 1024
#: The largest header block accepted; longer runs of bytes without a blank line are garbage.
MAX_HEADER = 8 * 1024
#: How much is read from the pipe at a time: all of the widened pipe buffer (PIPE_SIZE), so a client that
#: keeps it full is drained in one read per fill instead of four.
CHUNK = 1024 * 1024
#: How many reads the stdin thread may be ahead of the server (at most READ_AHEAD * CHUNK bytes held).
READ_AHEAD = 16
#: The pipe buffer asked for on stdin.
PIPE_SIZE = 1024 * 1024

_HEADER_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"content-length:[ \t]*([0-9]+)[ \t]*$", re.IGNORECASE)
_HEADER_NAME = b"content-length:"
_ID = re.compile(rb'"id"\s*:\s*(-?[0-9]+|"(?:[^"\\]|\\.)*")')
#: Bodies at least this big are looked at for being a `didChange` that a later one replaces.
SUPERSEDE_MIN = 32 * 1024
#: A `textDocument/didChange` notification whose change list starts with a change's text, recognised from
#: its first and last bytes alone (anchored: every byte matched is JSON structure, never inside a string),
#: in the key orders clients write: jsonrpc and method before or after the params, the text document
#: before the change list (VS Code, pygls) or after it, uri and version either way round.
_TOP = rb'(?:"jsonrpc"\s*:\s*"2\.0"|"method"\s*:\s*"textDocument/didChange")'
_DOC = (rb'"textDocument"\s*:\s*\{\s*(?:"uri"\s*:\s*"(?P<uri>[^"\\]*)"\s*,\s*"version"\s*:\s*-?[0-9]+'
        rb'|"version"\s*:\s*-?[0-9]+\s*,\s*"uri"\s*:\s*"(?P<uri2>[^"\\]*)")\s*\}')
_TEXT = rb'"contentChanges"\s*:\s*\[\s*\{\s*"text"\s*:\s*"'
_CHANGE_HEAD = re.compile(rb'\{\s*(?P<top>(?:' + _TOP + rb'\s*,\s*)*)"params"\s*:\s*\{\s*(?:' + _DOC
                          + rb'\s*,\s*)?' + _TEXT)
#: ...and the end: the text's closing quote (after an even run of backslashes, so not an escaped one), the
#: change and the list, the text document when it comes last, the params, then only jsonrpc/method (so
#: no `id`: a notification, which needs no reply).
_CHANGE_TAIL = re.compile(rb'(?<!\\)(?:\\\\)*"\s*\}\s*\]\s*(?:,\s*' + _DOC + rb'\s*)?\}\s*(?P<top>(?:,\s*'
                          + _TOP + rb'\s*)*)\}\s*$')
_HEAD_SPAN = 1024
_TAIL_SPAN = 1024


class MessageReader:
    """Frames JSON-RPC messages out of a byte stream; `feed()` bytes in, `messages()` bodies out."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.skipped = 0  # bytes dropped while resynchronising (for tests and logs)
        self.superseded = 0  # didChange bodies never decoded: a later whole-document change replaced them
        self._scanned = 0  # how far a pending body was searched for the next header
        self.rejected: list[bytes] = []  # framed bodies that were not JSON (answered with ParseError)

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def messages(self, more_coming: bool = False) -> list[tuple[Any, bytes]]:
        """Every complete message now in the buffer, decoded, with its body (garbage dropped), less the
        big `didChange` notifications that a later whole-document change of the same document replaces
        with no other message in between (those are counted in `superseded`, never decoded).

        `more_coming`: more input is already on its way, so an incomplete body is simply waited for
        instead of being checked for a wrong Content-Length (that check scans the partial body)."""
        framed: list[tuple[Any, bytes]] = []
        while (message := self._next(more_coming)) is not None:
            framed.append(message)
        if not any(isinstance(value, _Change) for value, _ in framed):
            return framed
        # newest first: which documents a later whole-document change already replaces
        replaced: set[str] = set()
        out: list[tuple[Any, bytes]] = []
        for value, body in reversed(framed):
            if isinstance(value, _Change):
                if value.uri in replaced:
                    self.superseded += 1
                    continue
                value = _decode(body)
                if value is _INVALID:
                    self.rejected.append(body)
                    continue
            replaces = _replaced_document(value)
            if replaces is not None:
                replaced.add(replaces)
            elif not _is_did_change(value):
                replaced.clear()  # a request or another notification sees the text as it is at that point
            out.append((value, body))
        out.reverse()
        return out

    def _drop(self, n: int, why: str) -> None:
        if n <= 0:
            return
        log.warning("skipped %d bytes of input: %s", n, why)
        self.skipped += n
        self._consume(n)

    def _resync(self, why: str, after: int = 1) -> None:
        """Drop everything before the next `Content-Length:` at or after offset `after` (or keep a tail)."""
        at = _find_header(self.buffer, after)
        if at >= 0:
            self._drop(at, why)
        else:
            # keep a tail that may be the start of a header split across reads
            self._drop(max(len(self.buffer) - len(b"Content-Length:"), 0), why)

    def _next(self, more_coming: bool = False) -> tuple[Any, bytes] | None:
        while True:
            buf = self.buffer
            if not buf:
                return None
            start = _find_header(buf)
            if start < 0:
                self._resync("no Content-Length header")
                return None
            if start:
                self._drop(start, "bytes before a Content-Length header")
                continue
            end = buf.find(_HEADER_END)
            if end < 0:
                if len(buf) > MAX_HEADER:
                    self._resync("a header that does not end")
                    continue
                return None  # wait for the rest of the header
            length = None
            for line in bytes(buf[:end]).split(b"\r\n"):
                m = _LENGTH.search(line.strip())  # search: a header glued to the end of garbage still counts
                if m is not None:
                    length = int(m.group(1))
            if length is None:
                self._resync(f"malformed header {bytes(buf[:min(end, 80)])!r}")
                continue
            if length > MAX_BODY:
                self._resync(f"Content-Length {length} is over the {MAX_BODY}-byte limit")
                continue
            body_start = end + len(_HEADER_END)
            body_end = body_start + length
            if len(buf) >= body_end:
                body = bytes(buf[body_start:body_end])
                change = _change_of(buf, body, body_end)
                if change is not None:  # decoded later, unless a newer change replaces it
                    self._consume(body_end)
                    return change, body
                value = _decode(body)
                if value is not _INVALID:
                    self._consume(body_end)
                    return value, body
                # the length was wrong: the message may end where the next header starts
                recovered = self._recover(body_start)
                if recovered is not None:
                    return recovered
                self.rejected.append(body)
                self._resync(f"a body that is not JSON (Content-Length {length} wrong?)", body_start)
                continue
            # not all there yet: unless the next header already shows the declared length is too long
            if more_coming:
                return None
            recovered = self._recover(body_start)
            if recovered is not None:
                return recovered
            return None

    def _recover(self, body_start: int) -> tuple[Any, bytes] | None:
        """The message between `body_start` and the next header (or the end of the buffer), when that is
        complete JSON: a declared length that is too long then shows, without waiting for bytes that never
        come. (A complete JSON value followed by more non-blank bytes is never one valid message, so a
        slow pipe cannot make a longer message look complete.)"""
        buf = self.buffer
        # scan each byte once while a long body arrives chunk by chunk (a header may straddle chunks)
        nxt = _find_header(buf, max(body_start, self._scanned - 16))
        if nxt < 0:
            self._scanned = len(buf)
        candidate_end = nxt if nxt >= 0 else len(buf)
        if not bytes(buf[max(body_start, candidate_end - 64):candidate_end]).rstrip().endswith((b"}", b"]")):
            return None
        stripped = bytes(buf[body_start:candidate_end]).rstrip()
        value = _decode(stripped)
        if value is _INVALID:
            return None
        log.warning("a message's Content-Length did not match its body (%d bytes); used the body", len(stripped))
        self._consume(candidate_end)
        return value, stripped

    def _consume(self, n: int) -> None:
        del self.buffer[:n]
        self._scanned = 0


_INVALID = object()


class _Change:
    """A framed, not yet decoded `didChange` notification of `uri` (see `MessageReader.messages`)."""

    __slots__ = ("uri",)

    def __init__(self, uri: str) -> None:
        self.uri = uri


def _change_of(buf: bytearray, body: bytes, body_end: int) -> _Change | None:
    """A big body that is certainly a `didChange` notification (its head and tail are JSON structure of
    that shape) and is followed by the next message's header, so its framing is right: it may be left
    undecoded when a later change replaces its document."""
    if len(body) < SUPERSEDE_MIN or len(buf) < body_end + len(_HEADER_NAME):
        return None
    head = _CHANGE_HEAD.match(body, 0, _HEAD_SPAN)
    tail = _CHANGE_TAIL.search(body, len(body) - _TAIL_SPAN) if head is not None else None
    if head is None or tail is None or b'"method"' not in head.group("top") + tail.group("top"):
        return None
    uris = [m.group("uri") or m.group("uri2") for m in (head, tail) if m.group("uri") or m.group("uri2")]
    if len(uris) != 1 or bytes(buf[body_end:body_end + len(_HEADER_NAME)]).lower() != _HEADER_NAME:
        return None  # the text document exactly once, and the next message right after this body
    try:
        return _Change(json.loads(b'"' + uris[0] + b'"'))
    except ValueError:
        return None


def _is_did_change(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("method") == "textDocument/didChange" and "id" not in raw


def _replaced_document(raw: Any) -> str | None:
    """The uri of a `didChange` notification that replaces its document's whole text (a change without a
    range); None for anything else."""
    if not _is_did_change(raw):
        return None
    params = raw.get("params")
    if not isinstance(params, dict):
        return None
    doc, changes = params.get("textDocument"), params.get("contentChanges")
    if not isinstance(doc, dict) or not isinstance(doc.get("uri"), str) or not isinstance(changes, list):
        return None
    whole = any(isinstance(c, dict) and "range" not in c and isinstance(c.get("text"), str) for c in changes)
    return doc["uri"] if whole else None


def _find_header(buf: bytearray, start: int = 0) -> int:
    """Offset of the next `Content-Length:` (any case) at or after `start`, or -1.

    Lower-cased windows and a plain `find` are ~10x faster than a case-insensitive regex, which has no
    fast literal search: during an edit burst every byte of every (1 MB) body is searched once. Windows
    stop the search at the first hit (the usual one is right at `start`).
    """
    size, overlap = 64 * 1024, len(_HEADER_NAME) - 1
    pos = max(start, 0)
    while pos < len(buf):
        at = bytes(buf[pos:pos + size + overlap]).lower().find(_HEADER_NAME)
        if at >= 0:
            return pos + at
        pos += size
    return -1


def _decode(body: bytes) -> Any:
    """The JSON value of a body, or _INVALID (bad JSON or bad UTF-8)."""
    try:
        return json.loads(body)
    except ValueError:
        return _INVALID


def _message_id(raw: Any, body: bytes) -> int | str | None:
    if isinstance(raw, dict):
        msg_id = raw.get("id")
        return msg_id if isinstance(msg_id, int | str) and not isinstance(msg_id, bool) else None
    m = _ID.search(body)
    if m is None:
        return None
    try:
        value = json.loads(m.group(1))
    except ValueError:
        return None
    return value if isinstance(value, int | str) else None


def _leaf_errors(exc: BaseException) -> list[str]:
    """The innermost messages of a (nested) cattrs validation error."""
    inner = getattr(exc, "exceptions", None)
    if inner:
        return [msg for e in inner for msg in _leaf_errors(e)]
    return [f"{type(exc).__name__}: {exc}"] if not isinstance(exc, KeyError) else [f"missing {exc}"]


def describe_invalid(exc: BaseException) -> str:
    """A one-line account of why params did not validate: where, and what was wrong."""
    cause = exc.__cause__ or exc
    try:
        from cattrs import transform_error

        where = "; ".join(transform_error(cause)) if hasattr(cause, "exceptions") else ""
    except Exception:  # an older cattrs or an unexpected shape: the leaf messages still say it
        where = ""
    leaves = "; ".join(dict.fromkeys(_leaf_errors(cause)))
    return f"{where} ({leaves})" if where and leaves else where or leaves or str(exc)


def dispatch(protocol: JsonRPCProtocol, raw: Any, body: bytes) -> None:
    """Validate one decoded message and hand it to pygls; a request that fails gets an error reply."""
    if not isinstance(raw, dict):
        log.error("message is not a JSON object (batches are not supported): %r", body[:200])
        return
    try:
        message = protocol.structure_message(raw)
    except Exception as exc:
        method = raw.get("method")
        msg_id = _message_id(raw, body)
        text = describe_invalid(exc)
        log.error("invalid %s message %s: %s", method or "response", msg_id, text)
        if method is not None and "id" in raw:
            _reply_error(protocol, msg_id, JsonRpcInvalidParams(f"invalid params for {method}: {text}"))
        return
    try:
        protocol.handle_message(message)
    except Exception:
        log.exception("could not handle %s", raw.get("method") or "a message")
        if "method" in raw and "id" in raw:
            from pygls.exceptions import JsonRpcInternalError

            _reply_error(protocol, _message_id(raw, body), JsonRpcInternalError("the server failed on this request"))


def reject(protocol: JsonRPCProtocol, body: bytes) -> None:
    """A framed body that is not JSON: logged, and answered with ParseError when its id is readable."""
    log.error("message is not JSON: %r", body[:200])
    msg_id = _message_id(None, body)
    if msg_id is not None:
        _reply_error(protocol, msg_id, JsonRpcParseError("the message is not valid JSON"))


def _reply_error(protocol: JsonRPCProtocol, msg_id: int | str | None, error: JsonRpcException) -> None:
    try:
        protocol._send_response(msg_id, None, error.to_response_error())  # type: ignore[arg-type]
    except Exception:  # the transport may be gone
        log.debug("could not send an error reply", exc_info=True)


async def serve(stop_event: threading.Event, stdin: BinaryIO, protocol: JsonRPCProtocol,
                executor: Any = None) -> None:
    """Read stdin until EOF or `stop_event`, dispatching every framed message (reads run on `executor`,
    by default a reader thread of their own)."""
    loop = asyncio.get_running_loop()
    read1 = getattr(stdin, "read1", None)
    _widen_pipe(stdin)

    def read() -> bytes:
        # read1: whatever one read of the pipe returns (never blocks for more); else a line at a time
        return read1(CHUNK) if read1 is not None else stdin.readline()

    if executor is not None:
        async def read_async() -> bytes:
            return await loop.run_in_executor(executor, read)

        def queued() -> bool:
            return False

        def ready() -> list[bytes]:
            return []
    else:
        # a thread of its own: in the server's shared pool, reading the next message would wait behind
        # seconds-long index and lint jobs, and an edit burst would crawl in one message at a time
        read_async, queued, ready = _daemon_reader(loop, read)
    await serve_reader(stop_event, read_async, protocol, queued, ready)


def _widen_pipe(stdin: BinaryIO) -> None:
    """Ask for a 1 MiB pipe buffer on stdin (Linux; 64 KiB by default): a whole 20,000-line document then
    arrives in one or two reads instead of fifteen, each a hand-off between the reader thread and the loop."""
    try:
        import fcntl

        fcntl.fcntl(stdin.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (ImportError, OSError, ValueError, AttributeError):  # not a pipe, not Linux, or over the limit
        pass


def _daemon_reader(loop: asyncio.AbstractEventLoop, read: Callable[[], bytes]
                   ) -> tuple[Callable[[], Awaitable[bytes]], Callable[[], bool], Callable[[], list[bytes]]]:
    """`read()` on a daemon thread, up to READ_AHEAD reads ahead of the awaits of the returned function
    (the thread reads the pipe while the loop decodes and handles what came before; the bound keeps a
    client that writes faster than the server handles from filling the server's memory).

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, and one blocked reading a stdin
    that the client keeps open until the server has exited would hang the server's exit for good. A
    daemon thread is simply dropped when the server exits after the `exit` notification. Also returns
    whether reads are waiting to be handed over, and a function that takes every read already waiting."""
    wanted = threading.Semaphore(READ_AHEAD)
    results: asyncio.Queue[bytes] = asyncio.Queue()

    def deliver(data: bytes) -> None:
        try:
            loop.call_soon_threadsafe(results.put_nowait, data)
        except RuntimeError:  # the loop is closed: the server is exiting
            pass

    def pump() -> None:
        while True:
            wanted.acquire()
            try:
                data = read()
            except (OSError, ValueError):  # stdin closed under us: the end of the stream
                data = b""
            deliver(data)
            if not data:
                return

    threading.Thread(target=pump, name="torchbolt-stdin", daemon=True).start()

    async def read_async() -> bytes:
        data = await results.get()
        wanted.release()
        return data

    def ready() -> list[bytes]:
        out = []
        while not results.empty():
            out.append(results.get_nowait())
            wanted.release()
        return out

    return read_async, lambda: not results.empty(), ready


async def serve_reader(stop_event: threading.Event, read: Callable[[], Awaitable[bytes]],
                       protocol: JsonRPCProtocol, queued: Callable[[], bool] = lambda: False,
                       ready: Callable[[], list[bytes]] = list) -> None:
    """Frame and dispatch messages from `read()` (b"" at the end of the stream) until it ends or `stop_event`.

    Every read already waiting (`ready()`) is framed together with the awaited one: when the server falls
    behind, the backlog is framed at once and a whole-document change that a later one replaces is never
    decoded (`MessageReader.messages`).

    Sets `protocol.input_pending()`: whether more of the client's input is already here (part of a message
    in the buffer, or reads not handled yet). Debounced work (re-indexing, linting) waits while it is, so
    an edit burst is parsed and linted once, at its newest text.
    """
    reader = MessageReader()
    protocol.input_pending = lambda: bool(reader.buffer) or queued()  # type: ignore[attr-defined]
    protocol.superseded_changes = lambda: reader.superseded  # type: ignore[attr-defined]
    ended = False
    while not stop_event.is_set() and not ended:
        data = await read()
        if not data:
            break
        reader.feed(data)
        for more in ready():
            if not more:
                ended = True  # the end of the stream: handle what came before it, then stop
                break
            reader.feed(more)
        for raw, body in reader.messages(more_coming=not ended and queued()):
            dispatch(protocol, raw, body)
        for body in reader.rejected:
            reject(protocol, body)
        reader.rejected.clear()
