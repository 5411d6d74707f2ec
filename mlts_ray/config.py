"""Experiment configuration: TOML in, validated and fully resolved ``Config`` out.

Every key and default of docs/architecture.md sections 5, 6 and 10 lives here, once. Errors always name the
dotted key (``topology.nodes_per_vpp: must be >= 4, got -3``); unknown keys are errors, with the
closest known key suggested.
"""

from __future__ import annotations

import datetime

import difflib
import itertools
import math
import tomllib
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import tomli_w
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from mlts_ray.errors import ConfigError
from mlts_ray.names import is_node

Algorithm = Literal["pbft", "dce-pbft", "random-committee"]
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)


def _count_or_auto(value: Any) -> Any:
    # One clear message instead of pydantic's per-union-member pair of errors.
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"must be an integer >= 1 or \"auto\", got {value!r}")


CountOrAuto = Annotated[int | Literal["auto"], BeforeValidator(_count_or_auto)]


def _registered(name: str) -> str:
    """A behaviour the one registry knows (``mlts_ray.population.registry``). Imported when a
    config is validated, not at the top: the registry builds on the model, which imports
    this module."""
    from mlts_ray.population.registry import names

    known = names()
    if name not in known:
        expected = ", ".join(map(repr, known[:-1])) + f" or {known[-1]!r}"
        raise PydanticCustomError("literal_error", "Input should be {expected}",
                                  {"expected": expected})
    return name


BehaviourName = Annotated[str, AfterValidator(_registered)]


class _Section(BaseModel):
    # allow_inf_nan=False: an infinite latency or timeout cannot be simulated (it overflows the
    # integer microsecond clock), and NaN compares false with every bound.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


#: Longest simulated duration a time setting may take: an hour, 4 000 times the default view
#: timeout. Longer is a typo, and sums/doublings of such values stay far inside any clock.
HOUR_MS = 3_600_000.0
#: A name becomes the run directory's name: one safe path component, printable, short.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Experiment(_Section):
    name: str = Field("experiment", pattern=NAME_PATTERN,
                      description="letters, digits, '.', '_', '-'; starts with a letter or "
                                  "digit; at most 64 characters (it names the run directory)")
    seed: int = Field(0, ge=0, lt=2**63)
    rounds: int = Field(5, ge=1, le=1_000_000)
    runtime: Literal["ray", "local"] = "ray"
    nodes_per_actor: CountOrAuto = "auto"
    # round r is the trading period starting at start + r * workload.period_minutes
    # the default: a midsummer late morning, when PV surpluses meet household loads
    start: str = Field("2026-06-21T10:00", description="ISO local time at the site "
                                                        "(energy.timezone)")


class Topology(_Section):
    vpps: int = Field(3, ge=1, le=10_000)
    nodes_per_vpp: int = Field(8, ge=4, le=1000, description="N_v, the VMC included")
    grid_nodes: int = Field(2, ge=0, le=1000)
    supervisors_per_vpp: int = Field(1, ge=0)


class Consensus(_Section):
    algorithm: Algorithm = "dce-pbft"
    side_committee_fraction: float = Field(0.10, gt=0, le=1)
    side_committee_min: int = Field(2, ge=1)
    main_committee_fraction: float = Field(0.60, gt=0, le=1)
    # "auto": each round's first view timeout is timeout_margin x the chain's fault-free normal
    # case for its request (consensus.timing); a number: that many ms (the old fixed cap)
    view_timeout_ms: Literal["auto"] | Annotated[float, Field(gt=0, le=HOUR_MS)] = "auto"
    timeout_margin: float = Field(2.0, ge=1, le=100)
    # "digests": the pre-prepare carries the block's header and trade hashes, members fetch
    # what they lack (Castro-Liskov); "block": the whole block (the old protocol)
    proposal: Literal["digests", "block"] = "digests"
    # how DCE-PBFT's certificate reaches the observers (consensus.dissemination)
    dissemination: Literal["primary", "committee", "gossip", "vmc"] = "committee"
    gossip_fanout: int = Field(4, ge=1, le=64)
    # performance accountability (Aardvark): the round's first view timeout may shrink to this
    # many times the median of the chain's last 8 round times -- never below the normal case
    # ("auto"), or within [min_view_timeout_ms, view_timeout_ms] (a number); 0: no shrinking
    accountability_factor: float = Field(2.0, ge=0, le=1000)
    min_view_timeout_ms: float = Field(50.0, gt=0, le=HOUR_MS)
    max_view_changes: int = Field(6, ge=0, le=30, description="then the round gives up")
    # PBFT's primary (docs/architecture.md section 5): "vmc" and "stable" keep it across rounds
    # until a view change replaces it (Castro-Liskov), view 0 led by the chain's best-connected
    # node (a side chain's VMC) or by the first node by name; "rotate" moves it every round
    pbft_primary: Literal["vmc", "stable", "rotate"] = "vmc"
    # who leads a DCE-PBFT round first: every member in turn, in credit order (Aardvark's
    # regular primary changes: a slow primary is measured against the others' round times), the
    # best-connected node whenever it is seated ("vmc"), or always the highest credit (a stable
    # slow primary sets the very baseline it is judged by)
    dce_primary: Literal["rotate", "vmc", "credit"] = "rotate"


class Credit(_Section):
    initial: float = Field(60, ge=0, le=100)
    maximum: float = Field(100, gt=0)
    eligible_threshold: float = Field(60, ge=0, le=100)
    suspend_threshold: float = Field(20, ge=0, le=100)
    suspend_rounds: int = Field(5, ge=0)
    primary_reward: float = Field(3, ge=0)
    primary_timeout_penalty: float = Field(10, ge=0)
    consensus_phase_reward: float = Field(1, ge=0)
    consensus_phase_penalty: float = Field(4, ge=0)
    ordinary_trade_reward: float = Field(1, ge=0)
    ordinary_trade_reward_cap: float = Field(3, ge=0)
    abandon_penalty: float = Field(8, ge=0)
    misbehaviour_penalty: float = Field(25, ge=0)
    audit_stake: float = Field(5, ge=0)
    audit_penalty: float = Field(20, ge=0)
    audit_fine_cents: int = Field(1_000, ge=0)
    audit_compensation_cents: int = Field(200, ge=0)
    audits_per_supervisor: int = Field(1, ge=0)
    complaint_stake: float = Field(5, ge=0)
    # participation (docs/architecture.md section 5): silence decays, the way back is slow
    idle_rounds: int = Field(20, ge=0, description="rounds without a signature before decay")
    idle_decay: float = Field(1, ge=0)
    idle_floor: float = Field(50, ge=0, le=100)
    recovery_rate: float = Field(0.25, ge=0)
    offence_rounds: int = Field(20, ge=0, description="no seat after a proven trade offence")


class Network(_Section):
    intra_latency_ms: float = Field(10.0, ge=0, le=HOUR_MS)
    intra_jitter_ms: float = Field(3.0, ge=0, le=HOUR_MS)
    intra_min_latency_ms: float = Field(2.0, gt=0, le=HOUR_MS)
    inter_latency_ms: float = Field(50.0, ge=0, le=HOUR_MS)
    inter_jitter_ms: float = Field(15.0, ge=0, le=HOUR_MS)
    inter_min_latency_ms: float = Field(20.0, gt=0, le=HOUR_MS)
    # Per-node NICs (docs/architecture.md section 6): resources on residential links, VMCs and grid nodes in
    # data centres. 1 kbit/s to 1 Tbit/s (a data-centre NIC is 400 Gbit/s).
    uplink_mbps: float = Field(20.0, ge=0.001, le=1e6)
    downlink_mbps: float = Field(100.0, ge=0.001, le=1e6)
    vmc_uplink_mbps: float = Field(1000.0, ge=0.001, le=1e6)
    vmc_downlink_mbps: float = Field(1000.0, ge=0.001, le=1e6)
    grid_uplink_mbps: float = Field(1000.0, ge=0.001, le=1e6)
    grid_downlink_mbps: float = Field(1000.0, ge=0.001, le=1e6)
    transport: Literal["reliable", "datagram"] = "reliable"
    rto_ms: float = Field(200.0, ge=1, le=60_000, description="first retransmission timeout")
    sign_cost_ms: float = Field(0.05, ge=0, le=1000, description="at most a second")
    verify_cost_ms: float = Field(0.15, ge=0, le=1000, description="at most a second")
    loss: float = Field(0.0, ge=0, lt=1)


class Partition(_Section):
    """Between ``start_ms`` and ``end_ms`` of each round's consensus (simulated time from the
    round's request), only nodes of one group reach each other; nodes in no group form one more
    group. ``rounds``: the rounds it applies to (empty: every round)."""

    start_ms: float = Field(ge=0, le=HOUR_MS)
    end_ms: float = Field(gt=0, le=HOUR_MS)
    groups: list[list[str]] = Field(min_length=1)
    rounds: list[int] = Field(default_factory=list)


class Faults(_Section):
    byzantine_fraction: float = Field(0.0, ge=0, le=1)
    behaviours: list[BehaviourName] = Field(default_factory=lambda: ["silent"], min_length=1)
    where: Literal["side", "main", "both"] = "side"
    delay_ms: float = Field(200.0, ge=0, le=HOUR_MS, description="how late a `delay` node sends")
    partitions: list[Partition] = Field(default_factory=list)


class Workload(_Section):
    """How nodes trade their metered positions (docs/architecture.md section 4)."""

    period_minutes: int = Field(15, ge=1, le=1440)
    orders_per_node: int = Field(2, ge=0, le=1000, description="pieces a position is split into")
    # of a VPP's open orders, the share its VMC forwards to the cross-VPP book (the rest, and
    # what the book leaves, goes to the grid)
    cross_vpp_share: float = Field(1.0, ge=0, le=1)
    market: Literal["cda", "call"] = "cda"
    # a limit price inside the tariff band: "random" draws it uniformly from [feed-in, retail]
    # (zero intelligence with the budget constraint, Gode-Sunder 1993: no seller asks less than
    # the grid pays, no buyer bids more than the grid charges); "midpoint" asks and bids the
    # middle of the band
    bidding: Literal["random", "midpoint"] = "random"
    # bounds keep every amount (Wh x cents/kWh) far inside the ledger's 2**62: a price of
    # 10 M EUR per kWh is far beyond any market
    feed_in_cents: int = Field(8, ge=0, le=10**9, description="what the grid pays, per kWh")
    retail_cents: int = Field(40, ge=0, le=10**9, description="what the grid charges, per kWh")
    order_wh_min: int = Field(10, ge=1, le=10**12, description="smaller positions go to the grid")
    initial_money_cents: int = Field(100_000, ge=0, le=10**15)
    online_share: float = Field(1.0, gt=0, le=1, description="of ordinary traders at a time")
    session_periods: float = Field(16.0, ge=1, le=1e6, description="mean online session")


class Energy(_Section):
    """The site, the trading day and the resources nodes are drawn from (docs/architecture.md
    section 4 gives each default's source)."""

    timezone: str = "Europe/Berlin"
    latitude: float = Field(52.52, ge=-90, le=90)
    longitude: float = Field(13.405, ge=-180, le=180)
    altitude_m: float = Field(34.0, ge=-500, le=9000)
    clear_sky_index: float = Field(0.7, ge=0, le=1)
    air_temperature_c: float = Field(20.0, ge=-60, le=60)
    wind_m_s: float = Field(2.0, ge=0, le=60)
    pv_share: float = Field(0.4, ge=0, le=1)
    pv_kwp_min: float = Field(3.0, ge=0, le=10_000)
    pv_kwp_max: float = Field(10.0, ge=0, le=10_000)
    pv_tilt_deg: float = Field(35.0, ge=0, le=90)
    pv_azimuth_deg: float = Field(180.0, ge=0, le=360)
    pv_temp_coefficient: float = Field(-0.004, ge=-0.05, le=0)
    pv_losses: float = Field(0.14, ge=0, lt=1)
    business_share: float = Field(0.1, ge=0, le=1)
    household_kwh_min: float = Field(1_500.0, ge=0, le=1e9)
    household_kwh_max: float = Field(5_000.0, ge=0, le=1e9)
    business_kwh_min: float = Field(10_000.0, ge=0, le=1e9)
    business_kwh_max: float = Field(50_000.0, ge=0, le=1e9)
    load_noise: float = Field(0.3, ge=0, le=3)
    battery_share: float = Field(0.5, ge=0, le=1, description="of the nodes with PV")
    battery_kwh_min: float = Field(5.0, ge=0, le=1e6)
    battery_kwh_max: float = Field(12.0, ge=0, le=1e6)
    battery_c_rate: float = Field(0.5, gt=0, le=10)
    battery_efficiency: float = Field(0.9, gt=0, le=1)


class Config(_Section):
    experiment: Experiment = Field(default_factory=Experiment)
    topology: Topology = Field(default_factory=Topology)
    consensus: Consensus = Field(default_factory=Consensus)
    credit: Credit = Field(default_factory=Credit)
    network: Network = Field(default_factory=Network)
    faults: Faults = Field(default_factory=Faults)
    workload: Workload = Field(default_factory=Workload)
    energy: Energy = Field(default_factory=Energy)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)


# --- committee sizes (one definition, used by validation and by consensus) ---------------------


def committee_size(n: int, fraction: float, minimum: int = 1) -> int:
    """``min(n, max(minimum, ceil(fraction * n)))`` in exact arithmetic: in floats
    ``ceil(0.07 * 100)`` is 8, not 7."""
    return min(n, max(minimum, math.ceil(Fraction(repr(fraction)) * n)))


def side_committee_size(cfg: Config) -> int:
    c, t = cfg.consensus, cfg.topology
    return committee_size(t.nodes_per_vpp, c.side_committee_fraction, c.side_committee_min)


def main_committee_size(cfg: Config) -> int:
    return committee_size(cfg.topology.vpps, cfg.consensus.main_committee_fraction, 1)


# --- dotted keys --------------------------------------------------------------------------------

SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation for name, field in Config.model_fields.items() if name != "sweep"
}


#: Where a run executes: never changes its results, so not part of its identity (run id,
#: resume check).
PLACEMENT_KEYS = ("runtime", "nodes_per_actor")


def known_keys() -> list[str]:
    return [f"{s}.{k}" for s, model in SECTIONS.items() for k in model.model_fields]


#: Keys that no longer exist, and what took their place (a config using one is refused by it).
REPLACED = {
    "workload.price_low_cents": "the tariff band: workload.feed_in_cents (the floor)",
    "workload.price_high_cents": "the tariff band: workload.retail_cents (the ceiling)",
    "workload.price_model": "workload.bidding (a limit price inside the tariff band)",
    "workload.order_wh_max": "each node's metered position (its [energy] resources)",
    "workload.initial_energy_wh": "each node's metered position: energy is generated and "
                                  "consumed per period, not held (the [energy] resources)",
    "energy.start": "experiment.start",
    "energy.period_minutes": "workload.period_minutes",
    "energy.feed_in_cents": "workload.feed_in_cents",
    "energy.retail_cents": "workload.retail_cents",
    "credit.conflicting_vote_penalty": "a ban, once a double vote is proven (consensus.evidence): "
                                       "one conflicting vote alone proves nothing against its "
                                       "signer",
    "credit.supervisory_reward": "upheld audits (credit.audit_penalty, half of which goes to "
                                 "the auditor): presence is not something a chain can prove",
    "network.bandwidth_mbps": "per-node NICs: network.uplink_mbps and network.downlink_mbps "
                              "(and the vmc_/grid_ uplink and downlink overrides)",
}


def _field_annotation(key: str) -> Any:
    section, _, name = key.partition(".")
    model = SECTIONS.get(section)
    if key in REPLACED:
        raise ConfigError(key, f"was replaced by {REPLACED[key]}")
    if model is None or name not in model.model_fields or "." in name:
        hint = difflib.get_close_matches(key, known_keys(), n=1)
        raise ConfigError(key, "unknown key" + (f"; did you mean {hint[0]}?" if hint else ""))
    return model.model_fields[name].annotation


def dotted(cfg: Config) -> dict[str, Any]:
    """Every scalar setting as ``{"section.key": value}`` (the columns of a sweep table)."""
    data = cfg.model_dump(mode="json")
    return {f"{s}.{k}": v for s in SECTIONS for k, v in data[s].items()}


# --- errors -------------------------------------------------------------------------------------

_TYPE_NAMES = {
    "int_type": "an integer", "float_type": "a number", "string_type": "a string",
    "bool_type": "true or false", "list_type": "a list", "dict_type": "a table",
    "model_type": "a table",
}


_UNION_TAGS = frozenset({"float", "int", "str", "bool", "constrained-float", "constrained-int",
                         "constrained-str"})


def _key_of(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif not any(c in part for c in "[]'()") and part not in _UNION_TAGS:
            # (skips union-member tags like "literal['auto']" and "constrained-float")
            key += ("." if key else "") + part
    return key or "config"


def _why(err: Mapping[str, Any]) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
              "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}
    if kind in bounds:
        op, name = bounds[kind]
        return f"must be {op} {ctx[name]}, got {got!r}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}, got {got!r}"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, got {got!r} ({type(got).__name__})"
    if kind == "finite_number":
        return f"must be a finite number, got {got!r}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return ("must be one safe directory name: letters, digits, '.', '_' and '-', starting "
                f"with a letter or digit, at most 64 characters; got {got!r}")
    if kind in ("too_short", "too_long"):
        return err["msg"][0].lower() + err["msg"][1:]
    msg = err["msg"].removeprefix("Value error, ")
    return msg if "got" in msg else f"{msg}, got {got!r}"


def _unioned(errors: list[Any]) -> list[Any]:
    """One error per key: a value refused by every branch of a union (``"auto"`` or a number)
    is reported by the branch its type belongs to -- a number's bound, not "must be 'auto'"."""
    out: dict[str, Any] = {}
    for err in errors:
        key = _key_of(err["loc"])
        held = out.get(key)
        if held is None:
            out[key] = err
        elif held["type"] == "literal_error" and err["type"] != "literal_error":
            got = err.get("input")
            if isinstance(got, (int, float)) and not isinstance(got, bool):
                out[key] = err  # a number: its bound or finiteness is the problem
            else:
                expected = held["ctx"]["expected"]
                out[key] = {**held, "type": "union", "msg": f"must be {expected} or a number"}
    return list(out.values())


def _config_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    problems = []
    for err in _unioned(exc.errors()):
        key = prefix + _key_of(err["loc"])
        why = _why(err)
        if err["type"] == "extra_forbidden" and key in REPLACED:
            why = f"was replaced by {REPLACED[key]}"
        elif err["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(key, known_keys(), n=1)
            why += f"; did you mean {hint[0]}?" if hint else ""
        problems.append((key, why))
    out = ConfigError(*problems[0])
    out.problems = problems  # type: ignore[attr-defined]
    return out


# --- loading ------------------------------------------------------------------------------------


def parse_value(key: str, raw: str) -> Any:
    """A ``--set`` value in the type of ``key``: TOML literal syntax (``4``, ``0.2``, ``true``,
    ``["crash", "silent"]``), bare words as strings, ``a,b`` as a list for list keys."""
    annotation = _field_annotation(key)
    if annotation is str:
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if get_origin(annotation) is list:
            return [part.strip() for part in raw.split(",") if part.strip()]
        return raw


def _parse_sweep_values(key: str, raw: str) -> list[Any]:
    """``[2, 4]`` or ``2,4`` or ``pbft,dce-pbft``: each item in the type of ``key``."""
    try:
        parsed = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return [parse_value(key, part.strip()) for part in raw.split(",") if part.strip()]
    return parsed if isinstance(parsed, list) else [parsed]


def _flatten_sweep(sweep: Any) -> Any:
    """``[sweep]`` written as ``topology.vpps = [2, 4]`` is a nested table in TOML; accept it
    the same as the quoted ``"topology.vpps" = [2, 4]``."""
    if not isinstance(sweep, Mapping):
        return sweep
    flat: dict[str, Any] = {}
    for key, value in sweep.items():
        if isinstance(value, Mapping):
            for sub, inner in _flatten_sweep(value).items():
                flat[f"{key}.{sub}"] = inner
        else:
            flat[key] = value
    return flat


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, eq, value = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError("--set", f"expected key=value, got {item!r}")
    if key.startswith("sweep."):
        swept = key.removeprefix("sweep.")
        _field_annotation(swept)
        sweep = raw.setdefault("sweep", {})
        if not isinstance(sweep, dict):
            raise ConfigError("sweep", "must be a table")
        sweep[swept] = _parse_sweep_values(swept, value.strip())
        return
    section, name = key.split(".", 1) if "." in key else (key, "")
    _field_annotation(key)
    target = raw.setdefault(section, {})
    if not isinstance(target, dict):
        raise ConfigError(section, "must be a table")
    target[name] = parse_value(key, value.strip())


def sweep_points(cfg: Config) -> list[dict[str, Any]]:
    """The cartesian product of ``[sweep]``: one ``{dotted key: value}`` per point."""
    keys = list(cfg.sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*cfg.sweep.values())]


def with_values(cfg: Config, values: Mapping[str, Any]) -> Config:
    """``cfg`` with dotted keys replaced (no sweep), validated as a whole."""
    data = cfg.model_dump(mode="python")
    data["sweep"] = {}
    for key, value in values.items():
        section, name = key.split(".", 1)
        data[section] = {**data[section], name: value}
    try:
        out = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc) from None
    _check_combinations(out)
    return out


#: The most points a sweep may have: each is a whole run, and every one is validated up front.
MAX_SWEEP_POINTS = 10_000


def _check_sweep(cfg: Config) -> None:
    count = math.prod(len(values) for values in cfg.sweep.values())
    if count > MAX_SWEEP_POINTS:  # counted before any point is built
        sizes = " x ".join(str(len(v)) for v in cfg.sweep.values())
        raise ConfigError("sweep", f"has {count:,} points ({sizes}); at most "
                          f"{MAX_SWEEP_POINTS:,}: split it into several sweeps")
    for key, values in cfg.sweep.items():
        try:
            _field_annotation(key)  # names an unknown swept key before anything runs
        except ConfigError as exc:
            raise ConfigError(f"sweep.{key}", exc.why) from None
        if not values:
            raise ConfigError(f"sweep.{key}", "needs at least one value")
        for i, value in enumerate(values):
            try:
                with_values(cfg, {key: value})
            except ConfigError as exc:
                # a range/type error of the value itself, or a combination it breaks
                why = exc.why if hasattr(exc, "problems") else f"{exc.subject}: {exc.why}"
                raise ConfigError(f"sweep.{key}[{i}]", why) from None
    # Every point must run: a bad combination found half-way through a sweep is too late.
    for point in sweep_points(cfg):
        try:
            with_values(cfg, point)
        except ConfigError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in point.items())
            subject = f"sweep.{exc.subject}" if exc.subject in point else "sweep"
            raise ConfigError(subject, f"point {where} is invalid: {exc.subject}: {exc.why}") from None


def _check_combinations(cfg: Config) -> None:
    t, c, w, f = cfg.topology, cfg.consensus, cfg.workload, cfg.faults
    if t.supervisors_per_vpp >= t.nodes_per_vpp:
        raise ConfigError(
            "topology.supervisors_per_vpp",
            f"{t.supervisors_per_vpp} supervisors leave no other node in a VPP of {t.nodes_per_vpp}",
        )
    eligible = t.nodes_per_vpp - t.supervisors_per_vpp
    if c.side_committee_min > eligible:
        raise ConfigError(
            "consensus.side_committee_min",
            f"a committee of {c.side_committee_min} cannot be chosen from the {eligible} "
            f"non-supervisor nodes of a VPP (topology.nodes_per_vpp = {t.nodes_per_vpp})",
        )
    if side_committee_size(cfg) > eligible:
        raise ConfigError(
            "consensus.side_committee_fraction",
            f"gives a committee of {side_committee_size(cfg)}, more than the {eligible} "
            "non-supervisor nodes of a VPP",
        )
    if w.feed_in_cents > w.retail_cents:
        raise ConfigError("workload.feed_in_cents", "must be <= workload.retail_cents: the "
                          "grid never pays more for energy than it charges")
    if cfg.credit.suspend_threshold > cfg.credit.eligible_threshold:
        raise ConfigError("credit.suspend_threshold", "must be <= credit.eligible_threshold")
    if cfg.credit.initial > cfg.credit.maximum:
        raise ConfigError("credit.initial", "must be <= credit.maximum")
    if not cfg.credit.suspend_threshold <= cfg.credit.idle_floor:
        raise ConfigError("credit.idle_floor", "must be >= credit.suspend_threshold: silence "
                          "makes a node ineligible, not suspended")
    if cfg.credit.eligible_threshold > cfg.credit.maximum:
        raise ConfigError("credit.eligible_threshold", f"{cfg.credit.eligible_threshold:g} is above "
                          f"credit.maximum ({cfg.credit.maximum:g}): no node could ever be eligible")
    if cfg.credit.idle_floor > cfg.credit.maximum:
        raise ConfigError("credit.idle_floor", "must be <= credit.maximum")
    if c.view_timeout_ms != "auto" and c.min_view_timeout_ms > c.view_timeout_ms:
        raise ConfigError("consensus.min_view_timeout_ms", f"{c.min_view_timeout_ms:g} ms is above "
                          f"consensus.view_timeout_ms ({c.view_timeout_ms:g} ms)")
    _check_energy(cfg.energy, cfg.experiment.start)
    for i, p in enumerate(f.partitions):
        _check_partition(cfg, i, p)


def _check_energy(e: Energy, start_text: str) -> None:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(e.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError("energy.timezone", f"{e.timezone!r} is no IANA time zone "
                          "(e.g. 'Europe/Berlin')") from None
    try:
        start = datetime.datetime.fromisoformat(start_text)
    except ValueError:
        raise ConfigError("experiment.start", f"{start_text!r} is no ISO date-time "
                          "(e.g. '2026-06-21T00:00')") from None
    if start.tzinfo is not None:
        raise ConfigError("experiment.start", "is local time at the site: give no offset (the "
                          "zone is energy.timezone)")
    if not 1900 <= start.year <= 2100:
        raise ConfigError("experiment.start", "must lie in 1900..2100 (the load profiles' calendar)")
    _check_wall_time(start, zoneinfo.ZoneInfo(e.timezone), start_text, e.timezone)
    for low in ("pv_kwp", "household_kwh", "business_kwh", "battery_kwh"):
        if getattr(e, f"{low}_min") > getattr(e, f"{low}_max"):
            raise ConfigError(f"energy.{low}_min", f"must be <= energy.{low}_max")


def _check_wall_time(start: datetime.datetime, zone: Any, text: str, name: str) -> None:
    """A local start time that the site's clock skips (spring forward) or shows twice (fall
    back) names no single instant: refused rather than guessed."""
    first, second = start.replace(tzinfo=zone, fold=0), start.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return
    back = first.astimezone(datetime.timezone.utc).astimezone(zone).replace(tzinfo=None)
    if back != start:
        raise ConfigError("experiment.start", f"{text!r} does not exist in {name}: the clocks "
                          "skip it (daylight saving begins); pick a time outside the gap")
    raise ConfigError("experiment.start", f"{text!r} happens twice in {name} (daylight saving "
                      "ends); pick a time outside the repeated hour")


def _check_partition(cfg: Config, i: int, p: Partition) -> None:
    """A partition names real nodes, each in one group, and rounds the run has."""
    where = f"faults.partitions[{i}]"
    if p.end_ms <= p.start_ms:
        raise ConfigError(f"{where}.end_ms", "must be > start_ms")
    seen: dict[str, int] = {}
    for g, group in enumerate(p.groups):
        if not group:
            raise ConfigError(f"{where}.groups[{g}]", "is empty")
        for node in group:
            if not _is_node(cfg, node):
                raise ConfigError(f"{where}.groups[{g}]", f"no such node {node!r} in this "
                                  "topology (names: vpp-0/vmc, vpp-0/n-001, grid-0, ...)")
            if node in seen:
                raise ConfigError(f"{where}.groups[{g}]", f"node {node!r} is already in "
                                  f"group {seen[node]}")
            seen[node] = g
    for k, rnd in enumerate(p.rounds):
        if not 0 <= rnd < cfg.experiment.rounds:
            raise ConfigError(f"{where}.rounds[{k}]", f"round {rnd} is not one of the run's "
                              f"0..{cfg.experiment.rounds - 1}")


def _is_node(cfg: Config, name: str) -> bool:
    """Whether ``name`` is a node of the topology (``names.is_node``)."""
    t = cfg.topology
    return is_node(name, t.vpps, t.nodes_per_vpp, t.grid_nodes)


def build_config(raw: Mapping[str, Any], overrides: Iterable[str] = ()) -> Config:
    """Validate a raw TOML-shaped mapping with ``--set`` overrides applied in order."""
    data = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    if "sweep" in data:
        data["sweep"] = _flatten_sweep(data["sweep"])
    for item in overrides:
        _apply_override(data, item)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc) from None
    _check_combinations(cfg)
    _check_sweep(cfg)
    return cfg


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a TOML config file; every problem is a ConfigError naming the file or the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    return from_toml(text, overrides, where=str(path))


def from_toml(text: str, overrides: Iterable[str] = (), where: str = "config") -> Config:
    """A config from TOML text (a file's, a manifest's ``config_toml``, an actor's argument);
    a syntax error is a ConfigError naming ``where``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, f"TOML syntax error: {exc}") from None
    return build_config(raw, overrides)


def to_toml(cfg: Config) -> str:
    """The fully resolved configuration as TOML (loads back to an equal Config)."""
    return tomli_w.dumps(cfg.model_dump(mode="json"))
