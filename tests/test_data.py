"""Tests for initbook.data: IDX parsing, checksums, atomic download, the book's split.

Every file is written by the tests themselves; the download path is exercised with ``file://`` mirrors.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest
import torch

from initbook import data

N_IMAGES = 12


def _idx(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    header = bytes([0, 0, code, len(shape)]) + b"".join(s.to_bytes(4, "big") for s in shape)
    return header + payload


def _write_split(directory: Path, *, compress: bool = True, n: int = N_IMAGES) -> dict[str, str]:
    """Write a tiny MNIST-like test split; return its checksum table."""
    directory.mkdir(parents=True, exist_ok=True)
    images = _idx(0x08, (n, 28, 28), bytes((i * 7) % 256 for i in range(n * 28 * 28)))
    labels = _idx(0x08, (n,), bytes(i % 10 for i in range(n)))
    sums = {}
    for name, blob in zip(data.MNIST_FILES["test"], (images, labels), strict=True):
        if compress:
            blob = gzip.compress(blob, mtime=0)
        else:
            name = name.removesuffix(".gz")
        (directory / name).write_bytes(blob)
        sums[name] = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return sums


def test_read_idx_raw_and_gzip(tmp_path):
    payload = bytes(range(6))
    raw = _idx(0x08, (2, 3), payload)
    (tmp_path / "a").write_bytes(raw)
    (tmp_path / "b.gz").write_bytes(gzip.compress(raw))
    for name in ("a", "b.gz"):
        t = data.read_idx(tmp_path / name)
        assert t.dtype == torch.uint8
        assert t.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_read_idx_other_types(tmp_path):
    raw = _idx(
        0x0C, (2,), (5).to_bytes(4, "big", signed=True) + (-3).to_bytes(4, "big", signed=True)
    )
    (tmp_path / "ints").write_bytes(raw)
    assert data.read_idx(tmp_path / "ints").tolist() == [5, -3]


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc", "not an IDX file"),
        (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x02" + (3).to_bytes(4, "big"), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", "truncated: header declares shape"),
        (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc", "has trailing bytes"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"", "magic bytes missing"),
    ],
)
def test_read_idx_rejects_malformed_files(tmp_path, blob, match):
    path = tmp_path / "bad"
    path.write_bytes(blob)
    with pytest.raises(data.DataError, match=match):
        data.read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    blob = gzip.compress(_idx(0x08, (100,), bytes(100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(data.DataError, match="corrupt or truncated gzip"):
        data.read_idx(path)


def test_load_good_split(tmp_path):
    sums = _write_split(tmp_path)
    images, labels = data.load_mnist("test", tmp_path, checksums=sums)
    assert images.shape == (N_IMAGES, 28, 28)
    assert images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    assert labels.tolist() == [i % 10 for i in range(N_IMAGES)]


def test_load_uncompressed_split(tmp_path):
    _write_split(tmp_path, compress=False)
    images, labels = data.load_mnist("test", tmp_path)
    assert images.shape == (N_IMAGES, 28, 28)
    assert labels.shape == (N_IMAGES,)


def test_load_checksum_mismatch(tmp_path):
    _write_split(tmp_path)
    with pytest.raises(
        data.DataError, match="does not match the expected 9fb629c4189551a2d022fa330f9573f3"
    ):
        data.load_mnist("test", tmp_path)  # official checksums, our fake files


def test_load_missing_directory(tmp_path):
    with pytest.raises(data.DataError, match="does not exist; set INITBOOK_DATA"):
        data.load_mnist("test", tmp_path / "nowhere")


def test_load_missing_file(tmp_path):
    sums = _write_split(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz not found"):
        data.load_mnist("test", tmp_path, checksums=sums)


def test_load_label_count_mismatch(tmp_path):
    sums = _write_split(tmp_path)
    labels = gzip.compress(_idx(0x08, (3,), bytes(3)), mtime=0)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(labels)
    sums["t10k-labels-idx1-ubyte.gz"] = hashlib.md5(labels, usedforsecurity=False).hexdigest()
    with pytest.raises(data.DataError, match=f"{N_IMAGES} images but labels of shape"):
        data.load_mnist("test", tmp_path, checksums=sums)


def test_bad_split_name(tmp_path):
    with pytest.raises(ValueError, match=r"split='valid' is not one of \['test', 'train'\]"):
        data.load_mnist("valid", tmp_path)


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INITBOOK_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path / "mnist"
    monkeypatch.delenv("INITBOOK_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_dir() == tmp_path / "cache" / "initbook" / "mnist"


def test_download_from_file_mirror_is_verified_and_atomic(tmp_path):
    mirror = tmp_path / "mirror"
    sums = _write_split(mirror)
    target = tmp_path / "target"
    data.download_mnist("test", target, mirrors=(mirror.as_uri() + "/",), checksums=sums)
    assert sorted(p.name for p in target.iterdir()) == sorted(sums)
    images, _ = data.load_mnist("test", target, checksums=sums)
    assert images.shape[0] == N_IMAGES


def test_download_skips_bad_mirror_and_leaves_no_partial_file(tmp_path):
    good = tmp_path / "good"
    sums = _write_split(good)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in sums:
        (corrupt / name).write_bytes(b"\x1f\x8b garbage")
    target = tmp_path / "target"
    mirrors = ((tmp_path / "missing").as_uri() + "/", corrupt.as_uri() + "/", good.as_uri() + "/")
    data.download_mnist("test", target, mirrors=mirrors, checksums=sums)
    assert sorted(p.name for p in target.iterdir()) == sorted(sums)  # no *.part left


def test_download_all_mirrors_fail(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    sums = _write_split(tmp_path / "reference")
    for name in sums:
        (corrupt / name).write_bytes(b"not the file")
    target = tmp_path / "target"
    with pytest.raises(data.DataError, match=r"could not download t10k-images-idx3-ubyte\.gz"):
        data.download_mnist("test", target, mirrors=(corrupt.as_uri() + "/",), checksums=sums)
    assert list(target.iterdir()) == []


def test_download_replaces_corrupt_existing_file(tmp_path):
    mirror = tmp_path / "mirror"
    sums = _write_split(mirror)
    target = tmp_path / "target"
    target.mkdir()
    (target / "t10k-images-idx3-ubyte.gz").write_bytes(b"stale")
    data.download_mnist("test", target, mirrors=(mirror.as_uri() + "/",), checksums=sums)
    assert data.md5sum(target / "t10k-images-idx3-ubyte.gz") == sums["t10k-images-idx3-ubyte.gz"]


def test_download_uses_injected_urlopen(tmp_path):
    mirror = tmp_path / "mirror"
    sums = _write_split(mirror)
    seen = []

    def fake_urlopen(url, timeout):
        seen.append(url)
        return open(mirror / url.rsplit("/", 1)[-1], "rb")

    data.download_mnist(
        "test",
        tmp_path / "t",
        mirrors=("https://example.invalid/mnist",),
        checksums=sums,
        urlopen=fake_urlopen,
    )
    assert seen == [f"https://example.invalid/mnist/{name}" for name in data.MNIST_FILES["test"]]


def test_book_split_is_deterministic_and_disjoint():
    images = torch.randint(
        0, 256, (50, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    labels = torch.arange(50) % 10
    a = data.book_split(images, labels, n_train=30, n_heldout=20, seed=3)
    b = data.book_split(images, labels, n_train=30, n_heldout=20, seed=3)
    assert torch.equal(a.x_train, b.x_train)
    assert torch.equal(a.y_heldout, b.y_heldout)
    assert abs(a.x_train.mean().item()) < 1e-5
    # disjoint: the 50 rows, un-normalized, are all present exactly once
    raw = data.book_split(images, labels, n_train=30, n_heldout=20, seed=3, normalize=False)
    rows = {tuple(r.tolist()) for r in torch.cat([raw.x_train, raw.x_heldout])}
    assert len(rows) == 50
    with pytest.raises(ValueError, match="exceeds the 50 images"):
        data.book_split(images, labels, n_train=40, n_heldout=20)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.skipif(
    not (Path(os.environ.get("INITBOOK_DATA", "/nonexistent")) / "mnist").is_dir()
    and not SHARED.is_dir(),
    reason="official MNIST test files not available",
)
def test_official_test_split_checksums_and_shape():
    root = (
        Path(os.environ["INITBOOK_DATA"]) / "mnist" if os.environ.get("INITBOOK_DATA") else SHARED
    )
    images, labels = data.load_mnist("test", root)
    assert images.shape == (10_000, 28, 28)
    assert torch.bincount(labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_load_book_split_is_load_then_split(tmp_path):
    """The one-call form gives exactly the two-step form, with and without pooling."""
    _write_split(tmp_path, compress=False, n=50)  # uncompressed: no official checksum to match
    images, labels = data.load_mnist("test", tmp_path)
    sizes = {"n_train": 30, "n_heldout": 20, "seed": 3}
    one = data.load_book_split(root=tmp_path, download=False, **sizes)
    two = data.book_split(images, labels, **sizes)
    for field in ("x_train", "y_train", "x_heldout", "y_heldout"):
        assert torch.equal(getattr(one, field), getattr(two, field)), field
    pooled = data.load_book_split(pool=2, root=tmp_path, download=False, **sizes)
    by_hand = torch.nn.functional.avg_pool2d(images[:, None].float(), 2)[:, 0]
    assert pooled.x_train.shape == (30, 196)
    assert torch.equal(pooled.x_train, data.book_split(by_hand, labels, **sizes).x_train)
    assert torch.equal(
        data.load_book_split(pool=1, root=tmp_path, download=False, **sizes).x_train, one.x_train
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"pool": 3},
            ValueError,
            r"pool=3 does not divide the 28-pixel side; use one of \[1, 2, 4",
        ),
        ({"pool": 0}, ValueError, "pool must be >= 1"),
        ({"pool": 2.0}, TypeError, "pool must be an int"),
        ({"n_train": 60}, ValueError, "exceeds the 50 images"),
    ],
)
def test_load_book_split_rejects_bad_arguments(tmp_path, kwargs, error, match):
    _write_split(tmp_path, compress=False, n=50)
    with pytest.raises(error, match=match):
        data.load_book_split(root=tmp_path, download=False, **kwargs)
