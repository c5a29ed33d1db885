#!/usr/bin/env python3
"""Checks the module layout that docs/architecture.md describes, from the source alone.

1. No import circle among the top-level modules of `src/` (digest, encode, library, ...), nor
   among sibling files of one folder (a folder's `mod.rs` is its parent and may be imported by
   its children, which hold the parent's `impl` blocks; siblings may not import each other
   both ways, directly or round a longer loop).
2. The allowed imports of each top-level module (the `May import:` line of its `//!` header
   is the documentation of this table; both must change together).
3. `rank/` defines each command's ranking once (`rank/<command>.rs`), whatever the mode.
4. The binary (`src/main.rs`, `src/cli/`) never opens library files itself.

Prints what it checked and exits 1 on the first kind of violation found. Standard library only.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Which top-level modules each may import (besides itself). Leaves import nothing of ours.
ALLOWED = {
    "error": set(),
    "checksum": set(),
    "progress": set(),
    "directory": {"error"},
    "paper": {"checksum"},
    "digest": {"error", "paper"},
    "encode": {"error", "progress", "directory", "checksum", "digest"},
    "index": {"error", "directory", "checksum"},
    "library": {"error", "directory", "index", "digest", "paper"},
    "feedback": {"error", "directory", "paper"},
    "fetch": {"error", "directory", "paper", "digest"},
    "rank": {"error", "library", "index", "paper", "encode"},
    "pipeline": {"error", "progress", "directory", "encode", "library", "index", "digest", "feedback",
                 "store", "paper"},
    "store": {"error", "library", "index", "paper", "checksum", "progress"},
    "report": {"error", "library", "rank", "encode", "feedback", "digest", "paper"},
    "serve": {"error", "library", "rank", "report", "encode", "pipeline", "feedback", "digest",
              "directory", "progress", "paper", "index"},
}
# The files of rank/ that may import encode (the rest of rank ranks what it is given).
ENCODE_IN_RANK = {"rank/explain.rs", "rank/mod.rs"}

CRATE_REF = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)((?:::[a-z_][a-z0-9_]*)*)")
GROUP_REF = re.compile(r"\bcrate::\{([^}]*)\}")
SUPER_REF = re.compile(r"\bsuper::([a-z_][a-z0-9_]*)")


def code_of(path: Path) -> str:
    """The file without comments and string literals' contents (doc links are not imports)."""
    text = path.read_text()
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    # Unit tests may use anything: they are not part of the module's dependencies.
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def module_of(path: Path) -> list:
    """`src/library/ingest.rs` -> ["library", "ingest"]; `src/library/mod.rs` -> ["library"]."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def main() -> int:
    files = [p for p in SRC.rglob("*.rs") if p.relative_to(SRC).parts[0] not in ("cli",)]
    files = [p for p in files if p.name not in ("main.rs", "lib.rs")]
    modules = {tuple(module_of(p)): p for p in files}
    failures = []

    # Top-level edges, and file-level edges between siblings.
    top = defaultdict(set)
    sib = defaultdict(set)
    for mod, path in modules.items():
        code = code_of(path)
        refs = [m.group(1) + m.group(2) for m in CRATE_REF.finditer(code)]
        for g in GROUP_REF.finditer(code):
            refs += [r.strip().split("::")[0] for r in g.group(1).split(",") if r.strip()]
        for ref in refs:
            parts = ref.split("::")
            if parts[0] in ("Error", "Result", "Embedder", "EmbedderConfig", "Embeddings", "self"):
                parts[0] = {"Error": "error", "Result": "error"}.get(parts[0], "encode")
            if parts[0] != mod[0]:
                top[mod[0]].add(parts[0])
                rel = "/".join(path.relative_to(SRC).parts)
                if mod[0] == "rank" and parts[0] == "encode" and rel not in ENCODE_IN_RANK:
                    failures.append(f"{rel} imports crate::encode (only {sorted(ENCODE_IN_RANK)} may)")
            else:
                # Same top-level module: the longest module path the reference names.
                for n in range(len(parts), 0, -1):
                    if tuple(parts[:n]) in modules:
                        target = tuple(parts[:n])
                        break
                else:
                    continue
                if target[:-1] == mod[:-1] and target != mod and len(target) == len(mod):
                    sib[mod].add(target)
        for s in SUPER_REF.finditer(code):
            target = tuple(mod[:-1]) + (s.group(1),)
            if target in modules and target != mod and len(target) == len(mod):
                sib[mod].add(target)

    for mod, deps in sorted(top.items()):
        bad = deps - ALLOWED.get(mod, set()) - {mod}
        if mod not in ALLOWED:
            failures.append(f"src/{mod}: a top-level module missing from ALLOWED in {__file__}")
        elif bad:
            failures.append(f"src/{mod} imports {sorted(bad)}; it may import {sorted(ALLOWED[mod])}")

    def cycles(graph):
        found, state = [], {}

        def visit(n, stack):
            state[n] = 1
            stack.append(n)
            for m in sorted(graph.get(n, ())):
                if state.get(m) == 1:
                    found.append(stack[stack.index(m):] + [m])
                elif m not in state:
                    visit(m, stack)
            stack.pop()
            state[n] = 2

        for n in sorted(graph):
            if n not in state:
                visit(n, [])
        return found

    for c in cycles({k: v for k, v in top.items()}):
        failures.append("import circle between top-level modules: " + " -> ".join(c))
    for c in cycles(sib):
        failures.append("import circle between sibling files: " + " -> ".join("::".join(m) for m in c))

    # The binary calls the library; it does not read the library's files.
    for path in sorted((SRC / "cli").rglob("*.rs")) + [SRC / "main.rs"]:
        code = code_of(path)
        raw = path.read_text()
        if re.search(r"manifest\.json|papers\.\d|embeddings\.\d|graph\.\d|lexical\.\d", raw) or "Manifest::read" in code:
            failures.append(f"{path.relative_to(SRC.parent)} reads library files itself")

    # rank/: one function per command, no mode-specific copy of one.
    for command in ("similar", "query", "recommend", "triage"):
        defs = [
            str(p.relative_to(SRC))
            for p in files
            if re.search(rf"(?m)^pub fn {command}\b", code_of(p))
        ]
        if defs != [f"rank/{command}.rs"]:
            failures.append(f"`pub fn {command}` is defined in {defs}, not once in rank/{command}.rs")

    print(f"checked {len(modules)} modules in src/ (and src/cli/); top-level imports:")
    for k, v in sorted(top.items()):
        print(f"  {k:9} -> {', '.join(sorted(v))}")
    for f in failures:
        print("architecture:", f, file=sys.stderr)
    if failures:
        return 1
    print("architecture: no import circles, every top-level import allowed, one ranking "
          "function per command, the CLI reads no library file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
