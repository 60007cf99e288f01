"""The roofline's GPU ceilings on a real GPU: both bandwidth probes and the FMA probe give numbers a
datacenter GPU can reach, and the reported bandwidth is the better of the two probes."""

import re

import pytest
from support import SIMULATOR


@pytest.mark.gpu
def test_gpu_ceilings_report_the_best_probe_with_launch_latency_hidden():
    if SIMULATOR:
        pytest.skip("hundreds of MiB through the simulator: real GPUs only")
    from bench.ceilings import gpu_ceilings

    ceilings = gpu_ceilings(quick=True)
    copy, memcpy = (float(x) for x in re.findall(r"\((\d+)\)", ceilings["gbps_how"]))
    assert ceilings["gbps"] == pytest.approx(max(copy, memcpy), abs=1.0)
    assert ceilings["gbps"] > 200, ceilings  # any recent datacenter GPU moves far more than this
    assert ceilings["gflops"] > 5_000, ceilings
