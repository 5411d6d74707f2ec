"""The collector (docs/architecture.md section 8): the one place that turns the model's
reports (``mlts.report``) into rows and record batches. It owns the tables' schemas
(``results.schemas``), one row builder per table (``results.rows``) and the oracle metrics
(``results.oracle``); besides the population that hands out strategies, it is the only reader
of the nodes' behaviour labels (the credits table's ground-truth column, the consensus table's
honest-node metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from mlts_ray.config import Config
from mlts_ray.mlts.energy import Calendar
from mlts_ray.mlts.report import Report
from mlts_ray.results import rows as build
from mlts_ray.results.schemas import TABLES, to_batch

Row = dict[str, Any]
Labels = Mapping[str, Mapping[str, str]]  # chain -> node -> behaviour
# the tables whose rows carry the round's period (experiment.start + round * period)
_PERIODIC = ("consensus", "trades", "energy", "market")


class Collector:
    def __init__(self, cfg: Config, labels: Labels) -> None:
        self.algorithm = cfg.consensus.algorithm
        self.market = cfg.workload.market
        self.calendar = Calendar.of(cfg)
        self.labels = labels
        self._period = (-1, None)  # (round, its period's start): a round has many reports

    def tables(self, rnd: int, pieces: Sequence[Report]) -> dict[str, list[Row]]:
        """A round's tables from its reports: each table's rows in piece order, ``balances``
        sorted by node, as one ledger lists them."""
        out: dict[str, list[Row]] = {name: [] for name in TABLES}
        for report in pieces:
            for name, rows in self.rows(rnd, report).items():
                out[name].extend(rows)
        out["balances"].sort(key=lambda r: r["node"])
        return out

    def round_batches(self, run_id: str, rnd: int, pieces: Sequence[Report]
                      ) -> dict[str, pa.RecordBatch]:
        """A round's tables as one record batch each (every table, empty ones included)."""
        return {t: to_batch(t, run_id, rnd, r) for t, r in self.tables(rnd, pieces).items()}

    def rows(self, rnd: int, report: Report) -> dict[str, list[Row]]:
        """The report's rows, table by table (only the tables it has rows of)."""
        out: dict[str, list[Row]] = {}
        for table in Report.__slots__:
            facts = getattr(report, table)
            if facts:
                out[table] = [self._row(table, fact) for fact in facts]
        periodic = [out[t] for t in _PERIODIC if t in out]
        if periodic:
            start = self._period_start(rnd)
            for table in periodic:
                for row in table:
                    row["period_start"] = start
        return out

    def batches(self, run_id: str, rnd: int, report: Report) -> dict[str, pa.RecordBatch]:
        """The report as one record batch per table it has rows of."""
        return {t: to_batch(t, run_id, rnd, r) for t, r in self.rows(rnd, report).items()}

    def _period_start(self, rnd: int) -> Any:
        if self._period[0] != rnd:
            self._period = (rnd, self.calendar.period_start(rnd))
        return self._period[1]

    def _row(self, table: str, fact: Any) -> Row:
        if table == "consensus":
            return build.consensus_row(fact, self.algorithm, self.labels[fact.chain])
        if table == "credits":
            return build.credit_row(fact, self.labels[fact.chain][fact.node])
        if table == "market":
            return build.market_row(self.market, fact)
        return _BUILDERS[table](fact)


_BUILDERS = {
    "messages": build.message_row, "blocks": build.block_row, "trades": build.trade_row,
    "audits": build.audit_row, "anchors": build.anchor_row, "energy": build.energy_row,
    "balances": build.balance_row,
}
