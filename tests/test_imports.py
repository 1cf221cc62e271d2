"""The import graph flows one way: no neurohw module imports (at module level or inside a
function) a module that imports it back, directly or through others."""
import ast
from pathlib import Path

import neurohw

ROOT = Path(neurohw.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = ["neurohw", *p.relative_to(ROOT).with_suffix("").parts]
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the neurohw modules it imports anywhere in its source (a `from pkg import name`
    counts as pkg.name when that is a module, else as pkg)."""
    mods = _modules()

    def known(name: str) -> str:
        while name not in mods:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                elif (node.module or "").split(".")[0] == "neurohw":
                    base = node.module
                else:
                    continue
                targets = [known(f"{base}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names if a.name.split(".")[0] == "neurohw"]
            else:
                continue
            graph[m].update(t for t in targets if t != m)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40 and "neurohw.rundir" in graph["neurohw.report"]
    assert cycles(graph) == []


def test_cycle_finder_sees_a_cycle():
    g = import_graph()
    g["neurohw.rundir"].add("neurohw.report")        # the cycle the run directory module removed
    g["neurohw.chip"].add("neurohw.emu")
    found = cycles(g)
    assert ["neurohw.report", "neurohw.rundir"] in found
    assert any("neurohw.chip" in c and "neurohw.emu" in c for c in found)
