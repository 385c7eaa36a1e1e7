"""The public datasets' fetch code against a real HTTP server on 127.0.0.1.

The server (started here, one per test) serves small archives laid out as each publisher lays its
dataset out, answers HTTP Range requests, lists S3 buckets (ListObjectsV2 XML) and can misbehave
on request: drop a connection part-way, stall, answer 503, ignore Range. The registry entries
under test are the real ones of config/datasets.yaml, with their hosts pointed at the server.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from pumba.data.collect import COMPLETE, CollectError, FetchOptions, fetch_collection, part_dir, unpack
from pumba.data.download import Checksum, DownloadError, download, part_path
from pumba.data.manifest import MANIFEST_COLUMNS
from pumba.data.prepare import prepare_collection
from pumba.data.registry import load_registry
from pumba.io import InputError
from pumba.metrics.tables import read_manifests

REPO = Path(__file__).resolve().parents[1]
HOSTS = ("https://surfer.nmr.mgh.harvard.edu", "https://zenodo.org", "https://github.com")


# --- the server ----------------------------------------------------------------------------------


class Publisher(http.server.ThreadingHTTPServer):
    """Files by URL path, S3 listings, and faults to inject per path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}  # the next GET sends this many bytes, then closes
        self.stall: set[str] = set()  # GETs send the headers, then nothing
        self.fail_503: dict[str, int] = {}  # this many GETs answer 503 first
        self.ignore_range: set[str] = set()
        self.multipart_etag: set[str] = set()  # listed with an ETag that is not an md5
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def put(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns its URL."""
        self.files[path] = data
        return self.base + path


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Publisher

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = urllib.parse.parse_qs(split.query)
        self.server.requests.append((path, self.headers.get("Range")))
        if query.get("list-type") == ["2"]:
            return self._list(path.strip("/"), query.get("prefix", [""])[0])
        if self.server.fail_503.get(path, 0) > 0:
            self.server.fail_503[path] -= 1
            return self._status(503)
        if path not in self.server.files:
            return self._status(404)
        data = self.server.files[path]
        start = 0
        requested = self.headers.get("Range")
        if requested and path not in self.server.ignore_range:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return self._status(416)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if path in self.server.stall:
            time.sleep(3)
            return
        body = data[start:]
        if path in self.server.drop_after:
            body = body[: self.server.drop_after.pop(path)]
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _list(self, bucket: str, prefix: str) -> None:
        root = f"/{bucket}/"
        keys = sorted(p[len(root) :] for p in self.server.files if p.startswith(root + prefix))
        items = []
        for key in keys:
            data = self.server.files[root + key]
            etag = hashlib.md5(data).hexdigest()
            if root + key in self.server.multipart_etag:
                etag = f"{etag[:30]}ab-3"
            items.append(
                f"<Contents><Key>{key}</Key><Size>{len(data)}</Size><ETag>&quot;{etag}&quot;</ETag></Contents>"
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{bucket}</Name><Prefix>{prefix}</Prefix><IsTruncated>false</IsTruncated>"
            + "".join(items)
            + "</ListBucketResult>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    publisher = Publisher()
    thread = threading.Thread(target=publisher.serve_forever, daemon=True)
    thread.start()
    yield publisher
    publisher.shutdown()
    publisher.server_close()


def leftovers(directory: Path) -> list[Path]:
    """Every file under ``directory``, hidden ones included."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


# --- downloads -----------------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def test_download_succeeds_and_is_verified(server, tmp_path):
    url = server.put("/d/file.bin", PAYLOAD)
    target = tmp_path / "cache" / "file.bin"
    got = download(
        url, target, Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest()), len(PAYLOAD), 5, 0, False
    )
    assert got == target and target.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "cache") == [target]
    # a second call finds it complete and asks the server nothing
    n = len(server.requests)
    download(url, target, Checksum("md5", hashlib.md5(PAYLOAD).hexdigest()), None, 5, 0, False)
    assert len(server.requests) == n


def test_checksum_mismatch_keeps_nothing_and_names_the_file(server, tmp_path):
    url = server.put("/d/file.bin", PAYLOAD)
    target = tmp_path / "cache" / "file.bin"
    actual = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(DownloadError, match=f"^{url}: sha256 mismatch: expected {'0' * 64}, got {actual}"):
        download(url, target, Checksum("sha256", "0" * 64), None, 5, 0, False)
    assert leftovers(tmp_path / "cache") == []


def test_size_mismatch_keeps_nothing(server, tmp_path):
    url = server.put("/d/file.bin", PAYLOAD)
    with pytest.raises(DownloadError, match="size mismatch: expected 5 bytes"):
        download(url, tmp_path / "c" / "file.bin", None, 5, 5, 0, False)
    assert leftovers(tmp_path / "c") == []


def test_interrupted_download_is_resumed_with_a_range_request(server, tmp_path):
    url = server.put("/d/big.bin", PAYLOAD)
    server.drop_after["/d/big.bin"] = 300_000
    target = tmp_path / "cache" / "big.bin"
    download(url, target, Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest()), None, 5, 2, False, 0.01)
    assert target.read_bytes() == PAYLOAD
    ranges = [r for p, r in server.requests if p == "/d/big.bin"]
    assert ranges == [None, "bytes=300000-"]
    assert leftovers(tmp_path / "cache") == [target]


def test_a_partial_file_from_a_killed_run_is_resumed(server, tmp_path):
    """A scheduler's kill leaves the hidden .part file: the next run continues from it."""
    url = server.put("/d/big.bin", PAYLOAD)
    target = tmp_path / "cache" / "big.bin"
    target.parent.mkdir()
    part_path(target).write_bytes(PAYLOAD[:123_456])
    download(url, target, Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest()), len(PAYLOAD), 5, 0, False)
    assert target.read_bytes() == PAYLOAD
    assert server.requests == [("/d/big.bin", "bytes=123456-")]


def test_a_server_that_ignores_range_is_downloaded_from_the_start(server, tmp_path):
    url = server.put("/d/big.bin", PAYLOAD)
    server.ignore_range.add("/d/big.bin")
    target = tmp_path / "cache" / "big.bin"
    target.parent.mkdir()
    part_path(target).write_bytes(b"junk" * 100)
    download(url, target, Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest()), None, 5, 0, False)
    assert target.read_bytes() == PAYLOAD


def test_404_is_one_line_and_not_retried(server, tmp_path):
    url = server.base + "/d/missing.tar"
    with pytest.raises(DownloadError, match=f"^{url}: download failed: HTTP 404") as info:
        download(url, tmp_path / "c" / "missing.tar", None, None, 5, 3, False, 0.01)
    assert "\n" not in str(info.value)
    assert [p for p, _ in server.requests] == ["/d/missing.tar"]
    assert leftovers(tmp_path) == []


def test_503_is_retried(server, tmp_path):
    url = server.put("/d/file.bin", PAYLOAD)
    server.fail_503["/d/file.bin"] = 2
    download(url, tmp_path / "file.bin", None, len(PAYLOAD), 5, 2, False, 0.01)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_a_stalled_server_is_an_error_naming_the_url(server, tmp_path):
    url = server.put("/d/slow.bin", PAYLOAD)
    server.stall.add("/d/slow.bin")
    target = tmp_path / "c" / "slow.bin"
    with pytest.raises(
        DownloadError, match=rf"^{url}: download failed after 2 tries: stalled: no data for 0.5 s"
    ):
        download(url, target, None, None, 0.5, 1, False, 0.01)
    assert not target.exists()


def test_no_server_at_all_is_an_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot connect"):
        download("http://127.0.0.1:9/x.tar", tmp_path / "x.tar", None, None, 1, 0, False)


def test_unpacking_refuses_members_outside_the_archive_and_leaves_nothing(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(CollectError, match=r"evil\.tar: unsafe member refused"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.tar"]
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(_tar({"a/b.txt": np.random.default_rng(0).bytes(10_000)}, gz=True)[:2000])
    with pytest.raises(CollectError, match=r"cut\.tar\.gz: cannot unpack"):
        unpack(truncated, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# --- the publishers' layouts ---------------------------------------------------------------------


def _nifti(data: np.ndarray, zooms=(1.0, 1.0, 1.0)) -> bytes:
    image = nib.Nifti1Image(data, np.diag([*zooms, 1.0]))
    return gzip_bytes(image.to_bytes())


def gzip_bytes(raw: bytes) -> bytes:
    import gzip

    return gzip.compress(raw, mtime=0)


def head_and_mask(seed: int, shape=(14, 16, 12)) -> tuple[bytes, bytes, bytes]:
    """A small head, its brain mask and the stripped head (as .nii.gz bytes)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r = np.sqrt((grid**2).sum(0))
    brain = r < 0.5
    head = np.where(brain, 0.8, np.where(r < 0.8, 0.4, 0.0)) + rng.uniform(0, 0.01, shape)
    head = (head * 1000).astype(np.float32)
    return _nifti(head), _nifti(brain.astype(np.uint8)), _nifti(head * brain)


def _tar(members: dict[str, bytes], gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def local_registry(server: Publisher, tmp_path: Path, overrides: dict | None = None) -> Path:
    """config/datasets.yaml with the publishers' hosts pointed at ``server`` (and part overrides)."""
    text = (REPO / "config" / "datasets.yaml").read_text()
    for host in HOSTS:
        text = text.replace(host, server.base)
    raw = yaml.safe_load(text)
    for (dataset, index), changes in (overrides or {}).items():
        raw["datasets"][dataset]["fetch"][index].update(changes)
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def options(server: Publisher, tmp_path: Path, manual: Path | None = None, **kw) -> FetchOptions:
    return FetchOptions(tmp_path / "cache", True, manual, server.base, 5.0, 1, False, **kw)


def check_prepared(out: Path, dataset: str, source_ids: list[str]) -> list[dict]:
    status = json.loads((out / dataset / "status.json").read_text())
    assert status["available"] and status["n_subjects"] == len(source_ids), status
    rows = read_manifests([out / dataset / "manifest.tsv"]).to_dict("records")
    assert [r["source_id"] for r in rows] == source_ids
    assert [r["subject"] for r in rows] == [f"s{i:04d}" for i in range(1, len(rows) + 1)]
    for row in rows:
        image, mask = nib.load(row["image"]), nib.load(row["mask"])
        assert image.shape == mask.shape and np.array_equal(image.affine, mask.affine)
        assert set(np.unique(np.asarray(mask.dataobj)).tolist()) == {0, 1}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert set(MANIFEST_COLUMNS) <= set(rows[0]) if rows else True
    return rows


def test_synthstrip_tar_with_the_publishers_sha256_file(server, tmp_path):
    members = {}
    for i, folder in enumerate(["ixi_t1_016", "qin_flair_01", "fsm_t2_02cd"]):
        head, mask, _ = head_and_mask(i)
        members[f"synthstrip_data_v1.5/{folder}/image.nii.gz"] = head
        members[f"synthstrip_data_v1.5/{folder}/mask.nii.gz"] = mask
    members["synthstrip_data_v1.5/cim_ct_01/mask.nii.gz"] = head_and_mask(9)[1]  # mask only: skipped
    members["synthstrip_data_v1.5/seg_labels.txt"] = b"0 Unknown\n"
    tar = _tar(members)
    server.put("/docs/synthstrip/data/synthstrip_data_v1.5.tar", tar)
    sums = f"{'1' * 64}  synthstrip_data_v1.5_2d.tar\n"
    sums += f"{hashlib.sha256(tar).hexdigest()}  synthstrip_data_v1.5.tar\n"
    server.put("/docs/synthstrip/data/SHA256", sums.encode())
    registry = load_registry(local_registry(server, tmp_path))
    status = prepare_collection(registry, "synthstrip", tmp_path / "data", options(server, tmp_path), 3)
    assert status.available
    rows = check_prepared(tmp_path / "data", "synthstrip", ["fsm_t2_02cd", "ixi_t1_016", "qin_flair_01"])
    assert [(r["modality"], r["pathology"]) for r in rows] == [
        ("T2w", "none"),
        ("T1w", "none"),
        ("FLAIR", "glioblastoma"),
    ]
    record = json.loads(
        (
            part_dir("synthstrip", registry.get("synthstrip").collection.parts[0], tmp_path / "cache")
            / COMPLETE
        ).read_text()
    )
    assert record["checksum"] == f"sha256:{hashlib.sha256(tar).hexdigest()}"
    # the tar itself is not kept once unpacked; a second prepare reads the cache, no network
    server.files.clear()
    again = prepare_collection(registry, "synthstrip", tmp_path / "data2", options(server, tmp_path), 2)
    assert again.available and again.n_subjects == 2


def test_synthstrip_checksum_file_mismatch_keeps_nothing(server, tmp_path):
    tar = _tar({"synthstrip_data_v1.5/a_t1_1/image.nii.gz": b"x"})
    server.put("/docs/synthstrip/data/synthstrip_data_v1.5.tar", tar)
    server.put("/docs/synthstrip/data/SHA256", f"{'2' * 64}  synthstrip_data_v1.5.tar\n".encode())
    registry = load_registry(local_registry(server, tmp_path))
    status = prepare_collection(registry, "synthstrip", tmp_path / "data", options(server, tmp_path), 1)
    assert (
        not status.available
        and "sha256 mismatch" in status.reason
        and "synthstrip_data_v1.5.tar" in status.reason
    )
    assert leftovers(tmp_path / "cache") == []
    manifest = (tmp_path / "data" / "synthstrip" / "manifest.tsv").read_text().splitlines()
    assert manifest == ["\t".join(MANIFEST_COLUMNS)]


def test_nfbs_from_s3_with_size_and_sha256(server, tmp_path):
    members = {}
    for i, sid in enumerate(["A00028185", "A00028352"]):
        head, mask, stripped = head_and_mask(i)
        members[f"NFBS_Dataset/{sid}/sub-{sid}_ses-NFB3_T1w.nii.gz"] = head
        members[f"NFBS_Dataset/{sid}/sub-{sid}_ses-NFB3_T1w_brainmask.nii.gz"] = mask
        members[f"NFBS_Dataset/{sid}/sub-{sid}_ses-NFB3_T1w_brain.nii.gz"] = stripped
    archive = _tar(members, gz=True)
    key = "/fcp-indi/data/Projects/RocklandSample/NFBS_Dataset.tar.gz"
    server.put(key, archive)
    server.multipart_etag.add(key)  # as on the real bucket: the ETag is no md5
    server.drop_after[key] = len(archive) // 2  # and the connection drops once
    fixture = {"size": len(archive), "sha256": hashlib.sha256(archive).hexdigest()}
    registry = load_registry(local_registry(server, tmp_path, {("nfbs", 0): fixture}))
    status = prepare_collection(
        registry, "nfbs", tmp_path / "data", options(server, tmp_path), None if False else 2
    )
    assert status.available
    check_prepared(tmp_path / "data", "nfbs", ["A00028185", "A00028352"])
    assert (
        "/fcp-indi/data/Projects/RocklandSample/NFBS_Dataset.tar.gz",
        f"bytes={len(archive) // 2}-",
    ) in server.requests


def test_nfbs_registry_size_differs_from_the_bucket(server, tmp_path):
    server.put("/fcp-indi/data/Projects/RocklandSample/NFBS_Dataset.tar.gz", b"short")
    registry = load_registry(local_registry(server, tmp_path))
    with pytest.raises(DownloadError, match="the bucket says 5 bytes, the registry 1751464473"):
        fetch_collection(registry.get("nfbs"), options(server, tmp_path))


def test_cc359_from_a_manual_folder(tmp_path, server):
    copy = tmp_path / "calgary"
    names = ["CC0001_philips_15_55_M", "CC0061_philips_3_55_F"]
    for i, name in enumerate(names):
        head, mask, _ = head_and_mask(i)
        (copy / "Original").mkdir(parents=True, exist_ok=True)
        (copy / "Silver-standard").mkdir(exist_ok=True)
        (copy / "Original" / f"{name}.nii.gz").write_bytes(head)
        (copy / "Silver-standard" / f"{name}_ss.nii.gz").write_bytes(mask)
    before = leftovers(copy)
    registry = load_registry(REPO / "config" / "datasets.yaml")
    status = prepare_collection(registry, "cc359", tmp_path / "data", options(server, tmp_path, copy), 2)
    assert status.available
    check_prepared(tmp_path / "data", "cc359", names)
    assert leftovers(copy) == before  # the user's copy is read in place, untouched
    missing = prepare_collection(registry, "cc359", tmp_path / "d2", options(server, tmp_path), 2)
    assert (
        not missing.available
        and "set manual_data.cc359" in missing.reason
        and "Original.zip" in missing.reason
    )


def test_ibsr_from_the_nitrc_tgz_given_by_hand(tmp_path, server):
    members = {}
    for i in (1, 2):
        head, mask, _ = head_and_mask(i)
        members[f"IBSR_nifti_stripped/IBSR_{i:02d}/IBSR_{i:02d}_ana.nii.gz"] = head
        members[f"IBSR_nifti_stripped/IBSR_{i:02d}/IBSR_{i:02d}_ana_brainmask.nii.gz"] = mask
        members[f"IBSR_nifti_stripped/IBSR_{i:02d}/IBSR_{i:02d}_ana_strip.nii.gz"] = head
    tgz = tmp_path / "IBSR_V2.0_nifti_stripped.tgz"
    tgz.write_bytes(_tar(members, gz=True))
    registry = load_registry(REPO / "config" / "datasets.yaml")
    status = prepare_collection(registry, "ibsr", tmp_path / "data", options(server, tmp_path, tgz), 2)
    assert status.available
    check_prepared(tmp_path / "data", "ibsr", ["IBSR_01", "IBSR_02"])
    too_many = pytest.raises(InputError, match=r"ibsr: 18 subject\(s\) asked for, 2 found")
    with too_many:
        prepare_collection(registry, "ibsr", tmp_path / "data", options(server, tmp_path, tgz))


def test_prime_de_site_archives_on_s3_and_masks_from_github(server, tmp_path):
    commit = "dc16a3d982d41e26a922b7795308a5cf23aa2099"
    masks = {}
    for i, (site, name) in enumerate(
        [
            ("amu", "sub-032100_ses-001_run-1_T1w"),
            ("nki", "sub-032144_ses-001_run_1_ce-mion_T1w"),
            ("NIMH", "sub-032200_ses-002_T1w"),
        ]
    ):
        head, mask, _ = head_and_mask(i)
        sub, ses = name.split("_")[:2]
        masks[
            f"NHP-BrainExtraction-{commit}/PRIME-DE_BrainMask/brainmasks/data/site-{site}/{sub}/{ses}/anat/{name}_mask.nii.gz"
        ] = mask
        if site != "NIMH":  # NIMH's archive is encrypted: not fetched, its mask skipped
            server.put(
                f"/fcp-indi/data/Projects/INDI/PRIME/{site}.tar.gz",
                _tar({f"site-{site}/{sub}/{ses}/anat/{name}.nii.gz": head}, gz=True),
            )
    server.put("/fcp-indi/data/Projects/INDI/PRIME/NIMH_encrypted.tar.gz", b"encrypted")
    server.put("/fcp-indi/data/Projects/INDI/PRIME/amu.csv", b"phenotype")
    server.put(f"/HumanBrainED/NHP-BrainExtraction/archive/{commit}.tar.gz", _tar(masks, gz=True))
    registry = load_registry(local_registry(server, tmp_path))
    status = prepare_collection(registry, "prime-de", tmp_path / "data", options(server, tmp_path), 2)
    assert status.available
    check_prepared(
        tmp_path / "data",
        "prime-de",
        [
            "site-amu_sub-032100_ses-001_anat_sub-032100_ses-001_run-1_T1w",
            "site-nki_sub-032144_ses-001_anat_sub-032144_ses-001_run_1_ce-mion_T1w",
        ],
    )
    fetched = [p for p, _ in server.requests if not p.endswith("/fcp-indi")]
    assert "/fcp-indi/data/Projects/INDI/PRIME/NIMH_encrypted.tar.gz" not in fetched
    assert "/fcp-indi/data/Projects/INDI/PRIME/amu.csv" not in fetched


def test_camri_rat_openneuro_snapshot_and_manual_masks(server, tmp_path):
    root = "/openneuro.org/ds002870"
    server.put(f"{root}/CHANGES", b"1.0.0 2020-06-15\n  - Initial snapshot\n")
    server.put(f"{root}/dataset_description.json", json.dumps({"Name": "CAMRI Rat Brain MRI Data"}).encode())
    server.put(f"{root}/participants.tsv", b"participant_id\nsub-001\nsub-002\n")
    masks = tmp_path / "RodentBrainMask" / "CAMRI Rat"
    masks.mkdir(parents=True)
    for i, (sub, suffix) in enumerate([("001", "061"), ("002", "040")]):
        head, mask, _ = head_and_mask(i, shape=(20, 20, 6))
        server.put(f"{root}/sub-{sub}/ses-1/anat/sub-{sub}_ses-1_acq-RARE_T2w.nii.gz", head)
        server.put(f"{root}/sub-{sub}/ses-1/func/sub-{sub}_ses-1_bold.nii.gz", b"not wanted")
        (masks / f"CAMRI_Rat-sub-{sub}_ses-1_acq-RARE_T2w_{suffix}.nii.gz").write_bytes(mask)
    registry = load_registry(local_registry(server, tmp_path))
    status = prepare_collection(registry, "camri-rat", tmp_path / "data", options(server, tmp_path, masks), 2)
    assert status.available
    check_prepared(tmp_path / "data", "camri-rat", ["sub-001", "sub-002"])
    assert not any("bold" in p for p, _ in server.requests)


def test_openneuro_newer_snapshot_stops_the_fetch(server, tmp_path):
    server.put("/openneuro.org/ds002870/CHANGES", b"1.1.0 2023-01-01\n  - fixes\n\n1.0.0 2020-06-15\n")
    registry = load_registry(local_registry(server, tmp_path))
    with pytest.raises(DownloadError, match=r"holds snapshot 1\.1\.0, the registry pins 1\.0\.0"):
        fetch_collection(registry.get("camri-rat"), options(server, tmp_path, tmp_path))


def test_ben_mouse_zips_checked_by_the_zenodo_records_md5(server, tmp_path):
    images, labels = {}, {}
    for i, name in enumerate(["0001_T2.nii.gz", "0002_T2.nii.gz"]):
        head, mask, _ = head_and_mask(i)
        images[f"src/{name}"], labels[f"label/{name}"] = head, mask
    src, label = _zip(images), _zip(labels)
    server.put("/records/6844489/files/src_adult.zip", src)
    server.put("/records/6844489/files/label_adult.zip", label)
    record = {
        "files": [
            {"key": "src_adult.zip", "size": len(src), "checksum": f"md5:{hashlib.md5(src).hexdigest()}"},
            {
                "key": "label_adult.zip",
                "size": len(label),
                "checksum": f"md5:{hashlib.md5(label).hexdigest()}",
            },
        ]
    }
    server.put("/api/records/6844489", json.dumps(record).encode())
    registry = load_registry(local_registry(server, tmp_path))
    status = prepare_collection(registry, "ben-mouse", tmp_path / "data", options(server, tmp_path), 2)
    assert status.available
    check_prepared(tmp_path / "data", "ben-mouse", ["0001_T2", "0002_T2"])


def test_upenn_gbm_unstripped_t1_with_the_stripped_t1_as_mask(tmp_path, server):
    copy = tmp_path / "NIfTI-files"
    cases = ["UPENN-GBM-00001_11", "UPENN-GBM-00002_11"]
    for i, case in enumerate(cases):
        head, _, stripped = head_and_mask(i)
        for folder, name, data in [
            ("images_structural_unstripped", f"{case}_T1_unstripped", head),
            ("images_structural", f"{case}_T1", stripped),
            ("images_structural", f"{case}_FLAIR", stripped),
        ]:
            (copy / folder / case).mkdir(parents=True, exist_ok=True)
            (copy / folder / case / f"{name}.nii.gz").write_bytes(data)
    registry = load_registry(REPO / "config" / "datasets.yaml")
    status = prepare_collection(registry, "upenn-gbm", tmp_path / "data", options(server, tmp_path, copy), 2)
    assert status.available
    check_prepared(tmp_path / "data", "upenn-gbm", cases)


def test_downloads_off_and_nothing_cached_is_unavailable_without_a_request(server, tmp_path):
    registry = load_registry(local_registry(server, tmp_path))
    offline = FetchOptions(tmp_path / "cache", allow_download=False, progress=False, s3_endpoint=server.base)
    status = prepare_collection(registry, "nfbs", tmp_path / "data", offline, 1)
    assert not status.available and "downloads are off" in status.reason
    assert server.requests == []
