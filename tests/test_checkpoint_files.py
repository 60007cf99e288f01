"""Checkpoint files as a user meets them: damage reported in one line naming the file, a checksum inside,
files that follow the umask, no silent overwrite of another run's checkpoint, --resume up to a total
--epochs, output paths checked before training, and the Ctrl-C message after the progress display."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import layers as L
import optim as O
from engine import Device, Sequential, load, save
from engine.checkpoint import CheckpointError, read
from engine.models import lenet, mlp

ROOT = Path(__file__).resolve().parent.parent


def small_model():
    model = Sequential(L.Dense(6, 16), L.ReLU(), L.Dense(16, 3))
    return model, O.Adam(model.parameters(), lr=0.01)


@pytest.fixture
def good(tmp_path):
    model, opt = small_model()
    save(tmp_path / "good.npz", model, opt, extra={"epoch": 2, "seed": 0})
    return tmp_path / "good.npz"


def rewrite(path, change):
    """The archive rewritten with ``change(meta, arrays)`` applied: a valid zip, its CRCs recomputed."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(meta, arrays)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


# --- every kind of damage: one CheckpointError (a ValueError) naming the file and what is wrong ----------

def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path):
    path.write_bytes(b"")


def bit_flipped(path):
    """One bit flipped in the middle of the first parameter's floats."""
    with zipfile.ZipFile(path) as archive:
        entry = archive.getinfo("param.0.npy")
    data = bytearray(path.read_bytes())
    local = entry.header_offset
    start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") + \
        int.from_bytes(data[local + 28:local + 30], "little")
    npy_header = 128  # the .npy header before the floats
    data[start + npy_header + (entry.file_size - npy_header) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def text_file(path):
    path.write_text("epoch,loss\n1,0.52\n2,0.31\n")


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def other_npz(path):
    np.savez(path, weights=np.zeros(3))


def single_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


DAMAGE = {
    truncated: "damaged checkpoint (truncated: the zip archive's end is missing)",
    empty: "not a tilegrad checkpoint (empty file)",
    bit_flipped: "damaged checkpoint (checksum mismatch in param.0: the file is corrupted)",
    text_file: "not a tilegrad checkpoint (a text file?)",
    random_bytes: "not a tilegrad checkpoint (not a zip archive: unrecognized contents)",
    other_npz: "not a tilegrad checkpoint (an .npz archive without tilegrad's metadata)",
    single_npy: "not a tilegrad checkpoint (a single NumPy .npy array, not an .npz archive)",
}


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_each_kind_of_damage_is_one_line_naming_the_file(good, damage):
    damage(good)
    for call in (read, load):
        with pytest.raises(CheckpointError) as info:
            call(good)
        assert str(info.value) == f"{good}: {DAMAGE[damage]}"
        assert isinstance(info.value, ValueError)


def test_a_folder_and_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="a folder, not a checkpoint file"):
        read(tmp_path)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read(tmp_path / "nothing.npz")


def test_every_single_byte_flip_is_caught_or_harmless(good):
    """A flip anywhere (zip headers, .npy headers, data, directory) is a CheckpointError, or changes
    nothing that is read (a timestamp): never another exception, never different numbers."""
    original = good.read_bytes()
    meta, arrays = read(good)
    rng = np.random.default_rng(1)
    positions = sorted(set(range(0, 200)) | set(range(len(original) - 400, len(original)))
                       | set(rng.integers(0, len(original), 200).tolist()))
    for pos in positions:
        data = bytearray(original)
        data[pos] ^= 0x41
        good.write_bytes(bytes(data))
        try:
            meta2, arrays2 = read(good)
        except CheckpointError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(f"{good}: ")
            continue
        assert meta2 == meta and arrays2.keys() == arrays.keys(), pos
        for k in arrays:
            np.testing.assert_array_equal(arrays2[k], arrays[k])


# --- the checksum ----------------------------------------------------------------------------------------

def test_the_checksum_covers_the_arrays_and_the_metadata(good):
    meta, _ = read(good)
    assert meta["checksum"].startswith("sha256:") and len(meta["checksum"]) == len("sha256:") + 64
    rewrite(good, lambda meta, arrays: arrays["param.0"].__setitem__((0, 0), 1.0))  # zip CRCs fine, SHA not
    with pytest.raises(CheckpointError, match=r"checksum mismatch: the contents differ from what was saved"):
        read(good)


def test_a_changed_metadata_field_fails_the_checksum(good):
    rewrite(good, lambda meta, arrays: meta["extra"].__setitem__("epoch", 99))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load(good)


def test_checkpoints_from_before_the_checksum_still_load(good):
    """Old files have no checksum: they load (the zip CRC-32s still guard their bytes)."""
    def drop(meta, arrays):
        del meta["checksum"], meta["format"]

    rewrite(good, drop)
    model, opt = small_model()
    _, meta = load(good, model=model, optimizer=opt)
    assert meta["extra"]["epoch"] == 2 and "checksum" not in meta


# --- file mode ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoints_follow_the_umask(tmp_path, umask, mode):
    model, opt = small_model()
    old = os.umask(umask)
    try:
        save(tmp_path / "m.npz", model, opt)
        save(tmp_path / "m.npz", model, opt)  # replacing an existing file too
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == mode
    assert not list(tmp_path.glob(".*.tmp"))


# --- the CLI -------------------------------------------------------------------------------------------------

def run_cli(capsys, *args):
    """``python cli.py train ...`` in this process (fast): (exit status, stdout, stderr)."""
    import cli

    code = cli.main(["train", "--device", "cpu", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code, err, expected_code=1):
    assert code == expected_code, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if training starts."""
    import engine.training

    def fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(engine.training, "fit", fit)


def test_a_damaged_resume_file_is_one_line_on_stderr_from_a_real_process(good):
    truncated(good)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--model", "mlp", "--resume", str(good)],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 1
    assert result.stderr == f"error: {good}: {DAMAGE[truncated]}\n"


@pytest.mark.parametrize("damage", [empty, bit_flipped, text_file, random_bytes, other_npz], ids=lambda f: f.__name__)
def test_every_damaged_resume_file_is_one_line(capsys, good, no_training, damage):
    damage(good)
    line = one_line(*run_cli(capsys, "--model", "mlp", "--resume", good)[::2])
    assert line == f"error: {good}: {DAMAGE[damage]}"


def lenet_checkpoint(path):
    model = lenet(Device("cpu"))
    save(path, model, O.Adam(model.parameters(), lr=1e-3), extra={"epoch": 34, "seed": 0})
    return path.read_bytes()


def test_a_checkpoint_of_another_model_is_not_overwritten_without_force(capsys, tmp_path, no_training):
    keep = tmp_path / "keep.npz"
    before = lenet_checkpoint(keep)
    line = one_line(*run_cli(capsys, "--model", "mlp", "--checkpoint", keep)[::2])
    assert line == (f"error: refusing to overwrite {keep}: it holds a checkpoint of lenet with adam at epoch 34, but "
                    f"this run trains mlp with adam; pass --force to overwrite it, or --resume {keep} --model lenet "
                    f"--optimizer adam to continue that run")
    line = one_line(*run_cli(capsys, "--model", "lenet", "--optimizer", "sgd", "--checkpoint", keep)[::2])
    assert "lenet with adam at epoch 34, but this run trains lenet with sgd" in line
    (tmp_path / "notes.txt").write_text("my notes\n")
    line = one_line(*run_cli(capsys, "--model", "mlp", "--checkpoint", tmp_path / "notes.txt")[::2])
    assert line == (f"error: refusing to overwrite {tmp_path / 'notes.txt'}: not a tilegrad checkpoint (a text "
                    f"file?); pass --force to replace it, or choose another --checkpoint file")
    assert keep.read_bytes() == before and (tmp_path / "notes.txt").read_text() == "my notes\n"


def test_force_overwrites_and_the_same_model_overwrites_freely(capsys, tmp_path):
    keep = tmp_path / "keep.npz"
    lenet_checkpoint(keep)
    code, _, err = run_cli(capsys, "--model", "mlp", "--epochs", "1", "--limit", "64", "--checkpoint", keep, "--force")
    assert code == 0, err
    meta, _ = read(keep)
    assert meta["architecture"]["layers"][0]["type"] == "Dense" and meta["extra"]["epoch"] == 1
    code, _, err = run_cli(capsys, "--model", "mlp", "--epochs", "2", "--limit", "64", "--checkpoint", keep)
    assert code == 0, err  # the same model and optimizer: an earlier run of this one, replaced
    assert read(keep)[0]["extra"]["epoch"] == 2


def test_resume_with_another_model_names_both(capsys, tmp_path, no_training):
    keep = tmp_path / "keep.npz"
    lenet_checkpoint(keep)
    line = one_line(*run_cli(capsys, "--model", "mlp", "--resume", keep)[::2])
    assert line == (f"error: --resume {keep} holds a checkpoint of lenet with adam at epoch 34, but this run trains "
                    f"mlp with adam; to continue it, pass --model lenet --optimizer adam")


def test_resume_trains_up_to_epochs_in_total(capsys, tmp_path):
    ckpt, js = tmp_path / "m.npz", tmp_path / "m.json"
    code, _, err = run_cli(capsys, "--model", "mlp", "--epochs", "2", "--limit", "64", "--checkpoint", ckpt)
    assert code == 0, err
    code, _, err = run_cli(capsys, "--model", "mlp", "--epochs", "3", "--limit", "64", "--resume", ckpt,
                           "--checkpoint", ckpt, "--json", js)
    assert code == 0, err
    assert f"resuming {ckpt} at epoch 2 of 3: 1 to go" in err
    summary = json.loads(js.read_text())
    assert summary["epochs"] == 3 and [h["epoch"] for h in summary["history"]] == [3]
    assert read(ckpt)[0]["extra"]["epoch"] == 3


def test_resume_already_at_epochs_trains_nothing_and_says_so(capsys, tmp_path, no_training):
    ckpt = tmp_path / "m.npz"
    model = mlp(Device("cpu"), in_features=64)  # --model mlp on digits
    save(ckpt, model, O.Adam(model.parameters(), lr=1e-3), extra={"epoch": 34, "seed": 0})
    code, out, err = run_cli(capsys, "--model", "mlp", "--epochs", "20", "--resume", ckpt)
    assert code == 0 and out == ""
    assert one_line(code, err, 0) == (f"{ckpt} already holds epoch 34, and --epochs 20 is the total to reach: "
                                      f"nothing to train (give a larger --epochs to train further)")


def test_help_states_the_resume_and_overwrite_rules(capsys):
    import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a checkpoint at epoch 34 with --epochs 200 trains epochs 35 to 200" in text
    assert "up to --epochs in total" in text
    assert "replaced only when it holds the same model and optimizer" in text and "--force" in text


@pytest.mark.parametrize("args, message", [
    (("--plot", "/missing/x.png"), "--plot /missing/x.png: the folder /missing does not exist"),
    (("--json", "/missing/x.json"), "--json /missing/x.json: the folder /missing does not exist"),
    (("--checkpoint", "/missing/x.npz"), "--checkpoint /missing/x.npz: the folder /missing does not exist"),
    (("--plot", "curves.txt"), "--plot curves.txt: '.txt' is not a format it writes; end the name in .png, .pdf, .svg"),
    (("--plot", "curves"), "--plot curves: the name has no extension; end the name in .png, .pdf, .svg"),
    (("--json", "."), "--json .: that is a folder; give a file name"),
    (("--json", "same.npz", "--checkpoint", "same.npz"), "--checkpoint and --json name the same file, same.npz"),
])
def test_output_paths_are_checked_before_training(capsys, no_training, args, message):
    line = one_line(*run_cli(capsys, "--model", "mlp", *args)[::2])
    assert line.startswith(f"error: {message}"), line


def test_a_file_in_place_of_a_folder(capsys, tmp_path, no_training):
    (tmp_path / "f").write_text("")
    line = one_line(*run_cli(capsys, "--model", "mlp", "--plot", tmp_path / "f" / "x.png")[::2])
    assert line == f"error: --plot {tmp_path / 'f' / 'x.png'}: {tmp_path / 'f'} is a file, not a folder"


@pytest.mark.parametrize("with_checkpoint", [True, False])
def test_ctrl_c_message_comes_after_the_progress_display(capsys, tmp_path, monkeypatch, with_checkpoint):
    import engine.training

    real_fit = engine.training.fit

    def fit_interrupted_in_epoch_two(*args, callbacks=(), **kwargs):
        def press_ctrl_c(event, info):
            if event == "batch" and info["epoch"] == 1 and info["step"] == 1:
                raise KeyboardInterrupt

        return real_fit(*args, callbacks=[*callbacks, press_ctrl_c], **kwargs)

    monkeypatch.setattr(engine.training, "fit", fit_interrupted_in_epoch_two)
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "m.npz"
    extra = ("--checkpoint", ckpt) if with_checkpoint else ()
    code, _, err = run_cli(capsys, "--model", "mlp", "--epochs", "5", "--limit", "128", *extra)
    assert code == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(line.startswith("epoch 2") for line in lines), err  # the progress display was shown
    if with_checkpoint:  # the checkpoint of epoch 1 is the exact resume point
        assert lines[-1] == f"interrupted: {ckpt} holds epoch 1; resume with --resume {ckpt} --epochs 5", err
        assert read(ckpt)[0]["extra"]["epoch"] == 1
    else:  # the weights as they stand mid-epoch 2, in the fallback file
        assert lines[-1] == ("interrupted during epoch 2: the model as it stands is saved in interrupted-mlp.npz; "
                             "--resume interrupted-mlp.npz --epochs 5 restarts that epoch from these weights"), err
        assert read(tmp_path / "interrupted-mlp.npz")[0]["extra"]["epoch"] == 1
    assert sum("interrupted" in line for line in lines) == 1


def test_the_checkpoint_is_a_zip_of_npy_entries_plus_meta(good):
    """The format stays readable with NumPy alone (np.load), for anyone inspecting a file."""
    with zipfile.ZipFile(good) as archive:
        assert "meta.npy" in archive.namelist() and "param.0.npy" in archive.namelist()
