"""The whole test suite, as CI runs it: the CPU tests and the CUDA backend's tests in Numba's
simulator, side by side.

The simulator must be switched on (``NUMBA_ENABLE_CUDASIM=1``) before numba is imported, so its
tests run in a pytest process of their own. The two processes are mostly single-threaded (the
simulator runs every GPU thread as a Python thread; the CPU tests spend their time compiling
and in small products), so on two cores they take little longer together than the longer one
alone: in a clean-clone CI on this project's machine 16 and 9 minutes one after the other
(1556 s for the two), 17 and 13 side by side (1106 s).

    python tests/run_all.py        # from the repository root; exit 0 only if both passed

The simulator's report is printed after the CPU tests' own, so that the two do not interleave.
Either one can be run alone:

    python -m pytest -q
    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/test_cuda_backend.py
"""

import os
import subprocess
import sys
import tempfile

SIMULATED = "tests/test_cuda_backend.py"


def main():
    pytest = [sys.executable, "-m", "pytest", "-q"]
    with tempfile.TemporaryFile("w+") as log:
        simulator = subprocess.Popen(pytest + [SIMULATED], stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"})
        try:
            cpu = subprocess.call(pytest)
        finally:
            sim = simulator.wait()
        log.seek(0)
        print(f"\n--- {SIMULATED} in Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) ---",
              flush=True)
        sys.stdout.write(log.read())
    print(f"\nCPU tests: exit {cpu}; CUDA simulator tests: exit {sim}")
    return 0 if cpu == 0 and sim == 0 else 1          # (pytest's 5, "no tests", fails too)


if __name__ == "__main__":
    sys.exit(main())
