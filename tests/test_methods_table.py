"""The methods table (pumba.metrics.methods_table) and the cost figure, on hand-made per-subject rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pumba.figures.cost import cost_figure, plot_cost, read_method_table
from pumba.io import InputError
from pumba.metrics.methods_table import METHOD_COLUMNS, method_table, read_plans, record_versions


def _rows() -> pd.DataFrame:
    rows = [
        # method, status, dice, hd95, seconds, peak
        ("a", "ok", 0.9, 4.0, 10.0, 500.0),
        ("a", "ok", 0.8, 6.0, 30.0, 700.0),
        ("a", "failed", np.nan, np.nan, 5.0, np.nan),
        ("b", "ok", 0.5, 20.0, 1.0, 100.0),
    ]
    return pd.DataFrame(rows, columns=["method", "status", "dice", "hd95_mm", "seconds", "peak_rss_mb"])


PLANS = {
    "a": {"tool": "pumba", "settings": {"tta": False}, "skipped": None},
    "b": {"tool": "otsu", "settings": {}, "skipped": None},
    "s": {"tool": "synthstrip", "settings": {"weights": ""}, "skipped": "no weights given"},
}


def test_method_table_by_hand():
    table = method_table(_rows(), PLANS, {"a": "pumba 0.1.0"}).set_index("method")
    assert tuple(table.reset_index().columns) == METHOD_COLUMNS
    a = table.loc["a"]
    assert (a["n_runs"], a["n_failed"], a["ran"], a["version"]) == (3, 1, True, "pumba 0.1.0")
    assert a["dice_mean"] == pytest.approx(0.85) and a["hd95_mean"] == pytest.approx(5.0)
    assert a["seconds_mean"] == pytest.approx(20.0)  # the successful runs only
    assert a["seconds_total"] == pytest.approx(45.0)  # every run's wall time, the failure's too
    assert a["peak_rss_mb_max"] == 700.0 and json.loads(a["settings"]) == {"tta": False}
    s = table.loc["s"]
    assert not s["ran"] and s["reason"] == "no weights given" and s["n_runs"] == 0
    assert np.isnan(s["dice_mean"]) and np.isnan(s["seconds_total"])


def test_plans_and_records_are_checked(tmp_path):
    with pytest.raises(InputError, match="not JSON"):
        read_plans("{nope")
    with pytest.raises(InputError, match="expected"):
        read_plans(json.dumps({"a": {"tool": "x"}}))
    good = tmp_path / "a.json"
    good.write_text(json.dumps({"method": "a", "version": "pumba 0.1.0"}))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"method": "b"}))  # a record from before versions were recorded
    assert record_versions([good, old]) == {"a": "pumba 0.1.0"}
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match=r"bad\.json: unreadable run record"):
        record_versions([bad])


def test_cost_figure_places_each_method_and_lists_the_skipped(tmp_path):
    table = method_table(_rows(), PLANS, {})
    fig = cost_figure(table)
    ax = fig.axes[0]
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == ["a (1 failed)", "b"]
    assert ax.get_xscale() == "log"
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(sorted(map(tuple, offsets)), [(1.0, 0.5), (20.0, 0.85)])
    assert any("s: no weights given" in t.get_text() for t in fig.texts)
    path = tmp_path / "methods.csv"
    table.to_csv(path, index=False)
    plot_cost(path, tmp_path / "cost.png")
    assert (tmp_path / "cost.png").stat().st_size > 5000
    pd.DataFrame({"method": ["a"]}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(InputError, match=r"short\.csv: methods table lacks column"):
        read_method_table(tmp_path / "short.csv")
