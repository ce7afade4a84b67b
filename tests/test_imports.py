"""The import graph of manual/, torch_ref/ and experiments/ (imports inside functions included) points one way:
no cycles, no library importing a command line, no module importing a __main__."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("manual", "torch_ref", "experiments")
CLI = {"experiments.cli", "experiments.compare", "experiments.train.cli", "experiments.landscape.cli"}


def modules():
    """{dotted name: path} of every module in PACKAGES (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name, path, known):
    """The project modules name's file imports anywhere (in functions too), relative imports resolved."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {t for t in targets if t in known}
    return out - {name}


def graph():
    """{module: modules it imports}; a module importing a package it lives in adds no edge (Python has already
    imported that package by then)."""
    known = modules()
    return {name: {m for m in imported(name, path, known) if not name.startswith(m + ".")}
            for name, path in known.items()}


def cycle(edges):
    """One import cycle as a list [a, b, ..., a], or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def is_cli(name):
    return name in CLI or name.endswith("__main__")


def test_the_graph_is_read():
    edges = graph()
    assert len(edges) > 40 and "experiments.train.loop" in edges["experiments.train.cli"]
    assert "experiments.landscape.torch_eval" in edges["experiments.landscape"]   # an import inside a function


def test_no_import_cycle():
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_no_library_imports_a_command_line():
    wrong = sorted(f"{a} imports {b}" for a, targets in graph().items() for b in targets
                   if is_cli(b) and (not is_cli(a) or b.endswith("__main__")))
    assert not wrong, "\n".join(wrong)


def test_main_shims_are_two_lines():
    for name in ("train", "landscape"):
        lines = (ROOT / "experiments" / name / "__main__.py").read_text().strip().splitlines()
        assert len(lines) == 2 and f'launch("experiments.{name}.cli"' in lines[1], lines   # exits.launch: Ctrl-C too
