"""Proposals and state transfer by digest (Castro-Liskov): a pre-prepare, a new view or a
commit certificate names its block by outline -- the signed header and each trade's Merkle leaf
hash (``messages.PrePrepare``) -- and a member rebuilds the block from the trades it holds: the
client's request, and what it fetched. What it lacks it fetches: trades from the client, then
the primary (``TradeFetch``/``Trades``); a committed block it cannot rebuild, once from one
committer, then the next (``Fetch``). The replica's part of this, as a mixin of
``pbft.Replica`` (whose state it reads: ``request``, ``parked``, ``extra``, ``wanted``,
``reproposed``, ``fetched``)."""

from __future__ import annotations

from mlts_ray.consensus.checks import decoded_block
from mlts_ray.consensus.messages import Fetch, PrePrepare, TradeFetch, Trades, Vote
from mlts_ray.ledger.merkle import leaf_hash
from mlts_ray.net.node import Ready


class AwaitTrades:
    """Timer token of a member holding an outlined pre-prepare of ``view`` whose trades it
    lacks: fetch them (``tries`` fetches so far)."""

    __slots__ = ("view", "tries")

    def __init__(self, view: int, tries: int) -> None:
        self.view, self.tries = view, tries


class FetchBlock:
    """Timer token: no block yet from the committer asked; ask the next one of ``commits``."""

    __slots__ = ("commits", "tries")

    def __init__(self, commits: tuple, tries: int) -> None:
        self.commits, self.tries = commits, tries


class ByDigest:
    """The by-digest half of a replica: parking proposals whose trades are not here yet,
    fetching trades and blocks, answering others' fetches."""

    __slots__ = ()

    def _missing(self, data: bytes) -> list[bytes]:
        """The trades of the block outlined by ``data`` this member holds neither from the
        request nor from a fetch (what it may not read of the block yet). An undecodable block
        names nothing: its check fails."""
        block = decoded_block(self.inst, data)
        if block is None:
            return []
        held = self.request.held() if self.request is not None else frozenset()
        return [t for t in block.txs if t not in held and t not in self.extra]

    def _park(self, pp: PrePrepare, r: Ready, reproposed: bool = False) -> None:
        """Keep the proposal until the request (or, failing it, the trades) is here: wait for
        the request a while if it has not come, else ask the primary at once for the trades
        it lacks (the client sent all it had)."""
        view = pp.vote.view
        if view in self.parked:
            return
        self.parked[view] = pp
        if reproposed:
            self.reproposed.add(view)
        if self.request is None:
            r.timer(self.inst.fetch_wait_us, AwaitTrades(view, 0))
        else:
            self._fetch_trades(AwaitTrades(view, 1), r)

    def _fetch_trades(self, token: AwaitTrades, r: Ready) -> None:
        """Ask the client (even tries) or the view's primary (odd) for what is still lacking;
        then wait again, doubling, up to the instance's view-change budget."""
        pp = self.parked.get(token.view)
        if pp is None or token.view != self.view or self.committed is not None:
            return  # accepted, left behind, or committed from a certificate meanwhile
        if token.tries > 2 * self.inst.max_view_changes:
            return
        lacking = self._missing(pp.block)
        if not lacking:
            return
        inst = self.inst
        hashes = tuple(leaf_hash(t) for t in lacking)
        self.wanted.update(hashes)
        target = inst.client if token.tries % 2 == 0 else inst.primary(token.view)
        if target != self.index:
            r.send(target, TradeFetch(inst.chain, inst.height, hashes, self.name))
        wait = 2 * inst.fetch_wait_us << min(token.tries, 10)  # two round trips, doubling
        r.timer(wait, AwaitTrades(token.view, token.tries + 1))

    def _on_trade_fetch(self, fetch: TradeFetch, r: Ready) -> None:
        """Answer with the asked trades this node holds: its request's, those it fetched, and
        its own proposal's."""
        inst = self.inst
        if fetch.sender not in inst.index_of or fetch.height != inst.height:
            return
        held = set(self.request.trades) if self.request is not None else set()
        held |= self.extra
        mine = self.accepted.get(self.view)
        if mine is not None and mine.vote.sender == self.name:
            block = decoded_block(inst, mine.block)
            held.update(block.txs if block is not None else ())
        asked = set(fetch.hashes)
        found = tuple(t for t in sorted(held) if leaf_hash(t) in asked)
        if found:
            r.send(inst.index_of[fetch.sender], Trades(inst.chain, inst.height, found))

    def _on_trades(self, msg: Trades, r: Ready) -> None:
        if msg.height != self.inst.height or msg.chain != self.inst.chain:
            return
        self.extra.update(t for t in msg.trades if leaf_hash(t) in self.wanted)
        self._unpark(r)

    def _unpark(self, r: Ready) -> None:
        """Consider every parked proposal whose trades are all here now, in its view (with the
        request, if it came: then its censorship is checked too)."""
        for view, pp in sorted(self.parked.items()):
            if not self._missing(pp.block):
                del self.parked[view]
                if view == self.view and not self.changing:
                    if view in self.reproposed:
                        self._accept(pp.whole(), r)  # a prepared block: taken as it is
                    else:
                        self._consider(pp.whole(), r)

    def _fetch_block(self, commits: tuple[Vote, ...], tries: int, r: Ready) -> None:
        """Ask the committers for the committed block, one at a time, once each in turn."""
        inst = self.inst
        if self.committed is not None or not commits or tries >= len(commits):
            return
        digest = commits[0].digest
        if tries == 0:
            if digest in self.fetched:
                return
            self.fetched.add(digest)
        asked = commits[tries].sender
        if asked != self.name and asked in inst.index_of:
            r.send(inst.index_of[asked], Fetch(inst.chain, inst.height, digest, self.name))
        r.timer(2 * inst.fetch_wait_us << min(tries, 10), FetchBlock(commits, tries + 1))
