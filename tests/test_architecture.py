"""The import rules of the package, read from the source with ``ast`` (imports at module
level and inside functions alike): no cycles between modules or between wings, and each
wing imports only the wings beneath it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recsys"

#: What each wing may import besides itself. Reading down the table is reading up the
#: layers: errors, version, atomic writes, progress bars, the memory check and cache-line
#: aligned arrays at the bottom, the command line at the top.
ALLOWED = {
    "errors": set(),
    "version": set(),
    "atomic": {"errors"},
    "progress": set(),
    "memory": {"errors"},
    "aligned": set(),
    "kernels": set(),
    "data": {"errors", "version", "atomic", "progress", "kernels"},
    "state": {"data", "version", "kernels", "aligned"},
    "training": {"errors", "memory", "aligned", "version", "kernels", "data", "state"},
    # blocked SGD on a Dask cluster: a backend over training, beneath the estimators
    "distributed": {"errors", "memory", "version", "atomic", "kernels", "data", "state",
                    "training"},
    "persist": {"errors", "memory", "version", "atomic", "data", "state"},
    "models": {"errors", "memory", "aligned", "version", "atomic", "kernels", "data", "state",
               "training", "persist", "distributed"},
    "evaluation": {"errors", "version", "atomic", "kernels", "data", "state", "models"},
    "testing": {"errors", "memory", "version", "atomic", "kernels", "data", "state", "training",
                "persist", "models", "evaluation", "distributed"},
    "sklearn": {"errors", "version", "data", "state", "models"},  # an adapter over models
    "serving": {"errors", "version", "kernels", "data", "state", "persist", "models"},
    # the command line is the one face that starts the other (``recsys serve``)
    "cli": {"errors", "memory", "version", "atomic", "progress", "kernels", "data", "state",
            "training", "persist", "models", "evaluation", "serving", "distributed"},
    "__init__": {"version"},  # names are imported on first use, by import_module
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The recsys module an imported dotted name lives in (None: not recsys)."""
    parts = name.split(".")
    if parts[0] != "recsys":
        return None
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) if parts else None


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # a name is a submodule (an edge to it) or a name of the module ``base``
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _wing(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _cycles(graph: dict) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_belongs_to_a_known_wing():
    assert {_wing(m) for m in MODULES} <= set(ALLOWED)


def test_no_import_cycles_between_modules():
    assert _cycles(GRAPH) == []


def test_no_import_cycles_between_wings():
    wings = {}
    for module, targets in GRAPH.items():
        wings.setdefault(_wing(module), set()).update(
            _wing(t) for t in targets if _wing(t) != _wing(module))
    assert _cycles(wings) == []


@pytest.mark.parametrize("wing", sorted(ALLOWED))
def test_each_wing_imports_only_the_wings_beneath_it(wing):
    bad = sorted(f"{module} -> {target}" for module, targets in GRAPH.items()
                 if _wing(module) == wing for target in targets
                 if _wing(target) != wing and _wing(target) not in ALLOWED[wing])
    assert bad == []


def test_the_rules_of_the_design():
    def wings_of(wing):
        return {_wing(t) for m, ts in GRAPH.items() if _wing(m) == wing for t in ts} - {wing}

    assert wings_of("kernels") == set()
    assert not wings_of("data") & {"models", "training", "evaluation", "persist", "serving",
                                   "cli", "testing", "state"}
    assert "models" not in wings_of("training")
    assert not wings_of("training") & {"distributed"}  # a backend object is handed in
    assert not wings_of("distributed") & {"models", "persist", "cli", "serving"}
    estimators = {m for m in MODULES if m.startswith("recsys.models.")}
    assert not any(t in estimators for m, ts in GRAPH.items() if _wing(m) == "persist"
                   for t in ts)
    importers_of_faces = {_wing(m) for m, ts in GRAPH.items() for t in ts
                          if _wing(t) in ("cli", "serving")} - {"cli", "serving", "__main__"}
    assert importers_of_faces == set()


def test_no_module_is_much_over_400_lines():
    long = {m: n for m, p in MODULES.items()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert long == {}


def test_import_recsys_and_help_stay_light():
    code = ("import sys, recsys; from recsys.cli import main; "
            "heavy = [m for m in ('numpy', 'pandas', 'numba', 'scipy', 'dask', 'distributed') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]])
def test_help_never_imports_dask(args):
    code = ("import sys; from recsys.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('dask', 'distributed') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "Usage" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []"
