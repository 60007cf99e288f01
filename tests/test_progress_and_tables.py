"""What train, profile and inspect print: --resume says which settings apply, progress that arrives line by
line in a pipe, --quiet for scripts, and every table and epoch line within 100 columns (--wide for all)."""

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import in_process

from engine.checkpoint import read

ROOT = Path(__file__).resolve().parent.parent


def env():
    return {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}


# --- --resume says what it does ------------------------------------------------------------------------------

@pytest.fixture
def at_epoch_one(capsys, tmp_path):
    ckpt = tmp_path / "m.npz"
    code, _, err = in_process(capsys, "train", "--model", "mlp", "--device", "cpu", "--epochs", "1", "--limit", "64",
                              "--batch-size", "16", "--seed", "4", "--checkpoint", ckpt)
    assert code == 0, err
    assert read(ckpt)[0]["extra"] == {"epoch": 1, "seed": 4, "batch_size": 16}
    return ckpt


def test_resume_keeps_the_checkpoints_settings_and_says_so(capsys, at_epoch_one):
    code, _, err = in_process(capsys, "train", "--model", "mlp", "--device", "cpu", "--epochs", "2", "--limit", "64",
                              "--resume", at_epoch_one, "--checkpoint", at_epoch_one)
    assert code == 0, err
    assert (f"resuming {at_epoch_one} at epoch 1 of 2: 1 to go; lr 0.001 from the checkpoint, batch 16 from the "
            f"checkpoint, seed 4 from the checkpoint") in err
    assert "batch 16, adam lr 0.001" in err
    assert read(at_epoch_one)[0]["extra"] == {"epoch": 2, "seed": 4, "batch_size": 16}


def test_resume_applies_what_is_given_and_names_the_old_value(capsys, at_epoch_one):
    code, _, err = in_process(capsys, "train", "--model", "mlp", "--device", "cpu", "--epochs", "2", "--limit", "64",
                              "--resume", at_epoch_one, "--lr", "0.5", "--batch-size", "32", "--seed", "9",
                              "--json", at_epoch_one.with_suffix(".json"))
    assert code == 0, err
    text = " ".join(err.split())
    assert ("lr 0.5 (was 0.001 in the checkpoint), batch 32 (was 16 in the checkpoint), seed 9 (was 4 in the "
            "checkpoint: the shuffles from here on differ from the uninterrupted run's)") in text
    summary = json.loads(at_epoch_one.with_suffix(".json").read_text())
    assert summary["lr"] == 0.5 and summary["batch_size"] == 32


def test_help_states_the_seed_rule(capsys):
    import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "with --resume, the checkpoint's, so the resumed run shuffles as the uninterrupted one would" in text
    assert "its lr, batch size and seed are kept unless --lr, --batch-size, --seed are given, which apply" in text
    assert "another --model or --optimizer is refused" in text


# --- progress in a pipe, --quiet ---------------------------------------------------------------------------------

def test_a_pipe_gets_each_epoch_line_as_it_happens():
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train", "--model", "mlp", "--device", "cpu",
                             "--epochs", "1000", "--limit", "64"], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    arrived = queue.Queue()  # a reader thread: a display that holds its lines back fails here, never hangs
    threading.Thread(target=lambda: [arrived.put(line) for line in proc.stderr], daemon=True).start()
    try:
        lines = []
        deadline = time.time() + 180
        while len(lines) < 3 and time.time() < deadline:
            try:
                line = arrived.get(timeout=max(deadline - time.time(), 0.1))
            except queue.Empty:
                break
            if line.startswith("epoch "):
                lines.append(line)
        assert proc.poll() is None, "the lines came while training ran, not at the end"
        assert [line.split()[1] for line in lines] == ["1/1000", "2/1000", "3/1000"], lines
        assert all("loss " in line and "test acc " in line and len(line.rstrip("\n")) <= 100 for line in lines)
    finally:
        proc.kill()
        proc.wait()


def test_a_long_epoch_reports_each_tenth_in_a_pipe(capsys):
    code, out, err = in_process(capsys, "train", "--model", "mlp", "--device", "cpu", "--epochs", "1", "--limit",
                                "100", "--batch-size", "1")
    assert code == 0, err
    tenths = [line.split()[2] for line in err.splitlines() if line.startswith("epoch 1/1 ") and "%" in line]
    assert tenths == [f"{p}%" for p in range(10, 100, 10)], err
    assert max(len(line) for line in err.splitlines()) <= 100


def test_quiet_prints_only_the_final_line_and_json_still_works(capsys, tmp_path):
    code, out, err = in_process(capsys, "train", "--model", "mlp", "--device", "cpu", "--epochs", "2", "--limit",
                                "64", "--quiet", "--json", tmp_path / "s.json")
    assert code == 0 and err == "", err
    assert len(out.splitlines()) == 1 and out.startswith("mlp on digits: test accuracy ")
    assert json.loads((tmp_path / "s.json").read_text())["epochs"] == 2


# --- within 100 columns --------------------------------------------------------------------------------------------

def test_the_live_epoch_line_fits_100_columns_uncut():
    """charlm's line, the longest, rendered by the live display on a 100-column terminal: nothing cut."""
    from rich.console import Console

    from commands.train import _progress, epoch_description

    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    info = {"loss": 1.23456, "train_accuracy": 0.45678, "bits_per_char": 2.5432, "samples_per_s": 1234567.0}
    progress = _progress(console, 100)
    if type(progress).__name__ == "PlainProgress":  # pytest's stdout is no terminal: build the live one
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from commands.train import PROGRESS_BAR_WIDTH

        progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(bar_width=PROGRESS_BAR_WIDTH),
                            TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
    task = progress.add_task(epoch_description(info), total=10, epoch=100)
    progress.update(task, completed=10)
    console.print(progress.get_renderable())
    text = console.file.getvalue()
    assert "held-out 2.543 bits/char" in text and "1,234,567 samples/s" in text
    assert "…" not in text and len(text.strip().splitlines()) == 1, text  # neither cut nor wrapped
    assert len(text.rstrip("\n")) <= 100, text


def test_profile_fits_100_columns(capsys):
    code, out, err = in_process(capsys, "profile", "--model", "mlp", "--device", "cpu", "--steps", "1",
                                "--batch-size", "4")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 100, out
    assert "█" in out and "…" not in out


def report(name, **counts):
    from cuda_kernels.ptx import KernelReport

    values = {"registers": 64, "shared_bytes": 16384, "local_bytes": 0, "spill_stores": 0, "spill_loads": 0,
              "f64_instructions": 0, "local_instructions": 0, "tanh_approx_instructions": 0, "ptx_lines": 929,
              "shared_v4_loads": 12, "global_v4_loads": 3, "int64_instructions": 377}
    return KernelReport(name=name, signature="void(float32[::1])", **{**values, **counts})


def test_inspect_table_has_a_header_and_a_legend_within_100_columns():
    from cuda_kernels.ptx import format_table

    reports = [report("conv_implicit_gemm_dweight_reduce_kernel"), report("gemm_naive", spill_stores=8)]
    lines = format_table(reports)
    assert max(len(line) for line in lines) <= 100, "\n".join(lines)
    assert lines[0].split() == ["kernel", "regs", "smem", "B", "lmem", "B", "spills", "st/ld", "f64", "int64"]
    assert lines[2].split()[:5] == ["gemm_naive", "64", "16384", "0", "8/0"]
    legend = " ".join(lines[lines.index("") + 1:])
    assert "regs: registers per thread" in legend and "--wide adds" in legend
    wide = format_table(reports, wide=True)
    assert "v4 smem" in wide[0] and "PTX lines" in wide[0] and len(wide[0]) > 100
    assert "ld.shared.v4" in " ".join(wide)


def test_inspect_wide_reaches_the_kernel_layer(capsys, monkeypatch):
    from cuda_kernels import ptx

    seen = []
    monkeypatch.setattr(ptx, "main", lambda argv: seen.append(argv) or 0)
    monkeypatch.setattr("hardware.cuda_probe.simulator_requested", lambda: False)
    assert in_process(capsys, "inspect", "gemm_naive", "--wide")[0] == 0
    assert seen == [["gemm_naive", "--cc", "9.0", "--wide"]]

