"""The methods table: one row per configured method, what it is, whether it ran, what it scored and cost.

Columns (:data:`METHOD_COLUMNS`): method, tool, version, settings (JSON), ran (true/false), reason (why
a method was skipped), n_runs, n_failed, dice_mean, hd95_mean (mm), seconds_mean, seconds_total (wall
seconds of its runs), peak_rss_mb_max (MB = 2^20 bytes). Accuracy and cost are over the successful runs
(the failures are counted in n_failed); a method that was skipped has no runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pumba.io import InputError

METHOD_COLUMNS = (
    "method",
    "tool",
    "version",
    "settings",
    "ran",
    "reason",
    "n_runs",
    "n_failed",
    "dice_mean",
    "hd95_mean",
    "seconds_mean",
    "seconds_total",
    "peak_rss_mb_max",
)


def read_plans(text: str) -> dict[str, dict]:
    """The workflow's method plans, JSON ``{name: {tool, settings, skipped}}``; InputError if malformed."""
    try:
        plans = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--plans: not JSON ({exc})") from None
    if not isinstance(plans, dict) or not all(
        isinstance(p, dict) and {"tool", "settings", "skipped"} <= set(p) for p in plans.values()
    ):
        raise InputError("--plans: expected {name: {tool, settings, skipped}}")
    return plans


def record_versions(records: Sequence[str | os.PathLike]) -> dict[str, str]:
    """The tool version each method's run records name (the first record of a method that has one)."""
    versions: dict[str, str] = {}
    for path in records:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: unreadable run record ({exc})") from None
        if record.get("version"):
            versions.setdefault(record["method"], record["version"])
    return versions


def method_table(
    per_subject: pd.DataFrame, plans: Mapping[str, Mapping], versions: Mapping[str, str]
) -> pd.DataFrame:
    """One row per method of ``plans`` (in its order); columns :data:`METHOD_COLUMNS`."""
    rows = []
    for name, plan in plans.items():
        runs = per_subject[per_subject["method"] == name]
        ok = runs[runs["status"] == "ok"]
        rows.append(
            {
                "method": name,
                "tool": plan["tool"],
                "version": versions.get(name, ""),
                "settings": json.dumps(plan["settings"], sort_keys=True),
                "ran": plan["skipped"] is None,
                "reason": plan["skipped"] or "",
                "n_runs": len(runs),
                "n_failed": int((runs["status"] != "ok").sum()),
                "dice_mean": ok["dice"].mean(),
                "hd95_mean": ok["hd95_mm"].mean(),
                "seconds_mean": ok["seconds"].mean(),
                "seconds_total": runs["seconds"].sum(min_count=1),
                "peak_rss_mb_max": ok["peak_rss_mb"].max(),
            }
        )
    return pd.DataFrame(rows, columns=list(METHOD_COLUMNS))
