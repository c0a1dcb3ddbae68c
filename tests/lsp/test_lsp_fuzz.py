"""Hypothesis drives random edit sequences through the real server, with requests between edits.

One server session serves every sequence (the client runs on the test's event loop; hypothesis runs in
a worker thread and submits each LSP call to that loop). Every response is checked: no error, completion
edits single-line and containing the cursor; at the end of each sequence the server's copy of the text
equals the client's and its incrementally edited tree equals a fresh parse.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEQUENCES = 500

BASES = [
    "",
    "import lightning.pytorch as pl\n\n\nclass M(pl.LightningModule):\n    def training_step(self, batch, batch_idx):\n"
    '        loss = self(batch)\n        self.log("train_loss", loss, on_epoch=True)\n        return loss\n\n'
    "    def configure_optimizers(self):\n        return torch.optim.Adam(self.parameters())\n\n\n"
    'trainer = pl.Trainer(max_epochs=3, precision="16-mixed")\n',
    'from lightning.pytorch.callbacks import ModelCheckpoint\ncb = ModelCheckpoint(monitor="val_loss", mode="min")\n',
    "\tx = 1\r\n# comment ü 😀\rclass C:\n\tpass\n",
]
FRAGMENTS = st.sampled_from(
    [
        "def ",
        "    def ",
        "(",
        ")",
        ",",
        "=",
        '"',
        "'",
        '"""',
        ".",
        ":",
        "\n",
        "\r\n",
        "\r",
        "\t",
        " ",
        "self.",
        "self.log(",
        "pl.Trainer(",
        "Trainer(",
        'monitor="',
        "accelerator=",
        'precision="16',
        "class X(pl.LightningModule):\n",
        "😀",
        "ü",
        "\x00",
        "\ufffd",
        "#",
        "\\",
        '{"monitor": "',
        "ModelCheckpoint(",
        "on_step=",
        "[",
        "]",
        "{",
        "}",
    ]
)
TEXT = st.lists(st.one_of(FRAGMENTS, st.text(max_size=6)), max_size=4).map("".join)


def _units(ch: str, encoding: str) -> int:
    """Length of a character in the negotiated position encoding."""
    if encoding == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


def _units_len(s: str, encoding: str) -> int:
    return sum(_units(ch, encoding) for ch in s)


def _lines(text: str) -> list[str]:
    import re

    return re.split(r"\r\n|\r|\n", text)


def _offset(text: str, line: int, character: int, encoding: str) -> int:
    """Character offset of an LSP position, clamped like the server does."""
    import re

    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    if line >= len(starts):
        return len(text)
    lines = _lines(text)
    units = 0
    for i, ch in enumerate(lines[line]):
        if units >= character:
            return starts[line] + i
        units += _units(ch, encoding)
    return starts[line] + len(lines[line])


@st.composite
def sequences(draw: Any) -> tuple[str, list[tuple[str, Any]]]:
    base = draw(st.sampled_from(BASES))
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["edit", "edit", "full", "request"]))
        if op == "full":
            steps.append(("full", draw(TEXT)))
        elif op == "edit":
            steps.append(
                (
                    "edit",
                    (
                        draw(st.integers(0, 40)),
                        draw(st.integers(0, 90)),
                        draw(st.integers(0, 3)),
                        draw(st.integers(0, 30)),
                        draw(TEXT),
                    ),
                )
            )
        else:
            steps.append(
                (
                    "request",
                    (
                        draw(
                            st.sampled_from(
                                ["completion", "hover", "signature", "definition", "references", "symbols"]
                            )
                        ),
                        draw(st.integers(0, 45)),
                        draw(st.integers(0, 100)),
                    ),
                )
            )
        steps.append(("request", ("completion", draw(st.integers(0, 40)), draw(st.integers(0, 80)))))
    return base, steps


async def _request(client: Any, uri: str, text: str, kind: str, line: int, character: int) -> None:
    doc = types.TextDocumentIdentifier(uri=uri)
    pos = types.Position(line=line, character=character)
    if kind == "completion":
        result = await client.text_document_completion_async(
            types.CompletionParams(text_document=doc, position=pos)
        )
        items = result.items if isinstance(result, types.CompletionList) else (result or [])
        for item in items:
            edit = item.text_edit
            if isinstance(edit, types.TextEdit):
                assert edit.range.start.line == edit.range.end.line == line, item
                assert edit.range.start.character <= edit.range.end.character
    elif kind == "hover":
        await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos))
    elif kind == "signature":
        await client.text_document_signature_help_async(
            types.SignatureHelpParams(text_document=doc, position=pos)
        )
    elif kind == "definition":
        await client.text_document_definition_async(types.DefinitionParams(text_document=doc, position=pos))
    elif kind == "references":
        await client.text_document_references_async(
            types.ReferenceParams(
                text_document=doc, position=pos, context=types.ReferenceContext(include_declaration=True)
            )
        )
    else:
        await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc))


async def _run_sequence(client: Any, number: int, base: str, steps: list[tuple[str, Any]]) -> None:
    uri = (client.workspace_root / f"fuzz_{number}.py").as_uri()
    encoding = client.position_encoding
    assert encoding in ("utf-8", "utf-16", "utf-32")
    text = base
    version = 1
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )
    for op, arg in steps:
        if op == "request":
            kind, line, character = arg
            await _request(client, uri, text, kind, line, character)
            continue
        version += 1
        if op == "full":
            text = arg
            change: Any = types.TextDocumentContentChangeWholeDocument(text=text)
        else:
            line, character, dline, dchar, new = arg
            lines = _lines(text)
            line = min(line, len(lines) - 1)
            character = min(character, _units_len(lines[line], encoding))
            end_line = min(line + dline, len(lines) - 1)
            end_char = min(
                dchar if end_line != line else character + dchar, _units_len(lines[end_line], encoding)
            )
            start = _offset(text, line, character, encoding)
            end = max(start, _offset(text, end_line, end_char, encoding))
            if end == start:
                end_line, end_char = line, character
            text = text[:start] + new + text[end:]
            change = types.TextDocumentContentChangePartial(
                range=types.Range(
                    start=types.Position(line=line, character=character),
                    end=types.Position(line=end_line, character=end_char),
                ),
                text=new,
            )
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[change],
            )
        )
    state = await client.protocol.send_request_async("torchbolt/debugDocument", {"uri": uri})
    assert state.version == version
    assert state.text == text, (base, steps, encoding)
    assert state.treeMatchesFullParse, (base, steps)
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def test_random_edit_sequences(client):
    loop = asyncio.get_running_loop()
    counter = iter(range(10**9))

    @settings(
        max_examples=SEQUENCES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(sequences())
    def run(case: tuple[str, list[tuple[str, Any]]]) -> None:
        base, steps = case
        future = asyncio.run_coroutine_threadsafe(_run_sequence(client, next(counter), base, steps), loop)
        future.result(timeout=60)

    await asyncio.to_thread(run)
    assert next(counter) >= SEQUENCES
    status = await client.protocol.send_request_async("torchbolt/indexStatus", {})
    assert status.handlerErrors == 0
