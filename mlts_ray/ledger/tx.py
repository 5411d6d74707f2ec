"""Orders and trades: frozen, slotted values with one canonical ``encode()`` each.

Units are integers throughout: energy in Wh, prices in cents per kWh, money in cents. A trade's
amount is ``round_half_up(wh * price / 1000)`` cents; buyer pays exactly what seller receives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum

from mlts_ray.errors import LedgerError
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, KeyRing, SigKind, signing_root
from mlts_ray.ledger.encoding import Reader, Writer
from mlts_ray.names import MAIN

TAG_ORDER, TAG_SIGNED_ORDER, TAG_TRADE, TAG_SIGNED_TRADE = 1, 2, 3, 4
VERSION = 1
MAX_QUANTITY = 2**62  # keeps every product of two quantities far inside i64/u64
TX_ID_BYTES = 16


class Side(IntEnum):
    BUY = 0
    SELL = 1


def _check_quantity(subject: str, name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value < MAX_QUANTITY:
        raise LedgerError(subject, f"{name} must be an integer in [{low}, 2**62), got {value!r}")


def _check_name(subject: str, name: str, value: str) -> None:
    if not isinstance(value, str) or not value or len(value.encode()) > 255:
        raise LedgerError(subject, f"{name} must be a non-empty name of at most 255 bytes")


@dataclass(frozen=True, slots=True)
class Order:
    """A resource's signed wish to buy or sell ``wh`` at limit ``price`` (cents/kWh)."""

    node: str
    vpp: str
    round: int
    seq: int
    side: Side
    wh: int
    price: int
    time_us: int  # simulated submission time: the "time" of price-time priority

    def __post_init__(self) -> None:
        subject = f"order {self.order_id}"
        _check_name(subject, "node", self.node)
        _check_name(subject, "vpp", self.vpp)
        if not isinstance(self.side, Side):
            raise LedgerError(subject, f"side must be Side.BUY or Side.SELL, got {self.side!r}")
        for name, low in (("round", 0), ("seq", 0), ("wh", 1), ("price", 0), ("time_us", 0)):
            _check_quantity(subject, name, getattr(self, name), low)

    def __reduce__(self):
        # By value through __init__ (checked again where it lands): a slotted dataclass's
        # default state goes through fields() per object, twice as slow to pickle, and the
        # orders a round forwards to the cross-VPP book (5,000 at 100 VPPs) travel each round.
        return Order, (self.node, self.vpp, self.round, self.seq, self.side, self.wh,
                       self.price, self.time_us)

    @property
    def order_id(self) -> str:
        return f"{self.node}/r{self.round}/o{self.seq}"

    def encode(self) -> bytes:
        w = Writer(TAG_ORDER, VERSION).text(self.node).text(self.vpp)
        w.u64(self.round).u64(self.seq).u8(self.side).u64(self.wh).u64(self.price)
        return w.u64(self.time_us).value()

    @classmethod
    def decode(cls, data: bytes) -> Order:
        r = Reader(data, "order", TAG_ORDER, VERSION)
        node, vpp, rnd, seq, side = r.text(), r.text(), r.u64(), r.u64(), r.u8()
        if side > 1:
            raise LedgerError(r.what, f"order side {side} is neither buy (0) nor sell (1)")
        out = cls(node, vpp, rnd, seq, Side(side), r.u64(), r.u64(), r.u64())
        r.done()
        return out

    def sign(self, identity: Identity) -> SignedOrder:
        if identity.name != self.node:
            raise LedgerError(f"order {self.order_id}", f"cannot be signed by {identity.name}")
        return SignedOrder(self, identity.sign_root(SigKind.ORDER, self.vpp, self.encode()))


@dataclass(frozen=True, slots=True)
class SignedOrder:
    order: Order
    signature: bytes

    def verify(self, keys: KeyRing) -> bool:
        o = self.order
        return keys.verify(o.node, SigKind.ORDER, o.vpp, o.encode(), self.signature)

    def encode(self) -> bytes:
        w = Writer(TAG_SIGNED_ORDER, VERSION).blob(self.order.encode())
        return w.fixed(self.signature, SIGNATURE_SIZE).value()

    @classmethod
    def decode(cls, data: bytes) -> SignedOrder:
        r = Reader(data, "signed order", TAG_SIGNED_ORDER, VERSION)
        order, sig = Order.decode(r.blob()), r.fixed(SIGNATURE_SIZE)
        r.done()
        return cls(order, sig)


@dataclass(frozen=True, slots=True)
class Trade:
    """A matched buy/sell pair. ``chain`` is where it is recorded: the buyer's and seller's VPP
    side chain when both are in one VPP, ``main`` for a cross-VPP trade."""

    chain: str
    round: int
    buyer: str
    seller: str
    buyer_vpp: str
    seller_vpp: str
    wh: int
    price: int
    buy_order: str
    sell_order: str
    # Memos of the canonical bytes, the id and the signing root (every check needs them: the
    # main chain's primary checks its 900 contracts again in each view, and so does each
    # member's block check).
    _encoded: bytes | None = field(default=None, init=False, compare=False, repr=False)
    _id: bytes | None = field(default=None, init=False, compare=False, repr=False)
    _root: bytes | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        subject = f"trade {self.buy_order}x{self.sell_order}"
        for name in ("chain", "buyer", "seller", "buyer_vpp", "seller_vpp"):
            _check_name(subject, name, getattr(self, name))
        for name in ("buy_order", "sell_order"):
            if not isinstance(getattr(self, name), str):
                raise LedgerError(subject, f"{name} must be a string")
        for name, low in (("round", 0), ("wh", 1), ("price", 0)):
            _check_quantity(subject, name, getattr(self, name), low)
        if self.buyer == self.seller:
            raise LedgerError(subject, f"buyer and seller are the same node {self.buyer}")
        expected = self.buyer_vpp if self.buyer_vpp == self.seller_vpp else MAIN
        if self.chain != expected:
            raise LedgerError(subject, f"belongs on chain {expected!r}, not {self.chain!r}")

    @property
    def cross(self) -> bool:
        return self.buyer_vpp != self.seller_vpp

    @property
    def amount_cents(self) -> int:
        return (self.wh * self.price + 500) // 1000

    @property
    def id_bytes(self) -> bytes:
        if self._id is None:
            object.__setattr__(self, "_id", hashlib.sha256(self.encode()).digest()[:TX_ID_BYTES])
        return self._id

    @property
    def tx_id(self) -> str:
        return self.id_bytes.hex()

    def encode(self) -> bytes:
        if self._encoded is None:
            w = Writer(TAG_TRADE, VERSION).text(self.chain).u64(self.round)
            for name in (self.buyer, self.seller, self.buyer_vpp, self.seller_vpp):
                w.text(name)
            w.u64(self.wh).u64(self.price)
            object.__setattr__(self, "_encoded", w.text(self.buy_order).text(self.sell_order).value())
        return self._encoded

    @classmethod
    def decode(cls, data: bytes) -> Trade:
        r = Reader(data, "trade", TAG_TRADE, VERSION)
        chain, rnd = r.text(), r.u64()
        buyer, seller, buyer_vpp, seller_vpp = r.text(), r.text(), r.text(), r.text()
        wh, price = r.u64(), r.u64()
        out = cls(chain, rnd, buyer, seller, buyer_vpp, seller_vpp, wh, price, r.text(), r.text())
        r.done()
        # The encoding is canonical (fixed-width integers, strict UTF-8, nothing left over), so
        # the bytes just read are exactly what encode() would build.
        object.__setattr__(out, "_encoded", bytes(data))
        return out

    def signing_data(self) -> tuple[SigKind, str, bytes]:
        return SigKind.TRADE, self.chain, self.encode()

    @property
    def root(self) -> bytes:
        """The signing root both parties sign: ``signing_root(*signing_data())``."""
        if self._root is None:
            object.__setattr__(self, "_root", signing_root(*self.signing_data()))
        return self._root

    def sign(self, buyer: Identity, seller: Identity) -> SignedTrade:
        """Both parties sign the same signing root (the trade contract)."""
        if (buyer.name, seller.name) != (self.buyer, self.seller):
            raise LedgerError(
                f"trade {self.tx_id}",
                f"must be signed by {self.buyer} and {self.seller}, not {buyer.name} and {seller.name}",
            )
        return SignedTrade(self, buyer.sign(self.root), seller.sign(self.root))


@dataclass(frozen=True, slots=True)
class SignedTrade:
    trade: Trade
    buyer_sig: bytes
    seller_sig: bytes
    _encoded: bytes | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def tx_id(self) -> str:
        return self.trade.tx_id

    def bad_signer(self, keys: KeyRing) -> str | None:
        """The party whose signature fails (buyer checked first), or None when both hold."""
        t = self.trade
        if not keys.verify_root(t.buyer, t.root, self.buyer_sig):
            return t.buyer
        if not keys.verify_root(t.seller, t.root, self.seller_sig):
            return t.seller
        return None

    def verify(self, keys: KeyRing) -> bool:
        return self.bad_signer(keys) is None

    def encode(self) -> bytes:
        if self._encoded is None:
            w = Writer(TAG_SIGNED_TRADE, VERSION).blob(self.trade.encode())
            w.fixed(self.buyer_sig, SIGNATURE_SIZE).fixed(self.seller_sig, SIGNATURE_SIZE)
            object.__setattr__(self, "_encoded", w.value())
        return self._encoded

    @classmethod
    def decode(cls, data: bytes) -> SignedTrade:
        r = Reader(data, "signed trade", TAG_SIGNED_TRADE, VERSION)
        trade = Trade.decode(r.blob())
        out = cls(trade, r.fixed(SIGNATURE_SIZE), r.fixed(SIGNATURE_SIZE))
        r.done()
        object.__setattr__(out, "_encoded", bytes(data))  # canonical, as for Trade
        return out
