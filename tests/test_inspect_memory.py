"""``python cli.py inspect --memory KERNEL``: the per-line memory profile of a small sanitized launch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table_rows(text: str) -> list[list[str]]:
    """The profile's rows, split into (line, ..., space, op, requests, sect/req, ways, conflicts)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("-----")) + 1
    end = lines.index("", start)
    return [line.split() for line in lines[start:end]]


def test_the_shared_tiled_gemm_profile_matches_a_hand_count():
    from commands.inspect_memory import EXAMPLES, profile_text
    from cuda_kernels import gemm

    text = profile_text("gemm_shared_tiled")
    assert all(len(line) <= 100 for line in text.splitlines()), max(text.splitlines(), key=len)
    assert "0 errors or warnings" in text and "sect/req" in text and "ways" in text  # header and legend
    rows = table_rows(text)
    shared = [row for row in rows if row[-6] == "shared"]
    global_ = [row for row in rows if row[-6] == "global"]
    assert shared and global_, text
    # 16x16 tiles of 32 floats a row: every warp covers two whole tile rows, 32 distinct banks
    assert all(row[-2:] == ["1", "0"] for row in shared), text
    # a warp loads two 16-float halves of rows of A and B: 4 sectors per request
    assert all(row[-3] == "4.0" for row in global_), text
    # the inner loop's two shared loads: blocks x warps per block x K x 2
    m, n, k = 32, 32, 16
    assert "C (32x32) = A (32x16) @ B (16x32)" in EXAMPLES["gemm_shared_tiled"].what
    blocks, warps = (m // gemm.TILE) * (n // gemm.TILE), gemm.TILE * gemm.TILE // 32
    loads = [row for row in shared if row[-5] == "load"]
    assert [int(row[-4]) for row in loads] == [blocks * warps * k * 2], text


def run_cli(*args):
    return subprocess.run([sys.executable, "cli.py", "inspect", "--memory", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_a_kernel_without_an_example_or_an_unknown_name_gets_one_line():
    done = run_cli("fma_ceiling_kernel", "gemm_nave")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert "fma_ceiling_kernel has no example launch" in lines[0] and "gemm_shared_tiled" in lines[0]
    assert "no kernel named 'gemm_nave'" in lines[1] and "gemm_naive" in lines[1]
