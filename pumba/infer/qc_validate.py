"""``pumba qc validate``: how well the quality score (:mod:`pumba.infer.qc`) predicts a bad mask.

Over a pooled set of masks with references: every method's mask of every scan of a benchmark run
(``results/predictions/{method}/{dataset}/{subject}.nii.gz`` against ``results/data/{dataset}/{subject}/
mask.nii.gz``), masks of deliberately damaged copies of each scan (:data:`DAMAGES`: noise, a bias field, the
top of the head cropped, 2x downsampling, thick slices, a header flipped upside down) made by our model, the
previous release and Otsu thresholding, and masks of early-training models (``--early-model``, e.g. a few
hundred steps of training from scratch). For each mask: its Dice with the reference and its quality score,
which never sees the reference. Reported: Spearman's rank correlation of score and Dice, the AUC of the
score for telling masks with Dice < :data:`pumba.infer.qc.BAD_DICE` from the rest, and the threshold that
best separates them on the pooled set (Youden's J), with its sensitivity and specificity; the same per
source of masks, and the AUC of each of the score's terms alone.

Every random draw (the noise) is seeded from the scan's name: the same inputs give the same table.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from pumba.infer.qc import BAD_DICE, QC_THRESHOLD, qc_from_prediction
from pumba.io import InputError, Volume, load_volume, write_text_atomic
from pumba.metrics.overlap import dice

TERMS = ("agreement", "flip_agreement", "shape", "volume")


@dataclass(frozen=True)
class Case:
    """One image to score masks on: a scan or a damaged copy, with its reference mask on its grid."""

    dataset: str
    subject: str
    variant: str
    volume: Volume
    reference: np.ndarray


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "little")


def _superior_axis(affine: np.ndarray) -> tuple[int, int]:
    """The voxel axis closest to the world's superior direction and its sign (+1: index grows upwards)."""
    column = np.argmax(np.abs(affine[2, :3]))
    return int(column), int(np.sign(affine[2, column]) or 1)


def _with(volume: Volume, data: np.ndarray, affine: np.ndarray | None = None) -> Volume:
    affine = volume.affine if affine is None else affine
    return replace(
        volume,
        data=np.ascontiguousarray(data, dtype=np.float32),
        affine=affine,
        image=nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), affine),
        scale=1.0,
    )


def damage_noise(volume: Volume, ref: np.ndarray, seed: int) -> tuple[Volume, np.ndarray]:
    """Gaussian noise of sd 0.15 of the 1st-99th percentile range (seeded)."""
    lo, hi = np.percentile(volume.data[np.isfinite(volume.data)], [1, 99])
    rng = np.random.default_rng(seed)
    noisy = volume.data + rng.normal(0.0, 0.15 * (hi - lo), volume.data.shape).astype(np.float32)
    return _with(volume, noisy), ref


def damage_bias(volume: Volume, ref: np.ndarray, seed: int) -> tuple[Volume, np.ndarray]:
    """A multiplicative field exp(0.6 (u + v)), u and v running linearly from -1 to 1 along the first and the
    second voxel axes (a factor 11 from corner to corner)."""
    i, j = (np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in volume.data.shape[:2])
    field = np.exp(0.6 * (i[:, None, None] + j[None, :, None]))
    return _with(volume, volume.data * field), ref


def damage_crop(volume: Volume, ref: np.ndarray, seed: int) -> tuple[Volume, np.ndarray]:
    """The top 30 % of the field of view cut off (the reference too)."""
    axis, sign = _superior_axis(volume.affine)
    n = volume.data.shape[axis]
    keep = slice(0, n - int(0.3 * n)) if sign > 0 else slice(int(0.3 * n), n)
    index = tuple(keep if a == axis else slice(None) for a in range(3))
    affine = volume.affine.copy()
    affine[:3, 3] += affine[:3, axis] * (keep.start or 0)
    return _with(volume, volume.data[index], affine), ref[index]


def damage_downsample(volume: Volume, ref: np.ndarray, seed: int) -> tuple[Volume, np.ndarray]:
    """2x coarser voxels: anti-aliased (Gaussian sigma 0.85 voxel), every second voxel kept (the reference's
    every second voxel)."""
    smooth = ndimage.gaussian_filter(np.nan_to_num(volume.data), 0.85)
    affine = volume.affine.copy()
    affine[:3, :3] *= 2
    return _with(volume, smooth[::2, ::2, ::2], affine), ref[::2, ::2, ::2]


def damage_thick(volume: Volume, ref: np.ndarray, seed: int) -> tuple[Volume, np.ndarray]:
    """Thick slices: 4 slices averaged into one along the superior axis (the reference too, then > 0.5)."""
    axis, _ = _superior_axis(volume.affine)

    def thicken(values: np.ndarray) -> np.ndarray:
        moved = np.moveaxis(values, axis, 0)
        n = moved.shape[0] // 4 * 4
        return np.moveaxis(moved[:n].reshape(n // 4, 4, *moved.shape[1:]).mean(axis=1), 0, axis)

    thick = thicken(np.nan_to_num(volume.data))
    affine = volume.affine.copy()
    affine[:3, :3] = affine[:3, :3] @ np.diag([4.0 if a == axis else 1.0 for a in range(3)])
    affine[:3, 3] += affine[:3, axis] / 4 * 1.5
    return _with(volume, thick, affine), thicken(ref.astype(np.float32)) > 0.5


def damage_header_flip(volume: Volume, ref: np.ndarray, seed: int) -> tuple[Volume, np.ndarray]:
    """The header says up is down: the superior axis's direction negated (the data and the reference as
    they were), so the head is upside down in world space."""
    axis, _ = _superior_axis(volume.affine)
    affine = volume.affine.copy()
    affine[:3, axis] *= -1
    return _with(volume, volume.data, affine), ref


DAMAGES: dict[str, Callable[[Volume, np.ndarray, int], tuple[Volume, np.ndarray]]] = {
    "noise": damage_noise,
    "bias": damage_bias,
    "crop": damage_crop,
    "downsample": damage_downsample,
    "thick": damage_thick,
    "header-flip": damage_header_flip,
}


def cases(results: Path, damages: Sequence[str]) -> list[tuple[str, str, Path, Path]]:
    """(dataset, subject, image, reference) of every prepared scan under ``results/data``."""
    out = []
    for image in sorted((results / "data").glob("*/*/image.nii.gz")):
        ref = image.with_name("mask.nii.gz")
        if ref.is_file():
            out.append((image.parent.parent.name, image.parent.name, image, ref))
    if not out:
        raise InputError(f"{results / 'data'}: no prepared scans (*/*/image.nii.gz with mask.nii.gz)")
    return out


def validate(
    results: str | Path,
    out_csv: str | Path,
    out_md: str | Path | None = None,
    early_models: Sequence[str | Path] = (),
    damage_models: Sequence[str | Path] = (),
    damages: Sequence[str] = tuple(DAMAGES),
    threads: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every mask of the pooled set (module docstring) and write one row per mask to ``out_csv``
    (dataset, subject, variant, method, dice, score and its terms) and the Markdown summary to ``out_md``.

    ``early_models`` strip every original scan (one pass, no test-time flips); ``damage_models`` (default:
    the shipped pumba-v1, besides our default model and Otsu) strip every damaged copy.
    """
    from tqdm import tqdm

    from pumba.baselines.otsu import otsu_mask
    from pumba.infer.api import Stripper

    results = Path(results)
    for name in damages:
        if name not in DAMAGES:
            raise InputError(f"--damage {name}: expected one of {', '.join(DAMAGES)}")
    scans = cases(results, damages)
    scorer = Stripper(threads=threads, device="cpu")
    extra = {
        Path(p).stem if Path(p).stem != "model" else Path(p).parent.name: Stripper(
            p, threads=threads, device="cpu", tta=False
        )
        for p in early_models
    }
    if not damage_models:
        from pumba.infer.strip import default_model_path

        damage_models = [default_model_path().with_name("pumba-v1.pt")]
    on_damaged = {
        f"{Path(p).stem}": Stripper(p, threads=threads, device="cpu", tta=False) for p in damage_models
    }
    methods = sorted(p.name for p in (results / "predictions").iterdir() if p.is_dir())
    rows = []
    t0 = time.perf_counter()
    for dataset, subject, image_path, ref_path in tqdm(scans, disable=not progress, desc="qc validate"):
        volume = load_volume(image_path, fit_float32=True)
        reference = load_volume(ref_path).data > 0
        todo = [Case(dataset, subject, "original", volume, reference)]
        for name in damages:
            damaged, ref = DAMAGES[name](volume, reference, _seed(dataset, subject, name))
            todo.append(Case(dataset, subject, name, damaged, ref))
        for case in todo:
            ours = scorer.predict(case.volume)
            masks: dict[str, np.ndarray] = {}
            if case.variant == "original":
                for method in methods:
                    path = results / "predictions" / method / dataset / f"{subject}.nii.gz"
                    if path.is_file():
                        mask = load_volume(path).data > 0
                        if mask.shape == case.reference.shape:
                            masks[method] = mask
                for name, model in extra.items():
                    masks[f"early:{name}"] = model.predict(case.volume, False, False).mask
            else:
                masks["pumba"] = ours.mask
                for name, model in on_damaged.items():
                    masks[name] = model.predict(case.volume, False, False).mask
                masks["otsu"] = otsu_mask(np.nan_to_num(case.volume.data), case.volume.zooms)
            for method, mask in masks.items():
                qc = qc_from_prediction(case.volume.data, mask, ours.prob, ours.flips, case.volume.voxel_ml)
                rows.append(
                    {
                        "dataset": dataset,
                        "subject": subject,
                        "variant": case.variant,
                        "method": method,
                        "dice": round(dice(mask, case.reference), 4),
                        "score": round(qc.score, 4),
                        **{t: round(getattr(qc, t), 4) for t in TERMS},
                        "brain_share": round(qc.brain_share, 4),
                    }
                )
    table = pd.DataFrame(rows)
    text = table.to_csv(index=False)
    write_text_atomic(out_csv, text)
    if out_md is not None:
        write_text_atomic(out_md, summary_markdown(table, time.perf_counter() - t0))
    return table


def youden_threshold(score: np.ndarray, bad: np.ndarray) -> float:
    """The threshold t maximising sensitivity + specificity - 1 for flagging ``score < t`` as bad: the
    midpoint between two neighbouring distinct scores (ties: the lowest)."""
    values = np.unique(score)
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    best, best_j = float(candidates[0]), -1.0
    for t in candidates:
        flagged = score < t
        sens = flagged[bad].mean() if bad.any() else 0.0
        spec = (~flagged[~bad]).mean() if (~bad).any() else 0.0
        if sens + spec - 1 > best_j + 1e-12:
            best, best_j = float(t), sens + spec - 1
    return best


def _stats(group: pd.DataFrame, column: str = "score") -> dict:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    bad = (group["dice"] < BAD_DICE).to_numpy()
    varied = len(group) > 2 and group[column].nunique() > 1 and group["dice"].nunique() > 1
    rho = spearmanr(group[column], group["dice"]).statistic if varied else float("nan")
    auc = roc_auc_score(bad, -group[column]) if 0 < bad.sum() < len(bad) else float("nan")
    return {"masks": len(group), "bad": int(bad.sum()), "spearman": rho, "auc": auc}


def summary_markdown(table: pd.DataFrame, seconds: float) -> str:
    """The validation's Markdown: pooled Spearman and AUC, the threshold chosen on the pooled set and its
    sensitivity and specificity, the same per source of masks, and each term's AUC alone."""
    bad = (table["dice"] < BAD_DICE).to_numpy()
    score = table["score"].to_numpy()
    chosen = youden_threshold(score, bad)

    def rates(t: float) -> tuple[float, float]:
        flagged = score < t
        return float(flagged[bad].mean()), float((~flagged[~bad]).mean())

    pooled = _stats(table)
    lines = [
        f"Pooled: {pooled['masks']} masks, {pooled['bad']} with Dice < {BAD_DICE:.2f}. "
        f"Spearman (score, Dice) **{pooled['spearman']:.3f}**; AUC (score separating Dice < {BAD_DICE:.2f}) "
        f"**{pooled['auc']:.3f}**.",
        "",
        f"Youden-optimal threshold on the pooled set: {chosen:.3f} (sensitivity {rates(chosen)[0]:.2f}, "
        f"specificity {rates(chosen)[1]:.2f}); the shipped threshold `QC_THRESHOLD` = {QC_THRESHOLD:.2f}: "
        f"sensitivity {rates(QC_THRESHOLD)[0]:.2f}, specificity {rates(QC_THRESHOLD)[1]:.2f} "
        f"(flags {int((score < QC_THRESHOLD).sum())} of {len(score)} masks).",
        "",
        "| masks from | masks | Dice < 0.90 | Spearman | AUC |",
        "|---|---|---|---|---|",
    ]

    def source(row: pd.Series) -> str:
        if row["variant"] != "original":
            return f"damaged: {row['variant']}"
        return "early-training models" if row["method"].startswith("early:") else "benchmark methods"

    groups = table.assign(source=table.apply(source, axis=1))
    for name, group in [("all (pooled)", groups), *sorted(groups.groupby("source"))]:
        s = _stats(group)
        lines.append(f"| {name} | {s['masks']} | {s['bad']} | {s['spearman']:.3f} | {s['auc']:.3f} |")
    lines += ["", "Each term alone (pooled):", "", "| term | Spearman | AUC |", "|---|---|---|"]
    for term in ("score", *TERMS):
        s = _stats(table, term)
        lines.append(f"| {term} | {s['spearman']:.3f} | {s['auc']:.3f} |")
    lines += ["", f"({seconds / 60:.1f} min.)", ""]
    return "\n".join(lines)
