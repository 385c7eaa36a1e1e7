"""The paper's tables and their statistics: Holm, paired Wilcoxon, Table 1-3, runtime, seeds, writers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pumba.io import InputError
from pumba.metrics.stats import MIN_PAIRS, TOO_SMALL, holm, paired_wilcoxon
from pumba.report import render
from pumba.report.tables import ablation_table, accuracy_table, runtime_table, seed_spread


def test_holm_hand_computed_and_nan_kept():
    # sorted 0.01, 0.02, 0.04 with m = 3: 0.03, max(0.03, 0.04) = 0.04, max(0.04, 0.04) = 0.04
    assert holm([0.04, 0.01, math.nan, 0.02]) == pytest.approx([0.04, 0.03, math.nan, 0.04], nan_ok=True)
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert all(math.isnan(p) for p in holm([math.nan]))


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(0, 0.2, 7)
    assert holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])


def test_paired_wilcoxon_small_n_and_identical():
    assert paired_wilcoxon([1, 2, 3], [1, 2, 4]).note == TOO_SMALL
    same = paired_wilcoxon(np.arange(8.0), np.arange(8.0))
    assert same.note == "identical" and same.p == 1.0
    a = np.linspace(0.9, 0.95, 10)
    res = paired_wilcoxon(a, a - 0.05)  # every pair better: exact two-sided p = 2 / 2^10
    assert res.n_pairs == 10 and res.p == pytest.approx(2 / 2**10) and res.median_diff == pytest.approx(0.05)
    nan = paired_wilcoxon([1.0, math.nan] + [0.5] * (MIN_PAIRS - 1), [0.9] * (MIN_PAIRS + 1))
    assert nan.n_pairs == MIN_PAIRS


def per_subject(n: int) -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(1)
    for i in range(n):
        for method, base in (("ours", 0.95), ("good", 0.96), ("bad", 0.70)):
            rows.append(
                {
                    "method": method,
                    "dataset": "d1",
                    "subject": f"s{i}",
                    "species": "human",
                    "status": "failed" if (method == "bad" and i == 0) else "ok",
                    "dice": base + rng.normal(0, 0.005),
                    "hd95_mm": (1 - base) * 100 + rng.normal(0, 0.1),
                    "seconds": 2.0 + i,
                    "peak_rss_mb": 100.0 * (i + 1),
                }
            )
    return pd.DataFrame(rows)


def test_accuracy_table_tests_and_best():
    frame, header, rows = accuracy_table(per_subject(10), "ours", ["ours", "good", "bad"])
    assert header == ["method", "d1"]
    d = frame.set_index("method")
    assert d.loc["ours", "dice_test"] == "ours"
    assert d.loc["bad", "n_failed"] == 1 and d.loc["bad", "dice_n_pairs"] == 9
    assert d.loc["bad", "dice_p_holm"] < 0.05 and d.loc["good", "dice_p_holm"] < 0.05
    assert d.loc["good", "dice_best"] and not d.loc["ours", "dice_best"]
    assert d.loc["good", "hd95_best"]
    dice_rows = {r[0]: r[1] for r in rows}
    assert dice_rows["good"].startswith("**") and dice_rows["good"].endswith(" *")
    assert "[1 failed]" in dice_rows["bad"]
    assert "(" in dice_rows["ours"]  # median (IQR) with several subjects


def test_accuracy_table_says_n_too_small():
    frame, _, rows = accuracy_table(per_subject(3), "ours")
    assert set(frame.loc[frame["method"] != "ours", "dice_test"]) == {TOO_SMALL}
    assert frame["dice_p_holm"].isna().all()
    assert any(r[0].startswith("Wilcoxon") and TOO_SMALL in r[1] for r in rows)
    with pytest.raises(InputError, match="'nobody' has no rows"):
        accuracy_table(per_subject(3), "nobody")


def test_runtime_table_lists_skipped_methods():
    methods = pd.DataFrame(
        {
            "method": ["ours", "good", "bad", "skipped"],
            "tool": ["pumba", "x", "y", "synthstrip"],
            "version": ["pumba 0.1", "", "", ""],
            "ran": [True, True, True, False],
            "reason": ["", "", "", "no weights given"],
        }
    )
    frame, _, rows = runtime_table(per_subject(4), methods, ["ours", "good", "bad"], {"ours": 730.0})
    r = frame.set_index("method")
    assert r.loc["ours", "seconds_median"] == pytest.approx(3.5) and r.loc["ours", "seconds_total"] == 14
    assert r.loc["ours", "peak_rss_mb_max"] == 400 and r.loc["ours", "training_seconds"] == 730
    assert not r.loc["skipped", "ran"]
    assert any("not run: no weights given" in c for row in rows for c in row)


def validate_scores(arms: dict[str, float]) -> pd.DataFrame:
    rows = []
    for arm, dice in arms.items():
        for k, dataset in enumerate(("a", "b")):
            rows.append(
                {
                    "model": f"results/ablation/{arm}/model.pt",
                    "step": 400,
                    "dataset": dataset,
                    "subject": "s",
                    "dice": dice + 0.01 * k,
                    "hd95_mm": 5.0,
                    "arm": arm,
                }
            )
    return pd.DataFrame(rows)


def test_ablation_table_reads_against_the_seed_range():
    scores = validate_scores(
        {"ref": 0.90, "ref-seed": 0.92, "no-x": 0.80, "plus-y": 0.91, "no-boundary-class": 0.89}
    )
    frame, _, rows = ablation_table(scores, "ref", ["ref", "ref-seed"], against={"plus-y": "no-x"})
    f = frame.set_index("arm")
    assert f.loc["no-boundary-class", "group"] == "label: no boundary class"
    # an arm read against the arm it changes, not the reference
    assert f.loc["plus-y", "against"] == "no-x" and f.loc["plus-y", "delta_dice"] == pytest.approx(0.11)
    assert f.loc["plus-y", "beyond_seed_range"] and f.loc["no-x", "against"] == "ref"
    assert pd.isna(f.loc["ref", "against"]) and math.isnan(f.loc["ref", "delta_dice"])
    with pytest.raises(InputError, match="'absent' \\(against which 'plus-y' is read\\) has no scores"):
        ablation_table(scores, "ref", against={"plus-y": "absent"})
    assert f.loc["no-x", "delta_dice"] == pytest.approx(-0.10) and f.loc["no-x", "beyond_seed_range"]
    assert f.loc["no-x", "group"] == "generator: one switch removed"
    assert rows[-1][0].startswith("seed range") and rows[-1][3] == "0.020"
    with pytest.raises(InputError, match=r"arm 'nope' .* has no scores"):
        ablation_table(scores, "nope")


def test_table_three_from_the_command_line_with_inference_arms(tmp_path):
    from pumba.cli import main

    trained = validate_scores({"ref": 0.90, "ref-seed": 0.92, "no-x": 0.80}).drop(columns="arm")
    trained.to_csv(tmp_path / "scores.csv", index=False)
    # one model scored with another inference setting: its rows name the shipped model, not an arm folder
    infer = validate_scores({"x": 0.95}).drop(columns="arm").assign(model="pumba/weights/pumba-v2.pt")
    infer.to_csv(tmp_path / "infer-resize.csv", index=False)
    argv = ["tables", "ablation", "--scores", str(tmp_path / "scores.csv")]
    argv += ["--named", f"infer-resize={tmp_path / 'infer-resize.csv'}", "--group", "infer-resize=inference"]
    argv += ["--reference", "ref", "--seed-arms", "ref,ref-seed", "--out", str(tmp_path / "t3")]
    assert main(argv) == 0
    table = pd.read_csv(tmp_path / "t3.csv").set_index("arm")
    assert sorted(table.index) == ["infer-resize", "no-x", "ref", "ref-seed"]
    assert table.loc["infer-resize", "group"] == "inference"
    assert table.loc["infer-resize", "delta_dice"] == pytest.approx(0.05)
    assert "infer-resize" in (tmp_path / "t3.md").read_text()
    clash = [*argv[:4], "--named", f"ref={tmp_path / 'infer-resize.csv'}", *argv[6:]]
    assert main(clash) == 2


def test_seed_spread_sd_and_range():
    frame, _, rows = seed_spread(validate_scores({"s0": 0.90, "s1": 0.92, "s2": 0.94}))
    spread = frame.iloc[-1]
    assert spread["dice_mean"] == pytest.approx(0.02) and spread["dice_range"] == pytest.approx(0.04)
    assert rows[-1][1] == "0.020 (0.040)"
    with pytest.raises(InputError, match="at least two"):
        seed_spread(validate_scores({"s0": 0.9}))


def test_write_table_three_formats(tmp_path):
    data = pd.DataFrame({"a": [1.23456], "b": ["x_y"]})
    paths = render.write_table(tmp_path / "t", data, ["a", "b"], [["**1.23**", "x_y & z%"]], "Cap_1", "tab:t")
    csv, md, tex = (p.read_text() for p in paths)
    assert csv.startswith("a,b\n1.23456,x_y")
    assert "| **1.23** | x_y & z% |" in md and md.startswith("Cap_1\n")
    assert r"\textbf{1.23} & x\_y \& z\% \\" in tex and r"\caption{Cap\_1}" in tex
    with pytest.raises(InputError, match="a row has 1 cells"):
        render.write_table(tmp_path / "u", data, ["a", "b"], [["x"]])
    assert not (tmp_path / "u.csv").exists()
