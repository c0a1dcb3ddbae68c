"""Which of Lightning 2.6's public `lightning.pytorch` names torchbolt provides at the same path.

A development tool (it imports the real Lightning, which torchbolt itself never does):

    python tools/api_coverage.py                     # writes docs/api-coverage.md
    python tools/api_coverage.py --write-names       # also regenerates torchbolt/compat/lightning_names.py
    python tools/api_coverage.py --json missing.json # the missing names, for tests/compat/test_api_coverage.py

A module's public names are its `__all__`, or else the public classes and functions defined in it (or, for
a package, in its submodules; for `utilities.*`, also those it re-exports from Fabric) and its typing aliases. A name is provided when `getattr` on torchbolt's
module at the same path (see `torchbolt.compat.paths`) returns it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
import textwrap
import typing
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "runtime"))

from torchbolt.compat.paths import torchbolt_path  # noqa: E402
from torchbolt.compat.unsupported import NOT_PROVIDED, _module_alternative  # noqa: E402

DOC = ROOT / "docs" / "api-coverage.md"
NAMES_FILE = ROOT / "runtime" / "torchbolt" / "compat" / "lightning_names.py"
_TYPING_NAMES = set(dir(typing))
_FACADE_SOURCES = ("lightning", "lightning_fabric", "lightning_utilities")


@dataclass
class ModuleCoverage:
    """One Lightning module: its public names and which of them torchbolt provides."""

    rel: str  # relative to lightning.pytorch ("" for the package)
    names: list[str]
    provided: set[str] = field(default_factory=set)
    module_missing: bool = False

    @property
    def lightning_name(self) -> str:
        return "lightning.pytorch" + (f".{self.rel}" if self.rel else "")


def lightning_modules() -> list[str]:
    """Every public module of lightning.pytorch (no `_private` part), the package first."""
    import lightning.pytorch as lp

    names = ["lightning.pytorch"]
    for info in pkgutil.walk_packages(lp.__path__, "lightning.pytorch."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _is_alias(name: str, value: object) -> bool:
    """A typing alias defined in the module (STEP_OUTPUT, OptimizerLRScheduler, ...)."""
    origin = typing.get_origin(value)
    return origin is not None and name not in _TYPING_NAMES and (name[0].isupper())


def public_names(module: object) -> list[str]:
    """The module's public API: `__all__`, else what it defines (or its subpackages define) and aliases."""
    explicit = getattr(module, "__all__", None)
    if explicit is not None:
        return sorted(set(explicit))
    modname = module.__name__  # type: ignore[attr-defined]
    out = []
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        owner = getattr(value, "__module__", None)
        defined_here = isinstance(owner, str) and (owner == modname or owner.startswith(modname + "."))
        # lightning.pytorch.utilities.* largely re-export Fabric's helpers (rank_zero_only, ...): count those
        defined_here = defined_here or (modname.startswith("lightning.pytorch.utilities") and isinstance(owner, str)
                                        and owner.split(".")[0] in _FACADE_SOURCES
                                        and not owner.startswith("lightning.pytorch"))
        # typing aliases count where they are defined (utilities.types, cli), not in every module importing them
        alias_home = modname.endswith((".types", ".cli"))
        if ((inspect.isclass(value) or inspect.isfunction(value)) and defined_here) or (
                alias_home and _is_alias(name, value)):
            out.append(name)
    return sorted(out)


def torchbolt_provides(rel: str, names: list[str]) -> tuple[set[str], bool]:
    """(the names torchbolt's module at the same path has, whether that module is missing)."""
    try:
        module = importlib.import_module(torchbolt_path(rel))
    except ImportError:
        return set(), True
    provided = set()
    for name in names:
        try:
            getattr(module, name)
        except (AttributeError, ImportError):
            continue
        provided.add(name)
    return provided, False


def collect() -> list[ModuleCoverage]:
    out = []
    for full in lightning_modules():
        try:
            module = importlib.import_module(full)
        except Exception as err:  # an optional dependency missing: say so instead of failing the table
            print(f"api_coverage: skipped {full}: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        rel = full[len("lightning.pytorch."):] if full != "lightning.pytorch" else ""
        names = public_names(module)
        provided, missing = torchbolt_provides(rel, names)
        out.append(ModuleCoverage(rel, names, provided, missing))
    return out


def render(coverage: list[ModuleCoverage]) -> str:
    """docs/api-coverage.md."""
    import lightning

    total = sum(len(m.names) for m in coverage)
    have = sum(len(m.provided) for m in coverage)
    lines = [
        "# Lightning API coverage",
        "",
        f"Public names of Lightning {lightning.__version__}'s `lightning.pytorch` modules and whether torchbolt "
        "provides each at the same path (`lightning.pytorch.X` -> `torchbolt.X`; inside `torchbolt run` / "
        "`torchbolt fit` and the editor's runs, Lightning imports resolve there). Generated by "
        "`python tools/api_coverage.py`; do not edit by hand.",
        "",
        "A name torchbolt does not provide raises an error naming the feature and the nearest supported "
        "alternative (`NotProvidedError`, an `ImportError`, in `from ... import`; `NotProvidedAttributeError`, "
        "an `AttributeError`, on attribute access, so `hasattr` still works); a module it does not provide fails "
        "at import the same way. "
        "`torchbolt run --engine lightning SCRIPT` runs a script on the real Lightning instead.",
        "",
        f"**{have} of {total} names provided** in {len(coverage)} modules.",
        "",
        "| module | provided | names |",
        "|---|---|---|",
    ]
    for m in coverage:
        state = "module not provided" if m.module_missing else f"{len(m.provided)}/{len(m.names)}"
        lines.append(f"| `{m.lightning_name}` | {state} | {len(m.names)} |")
    lines += ["", "## By module", ""]
    for m in coverage:
        if not m.names:
            continue
        lines.append(f"### `{m.lightning_name}`")
        lines.append("")
        if m.module_missing:
            lines.append(f"Not provided; alternative: {_module_alternative(m.rel)}.")
            lines.append("")
            continue
        lines.append("| name | torchbolt | alternative |")
        lines.append("|---|---|---|")
        for name in m.names:
            if name in m.provided:
                lines.append(f"| `{name}` | yes | |")
            else:
                feature, alt = NOT_PROVIDED.get((m.rel, name), (None, _module_alternative(m.rel)))
                lines.append(f"| `{name}` | no | {alt} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_names(coverage: list[ModuleCoverage]) -> str:
    """torchbolt/compat/lightning_names.py: every Lightning public name per module (torch-free data)."""
    import lightning

    lines = [
        f'"""Generated by tools/api_coverage.py --write-names from Lightning {lightning.__version__}: the public names',
        "of each `lightning.pytorch` module (relative path; \"\" is the package). Used to tell a Lightning name",
        'torchbolt lacks (NotProvidedError with an alternative) from a typo (AttributeError)."""',
        "",
        "LIGHTNING_NAMES: dict[str, frozenset[str]] = {",
    ]
    for m in coverage:
        if m.names:
            lines.append(f'    "{m.rel}": frozenset({{')
            body = textwrap.wrap(" ".join(f'"{n}",' for n in m.names), width=108, break_long_words=False)
            lines += [f"        {chunk}" for chunk in body]
            lines.append("    }),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DOC, help="the Markdown table to write")
    parser.add_argument("--write-names", action="store_true", help=f"also regenerate {NAMES_FILE.name}")
    parser.add_argument("--names-output", type=Path, default=NAMES_FILE)
    parser.add_argument("--json", type=Path, help="write the names torchbolt lacks as JSON {module: [names]}")
    args = parser.parse_args(argv)
    coverage = collect()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(coverage), encoding="utf-8")
    if args.write_names:
        args.names_output.write_text(render_names(coverage), encoding="utf-8")
    if args.json:
        missing = {m.rel: sorted(set(m.names) - m.provided) for m in coverage}
        modules = sorted(m.rel for m in coverage if m.module_missing)
        args.json.write_text(json.dumps({"missing": missing, "missing_modules": modules}, indent=1))
    total = sum(len(m.names) for m in coverage)
    have = sum(len(m.provided) for m in coverage)
    print(f"{have}/{total} Lightning public names provided by torchbolt ({len(coverage)} modules); "
          f"table in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
