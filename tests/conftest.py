"""Test tiers (see tests/README.md): default (CPU twins + CUDA kernels in the simulator when there is
no GPU), ``compile`` (PTX for sm_90, no GPU needed) and ``gpu`` (the same tests on a real GPU).

The simulator has to be switched on before numba is imported, so this runs first.
"""

import builtins
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hardware import cuda_probe  # noqa: E402  (imports only the standard library)

SIMULATOR_ASKED_FOR = cuda_probe.simulator_requested()  # by the user (or `cli.py --device sim check`)
REAL_GPU = cuda_probe.real_gpu_count() > 0 and not SIMULATOR_ASKED_FOR
if not REAL_GPU:
    cuda_probe.enable_simulator()
cuda_probe.ensure_numba_cache_dir()

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", max_examples=20, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    where = "a real GPU" if REAL_GPU else "Numba's CUDA simulator (no GPU found)"
    return f"tilegrad: CUDA kernels run on {where}; hypothesis profile {os.environ.get('HYPOTHESIS_PROFILE', 'ci')}"


def _selects_gpu_tier(config) -> bool:
    return "gpu" in (config.getoption("markexpr", "") or "")


# -- the longest tests first (for `pytest -n auto`) -------------------------------------------------------------
# pytest-xdist's workers take the tests in this order (README's command deals them one at a time,
# --maxschedchunk 1): a minutes-long test that started last would run alone while the other workers idle, so the
# longest ones start first, longest first. A serial run loses nothing by it. Each entry is a node id or its start;
# the minutes are in docs/benchmarks.md ("Test suite time on 2 cores"). A test missing here only costs time.
LONGEST_FIRST = (
    "tests/test_cuda_graph_models.py::test_twenty_replayed_steps_equal_twenty_eager_steps[implicit_gemm_conv]",
    "tests/test_every_kernel_sanitized.py",
    "tests/test_notebooks.py::test_the_notebooks_execute_with_plots_inline",
    "tests/test_ptx.py::test_every_kernel_compiles_for_sm90",
    "tests/test_cuda_graph_models.py",
    "tests/test_gpu_check.py::test_launch_every_kernel_covers_every_kernel_and_checks_each",
    "tests/test_profile.py::test_profile_command_on_the_simulator_has_host_and_gpu_columns",
    "tests/test_ptx.py::test_kernels_compile_for_every_gpu_of_a_course",
    "tests/test_cli.py::test_train_runs_in_the_simulator_at_a_tiny_size",
    "tests/test_grading.py",
    "tests/test_distributed.py",
)


def _longest_first_rank(item) -> int:
    return next((i for i, start in enumerate(LONGEST_FIRST) if item.nodeid.startswith(start)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_longest_first_rank)  # stable: every file keeps its own order
    # `pytest -m gpu` asks for real hardware: without one, say so instead of re-running the simulator,
    # unless the simulator was asked for explicitly (NUMBA_ENABLE_CUDASIM=1 pytest -m gpu).
    if REAL_GPU or SIMULATOR_ASKED_FOR or not _selects_gpu_tier(config):
        return
    skip = pytest.mark.skip(reason="the gpu tier needs a real GPU; the default tier ran these in the simulator")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# -- the sanitizer around tests (issue 26) ---------------------------------------------------------------
# TILEGRAD_SANITIZE=1 (`python cli.py check --sanitize`): every test runs under sanitizer.sanitize(tools="all")
# and fails on any error or warning, leading with the finding. Unset: only the course graders (marker
# `exercise`) run under it, and a grader's failure leads with the sanitizer's finding (the plain simulator
# hides races: a wrong answer alone does not say why). TILEGRAD_SANITIZE=0: never.
SANITIZE_VARIABLE = "TILEGRAD_SANITIZE"
SANITIZE_SETTING = os.environ.get(SANITIZE_VARIABLE, "")


def _sanitized(item) -> bool:
    if REAL_GPU or SANITIZE_SETTING == "0":
        return False
    if item.get_closest_marker("exercise") is not None:
        return True
    return SANITIZE_SETTING != "" and not _tests_the_sanitizer(item)


def _tests_the_sanitizer(item) -> bool:
    """Tests of the sanitizer launch racy kernels on purpose, under their own sanitize(): an outer one would
    record those launches too."""
    module = getattr(item, "module", None)
    return any(getattr(module, name, None) is not None for name in ("sanitize", "sanitizer"))


def pytest_configure(config):
    if SANITIZE_SETTING not in ("", "0") and REAL_GPU:
        raise pytest.UsageError(f"{SANITIZE_VARIABLE}=1 watches Numba's CUDA simulator, and this run uses the GPU: "
                                f"set {cuda_probe.SIMULATOR_VARIABLE}=1 too "
                                "(or `cli.py --device sim check --sanitize`)")


def lead_with(exc: BaseException, text: str) -> None:
    """Put ``text`` first in the message pytest shows for ``exc`` (its first `E` lines, which `check` prints)."""
    if isinstance(exc, pytest.fail.Exception):
        exc.msg = f"{text}\n{exc.msg}"
        return
    args = exc.args
    groups = getattr(builtins, "BaseExceptionGroup", ())  # Python 3.11+: a group's message is not its args
    if not isinstance(exc, groups) and (not args or isinstance(args[0], str)):
        exc.args = (f"{text}\n{args[0]}" if args else text, *args[1:])
        if str(exc).startswith(text):
            return
        exc.args = args  # an exception whose message is not its first argument
    if hasattr(exc, "add_note"):
        exc.add_note(text)
    else:  # Python 3.10: pytest shows __notes__ too
        exc.__notes__ = [*getattr(exc, "__notes__", []), text]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not _sanitized(item):
        return (yield)
    from support import sanitizer_finding

    from sanitizer import sanitize

    with sanitize(tools="all") as report:
        try:
            result = yield
        except (pytest.skip.Exception, pytest.xfail.Exception):
            raise
        except BaseException as exc:
            found = sanitizer_finding(report)
            if found:
                lead_with(exc, found)
            raise
    found = sanitizer_finding(report)
    if found and SANITIZE_SETTING not in ("", "0"):
        pytest.fail(f"{found}\n{report.summary()} (`python cli.py sanitize SCRIPT` prints the full report)",
                    pytrace=False)
    return result
