"""`python -m netsim.cli.warm` leaves nothing for a first `netsim run` to compile."""

import subprocess
import sys

# a fresh interpreter that counts numba compilations (cache loads are not compilations) during `netsim run`
RUN_COUNTING_COMPILES = """
import sys
from numba.core import event
compiled = []
class Count(event.Listener):
    def on_start(self, ev): compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev): pass
event.register("numba:compile", Count())
from netsim.cli import main
assert main(["run", "--no-report", "--json", "-o", sys.argv[1]]) == 0
assert main(["bench", "--topology", sys.argv[2], "--algo", "ring", "-b", "1M", "-e", "1M", "--compress", "4",
             "--json"]) == 0
print("COMPILED", sorted(set(compiled)))
"""


def test_a_run_after_warm_compiles_nothing(tmp_path):
    """The warm-up compiles every kernel with the argument types the default run passes (and a compressed
    ring bench: the cycle bound): numba keys its cache by them, so a type the warm-up missed would be
    compiled (seconds) by the first run. Both interpreters use the same cache (the kernels' __pycache__, or
    NUMBA_CACHE_DIR): cheap once `make` has warmed it."""
    from pathlib import Path

    fabric = Path(__file__).resolve().parents[2] / "topologies" / "leafspine128_2to1.yaml"
    subprocess.run([sys.executable, "-m", "netsim.cli.warm"], check=True, capture_output=True, cwd=tmp_path)
    out = subprocess.run([sys.executable, "-c", RUN_COUNTING_COMPILES, str(tmp_path / "run"), str(fabric)],
                         check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert "COMPILED []" in out, out[-2000:]
