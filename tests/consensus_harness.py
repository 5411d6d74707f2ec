"""Run one consensus instance on the simulated network without the full MLTS simulation.

Shared by the consensus tests: build an :class:`Instance` over ``N`` nodes of chain ``vpp-0``
(identities derived from seed 1), wrap every node so the harness sees each message it sends,
run the :class:`ChainSim` to quiescence and hand back what happened. Also the closed-form message
counts of docs/architecture.md section 5 (the request/reply part as this code defines it: the client sends the
request to every member but itself, and every member but the client replies).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mlts_ray.consensus.byzantine import wrap
from mlts_ray.consensus.instance import Answered, Committed, Instance
from mlts_ray.consensus.observer import Observer
from mlts_ray.consensus.pbft import Replica, Start
from mlts_ray.ledger import Identity, KeyRing, Trade
from mlts_ray.ledger.block import ZERO_HASH, Block, BlockKind
from mlts_ray.net.network import LinkModel, Nics
from mlts_ray.net.node import Ready
from mlts_ray.net.sim import ChainSim
from mlts_ray.population.registry import HONEST, strategies_of

CHAIN = "vpp-0"
KEY_SEED = 1
# docs/architecture.md section 6 intra-VPP defaults, in microseconds / bits per second.
DEFAULT_LINK = LinkModel(10_000, 3_000, 2_000)
NIC_BPS = 100e6  # every node's uplink and downlink
SIGN_US, VERIFY_US = 50, 150
VIEW_TIMEOUT_US = 500_000


def node_names(n: int) -> tuple[str, ...]:
    """Equal-length names, so every vote of one kind encodes to the same number of bytes."""
    return tuple(f"{CHAIN}/n-{i:03d}" for i in range(n))


@cache
def _identity(name: str) -> Identity:
    return Identity.derive(KEY_SEED, name)


def identities(n: int) -> list[Identity]:
    return [_identity(name) for name in node_names(n)]


def trades_for(n: int, count: int = 3) -> tuple[bytes, ...]:
    """``count`` distinct intra-VPP trades between the instance's own nodes, both sides signed."""
    ids = identities(n)
    out = []
    for j in range(count):
        b, s = 1 + j % (n - 1), 1 + (j + 1) % (n - 1)
        if b == s:
            s = 0
        trade = Trade(CHAIN, 0, ids[b].name, ids[s].name, CHAIN, CHAIN, 100 + j, 10, f"b{j}", f"s{j}")
        out.append(trade.sign(ids[b], ids[s]).encode())
    return tuple(out)


def make_instance(
    n: int, members: Sequence[int] | None = None, client: int = 0, certify: bool = True,
    max_view_changes: int = 4, proposal: str = "digests",
) -> Instance:
    """``members`` default to all ``n`` nodes (PBFT); the rest are observers when ``certify``;
    ``proposal``: pre-prepares by ``"digests"`` (outlines) or whole ``"block"``s."""
    names = node_names(n)
    members = tuple(range(n)) if members is None else tuple(members)
    observers = tuple(i for i in range(n) if i not in set(members)) if certify else ()
    return Instance(
        CHAIN, 0, 0, BlockKind.SIDE, ZERO_HASH, ZERO_HASH, names, members, observers, client,
        VIEW_TIMEOUT_US, max_view_changes, KeyRing.of(identities(n)), proposal=proposal,
    )


class Recorder:
    """Wraps a node; records every message it hands to the network (and when)."""

    def __init__(self, inner: Any, log: list) -> None:
        self.inner, self.log = inner, log

    def step(self, event: object, now_us: int) -> Ready:
        r = self.inner.step(event, now_us)
        if r is not None:
            self.log.extend((now_us, dst, msg) for dst, msg in r.sends)
        return r


@dataclass
class Run:
    inst: Instance
    sim: ChainSim
    sent: dict[int, list]  # sender index -> [(now_us, dst, msg)]
    trades: tuple[bytes, ...]
    committed: dict[int, Committed] = field(default_factory=dict)  # node -> first commit
    answered: list[Answered] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {p: s.count for p, s in self.sim.phases.items()}

    def sent_by_phase(self) -> dict[str, list]:
        out: dict[str, list] = defaultdict(list)
        for sender, items in self.sent.items():
            for _, dst, msg in items:
                out[msg.phase].append((sender, dst, msg))
        return dict(out)

    def digests(self) -> set[bytes]:
        return {c.digest for c in self.committed.values()}

    def block(self) -> Block:
        (digest,) = self.digests()
        raw = next(c.block for c in self.committed.values() if c.digest == digest)
        return Block.decode(raw)


def run_instance(
    inst: Instance, trades: Iterable[bytes] = (), link: LinkModel = DEFAULT_LINK, seed: int = 1,
    behaviours: Mapping[int, str] | None = None, start_all: bool = False,
) -> Run:
    """Start the round (the client only, like ``mlts.consensus_round.run_instance``; every node
    when ``start_all``) and run every event."""
    n = len(inst.names)
    ids = identities(n)
    behaviours = behaviours or {}
    member = set(inst.members)
    sent: dict[int, list] = {i: [] for i in range(n)}
    nodes = []
    for i in range(n):
        honest = Replica(ids[i], i, inst) if i in member else Observer(ids[i], i, inst)
        node = wrap(strategies_of(behaviours.get(i, HONEST)).consensus, honest, me=ids[i],
                    inst=inst)
        nodes.append(Recorder(node, sent[i]))
    sim = ChainSim(CHAIN, nodes, link, seed, SIGN_US, VERIFY_US, nics=Nics.uniform(n, NIC_BPS))
    trades = tuple(trades)
    for i in range(n) if start_all else (inst.client,):
        sim.input(i, Start(trades), 0)
    sim.run()
    out = Run(inst, sim, sent, trades)
    for ob in sim.observations:
        if isinstance(ob.value, Committed):
            out.committed.setdefault(ob.node, ob.value)
        elif isinstance(ob.value, Answered):
            out.answered.append(ob.value)
    return out


# --- closed forms (docs/architecture.md section 5) -------------------------------------------------------------


def expected_pbft(n: int, client_is_member: bool = True) -> dict[str, int]:
    return expected_dce(n, n, client_is_member)


def expected_dce(n: int, k: int, client_is_member: bool) -> dict[str, int]:
    """Per-phase message counts of one fault-free instance; phases with no message omitted."""
    client_traffic = k - 1 if client_is_member else k
    counts = {
        "request": client_traffic,
        "pre-prepare": k - 1,
        "prepare": (k - 1) ** 2,
        "commit": k * (k - 1),
        "reply": client_traffic,
        "certificate": n - k,
    }
    return {p: c for p, c in counts.items() if c}
