"""DCE-PBFT's observer: a node outside the committee (the N-k others)."""

from __future__ import annotations

from mlts_ray.consensus.checks import check_certificate
from mlts_ray.consensus.instance import Instance
from mlts_ray.consensus.messages import Certificate, Fetch, Vote
from mlts_ray.consensus.pbft import ANY_DIGEST, FetchRetry, Replica, Start, retry_after_us
from mlts_ray.ledger.crypto import Identity
from mlts_ray.net.node import Ready, Timer


class Observer:
    """DCE-PBFT: a node outside the committee; learns the block from a certificate, or fetches
    it from the members in turn when none has come by its fetch timer."""

    __slots__ = ("me", "index", "inst", "committed", "replica_client")

    def __init__(self, me: Identity, index: int, inst: Instance) -> None:
        self.me, self.index, self.inst = me, index, inst
        self.committed: bytes | None = None
        # The client may sit outside the committee: it still sends the request and counts replies.
        self.replica_client = Replica(me, index, inst) if index == inst.client else None

    def step(self, event: object, now_us: int) -> Ready:
        if isinstance(event, Certificate):
            r = Ready()
            self._on_certificate(event, r)
            return r
        token = event.token if isinstance(event, Timer) else None
        if isinstance(token, FetchRetry):
            r = Ready()
            self._fetch(token.tries, r)
            return r
        r = Ready()
        if self.replica_client is not None and isinstance(event, (Start, Vote, Timer)):
            r = self.replica_client.step(event, now_us)
        if isinstance(event, Start):
            r.timer(retry_after_us(self.inst, 0), FetchRetry(0))
        return r

    def _fetch(self, tries: int, r: Ready) -> None:
        """No certificate yet: ask the next member (in primary order) for the block."""
        inst = self.inst
        if self.committed is not None or tries > inst.max_view_changes:
            return
        member = inst.members[tries % inst.k]
        r.send(member, Fetch(inst.chain, inst.height, ANY_DIGEST, self.me.name))
        r.timer(retry_after_us(inst, tries + 1), FetchRetry(tries + 1))

    def _on_certificate(self, cert: Certificate, r: Ready) -> None:
        if self.committed is not None:
            return
        done = check_certificate(self.inst, cert, r)
        if done is not None:
            self.committed = done.digest
            r.output(done)
