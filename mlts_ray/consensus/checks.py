"""The checks a consensus node applies to what it is sent: a proposed block against the
instance it claims, and a commit certificate. Pure functions of their inputs (the per-process
caches in ``Instance`` only spare repeated work: every receiver is still charged its checks)."""

from __future__ import annotations

from collections.abc import Iterable

from mlts_ray.consensus.instance import Committed, Evidence, Instance
from mlts_ray.consensus.messages import Certificate
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.crypto import SigKind
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.net.node import Ready


def check_block(inst: Instance, data: bytes, digest: bytes) -> tuple[str | None, int, Block | None]:
    """Is ``data`` a valid block for this instance with hash ``digest``?

    Returns ``(problem or None, signatures verified, block)``. Every trade's two signatures and
    the proposer's signature are checked against the key ring.
    """
    key = (digest, data)
    answer = inst.block_checks.get(key)
    if answer is None:
        answer = inst.block_checks[key] = _check_block(inst, data, digest)
    return answer


def _check_block(inst: Instance, data: bytes, digest: bytes) -> tuple[str | None, int, Block | None]:
    try:
        block = Block.decode(data)
    except MltsError as err:
        return f"undecodable block: {err.why}", 0, None
    h = block.header
    if block.hash != digest:
        return "block does not hash to the proposed digest", 0, block
    expected = (inst.chain, inst.height, inst.kind, inst.round, inst.prev_hash, inst.anchor_root,
                inst.last_commit, inst.credit_root)
    if (h.chain, h.height, h.kind, h.round, h.prev_hash, h.anchor_root, h.last_commit,
            h.credit_root) != expected:
        return "header does not extend this chain at this height", 0, block
    if block.evidence != inst.evidence:
        return "block does not carry the chain's pending evidence", 0, block
    if h.proposer not in inst.member_names:
        return f"proposer {h.proposer} is not a member", 0, block
    verifies = 1
    try:
        block.check(inst.keys)
        seen: set[str] = set()
        for raw in block.txs:
            trade = _decoded_trade(inst, raw)
            verifies += 2
            if trade.tx_id in seen:
                return f"trade {trade.tx_id} twice", verifies, block
            seen.add(trade.tx_id)
            if trade.trade.chain != inst.chain or trade.trade.round != inst.round:
                return f"trade {trade.tx_id} belongs to another chain or round", verifies, block
            if not trade.verify(inst.keys):
                return f"trade {trade.tx_id} is not a valid contract", verifies, block
    except MltsError as err:
        return err.why, verifies, block
    return None, verifies, block


def _decoded_trade(inst: Instance, raw: bytes) -> SignedTrade:
    """The trade in ``raw``, decoded once per process: the primary packs the request's trades
    and every member checks the same bytes again in the block."""
    trade = inst.decoded.get(("trade", raw))
    if trade is None:
        trade = inst.decoded[("trade", raw)] = SignedTrade.decode(raw)
    return trade


def know_trades(inst: Instance, trades: Iterable[SignedTrade]) -> tuple[bytes, ...]:
    """The trades' bytes, each known to this process as the trade it encodes (the same bytes
    decode to an equal trade): the chain that hands its trades to an instance has them
    decoded already (the main chain's 900 a round at 100 VPPs: 12 ms of decoding spared)."""
    out = []
    for trade in trades:
        raw = trade.encode()
        inst.decoded[("trade", raw)] = trade
        out.append(raw)
    return tuple(out)


def decoded_block(inst: Instance, data: bytes) -> Block | None:
    """The block in ``data``, decoded once per process (None if it does not decode): every
    member checks every certificate and view change, and each carries the whole block (at
    V = 300 the main chain decoded its block 80 k times a round). The cache is keyed by what
    the bytes were decoded as: the same bytes sent as a block by a faulty node must never come
    back as the trade they were decoded as elsewhere."""
    block = inst.decoded.get(("block", data))
    if block is None:
        try:
            block = inst.decoded[("block", data)] = Block.decode(data)
        except MltsError:
            return None
    return block


def check_certificate(inst: Instance, cert: Certificate, r: Ready) -> Committed | None:
    """A block plus q valid, distinct members' commits for its hash in one view, extending this
    chain at this height: then the block is committed."""
    if not cert.commits:
        return None
    block = decoded_block(inst, cert.block)
    if block is None:
        return None
    h, digest, view = block.header, block.hash, cert.commits[0].view
    if (h.chain, h.height, h.prev_hash) != (inst.chain, inst.height, inst.prev_hash):
        return None
    voters: set[str] = set()
    for c in cert.commits:
        if c.kind != SigKind.COMMIT or c.digest != digest or c.view != view:
            return None
        if c.sender in voters or c.sender not in inst.member_names:
            return None
        r.verifies += 1
        if not c.valid(inst.keys):
            r.output(Evidence("bad-signature", c.sender, "certificate", view, c.digest))
            return None
        voters.add(c.sender)
    if len(voters) < inst.q:
        return None
    return Committed(inst.height, view, digest, cert.block, proof=cert)
