"""`info` names a GPU's architecture and the GEMM rungs it runs (docs/tutorials/cloud-gpus.md): the mapping
from compute capability, testable without a GPU."""

import pytest

from hardware.machine import architecture, rung_unavailable


@pytest.mark.parametrize("capability, name", [
    ((7, 5), "sm_75 Turing"), ("8.0", "sm_80 Ampere"), ((8, 6), "sm_86 Ampere (GA10x)"),
    ((8, 9), "sm_89 Ada Lovelace"), ("9.0", "sm_90 Hopper"), ((10, 0), "sm_100 Blackwell"),
    ((7, 0), "sm_70 Volta"), ((12, 0), "sm_120 Blackwell (consumer)")])
def test_compute_capability_names_the_architecture(capability, name):
    assert architecture(capability) == name


def test_tf32_tensor_cores_are_refused_below_sm_80_with_the_reason():
    why = rung_unavailable("wmma_tf32", (7, 5))
    assert "sm_80" in why and "sm_75 Turing" in why
    assert rung_unavailable("wmma_tf32", (8, 0)) is None and rung_unavailable("wmma_tf32", "9.0") is None
    assert rung_unavailable("warp_tiled", (7, 5)) is None


def test_info_lists_the_rungs_a_t4_runs_and_the_one_it_does_not():
    from commands.info import rungs_line
    from cuda_kernels.gemm import CUDA_C_VERSIONS, CUDA_VERSIONS

    total = len(CUDA_VERSIONS + CUDA_C_VERSIONS)
    assert rungs_line("7.5").startswith(f"{total - 1} of {total} run here; not wmma_tf32: ")
    assert rungs_line("9.0") == f"all {total} run here"
