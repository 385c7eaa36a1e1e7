"""``pumba data list|fetch|prepare``: the dataset registry from the command line."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from pumba.data.collect import S3_ENDPOINT, FetchOptions

if TYPE_CHECKING:
    from pumba.data.registry import Dataset

DEFAULT_REGISTRY = "config/datasets.yaml"
DEFAULT_CACHE = "results/cache"
# Where a dataset's files come from, least local last; a dataset is as far as its farthest file.
_NEARNESS = ("installed", "reference", "cached", "mirror", "download", "missing")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pumba data`` and its sub-commands."""
    parser = sub.add_parser(
        "data",
        help="dataset registry: list, fetch and prepare evaluation datasets",
        description="The evaluation datasets of config/datasets.yaml: list, fetch, prepare.",
    )
    data_sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p_list = data_sub.add_parser("list", help="table of datasets and whether they can be had here")
    _add_registry(p_list)
    _add_sources(p_list, download=False)
    p_list.set_defaults(func=run_list)

    p_fetch = data_sub.add_parser(
        "fetch",
        help="fetch a dataset's files into the cache",
        description="Fetch one dataset's files (a collection's archives, objects or snapshot) into the "
        "cache, resuming an interrupted download and checking sizes and checksums. With --record, a "
        "dataset that cannot be had here (downloads off, manual copy missing) is recorded as such "
        "and the exit status is 0; a download that fails is an error.",
    )
    _add_registry(p_fetch)
    p_fetch.add_argument("--dataset", required=True, help="dataset id (see `pumba data list`)")
    p_fetch.add_argument("--record", default=None, metavar="JSON", help="write what was fetched (or why not)")
    _add_sources(p_fetch, download=True)
    p_fetch.set_defaults(func=run_fetch)

    p_prep = data_sub.add_parser(
        "prepare",
        help="write a dataset's images, binary masks, manifest.tsv and status.json",
        description="Fetch and prepare one dataset into OUT/<dataset>/. A dataset that cannot be "
        "had here is written as unavailable (empty manifest, status.json says why), exit 0.",
    )
    _add_registry(p_prep)
    p_prep.add_argument("--dataset", required=True, help="dataset id (see `pumba data list`)")
    p_prep.add_argument("--out", required=True, help="output root, e.g. results/data")
    p_prep.add_argument(
        "--subjects",
        type=_positive_int,
        default=None,
        metavar="N",
        help="prepare only the first N subjects (a quick look); default: all",
    )
    _add_sources(p_prep, download=True)
    p_prep.set_defaults(func=run_prepare)

    p_table = data_sub.add_parser(
        "table",
        help="CSV of requested datasets: available or not, and why (from status.json files)",
    )
    _add_registry(p_table)
    p_table.add_argument("--status", nargs="+", required=True, help="status.json files of prepare")
    p_table.add_argument("--out", required=True, help="output CSV")
    p_table.set_defaults(func=run_table)


def _add_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        default=DEFAULT_REGISTRY,
        help=f"registry file (default: {DEFAULT_REGISTRY} in the current directory)",
    )


def _add_sources(parser: argparse.ArgumentParser, download: bool) -> None:
    parser.add_argument("--cache", default=DEFAULT_CACHE, help=f"download cache (default: {DEFAULT_CACHE})")
    parser.add_argument(
        "--mirror", default=None, help="local mirror laid out as <owner>/<repo>/<commit>/<path>"
    )
    parser.add_argument(
        "--reference-masks",
        default=None,
        metavar="DIR",
        help="directory of the benchmark's own masks for scans that ship none (registry masks "
        "{reference_mask: FILE}; tool-made, not distributed); without it those datasets are unavailable",
    )
    parser.add_argument(
        "--manual",
        default=None,
        metavar="PATH",
        help="the user's copy of a dataset that is downloaded by hand (its manual part): a directory "
        "in the publisher's layout or its archive",
    )
    if download:
        parser.add_argument(
            "--no-download",
            action="store_true",
            help="use only the cache and the mirror, never the network",
        )
        parser.add_argument(
            "--s3-endpoint",
            default=S3_ENDPOINT,
            metavar="URL",
            help=f"where public S3 buckets are read (default: {S3_ENDPOINT})",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            metavar="S",
            help="seconds without a byte before a download try counts as stalled (default: 60)",
        )
        parser.add_argument(
            "--retries",
            type=int,
            default=5,
            metavar="N",
            help="tries after the first of each download, each resuming the last (default: 5)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _options(args: argparse.Namespace) -> FetchOptions:
    """The collection fetch options of a parsed command line."""
    from pathlib import Path

    return FetchOptions(
        cache_dir=Path(args.cache),
        allow_download=not getattr(args, "no_download", True),
        manual_path=Path(args.manual) if args.manual else None,
        s3_endpoint=getattr(args, "s3_endpoint", S3_ENDPOINT),
        timeout_s=getattr(args, "timeout", 60.0),
        retries=getattr(args, "retries", 5),
        progress=not getattr(args, "no_progress", True),
    )


def run_list(args: argparse.Namespace) -> int:
    """Print id, species, modality, source and availability of every registry dataset.

    A missing dataset says why: the reference mask that is not in ``--reference-masks``, or how to
    install the package that carries it.
    """
    from pumba.data.fetch import locate
    from pumba.data.registry import load_registry

    registry = load_registry(args.registry)
    header = ("id", "species", "modality", "n", "source", "here")
    rows = []
    for ds in registry.datasets.values():
        if ds.collection is not None:
            rows.append(
                (ds.id, ds.species, ds.modality, str(ds.n_subjects), ds.source, _collection_here(ds, args))
            )
            continue
        where = max(
            (locate(f, args.cache, args.mirror, args.reference_masks) for f in ds.files()),
            key=_NEARNESS.index,
        )
        if where == "missing":
            reason = _missing_reference_mask(ds, args.reference_masks) or ds.install
            where = f"missing ({reason})" if reason else where
        rows.append((ds.id, ds.species, ds.modality, str(ds.n_subjects), ds.source, where))
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _collection_here(ds: Dataset, args: argparse.Namespace) -> str:
    """Where a collection stands here: 'fetched', 'download', or 'manual' (its parts downloaded by hand).

    A manual copy's path is per dataset (``pumba data fetch --dataset ID --manual PATH``), so the
    list says only that the dataset needs one.
    """
    from pumba.data.collect import COMPLETE, part_dir
    from pumba.data.registry import ManualPart

    assert ds.collection is not None
    remote = [p for p in ds.collection.parts if not isinstance(p, ManualPart)]
    fetched = all((part_dir(ds.id, p, args.cache) / COMPLETE).is_file() for p in remote)
    where = "fetched" if fetched else "download"
    if len(remote) < len(ds.collection.parts):
        where = "manual" if not remote else f"{where}+manual"
    return where


def _missing_reference_mask(ds: Dataset, reference_masks: str | None) -> str | None:
    """Why the first reference mask of ``ds`` that cannot be found is missing; None if none is."""
    from pumba.data.fetch import FetchError, reference_mask_path
    from pumba.data.registry import ReferenceMaskFile

    for spec in ds.files():
        if isinstance(spec, ReferenceMaskFile):
            try:
                reference_mask_path(spec, reference_masks)
            except FetchError as exc:
                return str(exc)
    return None


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch every file of one dataset; print their local paths (a collection: its parts' folders).

    Without ``--record`` a dataset that cannot be had is an error (exit 2); with it, the record
    says why and the exit status is 0. A failed download is an error either way.
    """
    import json

    from pumba.data.collect import fetch_collection
    from pumba.data.fetch import fetch_file
    from pumba.data.plan import why_missing
    from pumba.data.registry import load_registry
    from pumba.io import write_text_atomic

    dataset = load_registry(args.registry).get(args.dataset)
    options = _options(args)
    reason = why_missing(
        dataset, args.cache, args.mirror, args.reference_masks, options.allow_download, options.manual_path
    )
    if reason and args.record:
        record = {"dataset": dataset.id, "available": False, "reason": reason, "files": {}}
        write_text_atomic(args.record, json.dumps(record, indent=2) + "\n")
        print(f"{dataset.id}: not fetched: {reason}")
        return 0
    if dataset.collection is not None:
        found = {name: str(path) for name, path in fetch_collection(dataset, options).items()}
    else:
        found = {
            spec.name: str(
                fetch_file(
                    spec,
                    args.cache,
                    args.mirror,
                    allow_download=options.allow_download,
                    timeout_s=options.timeout_s,
                    reference_masks=args.reference_masks,
                )
            )
            for spec in dataset.files()
        }
    for path in found.values():
        print(path)
    if args.record:
        record = {"dataset": dataset.id, "available": True, "reason": None, "files": found}
        write_text_atomic(args.record, json.dumps(record, indent=2) + "\n")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """Prepare one dataset; an unavailable dataset is reported on stderr and still exits 0."""
    from pumba.data.prepare import prepare_collection, prepare_dataset
    from pumba.data.registry import load_registry

    logging.basicConfig(level=logging.WARNING, format="pumba data prepare: %(message)s")
    registry = load_registry(args.registry)
    if registry.get(args.dataset).collection is not None:
        status = prepare_collection(registry, args.dataset, args.out, _options(args), args.subjects)
    else:
        status = prepare_dataset(
            registry,
            args.dataset,
            args.out,
            args.cache,
            mirror=args.mirror,
            allow_download=not args.no_download,
            reference_masks=args.reference_masks,
            n_subjects=args.subjects,
        )
    if status.available:
        print(f"{status.dataset}: {status.n_subjects} subject(s) prepared under {args.out}")
    return 0


def run_table(args: argparse.Namespace) -> int:
    """Write the datasets table (CSV) from prepare's status files."""
    from pumba.data.registry import load_registry
    from pumba.data.status import dataset_table
    from pumba.io import write_text_atomic

    table = dataset_table(load_registry(args.registry), args.status)
    write_text_atomic(args.out, table.to_csv(index=False))
    for row in table[~table["available"]].itertuples():
        print(f"not run: {row.dataset}: {row.reason}")
    return 0
