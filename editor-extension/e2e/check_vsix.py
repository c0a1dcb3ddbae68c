"""Fails when the .vsix carries more than the extension needs (sources, tests, node_modules, maps)."""

from __future__ import annotations

import sys
import zipfile

MAX_BYTES = 1_500_000
REQUIRED = {"extension/package.json", "extension/dist/extension.js", "extension/readme.md"}
FORBIDDEN = ("extension/node_modules/", "extension/src/", "extension/test/", "extension/out/", "extension/e2e/")


def main(path: str) -> int:
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    names = [i.filename for i in infos]
    size = sum(i.compress_size for i in infos)
    problems = [n for n in names if n.startswith(FORBIDDEN) or n.endswith((".ts", ".map", ".vsix"))]
    missing = sorted(r for r in REQUIRED if r not in {n.lower() if n.lower().endswith("readme.md") else n for n in names})
    for n in names:
        print(f"  {n}")
    print(f"{path}: {len(names)} files, {size} bytes compressed")
    if problems:
        print(f"unexpected files: {problems}", file=sys.stderr)
    if missing:
        print(f"missing files: {missing}", file=sys.stderr)
    if size > MAX_BYTES:
        print(f"too large: {size} > {MAX_BYTES}", file=sys.stderr)
    return 1 if problems or missing or size > MAX_BYTES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
