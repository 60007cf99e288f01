"""Data: scikit-learn's bundled digits (no download), MNIST / Fashion-MNIST IDX files from a folder,
a bundled text in next-character windows (for character language models), and a seeded batch iterator.

All images come out float32 in [0, 1], NCHW (N, 1, H, W); labels int64 in [0, 10).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Dataset:
    x: np.ndarray
    y: np.ndarray
    name: str = ""

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"dataset {self.name!r}: {len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int) -> Dataset:
        """The first ``n`` samples (a smaller dataset for quick or simulated runs)."""
        return Dataset(np.ascontiguousarray(self.x[:n]), self.y[:n], f"{self.name}[:{n}]")


def load_digits(view: str = "image", test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """The 1,797 8x8 digits bundled with scikit-learn, split into (train, test) with a seeded shuffle.

    view: "image" (N, 1, 8, 8); "image28" (N, 1, 28, 28), bilinearly upsampled for LeNet-style models;
          "flat" (N, 64); "sequence" (N, 8, 8): the rows of each image as 8 time steps, for the RNN.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    if view == "image":
        x = images[:, None]
    elif view == "image28":
        from scipy.ndimage import zoom

        x = zoom(images, (1, 3.5, 3.5), order=1).clip(0, 1).astype(np.float32)[:, None]
    elif view == "flat":
        x = images.reshape(len(images), 64)
    elif view == "sequence":
        x = images
    else:
        raise ValueError(f"load_digits: view must be image, image28, flat or sequence, got {view!r}")
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return (Dataset(np.ascontiguousarray(x[train]), labels[train], f"digits-{view}-train"),
            Dataset(np.ascontiguousarray(x[test]), labels[test], f"digits-{view}-test"))


# ------------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)
# ------------------------------------------------------------------------------------------------
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
             0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (raw or .gz), with clear errors for a missing or malformed file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header promises {shape} ({expected} bytes) but {len(raw) - header} bytes follow")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{folder}: missing {stem}[.gz] (download MNIST or Fashion-MNIST IDX files there)")


def load_mnist(folder) -> tuple[Dataset, Dataset]:
    """MNIST or Fashion-MNIST from a folder holding the four standard IDX files (raw or .gz)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {folder}")
    out = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
        out.append(Dataset((images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64), f"mnist-{split}"))
    return out[0], out[1]


def batches(dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
            drop_last: bool = False):
    """Yield (x, y) NumPy batches; the shuffle depends only on (seed, epoch), so runs repeat exactly."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(dataset)
    order = np.random.default_rng((seed, epoch)).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]
        yield np.ascontiguousarray(dataset.x[index]), dataset.y[index]


# ------------------------------------------------------------------------------------------------
# Text, for character-level language models (bundled with the package: no download)
# ------------------------------------------------------------------------------------------------
TEXTS = {"sonnets": "sonnets.txt"}  # name -> file in engine/texts/ (its first line, a '#' comment, is skipped)
CHARS = "\n" + "".join(chr(code) for code in range(32, 127))  # the vocabulary: newline and printable ASCII
_CHAR_ID = {c: i for i, c in enumerate(CHARS)}


def read_text(name: str = "sonnets") -> str:
    """A text bundled with tilegrad (``TEXTS``: "sonnets", a selection of Shakespeare's Sonnets, 1609, public
    domain), without its first line: a ``#`` comment giving title, author, year and source."""
    if name not in TEXTS:
        raise ValueError(f"read_text: unknown text {name!r}; the bundled texts are {', '.join(TEXTS)}")
    raw = (Path(__file__).resolve().parent / "texts" / TEXTS[name]).read_text(encoding="ascii")
    first, _, rest = raw.partition("\n")
    return rest.lstrip("\n") if first.startswith("#") else raw


def encode(text: str) -> np.ndarray:
    """Character ids (int32) in ``CHARS``, the vocabulary of newline and printable ASCII (96 symbols); one
    ValueError naming the first character outside it."""
    try:
        return np.fromiter((_CHAR_ID[c] for c in text), np.int32, len(text))
    except KeyError as exc:
        at = text.index(exc.args[0])
        raise ValueError(f"encode: character {exc.args[0]!r} at position {at} is not in the vocabulary "
                         f"(newline and printable ASCII)") from None


def decode(ids) -> str:
    """The text of character ids (the inverse of ``encode``)."""
    return "".join(CHARS[int(i)] for i in np.asarray(ids).reshape(-1))


def text_windows(text: str, seq_len: int = 64, stride: int | None = None, heldout_fraction: float = 0.1,
                 name: str = "text") -> tuple[Dataset, Dataset]:
    """(train, held out) windows of ``text`` for next-character prediction: x (N, seq_len) int32 character ids,
    y (N, seq_len) int64, the character after each one (y[:, t] = x[:, t + 1], and y[:, -1] the character after
    the window). The last ``heldout_fraction`` of the text is held out (cut at a line start): its windows,
    ``seq_len`` apart, never overlap the training text. Training windows start every ``stride`` characters
    (default seq_len // 4: each character is seen in 4 contexts an epoch)."""
    if isinstance(seq_len, bool) or int(seq_len) != seq_len or seq_len < 1:
        raise ValueError(f"text_windows: seq_len must be a positive integer, got {seq_len!r}")
    stride = max(1, seq_len // 4) if stride is None else stride
    if int(stride) != stride or stride < 1:
        raise ValueError(f"text_windows: stride must be a positive integer, got {stride!r}")
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"text_windows: heldout_fraction must lie in (0, 1), got {heldout_fraction}")
    ids = encode(text)
    split = int(len(ids) * (1 - heldout_fraction))
    line_start = text.find("\n", split - 1)  # the held-out part starts at the start of a line
    split = line_start + 1 if 0 <= line_start < len(ids) - 1 else split

    def windows(part: np.ndarray, step: int, what: str) -> Dataset:
        starts = np.arange(0, len(part) - seq_len, step)
        if len(starts) == 0:
            raise ValueError(f"text_windows: the {what} part ({len(part)} characters) is shorter than one window "
                             f"of seq_len + 1 = {seq_len + 1}; give a longer text or a shorter seq_len")
        index = starts[:, None] + np.arange(seq_len + 1)
        chunks = part[index]
        return Dataset(np.ascontiguousarray(chunks[:, :-1]), chunks[:, 1:].astype(np.int64), f"{name}-{what}")

    return windows(ids[:split], stride, "train"), windows(ids[split:], seq_len, "heldout")


def load_text(name: str = "sonnets", seq_len: int = 64, stride: int | None = None,
              heldout_fraction: float = 0.1) -> tuple[Dataset, Dataset]:
    """``text_windows`` of a bundled text (``read_text(name)``): (train, held out) for a character model."""
    return text_windows(read_text(name), seq_len, stride, heldout_fraction, name)


# ------------------------------------------------------------------------------------------------
# Your own data: arrays in an .npz file, a UTF-8 text file
# ------------------------------------------------------------------------------------------------
def load_npz(path, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, test) from an ``.npz`` file (``np.savez``) holding ``x`` (N, ...) floats and ``y`` (N,) integer
    class labels from 0, with ``x_test`` and ``y_test`` as the test split when present (else a seeded
    ``test_fraction`` of the samples). Every problem is one ValueError (FileNotFoundError for a missing file)
    naming the file and the array: missing keys, dtypes, shapes, NaN or inf values, negative labels."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected an .npz with arrays x and y, from np.savez)")
    if path.is_dir():
        raise ValueError(f"{path}: that is a folder; expected an .npz file with arrays x and y")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic.startswith(b"\x93NUMPY"):
            raise ValueError(f"{path}: one array (an .npy file), not an .npz archive with arrays x and y "
                             f"(write it with np.savez(path, x=..., y=...))")
        if not magic.startswith(b"PK"):
            raise ValueError(f"{path}: not an .npz archive (write one with np.savez(path, x=..., y=...))")
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: an .npz archive with arrays it cannot read without pickle ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read it as an .npz archive ({exc})") from None
    missing = [name for name in ("x", "y") if name not in arrays]
    if missing:
        raise ValueError(f"{path}: no array named {' or '.join(missing)}; it holds {sorted(arrays) or 'nothing'} "
                         f"(expected x: inputs (N, ...), y: labels (N,))")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{path}: x_test and y_test come together; it holds only one of them")
    splits = [("x", "y")] + ([("x_test", "y_test")] if "x_test" in arrays else [])
    out = []
    for xname, yname in splits:
        x, y = arrays[xname], arrays[yname]
        if x.dtype.kind not in "fiub" or x.ndim < 2:
            raise ValueError(f"{path}: {xname} must be numbers shaped (samples, ...features), got {x.dtype} "
                             f"{x.shape}")
        if y.dtype.kind not in "iu" or y.ndim != 1:
            raise ValueError(f"{path}: {yname} must be integer class labels shaped (samples,), got {y.dtype} "
                             f"{y.shape}")
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"{path}: {xname} holds {len(x)} samples, {yname} {len(y)} labels; they must match "
                             f"and not be empty")
        x = np.ascontiguousarray(x, dtype=np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{path}: {xname} holds {int(bad.sum())} NaN or inf values (the first at {first})")
        if y.min() < 0:
            raise ValueError(f"{path}: {yname} holds negative labels ({int(y.min())}); labels are classes 0, 1, ...")
        out.append((x, y.astype(np.int64)))
    if len(out) == 2:
        (x, y), (xt, yt) = out
        if xt.shape[1:] != x.shape[1:]:
            raise ValueError(f"{path}: x_test samples are {xt.shape[1:]}, x samples {x.shape[1:]}; they must match")
        return Dataset(x, y, f"{path.name}-train"), Dataset(xt, yt, f"{path.name}-test")
    x, y = out[0]
    if len(y) < 2:
        raise ValueError(f"{path}: {len(y)} sample; give at least 2 (some are held out for testing)")
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = min(len(y) - 1, max(1, int(round(len(y) * test_fraction))))
    test, train = order[:n_test], order[n_test:]
    return (Dataset(np.ascontiguousarray(x[train]), y[train], f"{path.name}-train"),
            Dataset(np.ascontiguousarray(x[test]), y[test], f"{path.name}-test"))


def read_text_file(path) -> str:
    """A UTF-8 text file for a character model, its line ends and tabs made ``\\n`` and spaces; one ValueError
    (FileNotFoundError for a missing file) naming the file: not UTF-8 (with the byte offset), or characters
    outside the vocabulary (newline and printable ASCII: the first few, where, and how many)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected a UTF-8 text file)")
    if path.is_dir():
        raise ValueError(f"{path}: that is a folder; expected a UTF-8 text file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    outside = sorted({c for c in text if c not in _CHAR_ID})
    if outside:
        first = text.index(outside[0]) if len(outside) == 1 else min(text.index(c) for c in outside)
        line = text.count("\n", 0, first) + 1
        count = sum(text.count(c) for c in outside)
        shown = ", ".join(repr(c) for c in outside[:5]) + (", ..." if len(outside) > 5 else "")
        raise ValueError(f"{path}: {count} characters outside the vocabulary (newline and printable ASCII): "
                         f"{shown}, the first on line {line}; replace them (e.g. iconv -t ascii//TRANSLIT)")
    if not text.strip():
        raise ValueError(f"{path}: the file holds no text")
    return text
