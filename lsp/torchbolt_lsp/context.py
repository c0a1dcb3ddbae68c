"""What the client can do and what the editor asked for, read once at `initialize`.

Features read this object (`server.context`), never raw client capabilities, so every capability
decision lives in one place and can be tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types


@dataclass(frozen=True)
class LintSettings:
    """`settings.lint`: rule codes or prefixes to select / ignore (empty select = the defaults)."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSettings:
    """`settings.run`: interpreter for training runs (None = the server's own) and default Trainer kwargs."""

    interpreter: str | None = None
    trainer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """The editor's `initializationOptions.settings`, validated; unknown keys are ignored."""

    lint: LintSettings = LintSettings()
    inlay_hints_enabled: bool = True
    run: RunSettings = RunSettings()


@dataclass(frozen=True)
class ClientContext:
    """Client capabilities and initialization options that the features care about."""

    client_name: str = ""
    snippets: bool = False
    insert_text_modes: tuple[int, ...] = ()  # InsertTextMode values the client honours per item
    completion_markdown: bool = False
    hover_markdown: bool = False
    signature_markdown: bool = False
    label_details: bool = False
    resolve_properties: tuple[str, ...] = ()  # completionItem fields the client can resolve lazily
    active_parameter_support: bool = False
    pull_diagnostics: bool = False
    related_information: bool = False
    code_action_literals: bool = False
    inlay_hints: bool = False
    inlay_hint_refresh: bool = False
    code_lens: bool = False
    code_lens_refresh: bool = False
    diagnostic_refresh: bool = False
    work_done_progress: bool = False
    show_document: bool = False
    watched_files_dynamic: bool = False
    watched_files_relative_patterns: bool = False
    configuration: bool = False
    position_encoding: str = "utf-16"
    hierarchical_symbols: bool = False
    definition_link: bool = False
    trusted: bool = False
    trust_given: bool = False  # initializationOptions said `trusted` (true or false): no prompt, no store
    message_request_toasts: bool = False  # showMessageRequest renders as a non-modal toast (VS Code)
    run_status_item: bool = False  # the client renders torchbolt/runState itself: no work-done progress for runs
    settings: Settings = Settings()
    root_paths: tuple[str, ...] = ()

    @property
    def markup_kind(self) -> types.MarkupKind:
        """Markdown when the client renders it in hovers, else plain text."""
        return types.MarkupKind.Markdown if self.hover_markdown else types.MarkupKind.PlainText


def _get(obj: Any, *path: str) -> Any:
    """Follow attribute names through optional capability objects; None when any link is missing."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


def _markdown_in(formats: Any) -> bool:
    return bool(formats) and types.MarkupKind.Markdown in formats


def _as_bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _as_str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if isinstance(v, (str, int)))
    return ()


def _plain(value: Any) -> Any:
    """initializationOptions arrive as dicts or as pygls' attribute objects; normalise to dicts/lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {str(k): _plain(v) for k, v in value._asdict().items()}
    return value


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def parse_settings(options: Any) -> tuple[bool, Settings]:
    """Read `{"trusted": bool, "settings": {...}}` from initializationOptions; bad shapes fall back to defaults."""
    options = _plain(options)
    if not isinstance(options, dict):
        return False, Settings()
    trusted = _as_bool(options.get("trusted"), False)
    raw = options.get("settings")
    raw = raw if isinstance(raw, dict) else {}
    lint = _section(raw, "lint")
    hints = _section(raw, "inlayHints")
    run = _section(raw, "run")
    interpreter = run.get("interpreter")
    trainer = run.get("trainer")
    settings = Settings(
        lint=LintSettings(select=_as_str_tuple(lint.get("select")), ignore=_as_str_tuple(lint.get("ignore"))),
        inlay_hints_enabled=_as_bool(hints.get("enable"), True),
        run=RunSettings(
            interpreter=interpreter if isinstance(interpreter, str) and interpreter else None,
            trainer=dict(trainer) if isinstance(trainer, dict) else {},
        ),
    )
    return trusted, settings


#: clientInfo names of editors that show `window/showMessageRequest` as a toast that does not block typing.
_TOAST_CLIENTS = ("visual studio code", "code - oss", "code-server", "vscodium", "cursor", "windsurf")


def _get_option(options: Any, name: str) -> Any:
    options = _plain(options)
    return options.get(name) if isinstance(options, dict) else None


def trust_given(options: Any) -> bool:
    """True when initializationOptions say `trusted` explicitly (the editor decides trust itself)."""
    options = _plain(options)
    return isinstance(options, dict) and isinstance(options.get("trusted"), bool)


def message_request_toasts(client_name: str, options: Any) -> bool:
    """Whether `window/showMessageRequest` is a non-modal toast in this client: initializationOptions
    `messageRequestToasts` when given, else known VS Code family clients by their clientInfo name."""
    options = _plain(options)
    said = options.get("messageRequestToasts") if isinstance(options, dict) else None
    if isinstance(said, bool):
        return said
    name = client_name.lower()
    return any(known in name for known in _TOAST_CLIENTS)


def build_context(params: types.InitializeParams, position_encoding: str = "utf-16") -> ClientContext:
    """Turn the `initialize` request into a ClientContext (`position_encoding` is the one pygls negotiated)."""
    caps = params.capabilities
    td = caps.text_document if caps else None
    ws = caps.workspace if caps else None
    item = _get(td, "completion", "completion_item")
    sig_info = _get(td, "signature_help", "signature_information")
    trusted, settings = parse_settings(params.initialization_options)
    roots: list[str] = []
    from pygls.uris import to_fs_path  # local: keeps this module importable without pygls internals at top

    for folder in params.workspace_folders or []:
        path = to_fs_path(folder.uri)
        if path:
            roots.append(path)
    if not roots:
        root = (to_fs_path(params.root_uri) if params.root_uri else None) or params.root_path
        if root:
            roots.append(root)
    client_name = params.client_info.name if params.client_info else ""
    return ClientContext(
        client_name=client_name,
        snippets=bool(_get(item, "snippet_support")),
        insert_text_modes=tuple(int(v) for v in (_get(item, "insert_text_mode_support", "value_set") or ())),
        completion_markdown=_markdown_in(_get(item, "documentation_format")),
        hover_markdown=_markdown_in(_get(td, "hover", "content_format")),
        signature_markdown=_markdown_in(_get(sig_info, "documentation_format")),
        label_details=bool(_get(item, "label_details_support")),
        resolve_properties=tuple(_get(item, "resolve_support", "properties") or ()),
        active_parameter_support=bool(_get(sig_info, "active_parameter_support")),
        pull_diagnostics=_get(td, "diagnostic") is not None,
        related_information=bool(_get(td, "publish_diagnostics", "related_information")),
        code_action_literals=_get(td, "code_action", "code_action_literal_support") is not None,
        inlay_hints=_get(td, "inlay_hint") is not None,
        inlay_hint_refresh=bool(_get(ws, "inlay_hint", "refresh_support")),
        code_lens=_get(td, "code_lens") is not None,
        code_lens_refresh=bool(_get(ws, "code_lens", "refresh_support")),
        diagnostic_refresh=bool(_get(ws, "diagnostics", "refresh_support")),
        work_done_progress=bool(_get(caps, "window", "work_done_progress")),
        show_document=bool(_get(caps, "window", "show_document", "support")),
        watched_files_dynamic=bool(_get(ws, "did_change_watched_files", "dynamic_registration")),
        watched_files_relative_patterns=bool(
            _get(ws, "did_change_watched_files", "relative_pattern_support")
        ),
        configuration=bool(_get(ws, "configuration")),
        position_encoding=position_encoding,
        hierarchical_symbols=bool(_get(td, "document_symbol", "hierarchical_document_symbol_support")),
        definition_link=bool(_get(td, "definition", "link_support")),
        trusted=trusted,
        trust_given=trust_given(params.initialization_options),
        message_request_toasts=message_request_toasts(client_name, params.initialization_options),
        run_status_item=_as_bool(_get_option(params.initialization_options, "runStatusItem"), False),
        settings=settings,
        root_paths=tuple(roots),
    )
