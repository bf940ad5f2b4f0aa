"""Equitable edge colouring of a bipartite multigraph: the planning oracle of `planned` routing.

Colour the edges with s colours so that every vertex has at most ceil(deg / s) edges of each
colour. Split every vertex of degree d into ceil(d / s) copies of degree <= s (its edges dealt
out in blocks of s), then colour the split graph properly with s colours (Konig: a bipartite
graph of maximum degree s has one), by the alternating-path method.
"""

from __future__ import annotations


def proper_colouring(edges: list[tuple[object, object]], colours: int) -> list[int]:
    """A proper edge colouring (no two edges at a vertex share a colour) of a bipartite graph of max
    degree <= `colours`; `edges` are (left vertex, right vertex) with the two sides' labels distinct."""
    at: dict[object, dict[int, int]] = {}  # vertex -> colour -> edge index
    colour = [-1] * len(edges)

    def free(vertex: object) -> int:
        used = at.setdefault(vertex, {})
        return next(c for c in range(colours) if c not in used)

    for e, (u, v) in enumerate(edges):
        a, b = free(u), free(v)
        if a not in at[v]:
            chosen = a
        else:
            # swap a and b along the path from v that alternates a, b, a, ...; then a is free at v
            path, x, c = [], v, a
            while c in at.setdefault(x, {}):
                edge = at[x][c]
                path.append(edge)
                p, q = edges[edge]
                x = q if p == x else p
                c = b if c == a else a
            for edge in path:
                p, q = edges[edge]
                del at[p][colour[edge]], at[q][colour[edge]]
            for edge in path:
                p, q = edges[edge]
                colour[edge] = b if colour[edge] == a else a
                at[p][colour[edge]] = edge
                at[q][colour[edge]] = edge
            chosen = a
        colour[e] = chosen
        at[u][chosen] = e
        at[v][chosen] = e
    return colour


def equitable_colouring(edges: list[tuple[int, int]], colours: int) -> list[int]:
    """Colours for (left, right) multigraph edges with at most ceil(deg/colours) per colour at every vertex."""
    seen_left: dict[int, int] = {}
    seen_right: dict[int, int] = {}
    split: list[tuple[object, object]] = []
    for u, v in edges:
        i, j = seen_left.get(u, 0), seen_right.get(v, 0)
        seen_left[u], seen_right[v] = i + 1, j + 1
        split.append((("L", u, i // colours), ("R", v, j // colours)))
    return proper_colouring(split, colours)
