"""export / import and safe unpacking: every classic archive attack is refused and nothing leaks."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from support.processes import run_cli
from support.runs import artifact_bytes, make_bundle, store_snapshot, tiny_onnx_model

from modelkb.errors import BundleExistsError, IntegrityError, UnsafeArchiveError
from modelkb.publishing.archive import safe_extract
from modelkb.publishing.export import export_bundle, import_archive
from modelkb.publishing.integrity import SizeLimits
from modelkb.store import Store


# -- crafting hostile archives -------------------------------------------------------------------------
def _zip(
    path: Path,
    entries: list[tuple[str, bytes]],
    *,
    symlink: str | None = None,
    mode: int | None = None,
) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w") as archive:
        for member in members:
            payload = (data or {}).get(member.name)
            archive.addfile(member, io.BytesIO(payload) if payload is not None else None)
    return path


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = link
    return info


ATTACKS = {
    "zip parent traversal": lambda d: _zip(d / "a.zip", [("../evil.txt", b"x")]),
    "zip nested traversal": lambda d: _zip(d / "a.zip", [("bundle/../../evil.txt", b"x")]),
    "zip absolute path": lambda d: _zip(d / "a.zip", [("/tmp/evil.txt", b"x")]),
    "zip drive letter": lambda d: _zip(d / "a.zip", [("C:/evil.txt", b"x")]),
    "zip backslash traversal": lambda d: _zip(d / "a.zip", [("..\\evil.txt", b"x")]),
    "zip symlink": lambda d: _zip(d / "a.zip", [("ok.txt", b"x")], symlink="link"),
    "zip device": lambda d: _zip(d / "a.zip", [("dev", b"")], mode=stat.S_IFCHR | 0o644),
    "zip duplicate entry": lambda d: _zip(d / "a.zip", [("a.txt", b"1"), ("a.txt", b"2")]),
    "tar traversal": lambda d: _tar(
        d / "a.tar", [_member("../evil.txt", size=1)], {"../evil.txt": b"x"}
    ),
    "tar absolute path": lambda d: _tar(
        d / "a.tar", [_member("/tmp/evil.txt", size=1)], {"/tmp/evil.txt": b"x"}
    ),
    "tar symlink": lambda d: _tar(d / "a.tar", [_member("link", tarfile.SYMTYPE, link="/etc")]),
    "tar symlink then write through it": lambda d: _tar(
        d / "a.tar",
        [_member("up", tarfile.SYMTYPE, link=".."), _member("up/evil.txt", size=1)],
        {"up/evil.txt": b"x"},
    ),
    "tar hardlink": lambda d: _tar(
        d / "a.tar", [_member("hard", tarfile.LNKTYPE, link="/etc/passwd")]
    ),
    "tar char device": lambda d: _tar(d / "a.tar", [_member("dev", tarfile.CHRTYPE)]),
    "tar block device": lambda d: _tar(d / "a.tar", [_member("blk", tarfile.BLKTYPE)]),
    "tar fifo": lambda d: _tar(d / "a.tar", [_member("fifo", tarfile.FIFOTYPE)]),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_is_refused_and_nothing_is_written(attack: str, tmp_path: Path) -> None:
    archive = ATTACKS[attack](tmp_path)
    target = tmp_path / "out" / "target"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, target)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert [p for p in after if p not in before and not str(p).startswith("out")] == []
    assert not any(target.rglob("*")), "an entry was written before the archive was refused"
    assert not (tmp_path / "evil.txt").exists()


def test_import_of_attack_leaves_store_untouched(tmp_path: Path, store: Store) -> None:
    make_bundle(store.root)
    snapshot = store_snapshot(store)
    archive = _zip(
        tmp_path / "evil.zip", [("bundle/metadata.json", b"{}"), ("../../escape.txt", b"x")]
    )
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        import_archive(store, archive)
    assert store_snapshot(store) == snapshot
    assert not list((store.root / ".modelkb" / "incoming").iterdir())


def test_limits_entries_total_and_single_file(tmp_path: Path) -> None:
    many = _zip(tmp_path / "many.zip", [(f"f{i}.txt", b"x") for i in range(11)])
    with pytest.raises(UnsafeArchiveError, match="11 entries, more than the limit of 10"):
        safe_extract(many, tmp_path / "o1", SizeLimits(max_entries=10))
    big = _zip(tmp_path / "big.zip", [("a.bin", b"0" * 600), ("b.bin", b"0" * 600)])
    with pytest.raises(UnsafeArchiveError, match="over the limit of 1000"):
        safe_extract(big, tmp_path / "o2", SizeLimits(max_total_bytes=1000, max_file_bytes=1000))
    with pytest.raises(UnsafeArchiveError, match="over the per-file limit of 500"):
        safe_extract(big, tmp_path / "o3", SizeLimits(max_file_bytes=500))


def test_zip_bomb_with_lying_size_is_stopped(tmp_path: Path) -> None:
    """A header that under-declares the uncompressed size does not get past the streaming check."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.bin", b"\0" * (5 << 20))
    raw = bytearray(path.read_bytes())
    # patch the declared uncompressed size (local header and central directory) down to 1 KiB
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = raw.find(signature)
        raw[start + offset : start + offset + 4] = (1024).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(
            path, tmp_path / "out", SizeLimits(max_total_bytes=1 << 20, max_file_bytes=1 << 20)
        )
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= 2 << 20


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not an archive at all")
    with pytest.raises(UnsafeArchiveError, match="neither a zip nor a tar"):
        safe_extract(junk, tmp_path / "out")


# -- export / import --------------------------------------------------------------------------------------
def test_export_import_round_trip_zip_and_tar(tmp_path: Path, store: Store) -> None:
    experiment_id = make_bundle(store.root)
    bundle = store.get(experiment_id)
    original = artifact_bytes(bundle.path)
    meta_bytes = (bundle.path / "metadata.json").read_bytes()
    for fmt, name in (("zip", "run.zip"), ("tar.gz", "run.tar.gz")):
        result = export_bundle(bundle, tmp_path / name, fmt=fmt, include_serving=False)
        assert any(f.endswith("/EXPORT.md") for f in result.files)
        other = Store(tmp_path / f"other-{fmt}")
        folder = import_archive(other, result.path)
        assert artifact_bytes(folder) == original
        assert (folder / "metadata.json").read_bytes() == meta_bytes
        assert not (folder / "EXPORT.md").exists() and not (folder / "SHA256SUMS").exists()
        assert [run.id for run in other.search()] == [experiment_id]
        with pytest.raises(BundleExistsError):
            import_archive(other, result.path)


def test_export_has_sha256sums_a_reader_can_check(tmp_path: Path, store: Store) -> None:
    import hashlib

    experiment_id = make_bundle(store.root)
    result = export_bundle(store.get(experiment_id), tmp_path / "run.zip", include_serving=False)
    with zipfile.ZipFile(result.path) as archive:
        top = archive.namelist()[0].split("/")[0]
        sums = archive.read(f"{top}/SHA256SUMS").decode().splitlines()
        for line in sums:
            digest, name = line.split("  ", 1)
            assert hashlib.sha256(archive.read(f"{top}/{name}")).hexdigest() == digest
        readme = archive.read(f"{top}/EXPORT.md").decode()
    assert "sha256sum -c SHA256SUMS" in readme and "modelkb import" in readme


def test_tampered_archive_is_refused_and_store_untouched(tmp_path: Path, store: Store) -> None:
    experiment_id = make_bundle(store.root)
    result = export_bundle(store.get(experiment_id), tmp_path / "run.zip", include_serving=False)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(result.path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/model.onnx"):
                data = b"X" + data[1:]
            dst.writestr(info, data)
    target = Store(tmp_path / "target")
    make_bundle(target.root, "Other")
    snapshot = store_snapshot(target)
    with pytest.raises(IntegrityError, match=r"model\.onnx has sha256"):
        import_archive(target, tampered)
    assert store_snapshot(target) == snapshot


def test_import_refuses_metadata_pointing_outside(tmp_path: Path, store: Store) -> None:
    experiment_id = make_bundle(store.root)
    bundle = store.get(experiment_id)
    meta = json.loads((bundle.path / "metadata.json").read_text())
    meta["artifacts"].append(
        {"path": "../../outside.txt", "size": 1, "sha256": "0" * 64, "kind": "file"}
    )
    archive = _zip(
        tmp_path / "m.zip",
        [("b/metadata.json", json.dumps(meta).encode())]
        + [
            (f"b/{a['path']}", (bundle.path / a["path"]).read_bytes())
            for a in meta["artifacts"][:-1]
        ],
    )
    with pytest.raises(IntegrityError, match="would leave the bundle folder"):
        import_archive(Store(tmp_path / "t"), archive)


def test_export_includes_serving_package_when_generator_works(tmp_path: Path, store: Store) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("modelkb.serverless.render")
    model = tiny_onnx_model()
    if model is None:
        pytest.skip("onnx is not installed")
    experiment_id = make_bundle(store.root, model=model)
    result = export_bundle(store.get(experiment_id), tmp_path / "run.zip")
    if result.serving_note:
        pytest.fail(f"serving package not generated: {result.serving_note}")
    names = {name.split("/", 1)[1] for name in result.files}
    assert {
        "serving/handler.py",
        "serving/predict.py",
        "serving/Dockerfile",
        "serving/template.yaml",
        "serving/README.md",
    } <= names
    with zipfile.ZipFile(result.path) as archive:
        top = archive.namelist()[0].split("/")[0]
        compile(archive.read(f"{top}/serving/handler.py").decode(), "handler.py", "exec")
        assert "serving/README.md" in archive.read(f"{top}/EXPORT.md").decode()
    folder = import_archive(Store(tmp_path / "t"), result.path)
    assert not (folder / "serving").exists()


def test_cli_export_import_and_one_line_errors(tmp_path: Path, store: Store) -> None:
    experiment_id = make_bundle(store.root)
    done = run_cli(
        "export",
        experiment_id[:8],
        "--zip",
        "--out",
        str(tmp_path / "x.zip"),
        "--no-serving",
        "--store",
        str(store.root),
    )
    assert done.returncode == 0, done.stderr
    assert "exported" in done.stdout
    done = run_cli("import", str(tmp_path / "x.zip"), "--store", str(tmp_path / "s2"))
    assert done.returncode == 0, done.stderr
    assert experiment_id in done.stdout
    evil = _zip(tmp_path / "evil.zip", [("../x", b"1")])
    done = run_cli("import", str(evil), "--store", str(tmp_path / "s3"))
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr
    done = run_cli(
        "import",
        str(tmp_path / "x.zip"),
        "--store",
        str(tmp_path / "s4"),
        "--max-file-size",
        "100B",
    )
    assert (
        done.returncode == 1
        and "per-file limit of 100" in done.stderr
        and "--max-file-size" in done.stderr
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"schema_version": 1, "seed": ' + b"9" * 5000 + b"}", "number too long"),
    ],
)
def test_import_of_unreadable_metadata_is_one_line(
    tmp_path: Path, store: Store, content: bytes, said: str
) -> None:
    archive = _zip(tmp_path / "hostile.zip", [("b/metadata.json", content)])
    snapshot = store_snapshot(store)
    done = run_cli("import", str(archive), "--store", str(store.root))
    assert done.returncode != 0 and said in done.stderr, done.stderr
    assert (
        "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2
    )  # the error and its hint
    assert store_snapshot(store) == snapshot
