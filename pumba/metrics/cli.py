"""``pumba evaluate`` (per-subject metrics from run records), ``pumba summarise``, ``pumba method-table``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate``, ``summarise`` and ``method-table`` sub-commands."""
    ev = sub.add_parser(
        "evaluate",
        help="per-subject metrics of method outputs against reference masks",
        description=(
            "Build the per-subject table (Dice, HD95, sensitivity, specificity, volumes, time, "
            "memory) from run records and dataset manifests, matched on (dataset, subject). "
            "A failed run gives a row with status=failed and empty metrics."
        ),
    )
    ev.add_argument("--records", nargs="+", required=True, metavar="JSON", help="run records")
    ev.add_argument("--manifest", nargs="+", required=True, metavar="TSV", help="dataset manifests")
    ev.add_argument("--out", required=True, metavar="CSV", help="per-subject table to write")
    ev.set_defaults(func=_evaluate)

    su = sub.add_parser(
        "summarise",
        help="one row per (method, dataset) from per-subject tables",
        description=(
            "Summarise per-subject tables: n, failures, Dice mean/median/std, HD95 mean/median, "
            "mean seconds and peak memory. Failed runs count in n and n_failed and are "
            "excluded from every other statistic."
        ),
    )
    su.add_argument("--inputs", nargs="+", required=True, metavar="CSV", help="per-subject tables")
    su.add_argument("--out", required=True, metavar="CSV", help="summary table to write")
    su.add_argument("--per-subject", metavar="CSV", help="also write the per-subject tables concatenated")
    su.set_defaults(func=_summarise)

    mt = sub.add_parser(
        "method-table",
        help="one row per method: tool, version, settings, skipped or not, accuracy and cost",
        description=(
            "The methods table: each configured method's tool, version (from its run records), settings, "
            "whether it ran and why not, runs and failures, mean Dice and HD95, mean and total seconds, "
            "peak memory."
        ),
    )
    mt.add_argument("--per-subject", required=True, metavar="CSV", help="per-subject table (summarise)")
    mt.add_argument("--records", nargs="*", default=[], metavar="JSON", help="run records (their versions)")
    mt.add_argument(
        "--plans", required=True, metavar="JSON", help="the methods as JSON {name: {tool, settings, skipped}}"
    )
    mt.add_argument("--out", required=True, metavar="CSV", help="methods table to write")
    mt.set_defaults(func=_method_table)


def _evaluate(args: argparse.Namespace) -> int:
    from pumba.io import write_text_atomic
    from pumba.metrics.tables import per_subject_table

    table = per_subject_table(args.records, args.manifest)
    write_text_atomic(args.out, table.to_csv(index=False))
    return 0


def _summarise(args: argparse.Namespace) -> int:
    from pumba.io import write_text_atomic
    from pumba.metrics.tables import read_per_subject, summarise

    per_subject = read_per_subject(args.inputs)
    write_text_atomic(args.out, summarise(per_subject).to_csv(index=False))
    if args.per_subject:
        write_text_atomic(args.per_subject, per_subject.to_csv(index=False))
    return 0


def _method_table(args: argparse.Namespace) -> int:
    from pumba.io import write_text_atomic
    from pumba.metrics.methods_table import method_table, read_plans, record_versions
    from pumba.metrics.tables import read_per_subject

    table = method_table(
        read_per_subject([args.per_subject]), read_plans(args.plans), record_versions(args.records)
    )
    write_text_atomic(args.out, table.to_csv(index=False))
    return 0
