"""``mlts verify``: every round's committee and primary, recomputed from the credit state the
chain commits to.

The credit table a round begins with is bound to the chain (each block's ``credit_root``,
checked by ``certificates.check_credit_roots``). From it the committee selection of DCE-PBFT
(or the seeded draw of the random committee, or PBFT's every node) gives the round's committee
again, with the selection function the simulation itself uses. It must be exactly the nodes the
``credits`` table seats, and a block's proposer must be that committee's primary for the view
its certificate was signed in or an earlier one (a new view re-proposes a prepared block). PBFT's stable primary moves with every earlier view change, failed
rounds' included: the views each round took are the chain's own (its certificate's view, or its
round record's statements; ``consensus.conduct``), so the primary is checked for PBFT too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pandas as pd

from mlts_ray.analysis.certificates import records_of
from mlts_ray.analysis.run_files import VerifyError
from mlts_ray.config import Config, main_committee_size, side_committee_size
from mlts_ray.consensus.committee import SELECTORS
from mlts_ray.consensus.conduct import conduct
from mlts_ray.consensus.credit import CreditBook, Status
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.crypto import KeyRing
from mlts_ray.names import MAIN
from mlts_ray.mlts.main_chain import grid_names, vmc_names
from mlts_ray.mlts.topology import vpp_layout
from mlts_ray.net.network import best_connected


def chains(cfg: Config) -> Iterator[tuple[str, tuple[str, ...], tuple[str, ...], int]]:
    """(chain, nodes, committee candidates, k) of every chain, as the simulation lays them out."""
    pbft = cfg.consensus.algorithm == "pbft"
    for v in range(cfg.topology.vpps):
        layout = vpp_layout(cfg.topology, v)
        yield (layout.chain, layout.nodes, layout.candidates,
               len(layout.nodes) if pbft else side_committee_size(cfg))
    vmcs = vmc_names(cfg.topology)
    names = tuple(sorted((*vmcs, *grid_names(cfg.topology))))
    yield MAIN, names, vmcs, len(names) if pbft else main_committee_size(cfg)


def check_committees(cfg: Config, credits: pd.DataFrame, made: Mapping[tuple[str, int], Block],
                     certificates: Mapping[tuple[str, int], tuple],
                     keys: KeyRing | None = None,
                     offline=lambda chain, rnd: frozenset()) -> dict[tuple[str, int], tuple]:
    """Recompute every (chain, round) committee; returns them, in primary order.
    ``certificates``: the checked commits of each block (``check_certificates``); ``keys``:
    to follow PBFT's stable primary through the views the chain shows each round took;
    ``offline(chain, round)``: who was offline, whom no committee seats."""
    algorithm = cfg.consensus.algorithm
    select = SELECTORS[algorithm]
    tables = {key: rows for key, rows in credits.groupby(["chain", "round"], sort=False)}
    views = {key: commits[0].view for key, commits in certificates.items() if commits}
    out: dict[tuple[str, int], tuple] = {}
    stable = algorithm == "pbft" and cfg.consensus.pbft_primary != "rotate" and keys is not None
    for chain, names, candidates, k in chains(cfg):
        records = {r.round: r for (c, _), b in made.items() if c == chain and stable
                   for r in records_of(b)}
        chain_view = 0
        initial = CreditBook(cfg.credit, names)
        credit = initial.credits()
        status = {n: str(initial.status(n, 0)) for n in names}
        rnd = 0
        while (chain, rnd) in tables:
            away = offline(chain, rnd)
            committee = select(
                nodes=names, candidates=candidates, k=k, credit=credit,
                eligible=lambda n: status[n] == Status.ACTIVE,
                usable=lambda n: status[n] in (Status.ACTIVE, Status.INELIGIBLE)
                and n not in away,
                seed=cfg.experiment.seed, round_=rnd, chain=chain, view=chain_view,
                pbft_primary=cfg.consensus.pbft_primary if stable else "rotate",
                dce_primary=cfg.consensus.dce_primary,
                lead=best_connected(cfg.network, names),
            )
            rows = tables[(chain, rnd)]
            seated = set(rows.loc[rows["in_committee"].astype(bool), "node"])
            if seated != set(committee.members):
                raise VerifyError(f"credits round {rnd} chain {chain}", (
                    f"the committee is not the one its credit state prescribes: seated "
                    f"{sorted(seated - set(committee.members))} not chosen, chosen "
                    f"{sorted(set(committee.members) - seated)} not seated"))
            block = made.get((chain, rnd))
            if stable:
                did = conduct(committee.members, certificates.get((chain, rnd), ()),
                              records.get(rnd), keys)
                chain_view += did.views - 1 if did.decided else did.views
            if block is not None and (algorithm != "pbft" or stable) and (chain, rnd) in views:
                # a new view may re-propose a block prepared in an earlier view: its proposer
                # is that view's primary
                view, members = views[(chain, rnd)], committee.members
                primaries = {members[v % len(members)] for v in range(view + 1)}
                if block.header.proposer not in primaries:
                    raise VerifyError(f"block {block.ref}", (
                        f"proposed by {block.header.proposer}, who was the primary of no view "
                        f"up to the deciding view {view}"))
            credit = dict(zip(rows["node"], rows["credit"], strict=True))
            status = dict(zip(rows["node"], rows["status"], strict=True))
            out[(chain, rnd)] = committee.members
            rnd += 1
    return out

