"""Catch-up: a node that missed the chain's last block fetches it, with its commit certificate,
before it takes part in the next height (state transfer, Castro-Liskov section 5.3 in small).

A lagging node (``Instance.lagging``: it holds no committed block for the previous height)
asks the members in primary order, skipping itself and the other lagging ones, for that block.
Until a certificate arrives that proves it -- it hashes to this height's ``last_commit`` and
every commit in it is a valid, distinct chain node's commit for the block it carries -- the
node holds back every event; then it replays them, in order, to the consensus node it wraps. With no
answer after ``max_view_changes + 1`` tries it goes on without the block rather than stall the
chain (and stays lagging, so it asks again next round).
"""

from __future__ import annotations

from mlts_ray.consensus.instance import Instance
from mlts_ray.consensus.messages import Certificate, Fetch, commit_digest
from mlts_ray.consensus.pbft import ANY_DIGEST, retry_after_us
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.crypto import Identity, SigKind
from mlts_ray.net.node import Node, Ready, Timer


class CatchUpRetry:
    """Timer token: ask the next member (``tries`` so far)."""

    __slots__ = ("tries",)

    def __init__(self, tries: int) -> None:
        self.tries = tries


class CatchUp:
    """Wraps a lagging node's consensus state machine until it holds the last block."""

    __slots__ = ("inner", "me", "index", "inst", "caught_up", "held", "asked")

    def __init__(self, inner: Node, me: Identity, index: int, inst: Instance) -> None:
        self.inner, self.me, self.index, self.inst = inner, me, index, inst
        self.caught_up = False
        self.held: list[object] = []
        self.asked = False

    def step(self, event: object, now_us: int) -> Ready:
        if self.caught_up:
            return self.inner.step(event, now_us)
        r = Ready()
        token = event.token if isinstance(event, Timer) else None
        if isinstance(token, CatchUpRetry):
            self._ask(token.tries, r, now_us)
        elif isinstance(event, Certificate) and self._proves_last_block(event, r):
            self._replay(r, now_us)
        else:
            self.held.append(event)
            if not self.asked:
                self.asked = True
                self._ask(0, r, now_us)
        return r

    def _ask(self, tries: int, r: Ready, now_us: int) -> None:
        inst = self.inst
        holders = [m for m in inst.members if m != self.index and m not in inst.lagging]
        if not holders or tries > inst.max_view_changes:
            self._replay(r, now_us)  # nobody to ask, or nobody answers: go on without it
            return
        member = holders[tries % len(holders)]
        r.send(member, Fetch(inst.chain, inst.height - 1, ANY_DIGEST, self.me.name))
        r.timer(retry_after_us(inst, tries), CatchUpRetry(tries + 1))

    def _proves_last_block(self, cert: Certificate, r: Ready) -> bool:
        """This height's ``last_commit`` is the hash of the certificate that proves the chain's
        last consensus block (a collaborative block may have followed it): the certificate
        must hash to it, and its commits must be valid votes for the block it carries."""
        inst = self.inst
        if not cert.commits or commit_digest(cert.commits) != inst.last_commit:
            return False
        try:
            block = Block.decode(cert.block)
        except MltsError:
            return False
        if block.header.chain != inst.chain or block.header.height >= inst.height:
            return False
        voters: set[str] = set()
        for vote in cert.commits:
            if (vote.kind != SigKind.COMMIT or vote.digest != block.hash
                    or vote.sender in voters or vote.sender not in inst.index_of):
                return False
            r.verifies += 1
            if not vote.valid(inst.keys):
                return False
            voters.add(vote.sender)
        return bool(voters)

    def _replay(self, r: Ready, now_us: int) -> None:
        """Hand every held event to the node, in the order they came, and merge what it did."""
        self.caught_up = True
        held, self.held = self.held, []
        for event in held:
            sub = self.inner.step(event, now_us)
            if sub is None:
                continue
            for dst, msg in sub.sends:
                r.send(dst, msg)
            for delay, token in sub.timers:
                r.timer(delay, token)
            for value in sub.outputs:
                r.output(value)
            r.signs += sub.signs
            r.verifies += sub.verifies
            r.hold_us = max(r.hold_us, sub.hold_us)
