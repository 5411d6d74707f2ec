"""Complaints: a node's signed accusation that a trader misbehaved towards it, carried by the
chain and judged by one pure function (docs/architecture.md section 5).

The VMC is the counterparty of every order of its VPP: it is the node that receives a badly
signed order, a resubmitted old contract or a matched order its owner then refuses to sign, over
an authenticated link. It files each as a :class:`Complaint` in the ``COMPLAINT`` signing domain,
naming the accused, the round and the reason, with the exhibit that supports it:

| reason          | exhibit                          | upheld when                                |
|-----------------|----------------------------------|--------------------------------------------|
| ``bad-signature`` | the signed order or contract   | it is the accused's and its signature fails  |
| ``replay``        | the resubmitted signed contract| both signatures hold and it is of another round or chain |
| ``abandoned``     | the matched contract (unsigned)| the accused is a party, of this round        |

A bad signature and a replay's submitter are attributable only through the link the complaint
came over, and nothing proves a signature was *not* given: so a complaint is the complainant's
word backed by an exhibit, and the complainant bears the risk -- one that fails
:func:`upheld` costs it ``credit.complaint_stake``. An upheld complaint counts against the
accused as a trade offence (or an abandoned order) in the complaint's round. The chain's next
block carries the round's complaints in the round's record (``consensus.conduct``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlts_ray.errors import MltsError
from mlts_ray.consensus.messages import SignedBody
from mlts_ray.ledger.crypto import SIGNATURE_SIZE, Identity, KeyRing, SigKind
from mlts_ray.ledger.encoding import Reader, Writer
from mlts_ray.ledger.tx import TAG_SIGNED_ORDER, SignedOrder, SignedTrade, Trade

TAG_COMPLAINT = 44
VERSION = 1
REASONS = ("bad-signature", "replay", "abandoned")


@dataclass(frozen=True, slots=True)
class Complaint(SignedBody):
    chain: str  # the chain whose credit it is about (the accused's side chain)
    round: int
    complainant: str
    accused: str
    reason: str
    exhibit: bytes
    sig: bytes = b""

    kind, tag, signer = SigKind.COMPLAINT, TAG_COMPLAINT, "complainant"

    def body(self) -> bytes:
        w = Writer(TAG_COMPLAINT, VERSION).text(self.chain).u64(self.round)
        w.text(self.complainant).text(self.accused).text(self.reason)
        return w.blob(self.exhibit).value()

    @classmethod
    def decode(cls, data: bytes) -> Complaint:
        r = Reader(data, "complaint", TAG_COMPLAINT, VERSION)
        b = Reader(r.blob(), "complaint body", TAG_COMPLAINT, VERSION)
        out = cls(b.text(), b.u64(), b.text(), b.text(), b.text(), b.blob(),
                  r.fixed(SIGNATURE_SIZE))
        b.done()
        r.done()
        return out


def file(me: Identity, chain: str, round_: int, accused: str, reason: str,
         exhibit: bytes) -> Complaint:
    """``me``'s signed complaint."""
    return Complaint(chain, round_, me.name, accused, reason, exhibit).signed(me)


def upheld(c: Complaint, keys: KeyRing) -> bool:
    """Whether the complaint holds, from its own bytes alone. Pure: same bytes, same answer."""
    try:
        if c.reason not in REASONS or not c.valid(keys):
            return False
        return _EXHIBITS[c.reason](c, keys)
    except MltsError:  # an exhibit that does not decode, a name no key is known for
        return False


def _bad_signature(c: Complaint, keys: KeyRing) -> bool:
    if c.exhibit[:1] == bytes([TAG_SIGNED_ORDER]):
        order = SignedOrder.decode(c.exhibit)
        return order.order.node == c.accused and not order.verify(keys)
    trade = SignedTrade.decode(c.exhibit)
    return trade.bad_signer(keys) == c.accused


def _replay(c: Complaint, keys: KeyRing) -> bool:
    trade = SignedTrade.decode(c.exhibit)
    return trade.verify(keys) and (trade.trade.round, trade.trade.chain) != (c.round, c.chain)


def _abandoned(c: Complaint, keys: KeyRing) -> bool:
    trade = Trade.decode(c.exhibit)
    return c.accused in (trade.buyer, trade.seller) and trade.round == c.round


_EXHIBITS = {"bad-signature": _bad_signature, "replay": _replay, "abandoned": _abandoned}
