"""Typed records of the catalog: plain frozen dataclasses, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Sentinel for "this parameter has no default (required)".
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()


@dataclass(frozen=True)
class Param:
    """One parameter of a hook or method, as written in source (annotation and default as source text)."""

    name: str
    annotation: str = ""
    default: str | None = None  # source text of the default; None means required
    kind: str = "positional"  # positional | keyword | var_positional | var_keyword

    def render(self, annotated: bool = True) -> str:
        prefix = {"var_positional": "*", "var_keyword": "**"}.get(self.kind, "")
        text = prefix + self.name
        if annotated and self.annotation:
            text += f": {self.annotation}"
        if self.default is not None:
            text += f" = {self.default}" if annotated and self.annotation else f"={self.default}"
        return text


@dataclass(frozen=True)
class LogRule:
    """Where `self.log` may be called from a hook, and its on_step/on_epoch defaults there."""

    default_on_step: bool
    default_on_epoch: bool
    allowed_on_step: tuple[bool, ...]
    allowed_on_epoch: tuple[bool, ...]


@dataclass(frozen=True)
class Hook:
    """A hook a user can override on a LightningModule, LightningDataModule or Callback."""

    name: str
    owner: str  # "module" | "datamodule" | "callback"
    params: tuple[Param, ...]  # without self
    returns: str
    doc: str  # when it runs, in a sentence or two
    entry_points: tuple[str, ...]  # subset of ("fit", "validate", "test", "predict")
    rank: int = 100  # lower = used more often (completion order)
    body: str = "pass"  # snippet body; ${n:...} placeholders allowed
    only_if_overridden: bool = False
    category: str = "hook"  # step | hook | data | optimization | checkpoint | config

    def signature(self, annotated: bool = True) -> str:
        params = ", ".join(["self", *(p.render(annotated) for p in self.params)])
        ret = f" -> {self.returns}" if annotated and self.returns else ""
        return f"def {self.name}({params}){ret}"

    def required_positional(self) -> int:
        return sum(1 for p in self.params if p.default is None and p.kind == "positional")


@dataclass(frozen=True)
class Arg:
    """A constructor/method argument: Trainer, a callback, `self.log`."""

    name: str
    annotation: str
    default: Any  # the Python default value (REQUIRED if none)
    doc: str
    types: tuple[str, ...] = ()  # accepted kinds: bool int float str none timedelta dict list path callable object
    choices: tuple[Any, ...] = ()  # enumerated allowed values (when finite)
    choices_open: bool = False  # True when `choices` are suggestions, other values of the types are allowed
    constraint: str = ""  # human-readable numeric constraint, e.g. ">= -1"
    effective_default: str = ""  # what None resolves to, when it differs

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def default_text(self) -> str:
        return "required" if self.required else repr(self.default)


@dataclass(frozen=True)
class Removed:
    """A 1.x name that 2.x removed, with the replacement a user should write."""

    name: str
    replacement: str  # sentence saying what to do instead
    removed_in: str = "2.0"
    rewrite: str | None = None  # mechanical rewrite template for a Trainer kwarg; {value} is the old value source
    owner: str = "trainer"  # trainer | module | callback | datamodule | fit | validate | test


@dataclass(frozen=True)
class Member:
    """A member of LightningModule that `self.` completion offers."""

    name: str
    kind: str  # property | method | attribute
    signature: str
    doc: str


@dataclass(frozen=True)
class HookPoint:
    """Who gets called at a hook point, in order: callbacks first unless `module_first`."""

    name: str
    callbacks: bool = True
    module: bool = True
    datamodule: bool = False
    module_first: bool = False
    datamodule_first: bool = True  # the DataModule runs before callbacks (setup/teardown), else after them
    monitoring_last: bool = False  # monitoring callbacks (ModelCheckpoint, EarlyStopping) run after the module
    per_owner_state: bool = False  # state_dict/load_state_dict: one value per owner, keyed, not a plain call
    strategy: bool = False  # the strategy's own lifecycle hook runs last (after callbacks and module)


@dataclass(frozen=True)
class CallbackSpec:
    name: str
    module: str  # import path inside torchbolt, e.g. "torchbolt.callbacks"
    doc: str
    args: tuple[Arg, ...] = field(default_factory=tuple)
    extra_kwargs: bool = False  # takes **kwargs (passed on to another library): other keywords are allowed

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)
