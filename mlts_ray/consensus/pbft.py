"""PBFT (Castro & Liskov, OSDI '99) for one block per round, as a sans-I/O state machine.

Normal case: the client's request reaches the members; the primary of the view proposes a block
(pre-prepare); backups check it and broadcast prepares; a member holding the pre-prepare and
q-1 matching prepares is *prepared* and broadcasts a commit; with q matching commits it commits
and replies to the client. DCE-PBFT runs exactly this among its k committee members, then the
primary sends the block with q signed commits (a certificate) to the N-k observers.

View change: a member whose view timer expires before it commits moves to view v+1 and
broadcasts a view-change carrying its latest prepared proof; the new primary, holding q of them,
broadcasts a new-view with those view-changes and a pre-prepare that re-proposes the highest
prepared block (or a fresh one when none was prepared). A member that sees f+1 view-changes for
a higher view joins it. Timeouts double per view.

Recovery (Castro-Liskov section 4, for datagram networks and crashed leaders): a client with no
f+1 replies resends its request to every member (doubling its wait), a member that hears a
request arms its view timer whatever the primary did, and a member that already committed
answers a resent request with its reply again. A DCE-PBFT observer (``observer``) that has no
certificate when its fetch timer fires asks the members in turn for the block and its
certificate. What a member checks of a proposal or a certificate is in ``checks``; what it
reports as a proof of misbehaviour, in ``evidence``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlts_ray.consensus.by_digest import AwaitTrades, ByDigest, FetchBlock
from mlts_ray.consensus.checks import _decoded_trade, check_block, check_certificate, decoded_block
from mlts_ray.consensus.dissemination import from_member
from mlts_ray.consensus.evidence import DoubleVote, Equivocation, InvalidProposal
from mlts_ray.consensus.instance import (
    Accepted,
    Answered,
    Committed,
    Evidence,
    GaveUp,
    Instance,
    Proposed,
    ViewEntered,
)
from mlts_ray.consensus.messages import (
    Certificate,
    Fetch,
    NewView,
    Prepared,
    PrePrepare,
    Request,
    TradeFetch,
    Trades,
    ZERO_DIGEST,
    ViewChange,
    Vote,
)
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import Block
from mlts_ray.ledger.crypto import Identity, SigKind
from mlts_ray.net.node import Ready, Timer

_PREPARE, _COMMIT, _REPLY = SigKind.PREPARE, SigKind.COMMIT, SigKind.REPLY


class Start:
    """Round start, handed to every node; the client sends its request on it, an observer arms
    its fetch timer."""

    __slots__ = ("trades",)

    def __init__(self, trades: tuple[bytes, ...] = ()) -> None:
        self.trades = trades


class Retry:
    """Timer token of a client's request resend (``tries`` so far)."""

    __slots__ = ("tries",)

    def __init__(self, tries: int) -> None:
        self.tries = tries


class FetchRetry(Retry):
    """Timer token of an observer's fetch (``tries`` so far)."""


class ExpectProposal:
    """Timer token: a member holding the request expects the primary's proposal of ``view``
    by now (performance accountability for the proposal itself)."""

    __slots__ = ("view",)

    def __init__(self, view: int) -> None:
        self.view = view


def honest_selection(valid: list[bytes]) -> list[bytes]:
    """What an honest primary packs of the request's valid trades: all of them."""
    return valid


#: A fetch for whatever block the member committed at this height (an observer that never saw
#: the certificate does not know the digest).
ANY_DIGEST = bytes(32)


def retry_after_us(inst: Instance, tries: int) -> int:
    """A client's or observer's wait before try ``tries + 1``: twice the view timeout, doubling,
    so a view change has its chance before the client resends."""
    return inst.timeout_us(1 + tries)


class Replica(ByDigest):
    """A committee member (every node, under PBFT)."""

    __slots__ = (
        "me", "index", "inst", "others", "is_client", "member", "gave_up", "view", "changing",
        "request",
        "accepted", "votes", "prepared", "commit_sent", "committed", "armed", "vcs",
        "new_view_sent", "replies", "answered", "fetched", "commit_proof", "certified", "helped",
        "tally", "reply", "parked", "extra", "wanted", "select", "reproposed",
    )

    def __init__(self, me: Identity, index: int, inst: Instance) -> None:
        self.me, self.index, self.inst = me, index, inst
        self.others = tuple(m for m in inst.members if m != index)
        self.is_client = index == inst.client
        self.member = index in inst.members  # False only for a client outside the committee
        self.gave_up = False
        self.view = 0
        self.changing = False  # between sending a view-change and entering the new view
        self.request: Request | None = None
        self.accepted: dict[int, PrePrepare] = {}
        self.votes: dict[tuple[int, int], dict[str, Vote]] = {}  # (kind, view) -> sender -> vote
        self.tally: dict[tuple[int, int, bytes], dict[str, Vote]] = {}  # ... and by digest
        self.prepared: Prepared | None = None
        self.commit_sent: set[int] = set()
        self.committed: bytes | None = None
        self.armed: set[int] = set()
        self.vcs: dict[int, dict[str, ViewChange]] = {}
        self.new_view_sent: set[int] = set()
        self.replies: dict[bytes, set[str]] = {}
        self.answered = False
        self.fetched: set[bytes] = set()
        self.commit_proof: Certificate | None = None
        self.certified = False  # sent the certificate to the observers
        self.helped: set[str] = set()  # lagging members sent our commit proof
        self.reply: Vote | None = None  # our signed reply, sent again to a resent request
        self.parked: dict[int, PrePrepare] = {}  # view -> outlined proposal awaiting trades
        self.extra: set[bytes] = set()  # trades fetched beyond the request
        self.wanted: set[bytes] = set()  # leaf hashes of the trades asked for
        self.reproposed: set[int] = set()  # parked views whose proposal re-proposes a prepared block
        # which of the request's valid trades a proposal packs: a primary's packing strategy
        # (honest: all; a censoring wrapper swaps in its own)
        self.select = honest_selection

    @property
    def name(self) -> str:
        return self.me.name

    # --- dispatch ---------------------------------------------------------------------------

    def step(self, event: object, now_us: int) -> Ready:
        r = Ready()
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, r)
        return r

    # --- client role --------------------------------------------------------------------------

    def _on_start(self, start: Start, r: Ready) -> None:
        if not self.is_client:
            return
        inst = self.inst
        req = Request(inst.chain, inst.height, self.name, start.trades).signed(self.me)
        r.signs += 1
        r.broadcast(self.others, req)
        self._on_request(req, r, verified=True)
        r.timer(retry_after_us(inst, 0), Retry(0))

    def _on_retry(self, retry: Retry, r: Ready) -> None:
        """No f+1 replies yet: resend the request to every member (the same signed bytes)."""
        inst = self.inst
        if not self.is_client or self.answered or self.request is None:
            return
        if retry.tries >= inst.max_view_changes:
            return
        r.broadcast(self.others, self.request)
        r.timer(retry_after_us(inst, retry.tries + 1), Retry(retry.tries + 1))

    def _on_reply(self, vote: Vote, r: Ready) -> None:
        if not self.is_client or vote.sender not in self.inst.member_names:
            return
        r.verifies += 1
        if not vote.valid(self.inst.keys):
            r.output(Evidence("bad-signature", vote.sender, "reply"))
            return
        self._count_reply(vote.sender, vote.digest, r)

    def _count_reply(self, sender: str, digest: bytes, r: Ready) -> None:
        voters = self.replies.setdefault(digest, set())
        voters.add(sender)
        if not self.answered and len(voters) >= self.inst.f + 1:
            self.answered = True
            r.output(Answered(digest))

    # --- normal case --------------------------------------------------------------------------

    def _on_request(self, req: Request, r: Ready, verified: bool) -> None:
        inst = self.inst
        if req.chain != inst.chain or req.height != inst.height:
            return
        if self.request is not None:
            if self.reply is not None and req.client == inst.names[inst.client]:
                r.send(inst.client, self.reply)  # the client resent: our reply was lost
            return
        if not verified:
            r.verifies += 1
            if req.client != inst.names[inst.client] or not req.valid(inst.keys):
                r.output(Evidence("bad-signature", req.client, "request"))
                return
        self.request = req
        self._arm(self.view, r)
        if inst.primary(self.view) == self.index and not self.changing and self.view not in self.accepted:
            self._propose(self._fresh_block(r), r)
        elif self.member and inst.expect_us and self.committed is None:
            r.timer(inst.expect_us, ExpectProposal(self.view))
        self._unpark(r)

    def _fresh_block(self, r: Ready) -> bytes:
        """Pack the request's trades whose contracts carry both valid signatures."""
        inst = self.inst
        valid = self._valid_contracts(self.request.trades if self.request else (), r)
        r.signs += 1
        block = Block.create(
            self.me, chain=inst.chain, height=inst.height, kind=inst.kind, round=inst.round,
            prev_hash=inst.prev_hash, txs=self.select(valid), anchor_root=inst.anchor_root,
            last_commit=inst.last_commit, credit_root=inst.credit_root, evidence=inst.evidence,
        )
        return block.encode()

    def _propose(self, block: bytes, r: Ready, digest: bytes | None = None) -> PrePrepare:
        inst = self.inst
        digest = digest or Block.decode(block).hash
        vote = Vote(SigKind.PRE_PREPARE, inst.chain, inst.height, self.view, digest, self.name)
        pp = PrePrepare(vote.signed(self.me), block)
        r.signs += 1
        self.accepted[self.view] = pp
        r.output(Proposed(self.view, digest))
        if not self.changing:  # a new-view carries its own pre-prepare
            outlined = inst.proposal == "digests"
            r.broadcast(self.others, PrePrepare(pp.vote, block, True) if outlined else pp)
        self._progress(self.view, r)
        return pp

    def _on_pre_prepare(self, pp: PrePrepare, r: Ready) -> None:
        inst, vote = self.inst, pp.vote
        if vote.view != self.view or self.changing or not self._same_instance(vote):
            return
        if vote.kind != SigKind.PRE_PREPARE or vote.sender != inst.names[inst.primary(vote.view)]:
            return
        r.verifies += 1
        if not vote.valid(inst.keys):
            r.output(Evidence("bad-signature", vote.sender, "pre-prepare"))
            return
        if pp.outlined and (self.request is None or self._missing(pp.block)):
            self._park(pp, r)  # Castro-Liskov: a backup takes a proposal with the request
            return
        self._consider(pp.whole(), r)

    def _consider(self, pp: PrePrepare, r: Ready) -> None:
        """A fresh proposal, readable: accept it unless it leaves out a valid trade of the
        request this member holds (Castro-Liskov's request timer, within the round: the
        member does not take it, so its view change says it had no proposal and the primary
        is blamed and replaced)."""
        omitted = self._censored(pp.block, r)
        if omitted:
            r.output(Evidence("censorship", pp.vote.sender, "pre-prepare", pp.vote.view,
                              pp.vote.digest, f"{omitted} valid trade(s) of the request left out"))
            return
        self._accept(pp, r)

    def _censored(self, data: bytes, r: Ready) -> int:
        """How many trades of the held request the block leaves out although both their
        signatures check (each such check charged); 0 without a request or a decodable block."""
        block = decoded_block(self.inst, data)
        if self.request is None or block is None:
            return 0
        inside = set(block.txs)
        left_out = [raw for raw in self.request.trades if raw not in inside]
        return len(self._valid_contracts(left_out, r))

    def _valid_contracts(self, trades: Iterable[bytes], r: Ready) -> list[bytes]:
        """The trades whose contracts carry both parties' valid signatures (each check
        charged): what a primary must pack, and what no proposal may leave out."""
        inst, valid = self.inst, []
        for raw in trades:
            r.verifies += 2
            try:
                if _decoded_trade(inst, raw).verify(inst.keys):
                    valid.append(raw)
            except MltsError:
                continue
        return valid

    def _accept(self, pp: PrePrepare, r: Ready) -> None:
        """Check a signed pre-prepare's block; if good, accept it and send our prepare."""
        vote, view = pp.vote, pp.vote.view
        held = self.accepted.get(view)
        if held is not None:
            if held.vote.digest != vote.digest:
                r.output(Evidence("equivocation", vote.sender, "pre-prepare", view, vote.digest,
                                  proof=Equivocation(held.vote, vote)))
            return
        problem, verifies, _ = check_block(self.inst, pp.block, vote.digest)
        r.verifies += verifies
        if problem:
            r.output(Evidence("invalid-block", vote.sender, "pre-prepare", view, vote.digest,
                              problem, proof=InvalidProposal(vote, pp.block)))
            return
        self.accepted[view] = pp
        r.output(Accepted(vote))
        self._arm(view, r)
        self._vote(SigKind.PREPARE, view, vote.digest, r)
        self._progress(view, r)

    def _vote(self, kind: SigKind, view: int, digest: bytes, r: Ready) -> None:
        inst = self.inst
        vote = Vote(kind, inst.chain, inst.height, view, digest, self.name).signed(self.me)
        r.signs += 1
        self._record(vote)
        r.broadcast(self.others, vote)

    def _same_instance(self, vote: Vote) -> bool:
        return vote.chain == self.inst.chain and vote.height == self.inst.height

    def _on_vote(self, vote: Vote, r: Ready) -> None:
        # The hot path (N-1 prepares and commits reach every member): checks in the order
        # that rejects cheapest.
        kind = vote.kind
        if kind != _PREPARE and kind != _COMMIT:
            if kind == _REPLY:
                self._on_reply(vote, r)
            return
        inst, sender, view = self.inst, vote.sender, vote.view
        if vote.height != inst.height or vote.chain != inst.chain:
            return
        if sender not in inst.member_names:
            r.output(Evidence("non-member", sender, vote.phase))
            return
        members = inst.members
        if kind == _PREPARE and sender == inst.names[members[view % len(members)]]:
            return  # the primary's pre-prepare is its prepare
        r.verifies += 1
        keys, checked = inst.keys, vote._checked  # the memo of Vote.valid, read without a call
        if not (checked[1] if checked is not None and checked[0] is keys else vote.valid(keys)):
            r.output(Evidence("bad-signature", sender, vote.phase, view))
            return
        seen = self.votes.get((kind, view))
        if seen is None:
            seen = self.votes[(kind, view)] = {}
        earlier = seen.get(sender)
        if earlier is not None:
            if earlier.digest != vote.digest:
                r.output(Evidence("double-vote", sender, vote.phase, view, vote.digest,
                                  proof=DoubleVote(earlier, vote)))
            return
        # _record, inlined with the sender's tally already in hand (per delivery it counts)
        seen[sender] = vote
        tally = self.tally
        same = tally.get((kind, view, vote.digest))
        if same is None:
            same = tally[(kind, view, vote.digest)] = {}
        same[sender] = vote
        held = self.accepted.get(view)
        if held is not None:
            digest = held.vote.digest
            if digest != vote.digest:
                r.output(Evidence("conflicting-vote", sender, vote.phase, view, vote.digest,
                                  proof=vote))
            # would _progress act now? its own two conditions, without building lists: most
            # votes arrive when it would not
            if view == self.view and not self.changing:
                if view not in self.commit_sent:
                    due = len(tally.get((_PREPARE, view, digest), ())) >= inst.q - 1
                else:
                    due = (self.committed is None
                           and len(tally.get((_COMMIT, view, digest), ())) >= inst.q)
                if due:
                    self._progress(view, r)
        if kind == _COMMIT and self.committed is None and len(same) >= inst.q:
            self._learn(vote, r)

    def _record(self, vote: Vote) -> dict[str, Vote]:
        """Record a vote by sender and in its digest's tally; returns that tally."""
        self.votes.setdefault((vote.kind, vote.view), {})[vote.sender] = vote
        same = self.tally.setdefault((vote.kind, vote.view, vote.digest), {})
        same[vote.sender] = vote
        return same

    def _matching(self, kind: SigKind, view: int, digest: bytes) -> list[Vote]:
        return list(self.tally.get((kind, view, digest), {}).values())

    def _count(self, kind: SigKind, view: int, digest: bytes) -> int:
        return len(self.tally.get((kind, view, digest), ()))

    def _progress(self, view: int, r: Ready) -> None:
        # A member that already committed still votes in a later view: others may need it.
        pp = self.accepted.get(view)
        if pp is None:
            return
        inst, digest = self.inst, pp.vote.digest
        if view not in self.commit_sent:
            if self._count(SigKind.PREPARE, view, digest) < inst.q - 1:
                return
            prepares = self._matching(SigKind.PREPARE, view, digest)
            # by digest, a view change carries the proposal's outline, not its block
            proof = PrePrepare(pp.vote, pp.block, True) if inst.proposal == "digests" else pp
            self.prepared = Prepared(proof, tuple(sorted(prepares, key=lambda v: v.sender)[: inst.q - 1]))
            self.commit_sent.add(view)
            self._vote(SigKind.COMMIT, view, digest, r)
        if self.committed is None and self._count(SigKind.COMMIT, view, digest) >= inst.q:
            self._commit(pp, self._matching(SigKind.COMMIT, view, digest), r)

    # --- catching up ----------------------------------------------------------------------------

    def _learn(self, vote: Vote, r: Ready) -> None:
        """q commits for one digest in one view prove it committed, whatever view this member
        is in now: commit it if we hold the block, else fetch the block from a committer."""
        if self.committed is not None or self._count(SigKind.COMMIT, vote.view, vote.digest) < self.inst.q:
            return
        commits = self._matching(SigKind.COMMIT, vote.view, vote.digest)
        held = self.accepted.get(vote.view)
        parked = self.parked.get(vote.view)
        if held is not None and held.vote.digest == vote.digest:
            self._commit(held, commits, r)
        elif parked is not None and parked.vote.digest == vote.digest and vote.view == self.view:
            return  # its outline is here and its trades are being fetched: no block needed
        else:  # from the committers in turn, the one whose commit completed the quorum first
            self._fetch_block((vote, *(c for c in commits if c.sender != vote.sender)), 0, r)

    def _help(self, member: str, r: Ready) -> None:
        """A member still changing views after we committed gets our commit proof (state
        transfer) -- by digest, its outline and the q commits: it checks them itself, and
        rebuilds the block from the trades it holds or fetches it once."""
        proof = self.commit_proof
        if proof is not None and member not in self.helped:
            self.helped.add(member)
            if self.inst.proposal == "digests":
                proof = Certificate(proof.block, proof.commits, True)
            r.send(self.inst.index_of[member], proof)

    def _certify(self, view: int, r: Ready) -> None:
        """DCE-PBFT: send the certificate on towards the N-k observers as the dissemination
        says (``consensus.dissemination``); the primary's part falls to the primary of the
        deciding view -- or, if the decision straddled a view change, of the view we are in."""
        inst = self.inst
        if not inst.observers or self.certified or self.commit_proof is None:
            return
        deciding = self.index in (inst.primary(view), inst.primary(self.view))
        targets = from_member(inst, self.index, deciding)
        if targets or deciding:
            self.certified = True
        if targets:
            r.broadcast(targets, self.commit_proof)

    def _on_fetch(self, fetch: Fetch, r: Ready) -> None:
        inst = self.inst
        if fetch.sender not in inst.index_of:
            return
        if fetch.height == inst.height - 1:  # a lagging node catching up on the last block
            if inst.prev_certificate is not None and self.index not in inst.lagging:
                r.send(inst.index_of[fetch.sender], inst.prev_certificate)
            return
        proof = self.commit_proof
        if proof is None:
            return
        if fetch.digest in (self.committed, ANY_DIGEST) and fetch.height == self.inst.height:
            r.send(self.inst.index_of[fetch.sender], proof)

    def _on_certificate(self, cert: Certificate, r: Ready) -> None:
        if self.committed is not None or not self.member:
            return
        if cert.outlined and self._missing(cert.block):
            self._fetch_block(cert.commits, 0, r)
            return
        done = check_certificate(self.inst, cert, r)
        if done is not None:
            self.committed = done.digest
            self.commit_proof = cert
            r.output(done)
            self._certify(done.view, r)

    def _commit(self, pp: PrePrepare, commits: list[Vote], r: Ready) -> None:
        inst, view, digest = self.inst, pp.vote.view, pp.vote.digest
        self.committed = digest
        self.commit_proof = Certificate(
            pp.block, tuple(sorted(commits, key=lambda v: v.sender)[: inst.q])
        )
        prepared_by = {v.sender for v in self._matching(SigKind.PREPARE, view, digest)}
        prepared_by.add(pp.vote.sender)  # the primary's pre-prepare is its prepare-phase vote
        prepared = self.prepared
        prepares = prepared.prepares if prepared and prepared.pre_prepare.vote.digest == digest else ()
        r.output(Committed(
            inst.height, view, digest, pp.block, frozenset(prepared_by),
            frozenset(v.sender for v in commits), self.commit_proof, prepares,
        ))
        if self.is_client:
            self._count_reply(self.name, digest, r)
        else:
            self.reply = Vote(SigKind.REPLY, inst.chain, inst.height, view, digest,
                              self.name).signed(self.me)
            r.signs += 1
            r.send(inst.client, self.reply)
        self._certify(view, r)

    # --- view change --------------------------------------------------------------------------

    def _arm(self, view: int, r: Ready) -> None:
        if self.member and view not in self.armed and self.committed is None:
            self.armed.add(view)
            r.timer(self.inst.timeout_us(view), view)

    def _on_timer(self, view: object, r: Ready) -> None:
        if isinstance(view, Retry):
            self._on_retry(view, r)
        elif isinstance(view, AwaitTrades):
            self._fetch_trades(view, r)
        elif isinstance(view, FetchBlock):
            self._fetch_block(view.commits, view.tries, r)
        elif isinstance(view, ExpectProposal):
            v = view.view
            if (self.committed is None and v == self.view and not self.changing
                    and v not in self.accepted and v not in self.parked):
                self._start_view_change(v + 1, r)  # no proposal in time: a slow primary
        elif self.committed is None and view == self.view:
            self._start_view_change(self.view + 1, r)

    def _start_view_change(self, new_view: int, r: Ready) -> None:
        inst = self.inst
        if new_view > inst.max_view_changes:
            if not self.gave_up:
                self.gave_up = True
                r.output(GaveUp(self.view))
            return
        left = self.accepted.get(self.view)
        self.view, self.changing = new_view, True
        vc = ViewChange(inst.chain, inst.height, new_view, self.name, self.prepared, inst.round,
                        left.vote.digest if left else ZERO_DIGEST).signed(self.me)
        r.signs += 1
        r.broadcast(self.others, vc)
        self.vcs.setdefault(new_view, {})[self.name] = vc
        self._arm(new_view, r)
        self._maybe_new_view(new_view, r)

    def _valid_view_change(self, vc: ViewChange, r: Ready) -> bool:
        inst = self.inst
        if vc.sender not in inst.member_names or (vc.chain, vc.height, vc.round) != (
                inst.chain, inst.height, inst.round):
            return False
        r.verifies += 1
        if not vc.valid(inst.keys):
            r.output(Evidence("bad-signature", vc.sender, "view-change"))
            return False
        return vc.prepared is None or self._valid_prepared(vc.prepared, r)

    def _valid_prepared(self, proof: Prepared, r: Ready) -> bool:
        inst, pp = self.inst, proof.pre_prepare
        v, digest = pp.vote.view, pp.vote.digest
        if pp.vote.sender != inst.names[inst.primary(v)] or len(proof.prepares) < inst.q - 1:
            return False
        senders = {p.sender for p in proof.prepares}
        if len(senders) != len(proof.prepares) or pp.vote.sender in senders:
            return False
        if not senders <= inst.member_names:
            return False
        if any(p.view != v or p.digest != digest or p.kind != SigKind.PREPARE for p in proof.prepares):
            return False
        r.verifies += 1 + len(proof.prepares)
        if not pp.vote.valid(inst.keys) or not all(p.valid(inst.keys) for p in proof.prepares):
            return False
        block = decoded_block(inst, pp.block)
        return block is not None and block.hash == digest

    def _on_view_change(self, vc: ViewChange, r: Ready) -> None:
        if not self.member or not self._valid_view_change(vc, r):
            return
        if self.committed is not None:
            self._help(vc.sender, r)
        nv = vc.new_view
        self.vcs.setdefault(nv, {})[vc.sender] = vc
        if nv > self.view and len(self.vcs[nv]) >= self.inst.f + 1:
            self._start_view_change(nv, r)  # f+1 others want a later view: join them
            return
        self._maybe_new_view(nv, r)

    @staticmethod
    def _highest_prepared(vcs: list[ViewChange]) -> Prepared | None:
        proofs = [vc.prepared for vc in vcs if vc.prepared is not None]
        return max(proofs, key=lambda p: p.pre_prepare.vote.view, default=None)

    def _maybe_new_view(self, nv: int, r: Ready) -> None:
        inst = self.inst
        vcs = self.vcs.get(nv, {})
        if inst.primary(nv) != self.index or nv in self.new_view_sent or self.view != nv:
            return
        if len(vcs) < inst.q:
            return
        self.new_view_sent.add(nv)
        chosen = [vcs[s] for s in sorted(vcs)][: inst.q]
        best = self._highest_prepared(chosen)
        if best is not None:
            pp = self._propose(best.pre_prepare.block, r, best.pre_prepare.vote.digest)
        else:
            pp = self._propose(self._fresh_block(r), r)
        if inst.proposal == "digests":
            pp = PrePrepare(pp.vote, pp.block, True)
        msg = NewView(inst.chain, nv, self.name, tuple(chosen), pp).signed(self.me)
        r.signs += 1
        r.broadcast(self.others, msg)
        self._enter(nv, r)

    def _enter(self, view: int, r: Ready) -> None:
        self.view, self.changing = view, False
        r.output(ViewEntered(view))
        if self.committed is not None:
            self._certify(view, r)
        self._arm(view, r)
        self._progress(view, r)

    def _on_new_view(self, msg: NewView, r: Ready) -> None:
        inst, nv = self.inst, msg.view
        if not self.member or nv < self.view or msg.chain != inst.chain:
            return
        if msg.sender != inst.names[inst.primary(nv)]:
            return
        r.verifies += 1
        if not msg.valid(inst.keys):
            r.output(Evidence("bad-signature", msg.sender, "new-view"))
            return
        senders = {vc.sender for vc in msg.view_changes}
        if len(senders) < inst.q or any(vc.new_view != nv for vc in msg.view_changes):
            return
        if not all(self._valid_view_change(vc, r) for vc in msg.view_changes):
            return
        pp, best = msg.pre_prepare, self._highest_prepared(list(msg.view_changes))
        if pp.vote.view != nv or pp.vote.sender != msg.sender:
            return
        if best is not None and best.pre_prepare.vote.digest != pp.vote.digest:
            r.output(
                Evidence("invalid-block", msg.sender, "new-view", nv, pp.vote.digest,
                         "ignores a prepared block")
            )
            return
        r.verifies += 1
        if not pp.vote.valid(inst.keys):
            return
        self.view, self.changing = nv, False
        r.output(ViewEntered(nv))
        if pp.outlined and self._missing(pp.block):
            self._park(pp, r, reproposed=best is not None)
        elif best is None:
            self._consider(pp.whole(), r)  # a fresh proposal: it must carry the request's trades
        else:
            self._accept(pp.whole(), r)  # a prepared block re-proposed: safety takes it as it is


_HANDLERS = {  # one dict lookup per event instead of a chain of isinstance checks
    Vote: Replica._on_vote,
    PrePrepare: Replica._on_pre_prepare,
    Timer: lambda self, event, r: self._on_timer(event.token, r),
    Request: lambda self, event, r: self._on_request(event, r, verified=False),
    ViewChange: Replica._on_view_change,
    NewView: Replica._on_new_view,
    Start: Replica._on_start,
    Fetch: Replica._on_fetch,
    Certificate: Replica._on_certificate,
    TradeFetch: Replica._on_trade_fetch,
    Trades: Replica._on_trades,
}
