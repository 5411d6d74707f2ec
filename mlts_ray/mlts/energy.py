"""Distributed energy resources with physics (issue 16, first step): PV, standard load profiles
and a battery, per node and period. Pure and seeded: no I/O, no wall clock; the same config
gives the same Wh on every runtime (docs/architecture.md section 4).

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
node, so adding a node never changes another's.
"""

from __future__ import annotations

import datetime
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from mlts_ray.config import Energy
from mlts_ray.net.rng import stream

PROFILE_KWH_PER_YEAR = 1e6  # demandlib's BDEW 2025 profiles are kW for 1 GWh (1e6 kWh) a year


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


def periods(e: Energy, rounds: int) -> pd.DatetimeIndex:
    """Round r is the period starting at ``start + r * period``, in the site's time zone."""
    return pd.date_range(pd.Timestamp(e.start, tz=e.timezone), periods=rounds,
                         freq=pd.Timedelta(minutes=e.period_minutes))


def period_start(e: Energy, round_: int) -> datetime.datetime:
    """When round ``round_``'s period starts, as an instant in UTC (what the tables carry)."""
    local = pd.Timestamp(e.start, tz=e.timezone) + pd.Timedelta(minutes=e.period_minutes * round_)
    return local.tz_convert("UTC").to_pydatetime()


def pv_wh_per_kwp(e: Energy, seed: int, site: str, rounds: int) -> np.ndarray:
    """Wh one kWp of the site's panels yields in each period."""
    clear = _clear_sky_wh_per_kwp(e, rounds)
    days = periods(e, rounds).normalize()
    index = {d: i for i, d in enumerate(sorted(set(days)))}
    kt = _clear_sky_indices(e, seed, site, len(index))
    return clear * np.array([kt[index[d]] for d in days])


def load_wh(e: Energy, seed: int, res: Resources, rounds: int) -> np.ndarray:
    """Wh the node consumes in each period."""
    kw = _profile_kw_per_gwh(res.load_class, e.start, e.timezone, e.period_minutes, rounds)
    mean = kw * (res.annual_kwh / PROFILE_KWH_PER_YEAR) * 1000 * e.period_minutes / 60
    if e.load_noise == 0:
        return mean
    rng = np.random.default_rng(stream(seed, "load-noise", res.node).getrandbits(64))
    sigma = e.load_noise
    # log-normal with mean 1: the profile's mean survives the noise
    return mean * rng.lognormal(-sigma * sigma / 2, sigma, size=len(mean))


@dataclass(slots=True)
class Battery:
    """A battery that serves its own node first."""

    capacity_wh: float
    power_w: float
    efficiency: float  # round trip
    soc_wh: float = 0.0

    def step(self, net_wh: float, hours: float) -> float:
        """Charge from a surplus (``net_wh`` > 0) or discharge into a deficit (< 0), within
        capacity and power; returns the net energy left to trade."""
        if self.capacity_wh == 0:
            return net_wh
        one_way = math.sqrt(self.efficiency)
        limit = self.power_w * hours
        if net_wh > 0:
            stored = min(net_wh, limit, (self.capacity_wh - self.soc_wh) / one_way)
            self.soc_wh += stored * one_way
            return net_wh - stored
        given = min(-net_wh, limit, self.soc_wh * one_way)
        self.soc_wh -= given / one_way
        return net_wh + given


# --- the library calls, cached: one site and one profile class serve many nodes ---------------


@lru_cache(maxsize=32)
def _clear_sky_wh_per_kwp(e: Energy, rounds: int) -> np.ndarray:
    import pvlib  # heavy: only runs that model energy import it

    times = periods(e, rounds)
    site = pvlib.location.Location(e.latitude, e.longitude, tz=e.timezone, altitude=e.altitude_m)
    # the period's middle stands for the period
    mid = times + pd.Timedelta(minutes=e.period_minutes / 2)
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
    return wh * (1 - e.pv_losses) * e.period_minutes / 60


def _clear_sky_indices(e: Energy, seed: int, site: str, days: int) -> list[float]:
    """One clear-sky index per day: Beta with mean ``clear_sky_index`` and concentration 4."""
    rng = stream(seed, "weather", site)
    a = 4 * e.clear_sky_index
    b = 4 * (1 - e.clear_sky_index)
    return [rng.betavariate(a, b) if 0 < e.clear_sky_index < 1 else e.clear_sky_index
            for _ in range(days)]


@lru_cache(maxsize=32)
def _profile_kw_per_gwh(load_class: str, start: str, tz: str, minutes: int,
                        rounds: int) -> np.ndarray:
    from demandlib.bdew import G25, H25

    # the profiles are defined in local time, 15-minute steps; a longer period averages them
    first = pd.Timestamp(start, tz=tz).tz_localize(None)
    steps = rounds * minutes // 15 + 1
    index = pd.date_range(first, periods=max(steps, 2), freq="15min")
    with warnings.catch_warnings():  # demandlib 0.2.2 uses pandas' deprecated inplace=
        warnings.simplefilter("ignore")
        profile = (H25 if load_class == "h25" else G25)(index)
    values = np.asarray(profile, dtype=float)
    if minutes % 15 == 0:
        per = minutes // 15
        return values[: rounds * per].reshape(rounds, per).mean(axis=1)
    step = pd.date_range(first, periods=rounds, freq=pd.Timedelta(minutes=minutes))
    return np.asarray(profile.reindex(step, method="ffill"), dtype=float)
