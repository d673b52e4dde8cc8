#!/usr/bin/env python3
# Copyright (C) ngx_ai_gateway contributors

"""The module's file-level call graph, and its circles.

    python3 util/layers.py [--edges] [--dot]

A file calls another when it names a function defined there (a call, or a
function pointer taken).  Functions are found the way nginx's style writes
them: the name at the start of a line, followed by "(".  Comments and
strings are ignored.  The program prints every circle (a group of files
that reach each other) and exits 1 if there is one; --edges lists every
edge with the functions behind it, --dot writes a Graphviz graph.
"""

import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                   "ngx_ai_gateway")

DEF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(", re.M)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
COMMENT = re.compile(r"/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"')


def short(path):
    name = os.path.basename(path)
    name = name.replace("ngx_http_ai_gateway_", "")
    return name


def main():
    files = sorted(os.path.join(SRC, f) for f in os.listdir(SRC)
                   if f.endswith(".c"))

    text = {}
    defs = {}

    for f in files:
        with open(f) as fh:
            t = fh.read()
        t = COMMENT.sub(" ", t)
        t = STRING.sub('""', t)
        text[f] = t

        for m in DEF.finditer(t):
            defs.setdefault(m.group(1), set()).add(f)

    edges = {}

    for f in files:
        own = {n for n, fs in defs.items() if f in fs}

        for name in set(IDENT.findall(text[f])):
            if name in own or name not in defs:
                continue

            for g in defs[name]:
                edges.setdefault((f, g), set()).add(name)

    graph = {f: set() for f in files}

    for (f, g) in edges:
        graph[f].add(g)

    # Tarjan's strongly connected components

    index = {}
    low = {}
    stack = []
    on = set()
    sccs = []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
            sccs.append(comp)

    sys.setrecursionlimit(10000)

    for v in files:
        if v not in index:
            visit(v)

    circles = [c for c in sccs if len(c) > 1]

    if "--dot" in sys.argv:
        print("digraph layers {")
        for (f, g) in sorted(edges):
            print('  "%s" -> "%s";' % (short(f), short(g)))
        print("}")
        return 0

    if "--edges" in sys.argv:
        for (f, g) in sorted(edges):
            print("%s -> %s: %s" % (short(f), short(g),
                                    ", ".join(sorted(edges[(f, g)]))))

    for c in circles:
        names = sorted(short(f) for f in c)
        print("circle: " + " ".join(names))

        for (f, g) in sorted(edges):
            if f in c and g in c:
                print("    %s -> %s: %s" % (short(f), short(g),
                                            ", ".join(sorted(edges[(f, g)]))))

    if circles:
        return 1

    print("layers: %d files, %d edges, no circle" % (len(files), len(edges)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
