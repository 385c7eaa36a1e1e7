"""The report's interactive viewer: every scan with the reference and every method's mask in NiiVue.

One self-contained HTML file that works offline: the NiiVue UMD bundle (npm ``@niivue/niivue``, pinned
:data:`NIIVUE_VERSION`, fetched by ``scripts/setup.sh`` into :data:`DEFAULT_BUNDLE` and checked here
against :data:`NIIVUE_SHA256`) is inlined, and so is every volume, base64-encoded NIfTI. To keep the page
small, each image is stored as uint8 (its 0.5th-99.5th percentile range mapped to 0-255; the viewer's
greys need no more) and each mask as uint8 0/1, all gzip-compressed, on the scan's own grid and affine.

The bundle (2.2 MB) is not committed: ``scripts/setup.sh`` downloads the npm tarball of the pinned version,
checks npm's sha512 integrity of the tarball and this module's sha256 of the bundle, and extracts it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pumba.io import InputError, write_text_atomic

NIIVUE_VERSION = "0.69.0"
NIIVUE_TARBALL_INTEGRITY = (
    "sha512-YMjQvJgD1W2b7DuoxkwlC4VxbrgIePRJ5qyQzXKxi2v2MBVg285P/CIQyg46oDDGDIcaNlbd+MhtO/edMbXJkA=="
)
"""npm's integrity string of ``@niivue/niivue-0.69.0.tgz`` (scripts/setup.sh checks the tarball with it)."""
NIIVUE_SHA256 = "47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af"
"""sha256 of ``package/dist/niivue.umd.js`` in that tarball."""
MANIFEST_NEEDS = ("dataset", "subject", "image", "mask")
"""The manifest columns the viewer reads."""
DEFAULT_BUNDLE = ".cache/niivue/niivue.umd.js"
"""Where scripts/setup.sh puts the bundle, relative to the repository root."""


@dataclass(frozen=True)
class Scan:
    """One scan of the viewer.

    Attributes:
        dataset, subject: its ids.
        image: the head (NIfTI/MGZ); reference: its reference mask on the image's grid.
        masks: method -> its mask (None: the run failed, listed as such).
    """

    dataset: str
    subject: str
    image: Path
    reference: Path
    masks: Mapping[str, Path | None]


def check_bundle(path: str | os.PathLike) -> str:
    """The bundle's text; InputError if it is missing or is not the pinned build (sha256)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: NiiVue bundle not found "
            f"(scripts/setup.sh fetches @niivue/niivue@{NIIVUE_VERSION} there)"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != NIIVUE_SHA256:
        raise InputError(f"{path}: sha256 {digest} is not that of @niivue/niivue@{NIIVUE_VERSION}'s bundle")
    return data.decode("utf-8")


def _nifti_b64(data: np.ndarray, affine: np.ndarray) -> str:
    """A gzip-compressed NIfTI-1 of ``data`` (uint8) as base64 text."""
    import nibabel as nib

    img = nib.Nifti1Image(np.ascontiguousarray(data, dtype=np.uint8), affine)
    img.header.set_xyzt_units("mm")
    img.header["cal_min"], img.header["cal_max"] = 0, 255 if data.max() > 1 else 1
    raw = img.to_bytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def image_uint8(data: np.ndarray) -> np.ndarray:
    """Intensities mapped linearly from their 0.5th-99.5th percentiles to 0-255 (NaN and Inf to 0)."""
    finite = np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((finite - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)


def scan_payload(scan: Scan) -> dict:
    """The scan's volumes as base64 NIfTI strings: image, reference and each method's mask (null: failed)."""
    from pumba.grid import check_same_grid
    from pumba.io import load_volume

    image = load_volume(scan.image)
    ref = load_volume(scan.reference)
    check_same_grid(ref, image, what="reference", hint="masks must be on the image's voxel grid")
    masks = {}
    for name, path in scan.masks.items():
        if path is None or not Path(path).is_file():
            masks[name] = None
            continue
        vol = load_volume(path)
        check_same_grid(vol, image, what=f"mask of {name}", hint="masks must be on the image's voxel grid")
        masks[name] = _nifti_b64((vol.data > 0).astype(np.uint8), image.affine)
    return {
        "id": f"{scan.dataset} / {scan.subject}",
        "image": _nifti_b64(image_uint8(image.data), image.affine),
        "reference": _nifti_b64((ref.data > 0.5).astype(np.uint8), image.affine),
        "masks": masks,
    }


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>PUMBA-bench viewer</title>
<style>
body{font-family:sans-serif;margin:0;background:#111;color:#eee}
#bar{padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center}
#bar label{white-space:nowrap;cursor:pointer}
.sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:middle;margin-right:.2em}
#view{width:100%;height:80vh}
#gl{width:100%;height:100%;display:block}
#status{padding:0 1em;font-size:.85em;color:#bbb}
</style></head><body>
<div id="bar"><b>PUMBA-bench viewer</b>
<label>scan <select id="scan"></select></label>
<span id="methods"></span></div>
<div id="status">loading...</div>
<div id="view"><canvas id="gl"></canvas></div>
<script>__BUNDLE__</script>
<script>
const SCANS = __SCANS__;
const COLORS = __COLORS__;
const REFERENCE = "__REFERENCE_COLOR__";
async function main() {
  const status = document.getElementById("status");
  const nv = new niivue.Niivue({backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false});
  await nv.attachToCanvas(document.getElementById("gl"));
  nv.setSliceType(nv.sliceTypeMultiplanar);
  function rgb(hex) { return [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16)); }
  function colormap(name, hex) {
    const [r, g, b] = rgb(hex);
    nv.addColormap(name, {R: [0, r], G: [0, g], B: [0, b], A: [0, 255], I: [0, 255]});
  }
  colormap("pumba_reference", REFERENCE);
  for (const [m, hex] of Object.entries(COLORS)) colormap("pumba_" + m, hex);
  const shown = new Set(["reference", __OURS__]);
  const select = document.getElementById("scan");
  SCANS.forEach((s, i) => select.add(new Option(s.id, i)));
  async function load(index) {
    const scan = SCANS[index];
    while (nv.volumes.length) nv.removeVolume(nv.volumes[0]);
    const add = async (b64, name, cmap, opacity) => {
      const vol = await niivue.NVImage.loadFromBase64({base64: b64, name: name + ".nii.gz",
        colormap: cmap, opacity: opacity, cal_min: 0, cal_max: cmap === "gray" ? 255 : 1});
      nv.addVolume(vol);
      return vol;
    };
    await add(scan.image, "image", "gray", 1);
    const layers = {};
    const on = name => (shown.has(name) ? 0.45 : 0);
    layers.reference = await add(scan.reference, "reference", "pumba_reference", on("reference"));
    const box = document.getElementById("methods");
    box.innerHTML = "";
    const entries = [["reference", REFERENCE, scan.reference]].concat(
      Object.keys(COLORS).map(m => [m, COLORS[m], scan.masks[m]]));
    for (const [name, hex, b64] of entries) {
      const label = document.createElement("label");
      if (b64 === null || b64 === undefined) {
        label.innerHTML = `<span class="sw" style="background:#555"></span>${name}: failed, no mask`;
        box.appendChild(label);
        continue;
      }
      if (name !== "reference") layers[name] = await add(b64, name, "pumba_" + name, on(name));
      const box_ = document.createElement("input");
      box_.type = "checkbox"; box_.checked = shown.has(name); box_.dataset.method = name;
      box_.onchange = () => {
        if (box_.checked) shown.add(name); else shown.delete(name);
        nv.setOpacity(nv.volumes.indexOf(layers[name]), box_.checked ? 0.45 : 0);
      };
      label.appendChild(box_);
      label.insertAdjacentHTML("beforeend", `<span class="sw" style="background:${hex}"></span>${name}`);
      box.appendChild(label);
    }
    nv.updateGLVolume();
    status.textContent = `${scan.id}: ${nv.volumes.length - 1} masks shown as layers (tick to show);` +
      " click a view to move the crosshair, scroll to change slice";
    document.body.dataset.loaded = scan.id;
  }
  select.onchange = () => load(Number(select.value));
  await load(0);
}
main().catch(e => { document.getElementById("status").textContent = "viewer error: " + e;
                    document.body.dataset.error = String(e); throw e; });
</script></body></html>
"""


def viewer_html(
    scans: Sequence[Scan],
    bundle: str | os.PathLike,
    methods: Sequence[str],
    ours: str | None = None,
) -> str:
    """The viewer page (see the module docstring); ``methods`` fixes the order and colours of the layers."""
    from matplotlib.colors import to_hex

    from pumba.figures.palette import REFERENCE_COLOR, method_palette

    if not scans:
        raise InputError("viewer: no scan given")
    code = check_bundle(bundle)
    palette = {m: to_hex(c) for m, c in method_palette(list(methods), list(methods)).items()}
    payload = [scan_payload(s) for s in scans]
    scans_json = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    page = _PAGE.replace("__SCANS__", scans_json)
    page = page.replace("__COLORS__", json.dumps(palette))
    page = page.replace("__REFERENCE_COLOR__", html.escape(REFERENCE_COLOR))
    page = page.replace("__OURS__", json.dumps(ours or (methods[0] if methods else "")))
    # last: the bundle's text may hold any of the markers above
    return page.replace("__BUNDLE__", code.replace("</script", "<\\/script"))


def manifest_scans(
    manifests: Sequence[str | os.PathLike], predictions: str | os.PathLike, methods: Sequence[str]
) -> list[Scan]:
    """The scans of dataset manifests; a method's mask is ``predictions``/METHOD/DATASET/SUBJECT.nii.gz."""
    import pandas as pd

    from pumba.metrics.tables import read_table

    if not manifests:
        raise InputError("viewer: no manifest given")
    frame = pd.concat(
        [
            read_table(p, "manifest", MANIFEST_NEEDS, sep="\t", dtype=str, keep_default_na=False)
            for p in manifests
        ],
        ignore_index=True,
    )
    return [
        Scan(
            r.dataset,
            r.subject,
            Path(r.image),
            Path(r.mask),
            {m: Path(predictions) / m / r.dataset / f"{r.subject}.nii.gz" for m in methods},
        )
        for r in frame.itertuples()
    ]


def write_viewer(
    out: str | os.PathLike,
    scans: Sequence[Scan],
    bundle: str | os.PathLike,
    methods: Sequence[str],
    ours: str | None = None,
) -> None:
    """Write :func:`viewer_html` atomically."""
    write_text_atomic(out, viewer_html(scans, bundle, methods, ours))
