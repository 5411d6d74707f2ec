"""The one grammar of chain and node names (docs/architecture.md section 3), used by every
table: chains ``main`` and ``vpp-0`` ... ``vpp-{V-1}``; nodes ``vpp-3/vmc``, ``vpp-3/n-017``
(zero-padded so they sort) and ``grid-0`` .... Below every layer: it imports nothing."""

from __future__ import annotations

import re

MAIN = "main"  # the main chain, and the account shard of every node outside a VPP

_SIDE = re.compile(r"vpp-(0|[1-9][0-9]*)")
_NODE = re.compile(r"(vpp-(?:0|[1-9][0-9]*))/(vmc|n-([0-9]{3,}))|grid-(0|[1-9][0-9]*)")


def side_chain(v: int) -> str:
    return f"vpp-{v}"


def vmc(chain: str) -> str:
    return f"{chain}/vmc"


def resource(chain: str, i: int) -> str:
    return f"{chain}/n-{i:03d}"


def grid(g: int) -> str:
    return f"grid-{g}"


def vpp_of(node: str) -> str | None:
    """The side chain a VPP's node belongs to (``vpp-3/n-007`` -> ``vpp-3``); None for a
    grid node."""
    head, sep, _ = node.partition("/")
    return head if sep else None


def home_of(node: str) -> str:
    """The account shard that holds a node: its VPP's side chain, or ``main`` for the grid's
    nodes (``ledger.chain_accounts``)."""
    return vpp_of(node) or MAIN


def side_index(chain: str) -> int | None:
    """``vpp-3`` -> 3; None for anything else (``main`` included)."""
    m = _SIDE.fullmatch(chain)
    return int(m.group(1)) if m else None


def is_node(name: str, vpps: int, nodes_per_vpp: int, grid_nodes: int) -> bool:
    """Whether ``name`` names a node of a topology of that size, spelled exactly as the
    functions above spell it (zero-padded), without listing every node."""
    m = _NODE.fullmatch(name)
    if m is None:
        return False
    if m.group(4) is not None:
        return int(m.group(4)) < grid_nodes
    v = side_index(m.group(1))
    if v is None or v >= vpps:
        return False
    if m.group(2) == "vmc":
        return True
    i = int(m.group(3))
    return 1 <= i < nodes_per_vpp and m.group(2) == f"n-{i:03d}"
