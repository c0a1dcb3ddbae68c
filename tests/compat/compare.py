"""Compare two harness records (tests/compat/harness.py) of the same program: torchbolt vs Lightning."""

from __future__ import annotations

import math
from typing import Any

REL = 1e-5
ABS = 1e-6


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=REL, abs_tol=ABS)
    return bool(a == b)


def _metrics_diff(where: str, a: dict[str, float], b: dict[str, float]) -> list[str]:
    out = []
    if set(a) != set(b):
        out.append(f"{where}: metric names differ: only torchbolt {sorted(set(a) - set(b))}, "
                   f"only Lightning {sorted(set(b) - set(a))}")
    for key in sorted(set(a) & set(b)):
        if not _close(a[key], b[key]):
            out.append(f"{where}: {key} = {a[key]!r} (torchbolt) vs {b[key]!r} (Lightning)")
    return out


def differences(tb: dict[str, Any], lt: dict[str, Any]) -> list[str]:
    """Human-readable differences between the torchbolt (`tb`) and Lightning (`lt`) records; [] if equal."""
    out: list[str] = []
    if tb["status"] != "ok" or lt["status"] != "ok":
        return [f"status: torchbolt {tb['status']!r}, Lightning {lt['status']!r}"]
    ra, rb = tb["record"], lt["record"]
    kinds_a = [r["kind"] for r in ra]
    kinds_b = [r["kind"] for r in rb]
    if kinds_a != kinds_b:
        out.append(f"events differ: torchbolt {kinds_a} vs Lightning {kinds_b}")
    for i, (a, b) in enumerate(zip(ra, rb, strict=False)):
        where = f"event {i} ({a['kind']}, epoch {a.get('epoch')}, step {a.get('global_step')})"
        for key in ("epoch", "global_step", "batch_idx"):
            if a.get(key) != b.get(key):
                out.append(f"{where}: {key} {a.get(key)} vs {b.get(key)}")
        if not _close(a.get("loss"), b.get("loss")):
            out.append(f"{where}: loss {a.get('loss')!r} vs {b.get('loss')!r}")
        out += _metrics_diff(where, a.get("metrics", {}), b.get("metrics", {}))
    ca, cb = tb["checkpoints"], lt["checkpoints"]
    if sorted(ca) != sorted(cb):
        out.append(f"checkpoint files differ: torchbolt {sorted(ca)} vs Lightning {sorted(cb)}")
    for name in sorted(set(ca) & set(cb)):
        for key in ("keys", "state_dict", "epoch", "global_step", "optimizers", "schedulers", "hyper_parameters",
                    "callbacks"):
            if ca[name][key] != cb[name][key]:
                out.append(f"checkpoint {name}: {key} {ca[name][key]} vs {cb[name][key]}")
    la, lb = tb["csv"], lt["csv"]
    if sorted(la) != sorted(lb):
        out.append(f"CSV logs differ: torchbolt {sorted(la)} vs Lightning {sorted(lb)}")
    for name in sorted(set(la) & set(lb)):
        if len(la[name]) != len(lb[name]):
            out.append(f"{name}: {len(la[name])} rows vs {len(lb[name])}")
        for i, (x, y) in enumerate(zip(la[name], lb[name], strict=False)):
            if set(x) != set(y):
                out.append(f"{name} row {i}: columns {sorted(x)} vs {sorted(y)}")
                break
            bad = [k for k in x if not _close(x[k], y[k])]
            if bad:
                out.append(f"{name} row {i}: " + ", ".join(f"{k} {x[k]!r} vs {y[k]!r}" for k in bad))
    if tb.get("json") != lt.get("json"):
        out.append("JSON files the program wrote differ")
    return out
