"""engine/outputs.py: one rule for every file tilegrad writes. Never over a file of another kind (a checkpoint
above all) without --force, never into a missing folder, one writer per checkpoint (a lock file with the
writer's pid, taken over from a dead one), temporary files of dead writers removed."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import in_process, one_line

import layers as L
import optim as O
from engine import Sequential, fit, outputs, save
from engine.checkpoint import read, save_interrupted
from engine.data import Dataset
from engine.outputs import OutputError, check_target

ROOT = Path(__file__).resolve().parent.parent


def small(seed=0, width=16):
    model = Sequential(L.Dense(6, width, seed=seed), L.ReLU(), L.Dense(width, 3, seed=seed))
    return model, O.Adam(model.parameters(), lr=0.01)


@pytest.fixture
def ckpt(tmp_path):
    model, opt = small()
    save(tmp_path / "lo.npz", model, opt, extra={"epoch": 3})
    return tmp_path / "lo.npz"


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if training, prediction or a benchmark starts."""
    import bench
    import engine.inference
    import engine.training

    def refuse(*args, **kwargs):
        raise AssertionError("the work started")

    import engine.profiler

    monkeypatch.setattr(engine.training, "fit", refuse)
    monkeypatch.setattr(engine.profiler, "profile_step", refuse)
    monkeypatch.setattr(engine.inference, "load_classifier", refuse)
    monkeypatch.setattr(bench, "run_bench", refuse)


# --- the rule, on its own ---------------------------------------------------------------------------------

def test_a_file_of_another_kind_is_refused_and_force_lifts_it(ckpt, tmp_path):
    for kind in ("json", "plot", "predictions"):
        with pytest.raises(OutputError) as info:
            check_target(ckpt, kind, f"--{kind}")
        assert str(info.value).startswith(f"refusing to overwrite {ckpt} with ")
        assert "it holds a tilegrad checkpoint (Sequential(Dense 6->16, Dense 16->3), epoch 3)" in str(info.value)
        assert str(info.value).endswith(f"pass --force to replace it, or choose another --{kind} file")
        check_target(ckpt, kind, f"--{kind}", force=True)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(OutputError, match="it holds a text file"):
        check_target(notes, "json", "--json")


def test_the_same_kind_and_empty_files_are_replaced(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"x": 1}))
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    np.savez(tmp_path / "p.npz", classes=np.zeros(2, np.int64), probabilities=np.zeros((2, 3), np.float32))
    check_target(tmp_path / "a.json", "json")
    check_target(tmp_path / "empty", "json")
    check_target(tmp_path / "p.png", "plot")
    check_target(tmp_path / "p.npz", "predictions")
    check_target("/dev/null", "json")  # not a regular file: written in place
    with pytest.raises(OutputError, match="it holds a PNG image"):
        check_target(tmp_path / "p.png", "json")


def test_a_checkpoint_is_replaced_only_by_the_same_run(ckpt):
    check_target(ckpt, "checkpoint", same_run=lambda meta: None)
    with pytest.raises(OutputError, match="^another model$"):
        check_target(ckpt, "checkpoint", same_run=lambda meta: "another model")


def test_engine_save_refuses_a_missing_folder_in_one_line(tmp_path):
    model, opt = small()
    with pytest.raises(OutputError) as info:
        save(tmp_path / "typo" / "m.npz", model, opt)
    assert str(info.value) == f"{tmp_path / 'typo' / 'm.npz'}: the folder {tmp_path / 'typo'} does not exist"
    assert not (tmp_path / "typo").exists()


# --- the commands ------------------------------------------------------------------------------------------

def test_predict_never_writes_over_its_own_checkpoint_or_another(capsys, ckpt, tmp_path, no_work):
    before = ckpt.read_bytes()
    line = one_line(*in_process(capsys, "predict", "--checkpoint", ckpt, "--dataset", "digits", "--output", ckpt)[::2])
    assert line == f"error: --checkpoint and --output name the same file, {ckpt}"
    other = tmp_path / "other.npz"
    other.write_bytes(before)
    line = one_line(*in_process(capsys, "predict", "--checkpoint", ckpt, "--dataset", "digits", "--output",
                                other)[::2])
    assert line.startswith(f"error: refusing to overwrite {other} with predictions: it holds a tilegrad checkpoint")
    line = one_line(*in_process(capsys, "predict", "--checkpoint", ckpt, "--dataset", "digits", "--json", other)[::2])
    assert "with JSON: it holds a tilegrad checkpoint" in line and line.endswith("another --json file")
    assert ckpt.read_bytes() == before and other.read_bytes() == before


def test_train_json_and_plot_never_replace_a_checkpoint(capsys, ckpt, no_work):
    before = ckpt.read_bytes()
    for option in ("--json", "--plot"):
        path = ckpt.with_suffix(".png") if option == "--plot" else ckpt.with_suffix(".ckpt")
        path.write_bytes(before)
        line = one_line(*in_process(capsys, "train", "--model", "mlp", option, path)[::2])
        assert line.startswith(f"error: refusing to overwrite {path} with ") and "--force" in line, line
        assert path.read_bytes() == before


def test_profile_and_bench_outputs_follow_the_rule(capsys, ckpt, no_work):
    line = one_line(*in_process(capsys, "profile", "--model", "mlp", "--json", ckpt)[::2])
    assert line.startswith(f"error: refusing to overwrite {ckpt} with JSON")
    line = one_line(*in_process(capsys, "bench", "--ops", "pool", "--json", ckpt)[::2])
    assert line.startswith(f"error: refusing to overwrite {ckpt} with JSON")
    line = one_line(*in_process(capsys, "bench", "--ops", "pool", "--plot", ckpt.parent / "nowhere" / "b.png")[::2])
    assert line.endswith(f"the folder {ckpt.parent / 'nowhere'} does not exist")


@pytest.mark.parametrize("command", [
    ("train", "--model", "mlp", "--json", "{ckpt}"), ("train", "--model", "mlp", "--plot", "{png}"),
    ("profile", "--model", "mlp", "--json", "{ckpt}"), ("bench", "--ops", "pool", "--json", "{ckpt}"),
    ("bench", "--ops", "pool", "--plot", "{png}"),
    ("predict", "--checkpoint", "{other}", "--dataset", "digits", "--output", "{ckpt}"),
    ("predict", "--checkpoint", "{other}", "--dataset", "digits", "--json", "{ckpt}"),
], ids=lambda c: " ".join(c[:1] + c[-2:-1]))
def test_each_force_flag_lets_the_work_start(capsys, ckpt, no_work, command):
    png = ckpt.with_suffix(".png")
    png.write_bytes(ckpt.read_bytes())  # a checkpoint under an image's name
    other = ckpt.with_name("other.npz")
    other.write_bytes(ckpt.read_bytes())
    args = [a.format(ckpt=ckpt, png=png, other=other) for a in command]
    line = one_line(*in_process(capsys, *args, "--device", "cpu")[::2])
    assert line.startswith("error: refusing to overwrite"), line
    with pytest.raises(AssertionError, match="the work started"):  # the rule passed: the work began
        in_process(capsys, *args, "--device", "cpu", "--force")


def test_predict_force_replaces_and_the_output_is_written_atomically(capsys, ckpt, tmp_path):
    other = tmp_path / "other.npz"
    other.write_bytes(ckpt.read_bytes())
    code, out, err = in_process(capsys, "predict", "--checkpoint", ckpt, "--input", _inputs(tmp_path), "--output",
                                other, "--force", "--device", "cpu")
    assert code == 0, err
    with np.load(other) as data:
        assert set(data.files) == {"classes", "probabilities"}
    assert not list(tmp_path.glob(".*.tmp"))


def _inputs(tmp_path, value=0.5):
    path = tmp_path / "x.npy"
    np.save(path, np.full((4, 6), value, np.float32))
    return path


# --- the Ctrl-C fallback -------------------------------------------------------------------------------------

def test_the_fallback_file_never_replaces_another_run(tmp_path):
    other, other_opt = small(width=8)
    save(tmp_path / "interrupted-mlp.npz", other, other_opt, extra={"epoch": 7})
    before = (tmp_path / "interrupted-mlp.npz").read_bytes()
    model, opt = small()
    line = save_interrupted(model, opt, checkpoint=None, fallback=str(tmp_path / "interrupted-mlp.npz"),
                            start_epoch=0, epochs_done=1, seed=0)
    assert f"saved in {tmp_path / 'interrupted-mlp-2.npz'}" in line
    assert (tmp_path / "interrupted-mlp.npz").read_bytes() == before
    assert read(tmp_path / "interrupted-mlp-2.npz")[0]["extra"]["epoch"] == 1
    line = save_interrupted(model, opt, checkpoint=None, fallback=str(tmp_path / "interrupted-mlp.npz"),
                            start_epoch=0, epochs_done=2, seed=0)  # the same run again: its own file replaced
    assert f"saved in {tmp_path / 'interrupted-mlp-2.npz'}" in line
    assert read(tmp_path / "interrupted-mlp-2.npz")[0]["extra"]["epoch"] == 2


# --- one writer per checkpoint ------------------------------------------------------------------------------

HOLDER = ("import sys; sys.path.insert(0, {root!r}); from engine import outputs; outputs.acquire({path!r}); "
          "print('held', flush=True); sys.stdin.read()")


def hold_lock(path):
    """A subprocess that holds the writer's lock of ``path`` until its stdin closes (or it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), path=str(path))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_while_the_first_runs_and_a_dead_ones_lock_is_taken_over(capsys, tmp_path):
    path = tmp_path / "m.npz"
    holder = hold_lock(path)
    try:
        assert outputs.lock_path(path).read_text().strip() == str(holder.pid)
        line = one_line(*in_process(capsys, "train", "--model", "mlp", "--device", "cpu", "--checkpoint", path)[::2])
        assert line == (f"error: --checkpoint {path}: another process (pid {holder.pid}) is writing this checkpoint "
                        f"now; wait for it to finish, or choose another file (its lock is .m.npz.lock)")
        model, opt = small()
        with pytest.raises(OutputError, match=f"another process \\(pid {holder.pid}\\)"):
            save(path, model, opt)
        data = Dataset(np.zeros((4, 6), np.float32), np.zeros(4, np.int64))
        with pytest.raises(OutputError, match="is writing this checkpoint now"):
            fit(model, L.SoftmaxCrossEntropy(), opt, data, epochs=1, batch_size=2, checkpoint=str(path))
        assert not path.exists()
    finally:
        holder.kill()  # kill -9: the lock file stays, with a dead pid in it
        holder.wait()
    assert outputs.lock_path(path).exists()
    model, opt = small()
    data = Dataset(np.zeros((4, 6), np.float32), np.zeros(4, np.int64))
    fit(model, L.SoftmaxCrossEntropy(), opt, data, epochs=1, batch_size=2, checkpoint=str(path))
    assert read(path)[0]["extra"]["epoch"] == 1
    assert not outputs.lock_path(path).exists(), "taken over, then released"


def test_two_concurrent_trainers_the_second_is_refused(capsys, tmp_path):
    path = tmp_path / "m.npz"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    first = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train", "--model", "mlp", "--device", "cpu",
                              "--epochs", "1000", "--limit", "64", "--checkpoint", str(path)],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not outputs.lock_path(path).exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert outputs.lock_path(path).exists(), "the first trainer took the lock"
        line = one_line(*in_process(capsys, "train", "--model", "mlp", "--device", "cpu", "--epochs", "1",
                                    "--checkpoint", path)[::2])
        assert f"another process (pid {first.pid}) is writing this checkpoint now" in line
    finally:
        first.kill()
        first.wait()


def test_a_killed_writers_temporary_files_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "m.npz"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    assert not outputs.pid_alive(dead_pid)
    left = tmp_path / f".m.npz.{dead_pid}.1a2b3c4d.tmp"  # what a kill -9 mid-write leaves
    left.write_bytes(b"PK half a checkpoint")
    live = tmp_path / f".m.npz.{os.getpid()}.5e6f7a8b.tmp"  # a live writer's file is not touched
    live.write_bytes(b"PK being written")
    legacy = tmp_path / ".m.npz.ab_cd123.tmp"  # from before pids were in the names, hours old
    legacy.write_bytes(b"PK old")
    os.utime(legacy, (time.time() - 2 * outputs.LEGACY_TEMP_AGE_S,) * 2)
    other = tmp_path / f".other.npz.{dead_pid}.1a2b3c4d.tmp"  # another file's: not this save's business
    other.write_bytes(b"PK")
    model, opt = small()
    save(path, model, opt)
    assert not left.exists() and not legacy.exists()
    assert live.exists() and other.exists()
    assert read(path)[0]["architecture"]


def test_the_lock_is_reentrant_within_a_process_and_released_by_the_last(tmp_path):
    path = tmp_path / "m.npz"
    with outputs.writing(path):
        with outputs.writing(path):
            assert outputs.lock_path(path).exists()
        assert outputs.lock_path(path).exists()
    assert not outputs.lock_path(path).exists()
