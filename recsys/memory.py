"""How much memory there is: checked before large allocations (training, loading a model),
so users get a message, not the OOM killer."""

from __future__ import annotations

import os

from recsys.errors import ResourceError


def available_memory() -> int | None:
    """Bytes the process can still allocate: MemAvailable, capped by a cgroup limit."""
    best = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    best = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                raw = fh.read().strip()
            if raw.isdigit():
                limit = int(raw)
                used_path = os.path.join(os.path.dirname(path), "memory.current")
                if os.path.exists(used_path):
                    with open(used_path) as fh:
                        limit -= int(fh.read().strip())
                if limit > 0 and (best is None or limit < best):
                    best = limit
        except OSError:
            pass
    return best


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def ensure_memory(needed: int, what: str,
                  advice: str = "use fewer factors or less data") -> None:
    """Raise ResourceError when ``needed`` bytes exceed what is available."""
    free = available_memory()
    if free is not None and needed > free:
        raise ResourceError(f"{what} needs about {human_bytes(needed)} of memory but only "
                            f"{human_bytes(free)} is available; {advice}")
