"""A round's first view timeout from the chain's own normal case (docs/architecture.md
section 5, "Timeouts").

A view timer that fires before a fault-free round can finish turns every round into view
changes (PBFT at N = 100 on 20 Mbit/s took 3 views a round under a flat 500 ms). So with
``consensus.view_timeout_ms = "auto"`` members derive the first view timeout from what they
know before the round: the published link classes and CPU costs (``Timing``) and the request
they hold (its trades' bytes). The normal case is a closed form of the network model
(docs/architecture.md section 6) taken at its slow end: the proposal serialised on view 0's
primary's uplink, every other send on the slowest member's, every receipt on the slowest
downlink, every hop at ``base + 3 jitter``, every signature check on one CPU, and with loss on
a reliable transport one retransmission timeout per phase. The timeout is ``margin`` times
that; an observer (DCE-PBFT) first fetches a certificate it has not received ``margin`` times
the expected dissemination after that, and gives each fetch ``margin`` times its round trip,
doubling. A member holding the request expects the primary's proposal within ``margin`` times
the normal case's proposal part, and changes view if it has none by then (a primary that
dawdles under the view timeout). Performance accountability (Aardvark) may shorten the timeout
towards ``accountability_factor`` x the median of the chain's recent rounds, but never below
the normal case itself. Timeouts double per view (``Instance``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mlts_ray.consensus.dissemination import depth
from mlts_ray.consensus.instance import Instance
from mlts_ray.net.network import tx_us

#: Bytes of a signed vote (prepare, commit, reply) and a block header, rounded up: the
#: estimate is in milliseconds, these are a few hundred bytes (``messages.Vote``, ``Block``).
VOTE_BYTES = 256
HEADER_BYTES = 512
DIGEST_BYTES = 32


@dataclass(frozen=True, slots=True)
class Timing:
    """What a chain's members know of its timing before a round: link classes by node
    index, one hop's slow end, the CPU costs of a signature, the margin over the normal case
    and (performance accountability) the bound the chain's recent rounds set, if any."""

    hop_us: int
    up_bps: tuple[int, ...]
    down_bps: tuple[int, ...]
    sign_us: int
    verify_us: int
    margin: float
    bound_us: int | None = None
    # a configured first timeout (``view_timeout_ms`` a number): the bound is clipped to
    # [floor_us, fixed_us] and the normal case plays no part
    fixed_us: int | None = None
    floor_us: int = 0
    # with loss on a reliable transport, a phase's copy may come one retransmission late:
    # every phase is allowed one RTO (0: a lossless network, or datagrams that are not resent)
    rto_us: int = 0

    def normal_case_us(
        self, members: Sequence[int], client: int, request_bytes: int, proposal_bytes: int,
        trades: int,
    ) -> int:
        """The request reaching the last member, then pre-prepare, prepare and commit among
        the ``members``, each phase at its slow end (see the module docstring)."""
        return sum(self.phases(members, client, request_bytes, proposal_bytes, trades))

    def phases(
        self, members: Sequence[int], client: int, request_bytes: int, proposal_bytes: int,
        trades: int,
    ) -> tuple[int, int, int]:
        """The normal case's three parts: the request in every member's hand; prepare and
        commit; the primary's checks and its pre-prepare in every member's hand -- how long
        after its own request a member should have the proposal (its request came no sooner
        than the primary's, over the same slow-end path)."""
        k = len(members)
        up = min(self.up_bps[m] for m in members)
        down = min(self.down_bps[m] for m in members)
        told = sum(1 for m in members if m != client)
        verify, sign, hop = self.verify_us, self.sign_us, self.hop_us
        request = told * tx_us(request_bytes, self.up_bps[client]) + hop + tx_us(request_bytes, down)
        request += verify
        propose = 2 * trades * verify + sign  # the primary checks every contract, signs
        lead = self.up_bps[members[0]]  # view 0's primary (members are in primary order)
        pre_prepare = ((k - 1) * tx_us(proposal_bytes, lead) + hop + tx_us(proposal_bytes, down)
                       + (1 + 2 * trades) * verify + sign)
        vote = (k - 1) * (tx_us(VOTE_BYTES, up) + tx_us(VOTE_BYTES, down) + verify) + hop + sign
        late = self.rto_us  # each phase's copy may need one resend
        return request + late, 2 * (vote + late), propose + pre_prepare + late

    def dissemination_us(self, inst: Instance, cert_bytes: int) -> int:
        """The certificate's way to the last observer (``consensus.dissemination``), each copy
        through the slowest uplink of its senders and the slowest observer downlink."""
        observers = inst.observers
        if not observers:
            return 0
        up_m = min(self.up_bps[m] for m in inst.members)
        up_o = min(self.up_bps[o] for o in observers)
        down = min(self.down_bps[o] for o in observers)

        def copies(up: int, count: int) -> int:
            return count * tx_us(cert_bytes, up) + self.hop_us + tx_us(cert_bytes, down) + (
                self.rto_us)

        mode, n = inst.dissemination, len(observers)
        if mode == "committee":
            return copies(up_m, -(-n // inst.k))
        if mode == "gossip":
            return depth(n, inst.fanout) * copies(min(up_m, up_o), inst.fanout)
        if mode == "vmc":
            return copies(up_m, 1) + copies(self.up_bps[inst.client], n)
        return copies(up_m, n)

    def fetch_us(self, inst: Instance, cert_bytes: int) -> int:
        """An observer's fetch answered: its ask to a member and the certificate back, through
        the slowest member uplink and observer downlink."""
        up = min(self.up_bps[m] for m in inst.members)
        down = min(self.down_bps[o] for o in inst.observers)
        return 2 * (self.hop_us + self.rto_us) + tx_us(VOTE_BYTES, up) + tx_us(
            cert_bytes, up) + tx_us(cert_bytes, down)

    def first_timeout_us(self, normal_us: int) -> int:
        """``margin`` x the normal case, or the accountability bound if that is shorter -- but
        never below the normal case (or, configured, the bound within [floor, fixed])."""
        if self.fixed_us is not None:
            if self.bound_us is None:
                return self.fixed_us
            return max(self.floor_us, min(self.fixed_us, self.bound_us))
        timeout = round(self.margin * normal_us)
        if self.bound_us is not None:
            timeout = min(timeout, self.bound_us)
        return max(normal_us, timeout, 1)


def request_bytes(trades: Sequence[bytes]) -> int:
    """A request's size on the wire: its trades plus a header's worth of framing."""
    return sum(len(t) + 8 for t in trades) + HEADER_BYTES


def proposal_bytes(trades: Sequence[bytes], evidence: Sequence[bytes], outlined: bool) -> int:
    """A pre-prepare: its vote and header, and either a leaf hash per trade (an outline) or
    the whole block's evidence and trades."""
    if outlined:
        return HEADER_BYTES + VOTE_BYTES + DIGEST_BYTES * len(trades)
    return HEADER_BYTES + VOTE_BYTES + sum(len(e) + 8 for e in evidence) + request_bytes(trades)


def timed(inst: Instance, trades: Sequence[bytes]) -> Instance:
    """``inst`` with its timers set for a request of ``trades``: the first view timeout, the
    proposal timer, the observers' fetch timers (an instance built without a ``Timing``
    is returned as it is). Call before the instance's caches are filled: the copy starts
    with fresh ones."""
    timing = inst.timing
    if timing is None:
        return inst
    proposal = proposal_bytes(trades, inst.evidence, inst.proposal == "digests")
    parts = timing.phases(inst.members, inst.client, request_bytes(trades), proposal,
                          len(trades))
    timeout = timing.first_timeout_us(sum(parts))
    # a configured timeout keeps the old timers: no proposal timer, observers' from it
    expect = 0 if timing.fixed_us is not None else round(timing.margin * parts[2])
    observe = refetch = 0
    if timing.fixed_us is None and inst.observers:
        cert = proposal_bytes(trades, inst.evidence, False) + inst.q * VOTE_BYTES
        observe = timeout + round(timing.margin * timing.dissemination_us(inst, cert))
        refetch = round(timing.margin * timing.fetch_us(inst, cert))
    return replace(inst, view_timeout_us=timeout, observe_us=observe, refetch_us=refetch,
                   expect_us=expect)
