#!/usr/bin/env python3
"""Lists import circles between the .rs files of a crate's src/ tree.

Usage: scripts/import-cycles.py [SRC_DIR ...]   (default: node/src harness/src checkers/src workloads/src)

An edge A -> B means file A names an item of file B's module through a path
(`use crate::x::y`, `use super::z`, or an inline `crate::x::f()`); each path is
resolved to the deepest module that has a file. A child naming its own
ancestor module (`super::Node` from `server/host.rs` to `server/mod.rs`) is the
normal shape of a Rust module tree and is not counted; every other pair of
files that reach each other, directly or through others, is a circle.
Exit code 1 if any circle is found.
"""
import os
import re
import sys


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def use_paths(text):
    """Every path named in the file, expanded from `use a::{b, c::d}` groups."""
    out = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        out.extend(expand(m.group(1).strip()))
    for m in re.finditer(r"\b((?:crate|super)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
        out.append(m.group(1).split("::"))
    return out


def expand(tree):
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree.split(" as ")[0].split("::")]
    head, _, rest = tree.partition("{")
    body = rest[: rest.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    prefix = [p for p in head.split("::") if p]
    out = []
    for p in parts:
        for sub in expand(p):
            out.append(prefix + [s for s in sub if s and s != "self"])
    return out


def main():
    dirs = sys.argv[1:] or ["node/src", "harness/src", "checkers/src", "workloads/src"]
    found = False
    for src in dirs:
        if not os.path.isdir(src):
            continue
        files = {}
        for root, _, names in os.walk(src):
            for n in names:
                if n.endswith(".rs"):
                    p = os.path.join(root, n)
                    files[module_of(src, p)] = p
        edges = {m: set() for m in files}
        for mod, path in files.items():
            with open(path, encoding="utf-8") as f:
                text = strip_comments(f.read())
            for p in use_paths(text):
                if not p:
                    continue
                if p[0] == "crate":
                    target, rest = (), p[1:]
                elif p[0] == "super":
                    base = list(mod)
                    rest = list(p)
                    while rest and rest[0] == "super":
                        base = base[:-1]
                        rest = rest[1:]
                    target = tuple(base)
                else:
                    continue
                t = list(target)
                for seg in rest:
                    if tuple(t + [seg]) in files:
                        t.append(seg)
                    else:
                        break
                t = tuple(t)
                if t == mod or t not in files:
                    continue
                if mod[: len(t)] == t:  # an ancestor of this file's module
                    continue
                edges[mod].add(t)
        # Tarjan's strongly connected components.
        index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in edges[v]:
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
                    sccs.append(comp)

        sys.setrecursionlimit(10000)
        for v in sorted(edges):
            if v not in index:
                visit(v)
        for comp in sccs:
            found = True
            names = sorted(files[m] for m in comp)
            print(f"circle in {src}: " + " <-> ".join(names))
            for m in sorted(comp):
                for w in sorted(edges[m]):
                    if w in comp:
                        print(f"    {files[m]} -> {files[w]}")
    if not found:
        print("no import circles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
