"""Run under `torchbolt run`: every Lightning name/module torchbolt lacks (from `api_coverage.py --json`)
must fail with torchbolt's explanation, never a bare AttributeError, "cannot import name" or "No module named"."""

from __future__ import annotations

import importlib
import json
import sys

if __name__ == "__main__":
    data = json.load(open(sys.argv[1]))
    missing_modules = set(data["missing_modules"])
    failures = []
    for rel in sorted(missing_modules):
        try:
            importlib.import_module(f"lightning.pytorch.{rel}")
            failures.append(f"{rel}: imported, but the table says torchbolt lacks it")
        except ImportError as err:
            if "is not provided by torchbolt" not in str(err):
                failures.append(f"{rel}: {type(err).__name__}: {err}")
    checked = 0
    for rel, names in sorted(data["missing"].items()):
        if rel in missing_modules or not names:
            continue
        full = "lightning.pytorch" + (f".{rel}" if rel else "")
        module = importlib.import_module(full)
        for name in names:
            checked += 1
            # attribute access: an AttributeError (hasattr keeps working) that explains
            try:
                getattr(module, name)
                failures.append(f"{rel}.{name}: found, but the table says torchbolt lacks it")
            except AttributeError as err:
                if type(err).__name__ != "NotProvidedAttributeError" or "nearest supported alternative" not in str(err):
                    failures.append(f"{rel}.{name}: {type(err).__name__}: {err}")
            # from-import: an ImportError that explains (not "cannot import name")
            try:
                exec(f"from {full} import {name}", {})  # noqa: S102 - the statement users write
            except ImportError as err:
                if type(err).__name__ != "NotProvidedError" or "nearest supported alternative" not in str(err):
                    failures.append(f"from {full} import {name}: {type(err).__name__}: {err}")
    print(json.dumps({"failures": failures, "modules": len(missing_modules), "names": checked}))
