"""Write one benchmark's section of docs/benchmarks.md, leaving the other sections alone.

Each script owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; a
section not there yet is appended. The file is replaced atomically.
"""

from __future__ import annotations

from pathlib import Path

from recsys.atomic import atomic_write

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(name: str, text: str, path: Path | str = DOC) -> Path:
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(new)
    return path
