"""A server that cannot be wedged: raw stdio bytes in, every request answered, framing resynchronised,
edit bursts coalesced. No sleeps: each step waits for the reply it expects.

The timing target of the edit burst (500 full changes of a 20,000-line file, then a code lens, in
<= 1 s) is measured by `bench/lsp_latency.py --burst`; here the behaviour is asserted: the reply
arrives and the tree was parsed for the newest text only.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from torchbolt_lsp.transport import MAX_BODY, MessageReader

REPLY_TIMEOUT_S = 60.0  # a generous bound for a loaded CI box; replies normally take milliseconds


def frame(message: dict[str, Any] | bytes, length: int | None = None) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body


class RawClient:
    """The server over pipes, written to byte by byte as a test wishes; replies are read on a thread."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "torchbolt_lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.next_id = 1
        reply = self.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
        assert "result" in reply, reply
        self.notify("initialized", {})

    def _read(self) -> None:
        reader = MessageReader()
        assert self.proc.stdout is not None
        while data := self.proc.stdout.read1(65536):
            reader.feed(data)
            for raw, _ in reader.messages():
                self.inbox.put(raw)
        self.inbox.put(None)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self.send(frame({"jsonrpc": "2.0", "method": method, "params": params}))

    def request(self, method: str, params: Any, raw: bytes | None = None) -> dict[str, Any]:
        msg_id = self.next_id
        self.next_id += 1
        self.send(raw if raw is not None else frame({"jsonrpc": "2.0", "id": msg_id, "method": method,
                                                     "params": params}))
        return self.reply(msg_id)

    def reply(self, msg_id: int) -> dict[str, Any]:
        """Wait for the reply to `msg_id` (server requests and notifications on the way are skipped)."""
        while True:
            message = self.inbox.get(timeout=REPLY_TIMEOUT_S)
            assert message is not None, b"".join(self.stderr[-40:]).decode(errors="replace")
            if message.get("id") == msg_id and "method" not in message:
                return message
            if "method" in message and "id" in message:  # a server request (registerCapability...): accept
                self.send(frame({"jsonrpc": "2.0", "id": message["id"], "result": None}))

    def alive(self) -> bool:
        return "result" in self.request("torchbolt/debugModules", {})

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("wedge")
    (root / "pyproject.toml").write_text("[project]\nname = 'w'\n")
    client = RawClient(root)
    yield client
    client.close()


def _hover(uri: str, line: Any, character: Any) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


# ------------------------------------------------------------------------------------------ params
@pytest.mark.parametrize(("params", "says"), [
    (_hover("file:///w/m.py", 0, -1), "Position.character should be in range"),
    (None, "expected HoverParams @ $.params"),
    (_hover("file:///w/m.py", "x", 0), "expected int @ $.params.position.line"),
    ({"textDocument": {"uri": 7}}, "$.params"),
], ids=["negative-character", "params-null", "wrong-type", "missing-position"])
def test_invalid_params_get_an_invalid_params_error(raw: RawClient, params: Any, says: str):
    reply = raw.request("textDocument/hover", params)
    assert reply["error"]["code"] == -32602, reply
    assert says in reply["error"]["message"] and "textDocument/hover" in reply["error"]["message"]
    assert raw.alive()


def test_a_request_without_params_and_one_with_a_bad_id_are_answered(raw: RawClient):
    reply = raw.request("textDocument/completion", None, raw=frame({"jsonrpc": "2.0", "id": raw.next_id,
                                                                   "method": "textDocument/completion"}))
    assert reply["error"]["code"] == -32602 and "required field missing" in reply["error"]["message"]
    assert raw.alive()


def test_unparsable_json_with_a_readable_id_gets_a_parse_error(raw: RawClient):
    msg_id = raw.next_id
    raw.next_id += 1
    raw.send(frame(b'{"jsonrpc": "2.0", "id": %d, "method": "textDocument/hover", "params": {' % msg_id))
    assert raw.reply(msg_id)["error"]["code"] == -32700
    assert raw.alive()


# ----------------------------------------------------------------------------------------- framing
def test_garbage_and_bad_headers_are_skipped(raw: RawClient):
    raw.send(b"hello there\r\n\r\nContent-Length: abc\r\n\r\nContent-Type: x\r\n\r\n")
    assert raw.alive()


def test_huge_content_length_is_refused_not_allocated(raw: RawClient):
    raw.send(b"Content-Length: 99999999999999\r\n\r\n{}")
    assert raw.alive()
    raw.send(b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    assert raw.alive()
    # logged, not a MemoryError (stderr is drained by another thread: the line may trail the reply)
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while not any(b"over the" in line for line in raw.stderr) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(b"over the" in line for line in raw.stderr)


def test_wrong_lengths_resynchronise(raw: RawClient):
    first, second = raw.next_id, raw.next_id + 1
    raw.next_id += 2
    one = json.dumps({"jsonrpc": "2.0", "id": first, "method": "torchbolt/debugModules", "params": {}}).encode()
    two = json.dumps({"jsonrpc": "2.0", "id": second, "method": "torchbolt/debugModules", "params": {}}).encode()
    # declared too long: the next header shows where the first message ends
    raw.send(frame(one, len(one) + 40) + frame(two))
    assert "result" in raw.reply(first) and "result" in raw.reply(second)
    # declared too short, with the next header glued to the body
    third = raw.next_id
    raw.next_id += 1
    three = json.dumps({"jsonrpc": "2.0", "id": third, "method": "torchbolt/debugModules", "params": {}}).encode()
    raw.send(frame(three, len(three) - 5))
    assert "result" in raw.reply(third)
    # declared too long with nothing after it: the body is complete JSON, so it is used without waiting
    fourth = raw.next_id
    raw.next_id += 1
    four = json.dumps({"jsonrpc": "2.0", "id": fourth, "method": "torchbolt/debugModules", "params": {}}).encode()
    raw.send(frame(four, len(four) + 1000))
    assert "result" in raw.reply(fourth)


# ------------------------------------------------------------------------------------- edit bursts
def test_an_edit_burst_parses_only_the_newest_text(raw: RawClient, tmp_path: Path):
    uri = (tmp_path / "burst.py").as_uri()
    base = "import lightning as L\n\n\nclass M(L.LightningModule):\n    def training_step(self, b, i):\n" \
           "        return b\n"
    raw.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                         "text": base}})
    for version in range(2, 52):
        raw.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                              "contentChanges": [{"text": base + f"# edit {version}\n"}]})
    lenses = raw.request("textDocument/codeLens", {"textDocument": {"uri": uri}})
    assert "result" in lenses, lenses
    state = raw.request("torchbolt/debugDocument", {"uri": uri})["result"]
    assert state["version"] == 51 and state["text"].endswith("# edit 51\n")
    assert state["treeParses"] <= 2  # the newest text (and at most the opened one), never each version
    assert state["treeMatchesFullParse"]


def test_a_burst_with_its_code_lens_request_indexes_and_lints_only_the_newest_text(raw: RawClient, tmp_path: Path):
    """Open, 60 whole-text changes and a code-lens request arrive in one write (a formatter run on a busy
    pipe): the lens answers for the newest version, the document's facts are extracted for at most the
    opened text and the newest one, and the lint runs the same way; diagnostics go out for the newest."""
    uri = (tmp_path / "burst_lint.py").as_uri()
    base = "import lightning as L\n\n\nclass M(L.LightningModule):\n    def training_step(self, b, i):\n" \
           "        self.log('loss_step', 1.0)\n        return b\n"
    frames = [frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": base}}})]
    for version in range(2, 62):
        frames.append(frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": f"# {version}\n" + base}]}}))
    lens_id = raw.next_id
    raw.next_id += 1
    frames.append(frame({"jsonrpc": "2.0", "id": lens_id, "method": "textDocument/codeLens",
                         "params": {"textDocument": {"uri": uri}}}))
    raw.send(b"".join(frames))
    lenses = raw.reply(lens_id)["result"]
    assert {lens["range"]["start"]["line"] for lens in lenses} == {4}  # `class M` moved down by one line
    published = None
    while published is None:  # the debounced lint of the newest text publishes with its version
        message = raw.inbox.get(timeout=REPLY_TIMEOUT_S)
        assert message is not None
        params = message.get("params") or {}
        if message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri:
            assert params.get("version") in (1, 61), params  # never an intermediate version
            if params.get("version") == 61:
                published = params
    state = raw.request("torchbolt/debugDocument", {"uri": uri})["result"]
    assert state["version"] == 61
    assert 1 <= state["indexRuns"] <= 2 and 1 <= state["lintRuns"] <= 2, state


# ------------------------------------------------------------------------------------ reader (unit)
def test_reader_frames_split_glued_and_garbage_input():
    reader = MessageReader()
    one, two = frame({"id": 1}), frame({"id": 2})
    stream = b"junk\r\n" + one + two[:7]
    for i in range(0, len(stream), 3):  # byte-by-byte-ish arrival
        reader.feed(stream[i:i + 3])
    assert [raw for raw, _ in reader.messages()] == [{"id": 1}]
    reader.feed(two[7:])
    assert [raw for raw, _ in reader.messages()] == [{"id": 2}]
    assert reader.skipped == len(b"junk\r\n")


def test_reader_keeps_bounded_memory_on_endless_garbage():
    reader = MessageReader()
    for _ in range(200):
        reader.feed(b"x" * 65536)
        assert reader.messages() == []
        assert len(reader.buffer) < 64
    reader.feed(frame({"ok": True}))
    assert [raw for raw, _ in reader.messages()] == [{"ok": True}]


def test_reader_does_not_take_a_header_inside_a_string_for_a_message_end():
    body = json.dumps({"id": 3, "text": "Content-Length: 5\r\n\r\n{}"}).encode()
    reader = MessageReader()
    data = frame(body)
    reader.feed(data[: len(data) - 10])
    assert reader.messages() == []  # waits for the rest instead of cutting at the quoted header
    reader.feed(data[len(data) - 10:])
    assert [raw["id"] for raw, _ in reader.messages()] == [3]


def test_tcp_uses_the_same_resynchronising_reader():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "torchbolt_lsp", "--tcp", f"127.0.0.1:{port}", "--log-level",
                             "INFO"], stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait for the listening socket (logged), not for a fixed time
            if b"serving on" in line:
                break
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining: a full pipe blocks
        with socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_S) as conn:
            conn.sendall(b"garbage\r\n\r\nContent-Length: 99999999999999\r\n\r\n"
                         + frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                  "params": {"processId": None, "rootUri": None, "capabilities": {}}})
                         + frame({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": None}))
            reader = MessageReader()
            replies: dict[int, dict[str, Any]] = {}
            while len(replies) < 2:
                data = conn.recv(65536)
                assert data, "the server closed the connection"
                reader.feed(data)
                replies.update({raw["id"]: raw for raw, _ in reader.messages() if "id" in raw})
        assert "capabilities" in replies[1]["result"]
        assert replies[2]["error"]["code"] == -32602
    finally:
        proc.kill()
        proc.wait(timeout=30)


# --------------------------------------------------------------- superseded whole-document changes
BIG = "x = 1  # \"quoted\" and \\ backslashes }]} \n" * 1200  # over SUPERSEDE_MIN, with JSON-escaped bytes


def change(uri: str, version: int, text: str, order: str = "vscode", **extra: Any) -> dict[str, Any]:
    """A didChange with the key orders real clients write (VS Code, pygls, Neovim's change list first)."""
    doc = {"uri": uri, "version": version}
    changes = [{"text": text}]
    if order == "vscode":
        return {"jsonrpc": "2.0", "method": "textDocument/didChange",
                "params": {"textDocument": doc, "contentChanges": changes}, **extra}
    if order == "pygls":
        return {"params": {"textDocument": {"version": version, "uri": uri}, "contentChanges": changes},
                "method": "textDocument/didChange", "jsonrpc": "2.0", **extra}
    return {"jsonrpc": "2.0", "method": "textDocument/didChange",
            "params": {"contentChanges": changes, "textDocument": doc}, **extra}


def framed_versions(reader: MessageReader) -> list[tuple[str, int] | str]:
    out: list[tuple[str, int] | str] = []
    for raw, _ in reader.messages():
        params = raw.get("params") or {}
        doc = params.get("textDocument") or {}
        out.append((doc["uri"][-1], doc["version"]) if raw.get("method") == "textDocument/didChange"
                   else raw.get("method"))
    return out


@pytest.mark.parametrize("order", ["vscode", "pygls", "neovim"])
def test_reader_never_decodes_a_whole_document_change_that_a_later_one_replaces(order: str, monkeypatch: Any):
    import torchbolt_lsp.transport as transport

    decoded: list[int] = []
    real = transport._decode
    monkeypatch.setattr(transport, "_decode", lambda body: decoded.append(len(body)) or real(body))
    reader = MessageReader()
    for version in range(2, 6):  # four changes of a, one of b between them
        reader.feed(frame(change("file:///a", version, f"# {version}\n" + BIG, order)))
        if version == 3:
            reader.feed(frame(change("file:///b", 7, BIG, order)))
    reader.feed(frame({"jsonrpc": "2.0", "id": 9, "method": "textDocument/hover", "params": {}}))
    assert framed_versions(reader) == [("b", 7), ("a", 5), "textDocument/hover"]
    assert reader.superseded == 3 and len(decoded) == 3  # b, the newest a and the hover only


def test_reader_keeps_changes_that_a_request_between_them_may_read():
    reader = MessageReader()
    reader.feed(frame(change("file:///a", 2, BIG)) + frame(change("file:///a", 3, BIG))
                + frame({"jsonrpc": "2.0", "id": 1, "method": "textDocument/hover", "params": {}})
                + frame(change("file:///a", 4, BIG)) + frame(change("file:///a", 5, BIG)))
    assert framed_versions(reader) == [("a", 3), "textDocument/hover", ("a", 5)]
    assert reader.superseded == 2


def test_reader_decodes_changes_it_cannot_prove_are_replaced():
    """Kept: a partial change that ends the backlog (the earlier whole text is its base), a change that is
    also a request (it has an id: it gets an answer), a small body and the newest change of each document."""
    partial = {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": "file:///a", "version": 3},
        "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                            "text": "y" + BIG}]}}
    reader = MessageReader()
    reader.feed(frame(change("file:///a", 2, BIG)) + frame(partial))
    assert framed_versions(reader) == [("a", 2), ("a", 3)] and reader.superseded == 0
    reader.feed(frame(change("file:///a", 4, BIG, id=5)) + frame(change("file:///a", 5, BIG)))
    assert framed_versions(reader) == [("a", 4), ("a", 5)] and reader.superseded == 0
    reader.feed(frame(change("file:///a", 6, "small")) + frame(change("file:///a", 7, "small")))
    assert framed_versions(reader) == [("a", 6), ("a", 7)]
    # the last complete message waits for no successor: it is decoded as soon as it is whole
    reader.feed(frame(change("file:///a", 8, BIG)))
    assert framed_versions(reader) == [("a", 8)]


def test_a_backlog_of_big_whole_text_changes_ends_at_the_newest_text(raw: RawClient, tmp_path: Path):
    """A formatter's burst on a big file in one write: the server keeps the newest text, answers the request
    after it, and skipped decoding changes a later one replaced."""
    uri = (tmp_path / "big.py").as_uri()
    text = "import lightning as L\n\n\nclass M(L.LightningModule):\n    pass\n" + BIG
    frames = [frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}}})]
    frames += [frame(change(uri, v, f"# v{v}\n" + text, order="pygls")) for v in range(2, 22)]
    state_id = raw.next_id
    raw.next_id += 1
    frames.append(frame({"jsonrpc": "2.0", "id": state_id, "method": "torchbolt/debugDocument",
                         "params": {"uri": uri}}))
    raw.send(b"".join(frames))
    state = raw.reply(state_id)["result"]
    assert state["version"] == 21 and state["text"] == "# v21\n" + text
    assert state["supersededChanges"] >= 1, state  # at least one read held two of the 1.3 MB backlog
