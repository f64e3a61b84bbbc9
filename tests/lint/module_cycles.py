"""No module imports a module that imports it back: in each crate named below, the top-level
modules (a file `src/<name>.rs` or a folder `src/<name>/`) form no cycle through `crate::<name>`
paths, test modules aside. Prints each cycle found and exits non-zero.

    python3 tests/lint/module_cycles.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRATES = ["crates/as2", "crates/gateway"]


def modules(src):
    mods = {}
    for f in src.iterdir():
        if f.name in ("lib.rs", "main.rs"):
            continue
        if f.suffix == ".rs":
            mods.setdefault(f.stem, []).append(f)
        elif f.is_dir():
            mods.setdefault(f.name, []).extend(sorted(f.rglob("*.rs")))
    return mods


def code(path):
    """The file without its `#[cfg(test)]` module and comments."""
    text = re.sub(r"//.*", "", path.read_text())
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod \w+ \{", text, re.M)
    if cut:
        depth, end = 0, len(text)
        for i in range(cut.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i + 1
                break
        text = text[: cut.start()] + text[end:]
    return text


def references(text, names):
    """Modules named through `crate::x` paths, including `use crate::{x, y::z}` groups."""
    found = set(re.findall(r"\bcrate::(\w+)", text))
    for group in re.findall(r"\bcrate::\{([^}]*(?:\{[^}]*\}[^}]*)*)\}", text, re.S):
        found.update(re.findall(r"(?:^|,)\s*(\w+)", group))
    return found & names


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for crate in CRATES:
        mods = modules(ROOT / crate / "src")
        names = set(mods)
        graph = {m: sorted(set().union(*(references(code(f), names) for f in files)) - {m})
                 for m, files in mods.items()}
        for comp in cycles(graph):
            failed = True
            edges = ", ".join(f"{a} -> {b}" for a in comp for b in graph[a] if b in comp)
            print(f"FAIL {crate}: modules import each other: {edges}")
    if failed:
        sys.exit(1)
    print(f"module_cycles: ok ({', '.join(CRATES)})")


if __name__ == "__main__":
    main()
