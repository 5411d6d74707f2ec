"""Distributed energy resources with physics: PV, standard load profiles and a battery, per
node and period, and the meter that reads them (docs/architecture.md section 4). Pure and
seeded: no I/O, no wall clock; the same config gives the same Wh on every runtime.

- **PV** (pvlib): clear-sky irradiance at the VPP's site (Ineichen with Linke turbidity),
  transposed to the plane of array (Hay-Davies), SAPM cell temperature, PVWatts DC power with
  its temperature coefficient, less ``pv_losses``; scaled by one seeded clear-sky index per site
  and day (a Beta draw with mean ``clear_sky_index``), so days differ but every panel of a VPP
  sees the same weather.
- **Load** (demandlib): the BDEW 2025 standard load profiles -- H25 for households, G25 for
  businesses -- scaled to each node's annual kWh, times a seeded per-node, per-period
  log-normal noise of spread ``load_noise`` (a single household is not the average of many).
- **Storage**: capacity, charge and discharge power (``battery_c_rate`` x capacity), one-way
  efficiency sqrt(round trip); the policy charges from the node's own surplus and discharges
  into its own deficit, and the rest is what the node trades (:meth:`Battery.step`).

Each node's resources are drawn from ``[energy]``'s shares and ranges by a stream named by the
node, so adding a node never changes another's. Series are computed a day (``CHUNK`` periods)
at a time, each day from streams of its own, so a run of any length -- or a resumed one --
gives the same Wh for the same period.
"""

from __future__ import annotations

import datetime
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from mlts_ray.config import Config, Energy
from mlts_ray.errors import RunError
from mlts_ray.net.rng import stream

PROFILE_KWH_PER_YEAR = 1e6  # demandlib's BDEW 2025 profiles are kW for 1 GWh (1e6 kWh) a year
CHUNK = 96  # periods computed together: a day of quarter hours


@dataclass(frozen=True, slots=True)
class Calendar:
    """When the periods are: round r is the period starting at ``start + r * minutes``, local
    time at the site (``timezone``)."""

    start: str
    timezone: str
    minutes: int

    @classmethod
    def of(cls, cfg: Config) -> Calendar:
        return cls(cfg.experiment.start, cfg.energy.timezone, cfg.workload.period_minutes)

    @property
    def hours(self) -> float:
        return self.minutes / 60

    def periods(self, first: int, count: int) -> pd.DatetimeIndex:
        start = pd.Timestamp(self.start, tz=self.timezone) + pd.Timedelta(
            minutes=self.minutes * first)
        return pd.date_range(start, periods=count, freq=pd.Timedelta(minutes=self.minutes))

    def period_start(self, round_: int) -> datetime.datetime:
        """When round ``round_``'s period starts, as an instant in UTC (what the tables carry)."""
        return self.periods(round_, 1)[0].tz_convert("UTC").to_pydatetime()


@dataclass(frozen=True, slots=True)
class Resources:
    """One node's assets."""

    node: str
    pv_kwp: float  # 0: no PV
    load_class: str  # "h25" (household) or "g25" (business)
    annual_kwh: float
    battery_kwh: float  # 0: no battery
    battery_kw: float


def draw_resources(e: Energy, seed: int, node: str) -> Resources:
    """The node's mix, from the config's shares and ranges (a stream of its own)."""
    rng = stream(seed, "energy", node)
    business = rng.random() < e.business_share
    low, high = ((e.business_kwh_min, e.business_kwh_max) if business
                 else (e.household_kwh_min, e.household_kwh_max))
    annual = rng.uniform(low, high)
    has_pv = rng.random() < e.pv_share
    kwp = rng.uniform(e.pv_kwp_min, e.pv_kwp_max) if has_pv else 0.0
    has_battery = has_pv and rng.random() < e.battery_share
    kwh = rng.uniform(e.battery_kwh_min, e.battery_kwh_max) if has_battery else 0.0
    return Resources(node, kwp, "g25" if business else "h25", annual, kwh, kwh * e.battery_c_rate)


def pv_wh_per_kwp(e: Energy, cal: Calendar, seed: int, site: str, first: int,
                  count: int) -> np.ndarray:
    """Wh one kWp of the site's panels yields in each of periods ``first .. first+count-1``."""
    return _series(first, count, lambda c: _pv_chunk(e, cal, seed, site, c))


def load_wh(e: Energy, cal: Calendar, seed: int, res: Resources, first: int,
            count: int) -> np.ndarray:
    """Wh the node consumes in each of periods ``first .. first+count-1``."""
    return _series(first, count, lambda c: _load_chunk(e, cal, seed, res, c))


@dataclass(frozen=True, slots=True)
class Reading:
    """One node's period as its meter reads it, in whole Wh: what its panels made, what its
    load drew, what went into and came out of its battery, and the state of charge after. The
    rest, ``net_wh``, is what the node has to sell (> 0) or buy (< 0)."""

    generation_wh: int
    consumption_wh: int
    charge_wh: int = 0
    discharge_wh: int = 0
    soc_wh: float = 0.0
    loss_wh: float = 0.0  # the battery's conversion losses this period

    @property
    def net_wh(self) -> int:
        return self.generation_wh - self.consumption_wh - self.charge_wh + self.discharge_wh


@dataclass(slots=True)
class Battery:
    """A battery that serves its own node first."""

    capacity_wh: float
    power_w: float
    efficiency: float  # round trip
    soc_wh: float = 0.0

    def step(self, net_wh: int, hours: float) -> tuple[int, int, float]:
        """Charge from a surplus (``net_wh`` > 0) or discharge into a deficit (< 0), in whole
        Wh at the node's terminals, within capacity and power: (charged, discharged, lost)."""
        if self.capacity_wh == 0 or net_wh == 0:
            return 0, 0, 0.0
        one_way = math.sqrt(self.efficiency)
        limit = self.power_w * hours
        if net_wh > 0:
            wh = int(min(net_wh, limit, (self.capacity_wh - self.soc_wh) / one_way))
            self.soc_wh = min(self.capacity_wh, self.soc_wh + wh * one_way)
            return wh, 0, wh * (1 - one_way)
        wh = int(min(-net_wh, limit, self.soc_wh * one_way))
        self.soc_wh = max(0.0, self.soc_wh - wh / one_way)
        return 0, wh, wh / one_way - wh


class Meter:
    """The metered resources of one VPP's nodes, read period by period (its batteries carry
    their charge from one period to the next, so periods are read in order)."""

    __slots__ = ("cfg", "cal", "site", "resources", "batteries", "_next", "_pv", "_load")

    def __init__(self, cfg: Config, site: str, nodes: Sequence[str]) -> None:
        e = cfg.energy
        self.cfg, self.cal, self.site = cfg, Calendar.of(cfg), site
        self.resources = {n: draw_resources(e, cfg.experiment.seed, n) for n in nodes}
        self.batteries = {n: Battery(r.battery_kwh * 1000, r.battery_kw * 1000,
                                     e.battery_efficiency)
                          for n, r in self.resources.items() if r.battery_kwh > 0}
        self._next = 0
        self._pv: dict[int, np.ndarray] = {}
        self._load: dict[tuple[str, int], np.ndarray] = {}

    def read(self, rnd: int) -> dict[str, Reading]:
        """Every node's reading for period ``rnd`` (the one after the last read)."""
        if rnd != self._next:
            raise RunError(f"meter {self.site}", f"period {rnd} read after {self._next - 1}")
        self._next += 1
        e, seed, chunk, at = self.cfg.energy, self.cfg.experiment.seed, rnd // CHUNK, rnd % CHUNK
        if chunk not in self._pv:  # a new day: the old one is never read again
            self._pv = {chunk: _pv_chunk(e, self.cal, seed, self.site, chunk)}
            self._load = {}
        out = {}
        for node, res in self.resources.items():
            if (node, chunk) not in self._load:
                self._load[(node, chunk)] = _load_chunk(e, self.cal, seed, res, chunk)
            gen = round(res.pv_kwp * self._pv[chunk][at])
            use = round(self._load[(node, chunk)][at])
            battery = self.batteries.get(node)
            if battery is None:
                out[node] = Reading(gen, use)
                continue
            charged, discharged, lost = battery.step(gen - use, self.cal.hours)
            out[node] = Reading(gen, use, charged, discharged, battery.soc_wh, lost)
        return out


# --- series a day at a time, each day from its own streams --------------------------------------


def _series(first: int, count: int, chunk_of) -> np.ndarray:
    chunks = range(first // CHUNK, (first + count - 1) // CHUNK + 1) if count else range(0)
    whole = np.concatenate([chunk_of(c) for c in chunks]) if count else np.zeros(0)
    offset = first - (first // CHUNK) * CHUNK
    return whole[offset: offset + count]


def _pv_chunk(e: Energy, cal: Calendar, seed: int, site: str, chunk: int) -> np.ndarray:
    clear = _clear_sky_wh_per_kwp(e, cal, chunk)
    days = cal.periods(chunk * CHUNK, CHUNK).normalize()
    return clear * np.array([_clear_sky_index(e, seed, site, d.date()) for d in days])


def _load_chunk(e: Energy, cal: Calendar, seed: int, res: Resources, chunk: int) -> np.ndarray:
    kw = _profile_kw_per_gwh(res.load_class, cal, chunk)
    mean = kw * (res.annual_kwh / PROFILE_KWH_PER_YEAR) * 1000 * cal.hours
    if e.load_noise == 0:
        return mean
    rng = np.random.default_rng(stream(seed, "load-noise", res.node, chunk).getrandbits(64))
    sigma = e.load_noise
    # log-normal with mean 1: the profile's mean survives the noise
    return mean * rng.lognormal(-sigma * sigma / 2, sigma, size=len(mean))


# --- the library calls, cached: one site and one profile class serve many nodes ---------------


@lru_cache(maxsize=64)
def _clear_sky_wh_per_kwp(e: Energy, cal: Calendar, chunk: int) -> np.ndarray:
    import pvlib  # heavy: only runs that model energy import it

    times = cal.periods(chunk * CHUNK, CHUNK)
    site = pvlib.location.Location(e.latitude, e.longitude, tz=e.timezone, altitude=e.altitude_m)
    # the period's middle stands for the period
    mid = times + pd.Timedelta(minutes=cal.minutes / 2)
    sky = site.get_clearsky(mid, model="ineichen")
    sun = site.get_solarposition(mid)
    poa = pvlib.irradiance.get_total_irradiance(
        e.pv_tilt_deg, e.pv_azimuth_deg, sun["apparent_zenith"], sun["azimuth"], sky["dni"],
        sky["ghi"], sky["dhi"], dni_extra=pvlib.irradiance.get_extra_radiation(mid),
        model="haydavies")
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    cell = pvlib.temperature.sapm_cell(poa["poa_global"], e.air_temperature_c, e.wind_m_s,
                                       **params)
    watts = pvlib.pvsystem.pvwatts_dc(poa["poa_global"], cell, 1000.0, e.pv_temp_coefficient)
    wh = np.nan_to_num(np.asarray(watts, dtype=float)).clip(min=0)
    return wh * (1 - e.pv_losses) * cal.hours


@lru_cache(maxsize=4096)
def _clear_sky_index(e: Energy, seed: int, site: str, day: datetime.date) -> float:
    """The day's clear-sky index at the site: Beta with mean ``clear_sky_index`` and
    concentration 4 (a stream per site and day)."""
    if not 0 < e.clear_sky_index < 1:
        return e.clear_sky_index
    rng = stream(seed, "weather", site, day.isoformat())
    return rng.betavariate(4 * e.clear_sky_index, 4 * (1 - e.clear_sky_index))


@lru_cache(maxsize=64)
def _profile_kw_per_gwh(load_class: str, cal: Calendar, chunk: int) -> np.ndarray:
    from demandlib.bdew import G25, H25

    # the profiles are defined in local time, 15-minute steps; a longer period averages them
    times = cal.periods(chunk * CHUNK, CHUNK)
    first = times[0].tz_localize(None)
    steps = CHUNK * cal.minutes // 15 + 1
    index = pd.date_range(first, periods=max(steps, 2), freq="15min")
    with warnings.catch_warnings():  # demandlib 0.2.2 uses pandas' deprecated inplace=
        warnings.simplefilter("ignore")
        profile = (H25 if load_class == "h25" else G25)(index)
    values = np.asarray(profile, dtype=float)
    if cal.minutes % 15 == 0:
        per = cal.minutes // 15
        return values[: CHUNK * per].reshape(CHUNK, per).mean(axis=1)
    step = pd.date_range(first, periods=CHUNK, freq=pd.Timedelta(minutes=cal.minutes))
    return np.asarray(profile.reindex(step, method="ffill"), dtype=float)
