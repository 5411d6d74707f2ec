"""Energy resources with physics: pvlib PV, BDEW 2025 load profiles from demandlib, a battery
serving its own node, the meter -- checked against pvlib directly, closed forms, the profiles'
own annual integral and a naive battery oracle."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlts_ray.config import build_config
from mlts_ray.errors import ConfigError
from mlts_ray.mlts import energy

CFG = build_config({})
E = CFG.energy
CAL = energy.Calendar.of(CFG)
DAY = 24 * 60 // CAL.minutes


def at(start: str) -> energy.Calendar:
    return energy.Calendar(start, CAL.timezone, CAL.minutes)


def test_pv_is_zero_at_night_peaks_near_solar_noon_and_fits_a_berlin_clear_day():
    clear = E.model_copy(update=dict(clear_sky_index=1.0))
    wh = energy.pv_wh_per_kwp(clear, CAL, 1, "vpp-0", 0, DAY)
    times = CAL.periods(0, DAY)
    assert wh[times.hour < 3].sum() == 0 and wh[times.hour >= 23].sum() == 0
    # solar noon in Berlin in June is about 13:10 CEST
    assert 12 <= times[int(np.argmax(wh))].hour <= 14
    # a clear June day in Berlin: 6-8 kWh per kWp before losses (PVGIS clear-sky); less 14 %
    assert 5.0 <= wh.sum() / 1000 <= 7.5
    # a clear winter solstice: 7.5 h of low sun, under half a clear June day even tilted 35 deg
    winter = energy.pv_wh_per_kwp(clear, at("2026-12-21T00:00"), 1, "vpp-0", 0, DAY)
    assert winter.sum() < wh.sum() / 2


def test_pv_is_pvlibs_own_pvwatts_on_the_clear_sky_plane_of_array():
    """The same chain called on pvlib directly, at solar noon's period, gives the same Wh."""
    import pandas as pd
    import pvlib

    clear = E.model_copy(update=dict(clear_sky_index=1.0))
    wh = energy.pv_wh_per_kwp(clear, CAL, 1, "vpp-0", 0, DAY)
    noon = int(np.argmax(wh))
    mid = CAL.periods(noon, 1) + pd.Timedelta(minutes=CAL.minutes / 2)
    site = pvlib.location.Location(E.latitude, E.longitude, tz=E.timezone, altitude=E.altitude_m)
    sky, sun = site.get_clearsky(mid), site.get_solarposition(mid)
    poa = pvlib.irradiance.get_total_irradiance(
        E.pv_tilt_deg, E.pv_azimuth_deg, sun["apparent_zenith"], sun["azimuth"], sky["dni"],
        sky["ghi"], sky["dhi"], dni_extra=pvlib.irradiance.get_extra_radiation(mid),
        model="haydavies")["poa_global"]
    cell = pvlib.temperature.sapm_cell(poa, E.air_temperature_c, E.wind_m_s, **pvlib.temperature
                                       .TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"])
    watts = float(pvlib.pvsystem.pvwatts_dc(poa, cell, 1000.0, E.pv_temp_coefficient).iloc[0])
    assert wh[noon] == pytest.approx(watts * (1 - E.pv_losses) * CAL.hours)
    assert 500 < watts < 1000  # a clear June noon at 52.5 N on a 35-degree south roof


def test_weather_is_one_draw_per_site_and_day_and_seeded():
    a = energy.pv_wh_per_kwp(E, CAL, 1, "vpp-0", 0, 3 * DAY)
    assert np.array_equal(a, energy.pv_wh_per_kwp(E, CAL, 1, "vpp-0", 0, 3 * DAY))
    days = a.reshape(3, DAY).sum(axis=1)
    assert len(set(days.round(6))) == 3  # days differ
    assert not np.array_equal(a, energy.pv_wh_per_kwp(E, CAL, 1, "vpp-1", 0, 3 * DAY))
    # any slice of the run is the same Wh as the whole run gives for those periods (resume)
    assert np.array_equal(a[100:150], energy.pv_wh_per_kwp(E, CAL, 1, "vpp-0", 100, 50))


def test_a_household_load_integrates_to_its_annual_kwh_and_sits_in_the_h0_band():
    res = energy.Resources("n", 0.0, "h25", 4000.0, 0.0, 0.0)
    quiet = E.model_copy(update=dict(load_noise=0.0))
    wh = energy.load_wh(quiet, at("2026-01-01T00:00"), 1, res, 0, 365 * DAY)
    assert wh.sum() / 1000 == pytest.approx(4000, rel=0.02)
    # a 4,000 kWh household draws tens to a few hundred Wh per quarter hour (BDEW H0: 56-179)
    assert 20 <= np.percentile(wh, 5) and np.percentile(wh, 95) <= 300


def test_load_noise_keeps_the_mean_and_differs_per_node():
    res = energy.Resources("n", 0.0, "h25", 4000.0, 0.0, 0.0)
    quiet = energy.load_wh(E.model_copy(update=dict(load_noise=0.0)), CAL, 1, res, 0, 7 * DAY)
    noisy = energy.load_wh(E, CAL, 1, res, 0, 7 * DAY)
    other = energy.load_wh(E, CAL, 1, dataclasses.replace(res, node="m"), 0, 7 * DAY)
    assert noisy.sum() == pytest.approx(quiet.sum(), rel=0.05)
    assert not np.array_equal(noisy, other)


def test_resources_follow_the_shares_and_ranges():
    drawn = [energy.draw_resources(E, 3, f"vpp-0/n-{i:03d}") for i in range(2000)]
    pv = [r for r in drawn if r.pv_kwp > 0]
    assert abs(len(pv) / len(drawn) - E.pv_share) < 0.04
    assert all(E.pv_kwp_min <= r.pv_kwp <= E.pv_kwp_max for r in pv)
    assert all(r.battery_kwh == 0 for r in drawn if r.pv_kwp == 0)
    batteries = [r for r in pv if r.battery_kwh > 0]
    assert abs(len(batteries) / len(pv) - E.battery_share) < 0.06
    assert all(r.battery_kw == pytest.approx(r.battery_kwh * E.battery_c_rate) for r in batteries)
    business = [r for r in drawn if r.load_class == "g25"]
    assert abs(len(business) / len(drawn) - E.business_share) < 0.03
    assert energy.draw_resources(E, 3, "vpp-0/n-001") == drawn[1]  # a stream per node


@settings(max_examples=200, deadline=None)
@given(capacity=st.floats(0, 20_000), power=st.floats(1, 10_000), efficiency=st.floats(0.5, 1),
       nets=st.lists(st.integers(-5_000, 5_000), min_size=1, max_size=40))
def test_a_battery_never_leaves_its_bounds_and_loses_exactly_its_round_trip_losses(
        capacity, power, efficiency, nets):
    battery = energy.Battery(capacity, power, efficiency)
    one_way = math.sqrt(efficiency)
    charged_total = discharged_total = lost_total = 0.0
    for net in nets:
        before = battery.soc_wh
        charged, discharged, lost = battery.step(net, 0.25)
        assert 0 <= battery.soc_wh <= capacity
        assert charged * discharged == 0 and charged + discharged <= power * 0.25
        assert charged <= max(net, 0) and discharged <= max(-net, 0)  # serves its own node
        # the stored energy changes by what went in less what came out and the losses
        assert battery.soc_wh == pytest.approx(before + charged - discharged - lost, abs=1e-6)
        if charged:
            assert lost == pytest.approx(charged * (1 - one_way))
        if discharged:
            assert lost == pytest.approx(discharged / one_way - discharged)
        charged_total, discharged_total, lost_total = (
            charged_total + charged, discharged_total + discharged, lost_total + lost)
    # a full cycle loses 1 - efficiency: out is at most in x round trip
    assert discharged_total <= charged_total * efficiency + 1e-6
    assert battery.soc_wh == pytest.approx(charged_total - discharged_total - lost_total, abs=1e-5)


def test_the_meter_reads_each_node_in_whole_wh_and_nets_its_battery():
    cfg = build_config({"topology": {"nodes_per_vpp": 40}, "experiment": {"rounds": DAY}})
    nodes = [f"vpp-0/n-{i:03d}" for i in range(1, 40)]
    meter = energy.Meter(cfg, "vpp-0", nodes)
    day = [meter.read(r) for r in range(DAY)]
    assert meter.batteries  # some nodes have one
    for node, res in meter.resources.items():
        gen = np.array([d[node].generation_wh for d in day])
        if res.pv_kwp == 0:
            assert gen.sum() == 0
        else:  # its panels at the site, rounded to whole Wh
            want = res.pv_kwp * energy.pv_wh_per_kwp(cfg.energy, CAL, 0, "vpp-0", 0, DAY)
            assert np.abs(gen - want).max() <= 0.5
        for d in day:
            r = d[node]
            assert r.net_wh == r.generation_wh - r.consumption_wh - r.charge_wh + r.discharge_wh
    with pytest.raises(Exception, match="period 3 read after"):
        meter.read(3)


@pytest.mark.parametrize("section, key, value, named", [
    ("energy", "timezone", "Mars/Olympus", "energy.timezone"),
    ("experiment", "start", "21 June 2026", "experiment.start"),
    ("experiment", "start", "2026-06-21T00:00+02:00", "experiment.start"),
    ("energy", "pv_kwp_min", 20.0, "energy.pv_kwp_min"),
    ("workload", "feed_in_cents", 50, "workload.feed_in_cents"),
    ("energy", "start", "2026-06-21T00:00", "energy.start"),  # moved: named with its new home
])
def test_bad_energy_settings_are_refused_by_name(section, key, value, named):
    with pytest.raises(ConfigError) as err:
        build_config({section: {key: value}})
    assert err.value.subject == named


def test_tables_carry_the_period_each_round_trades_in(tmp_path):
    import datetime

    from mlts_ray.analysis.load import load_table
    from mlts_ray.runtime.local import run_local

    cfg = build_config({"experiment": {"rounds": 3, "runtime": "local",
                                       "start": "2026-03-29T01:30"},
                        "workload": {"period_minutes": 30}})
    run = run_local(cfg, tmp_path)
    utc = datetime.timezone.utc
    # the night the clocks go forward in Berlin: 01:30 CET is 00:30 UTC, and the periods run on
    # in UTC (02:00 CET, then 03:30 CEST -- the hour that does not exist is skipped)
    want = [datetime.datetime(2026, 3, 29, 0, 30, tzinfo=utc) + datetime.timedelta(minutes=30 * r)
            for r in range(3)]
    # (no trades: at night in March nobody has a surplus to sell)
    for table in ("consensus", "energy", "market"):
        df = load_table(run, table)
        got = df.groupby("round").period_start.unique()
        assert [list(v) for v in got] == [[w] for w in want], table
