r"""MNIST from the official IDX files: find, verify, (optionally) download, parse, and split.

Where the files live
    ``$INITBOOK_DATA/mnist/`` if the environment variable ``INITBOOK_DATA`` is set, else
    ``$XDG_CACHE_HOME/initbook/mnist/`` (``~/.cache/initbook/mnist/`` by default). Pass ``root=`` to any
    function to use another directory.

What is checked
    Every file is verified against the official MD5 checksum before it is parsed (``MNIST_MD5``), and the
    parser checks the IDX magic number, the dimensions and the file length. A corrupt, truncated or foreign
    file raises :class:`DataError` (a :class:`ValueError`) that names the file and what is wrong.

Downloading
    :func:`download_mnist` fetches missing files from the official mirrors into a temporary file in the
    target directory, verifies the checksum, and only then renames it into place (atomic on POSIX), so a
    partial or corrupt download is never left behind or used.

The book's split
    Only the official *test* split (10,000 images) is guaranteed to be on every build machine, so the book's
    experiments use a fixed split of it: :func:`book_split` takes a seeded permutation and returns
    8,000 images for training and 2,000 held out; :func:`load_book_split` loads the test split and makes
    that split in one call, optionally average-pooling the images first. When the official training split is present,
    ``load_mnist("train")`` reads all 60,000.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ._validation import check_choice, check_int

__all__ = [
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "DataError",
    "Split",
    "book_split",
    "data_dir",
    "download_mnist",
    "load_book_split",
    "load_mnist",
    "md5sum",
    "read_idx",
]

MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# IDX type codes (the third byte of the magic number) -> torch dtype and big-endian struct code
_IDX_TYPES = {
    0x08: (torch.uint8, "B"),
    0x09: (torch.int8, "b"),
    0x0B: (torch.int16, ">h"),
    0x0C: (torch.int32, ">i"),
    0x0D: (torch.float32, ">f"),
    0x0E: (torch.float64, ">d"),
}


class DataError(ValueError):
    """A data file is missing, corrupt, truncated, or not what its name says."""


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The directory holding the MNIST files (see the module docstring for the search order).

    Examples:
        >>> import os
        >>> os.environ["INITBOOK_DATA"] = "/data"
        >>> str(initbook.data.data_dir())
        '/data/mnist'
        >>> str(initbook.data.data_dir("/elsewhere"))
        '/elsewhere'
        >>> del os.environ["INITBOOK_DATA"]
    """
    if root is not None:
        return Path(root)
    env = os.environ.get("INITBOOK_DATA")
    if env:
        return Path(env) / "mnist"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "initbook" / "mnist"


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Parse an IDX file (gzip-compressed or raw) into a tensor.

    The IDX format: two zero bytes, a type code, the number of dimensions ``d``, then ``d`` big-endian
    uint32 sizes and the data. Raw and gzip files are told apart by their first bytes, not their name.

    Raises:
        DataError: bad magic number, unknown type code, truncated or over-long data, corrupt gzip stream.
        FileNotFoundError: the file does not exist.

    Examples:
        >>> import gzip, tempfile, pathlib
        >>> raw = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 8, 9])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
        >>> _ = path.write_bytes(gzip.compress(raw))
        >>> initbook.data.read_idx(path)
        tensor([7, 8, 9], dtype=torch.uint8)
    """
    path = Path(path)
    blob = path.read_bytes()
    if blob[:2] == b"\x1f\x8b":
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0:
        raise DataError(f"{path}: not an IDX file (magic bytes {blob[:4].hex() or 'missing'})")
    code, ndim = blob[2], blob[3]
    if code not in _IDX_TYPES:
        valid = sorted(hex(c) for c in _IDX_TYPES)
        raise DataError(f"{path}: unknown IDX type code {code:#04x}; valid codes are {valid}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"{path}: truncated IDX header ({len(blob)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", blob[4:header])
    dtype, fmt = _IDX_TYPES[code]
    itemsize = struct.calcsize(fmt)
    count = 1
    for size in shape:
        count *= size
    expected = header + count * itemsize
    if len(blob) != expected:
        what = "truncated" if len(blob) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {what}: header declares shape {tuple(shape)} ({expected} bytes), file has {len(blob)}"
        )
    if dtype == torch.uint8:
        data = torch.frombuffer(bytearray(blob[header:]), dtype=torch.uint8)
    else:
        data = torch.tensor(struct.unpack(f">{count}{fmt[-1]}", blob[header:]), dtype=dtype)
    return data.reshape(shape)


def _verify(path: Path, checksums: Mapping[str, str] | None, name: str | None = None) -> None:
    """Check ``path`` against the MD5 listed for ``name`` (default: the file's own name)."""
    if checksums is None:
        return
    name = name or path.name
    expected = checksums.get(name)
    if expected is None:
        raise DataError(f"{path}: no checksum known for {name!r}; known files: {sorted(checksums)}")
    actual = md5sum(path)
    if actual != expected:
        raise DataError(
            f"{path}: MD5 {actual} does not match the expected {expected}; delete it and re-download"
        )


def download_mnist(
    split: str = "test",
    root: str | os.PathLike | None = None,
    *,
    mirrors: tuple[str, ...] = MNIST_MIRRORS,
    checksums: Mapping[str, str] = MNIST_MD5,
    urlopen: Callable = urllib.request.urlopen,
    timeout: float = 60.0,
) -> Path:
    """Download the official files of ``split`` into ``root`` unless they are already there and valid.

    Each file is written to a temporary file in the same directory, its MD5 is checked, and only then is it
    renamed to its final name (``os.replace``, atomic on POSIX). A failed or corrupt download removes its
    temporary file and tries the next mirror; if every mirror fails, :class:`DataError` lists why.

    Args:
        split: ``"train"`` or ``"test"``.
        root: target directory (default: :func:`data_dir`).
        mirrors: base URLs tried in order; ``file://`` URLs work too (the tests use them).
        checksums: file name -> MD5 (hex).
        urlopen: the function that opens a URL (injectable for tests).
        timeout: seconds per request.

    Returns:
        The directory holding the files.
    """
    check_choice("split", split, MNIST_FILES)
    target = data_dir(root)
    target.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES[split]:
        final = target / name
        if final.exists():
            try:
                _verify(final, checksums)
                continue
            except DataError:
                final.unlink()  # a stale or corrupt copy: replace it
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
                    while block := response.read(1 << 20):
                        out.write(block)
                _verify(tmp, checksums, name)
                os.replace(tmp, final)
                break
            except (OSError, DataError) as exc:
                errors.append(f"{url}: {exc}")
            finally:
                if tmp.exists():
                    tmp.unlink()
        else:
            raise DataError(f"could not download {name}:\n  " + "\n  ".join(errors))
    return target


def load_mnist(
    split: str = "test",
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    checksums: Mapping[str, str] | None = MNIST_MD5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load an official MNIST split as ``(images, labels)``.

    Args:
        split: ``"test"`` (10,000 images) or ``"train"`` (60,000).
        root: directory with the ``*-ubyte.gz`` (or uncompressed ``*-ubyte``) files; default :func:`data_dir`.
        download: fetch missing files first (:func:`download_mnist`); needs network access.
        checksums: file name -> MD5 to verify against; ``None`` skips verification (only for files you
            made yourself).

    Returns:
        ``images``: ``uint8`` tensor ``(N, 28, 28)``; ``labels``: ``int64`` tensor ``(N,)`` with values 0-9.

    Raises:
        DataError: a file is missing, fails its checksum, or is malformed; or images and labels disagree.
    """
    check_choice("split", split, MNIST_FILES)
    directory = data_dir(root)
    if download:
        download_mnist(split, directory, checksums=checksums or MNIST_MD5)
    if not directory.is_dir():
        raise DataError(
            f"MNIST directory {directory} does not exist; set INITBOOK_DATA to the folder containing "
            f"mnist/, pass root=, or call load_mnist(download=True) on a machine with internet"
        )
    tensors = []
    for name in MNIST_FILES[split]:
        path = directory / name
        if not path.exists() and (directory / name.removesuffix(".gz")).exists():
            path = directory / name.removesuffix(".gz")  # uncompressed copy: no official checksum
            tensors.append(read_idx(path))
            continue
        if not path.exists():
            raise DataError(
                f"{path} not found (files in {directory}: {sorted(p.name for p in directory.iterdir())})"
            )
        _verify(path, checksums)
        tensors.append(read_idx(path))
    images, labels = tensors
    if images.dim() != 3 or images.dtype != torch.uint8:
        raise DataError(
            f"images must be a uint8 (N, rows, cols) array, got {images.dtype} {tuple(images.shape)}"
        )
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}")
    if labels.numel() and int(labels.max()) > 9:
        raise DataError(f"labels must be digits 0-9, found {int(labels.max())}")
    return images, labels.to(torch.int64)


@dataclass(frozen=True)
class Split:
    """Features and labels of a train/held-out split, ready for :func:`initbook.train.fit`."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_heldout: torch.Tensor
    y_heldout: torch.Tensor


def book_split(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_train: int = 8000,
    n_heldout: int = 2000,
    seed: int = 0,
    normalize: bool = True,
) -> Split:
    r"""The book's fixed split: a seeded permutation, then ``n_train`` for training, ``n_heldout`` held out.

    Images are flattened to 784 features and scaled to :math:`[0, 1]`; with ``normalize=True`` they are
    then standardized with the *training* part's mean and standard deviation (one scalar each), so that the
    inputs have mean 0 and variance 1, the assumption every initialization rule is derived under.

    Examples:
        >>> images = torch.arange(10 * 4 * 4, dtype=torch.uint8).reshape(10, 4, 4)
        >>> labels = torch.arange(10) % 10
        >>> split = initbook.data.book_split(images, labels, n_train=6, n_heldout=4)
        >>> split.x_train.shape, split.x_heldout.shape
        (torch.Size([6, 16]), torch.Size([4, 16]))
        >>> abs(round(split.x_train.mean().item(), 6)), round(split.x_train.std(correction=0).item(), 6)
        (0.0, 1.0)
    """
    check_int("n_train", n_train, minimum=1)
    check_int("n_heldout", n_heldout, minimum=0)
    if n_train + n_heldout > images.shape[0]:
        raise ValueError(
            f"n_train + n_heldout = {n_train + n_heldout} exceeds the {images.shape[0]} images available"
        )
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    x = images.reshape(images.shape[0], -1).to(torch.float32) / 255.0
    x_train, x_held = x[order[:n_train]], x[order[n_train : n_train + n_heldout]]
    if normalize:
        mean, std = x_train.mean(), x_train.std(correction=0)
        x_train, x_held = (x_train - mean) / std, (x_held - mean) / std
    return Split(
        x_train, labels[order[:n_train]], x_held, labels[order[n_train : n_train + n_heldout]]
    )


def load_book_split(
    *,
    pool: int | None = None,
    n_train: int = 8000,
    n_heldout: int = 2000,
    seed: int = 0,
    normalize: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> Split:
    r"""Load the official MNIST test split and make the book's split of it (:func:`book_split`).

    The one call every training page and script of the book starts from:
    ``split = initbook.data.load_book_split()`` gives 8,000 standardized training images and 2,000
    held out, always the same ones.

    Args:
        pool: average-pool the 28×28 images with this kernel and stride first (``2`` gives 14×14 = 196
            features, which keeps the input layer cheap); ``None``: the full 784 pixels.
        n_train, n_heldout, seed, normalize: as in :func:`book_split`.
        root: directory of the MNIST files (default :func:`data_dir`).
        download: fetch missing files first; files already present and valid are not fetched again.

    Returns:
        A :class:`Split`.

    Raises:
        DataError: the files are missing (and cannot be downloaded) or corrupt.
        ValueError: ``pool`` does not divide 28, or the split asks for more images than there are.
        TypeError: ``pool`` is not an int or ``None``.

    Examples:
        >>> split = initbook.data.load_book_split(pool=2)  # doctest: +SKIP
        >>> split.x_train.shape, split.x_heldout.shape  # doctest: +SKIP
        (torch.Size([8000, 196]), torch.Size([2000, 196]))

        The arguments are checked before any file is read:

        >>> initbook.data.load_book_split(pool=3)
        Traceback (most recent call last):
        ...
        ValueError: pool=3 does not divide the 28-pixel side; use one of [1, 2, 4, 7, 14, 28]
    """
    if pool is not None:
        check_int("pool", pool, minimum=1)
        if 28 % pool:
            valid = [k for k in range(1, 29) if 28 % k == 0]
            raise ValueError(f"pool={pool} does not divide the 28-pixel side; use one of {valid}")
    images, labels = load_mnist("test", root, download=download)
    return _split_pooled(images, labels, pool, n_train, n_heldout, seed, normalize)


def _split_pooled(
    images: torch.Tensor,
    labels: torch.Tensor,
    pool: int | None,
    n_train: int,
    n_heldout: int,
    seed: int,
    normalize: bool,
) -> Split:
    """:func:`book_split` of ``images`` average-pooled by ``pool`` (the images stay in 0-255 until then)."""
    if pool is not None and pool > 1:
        pooled = torch.nn.functional.avg_pool2d(images[:, None].to(torch.float32), pool)[:, 0]
        images = pooled
    return book_split(
        images, labels, n_train=n_train, n_heldout=n_heldout, seed=seed, normalize=normalize
    )
