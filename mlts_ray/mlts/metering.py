"""A VPP's metering of one period, signed by its VMC and carried on its side chain
(docs/architecture.md section 4).

The VMC reads every trader's meter and, once the period's trades are settled, closes the
period with the grid. Its signed :class:`MeterReport` (``METER`` signing domain) states, per
node, the metered net position and the energy the grid took or supplied; the side chain's
next block carries it in the period's round record, beside the round's conduct. So the chain
holds everything that moves energy -- what the meters put in, what the trades moved, what the
grid took -- and ``mlts verify`` replays the period from it: the grid amounts must be exactly
what the position less the settled trades leaves (``Settlement.close`` on the replayed
ledger), so a VMC can neither invent an import nor hide an export.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mlts_ray.consensus.messages import SignedBody
from mlts_ray.errors import LedgerError
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, SigKind
from mlts_ray.ledger.encoding import Reader, Writer

TAG_METER_REPORT = 46
VERSION = 1


@dataclass(frozen=True, slots=True)
class Metered:
    """One node's period: its net position (> 0 a surplus), its exchange with the grid, and
    whether it was online (an offline node trades nothing and is seated nowhere)."""

    node: str
    net_wh: int
    import_wh: int
    export_wh: int
    online: bool = True

    def __post_init__(self) -> None:
        if self.import_wh < 0 or self.export_wh < 0 or (self.import_wh and self.export_wh):
            raise LedgerError(f"metering of {self.node}",
                              "imports and exports are >= 0 and never both")


@dataclass(frozen=True, slots=True)
class MeterReport(SignedBody):
    chain: str
    round: int
    vmc: str
    entries: tuple[Metered, ...]  # in the VPP's trader order
    sig: bytes = b""

    kind, tag, signer = SigKind.METER, TAG_METER_REPORT, "vmc"

    def body(self) -> bytes:
        w = Writer(TAG_METER_REPORT, VERSION).text(self.chain).u64(self.round).text(self.vmc)
        return w.items(self.entries, lambda w_, m: w_.text(m.node).i64(m.net_wh)
                       .u64(m.import_wh).u64(m.export_wh).u8(m.online)).value()

    @classmethod
    def decode(cls, data: bytes) -> MeterReport:
        r = Reader(data, "meter report", TAG_METER_REPORT, VERSION)
        b = Reader(r.blob(), "meter report body", TAG_METER_REPORT, VERSION)
        chain, rnd, vmc = b.text(), b.u64(), b.text()
        entries = tuple(b.items(lambda x: Metered(x.text(), x.i64(), x.u64(), x.u64(),
                                                  bool(x.u8()))))
        b.done()
        out = cls(chain, rnd, vmc, entries, r.fixed(SIGNATURE_SIZE))
        r.done()
        return out

    def by_node(self) -> dict[str, Metered]:
        return {m.node: m for m in self.entries}

    def offline(self) -> frozenset[str]:
        return frozenset(m.node for m in self.entries if not m.online)


def signed_report(vmc: Identity, chain: str, round_: int, entries: Iterable[Metered]) -> MeterReport:
    return MeterReport(chain, round_, vmc.name, tuple(entries)).signed(vmc)



def tally(settled: Iterable[tuple[str, str, int]]) -> dict[str, tuple[int, int]]:
    """Wh each node sold and bought, from settled (seller, buyer, wh) moves."""
    out: dict[str, tuple[int, int]] = {}
    for seller, buyer, wh in settled:
        sold, bought = out.get(seller, (0, 0))
        out[seller] = (sold + wh, bought)
        sold, bought = out.get(buyer, (0, 0))
        out[buyer] = (sold, bought + wh)
    return out


def cross_wh_by_vpp(cross: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Each VPP's cross-traded Wh from settled cross trades' (buyer VPP, seller VPP, wh), as
    buyer or seller (a trade counts once per VPP)."""
    out: dict[str, int] = {}
    for buyer_vpp, seller_vpp, wh in cross:
        for vpp in {buyer_vpp, seller_vpp}:
            out[vpp] = out.get(vpp, 0) + wh
    return out
