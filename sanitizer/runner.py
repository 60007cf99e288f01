"""The process ``cli.py sanitize`` starts: the simulator on, the sanitizer installed, the user's script run.

    NUMBA_ENABLE_CUDASIM=1 python -m sanitizer.runner --result R.json [--tools T] [--schedule S] [--seed N]
        [--watchdog SECONDS] -- SCRIPT [ARGS...]

The script runs as ``python SCRIPT ARGS`` would run it (``__main__``, its ``sys.argv``, its folder first on
``sys.path``), inside ``sanitize()``. Whatever happens to it, R.json receives the report, the script's exit
status and, if it raised, the exception in one line; the caller prints and decides the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") prints it and exits 1, as Python does
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sanitizer.runner")
    parser.add_argument("--result", required=True)
    parser.add_argument("--tools", default="all")
    parser.add_argument("--schedule", default="in-order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--watchdog", type=float, default=30.0)
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before the script (or we) import numba

    import runpy

    from sanitizer import sanitize

    script = options.script
    sys.argv = [script, *options.args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    status, raised = 0, None
    with sanitize(tools=options.tools, schedule=options.schedule, seed=options.seed,
                  watchdog_s=options.watchdog) as report:
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as stop:
            status = _exit_status(stop.code)
        except BaseException as error:  # noqa: BLE001 (report what the script raised, with what was found)
            trace = error.__traceback__
            script_file = os.path.abspath(script)
            while trace is not None and trace.tb_frame.f_code.co_filename != script_file:
                trace = trace.tb_next  # the script's frames only, as `python SCRIPT` would show them
            traceback.print_exception(type(error), error, trace or error.__traceback__)
            status = 1
            raised = f"{type(error).__name__}: {error}".splitlines()[0]
    sys.stdout.flush()
    sys.stderr.flush()
    result = {"report": report.to_json(), "status": status, "raised": raised,
              "dropped": [launch.dropped for launch in report.launches],
              "ended_early": [launch.ended_early for launch in report.launches]}
    with open(options.result, "w") as handle:
        json.dump(result, handle, default=str)
    return status


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # a script may leave non-daemon threads behind (or a kernel thread ended by the watchdog may still spin):
    # the result is written, so leave now
    os._exit(code & 0xFF if code >= 0 else 1)
