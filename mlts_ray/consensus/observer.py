"""DCE-PBFT's observer: a node outside the committee (the N-k others)."""

from __future__ import annotations

from mlts_ray.consensus.checks import check_certificate
from mlts_ray.consensus.instance import Instance
from mlts_ray.consensus.messages import Certificate, Fetch, Vote
from mlts_ray.consensus.dissemination import from_observer
from mlts_ray.consensus.pbft import ANY_DIGEST, FetchRetry, Replica, Start
from mlts_ray.ledger.crypto import Identity
from mlts_ray.net.node import Ready, Timer
from mlts_ray.net.rng import stream


class Observer:
    """DCE-PBFT: a node outside the committee; learns the block from a certificate (and passes
    it on, if the dissemination makes it a relay), or fetches it when none has come by its
    fetch timer -- from a member drawn at random, never the one it asked last."""

    __slots__ = ("me", "index", "inst", "committed", "replica_client", "asked", "rng")

    def __init__(self, me: Identity, index: int, inst: Instance) -> None:
        self.me, self.index, self.inst = me, index, inst
        self.committed: bytes | None = None
        self.asked: int | None = None  # the member asked last
        self.rng = None  # its fetch stream, drawn from only when it fetches
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
            r.timer(self.inst.first_fetch_us, FetchRetry(0))
        return r

    def _fetch(self, tries: int, r: Ready) -> None:
        """No certificate yet: ask a member for the block, then wait again, doubling."""
        inst = self.inst
        if self.committed is not None or tries > inst.max_view_changes:
            return
        if self.rng is None:
            self.rng = stream(inst.seed, "fetch", inst.chain, inst.round, self.index)
        others = [m for m in inst.members if m != self.asked and m != self.index]
        if others:
            self.asked = self.rng.choice(others)
            r.send(self.asked, Fetch(inst.chain, inst.height, ANY_DIGEST, self.me.name))
        r.timer(inst.refetch_after_us(tries), FetchRetry(tries + 1))

    def _on_certificate(self, cert: Certificate, r: Ready) -> None:
        if self.committed is not None:
            return
        done = check_certificate(self.inst, cert, r)
        if done is not None:
            self.committed = done.digest
            r.output(done)
            targets = from_observer(self.inst, self.index)
            if targets:  # a relay (gossip, or the client under "vmc")
                r.broadcast(targets, cert)
