"""Hypothesis strategies and small builders for ledger objects, shared by the ledger tests."""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from mlts_ray.ledger import Identity, KeyRing, Order, Side, Trade

NODES = [f"vpp-{v}/n-{i:03d}" for v in range(2) for i in range(4)]


@cache
def identity(name: str) -> Identity:
    return Identity.derive(11, name)


def keyring() -> KeyRing:
    return KeyRing.of(identity(n) for n in NODES)


def vpp_of(node: str) -> str:
    return node.split("/")[0]


names = st.sampled_from(NODES)
quantities = st.integers(min_value=1, max_value=10_000)


@st.composite
def orders(draw) -> Order:
    node = draw(names)
    return Order(
        node, vpp_of(node), draw(st.integers(0, 500)), draw(st.integers(0, 50)),
        draw(st.sampled_from(Side)), draw(quantities), draw(st.integers(0, 100)),
        draw(st.integers(0, 10**9)),
    )


def make_trade(buyer: str, seller: str, wh: int, price: int, rnd: int = 0, tag: str = "") -> Trade:
    bv, sv = vpp_of(buyer), vpp_of(seller)
    return Trade(
        bv if bv == sv else "main", rnd, buyer, seller, bv, sv, wh, price,
        f"{buyer}/r{rnd}/o{tag}b", f"{seller}/r{rnd}/o{tag}s",
    )


@st.composite
def trades(draw) -> Trade:
    buyer = draw(names)
    seller = draw(names.filter(lambda n: n != buyer))
    return make_trade(buyer, seller, draw(quantities), draw(st.integers(0, 100)),
                      draw(st.integers(0, 50)), draw(st.text("abc", max_size=4)))
