"""The public Python API: `netsim`'s names, their docstring examples, unit strings, reprs."""

import doctest
import importlib
import subprocess
import sys

import pytest

import netsim
from netsim.errors import ConfigError


@pytest.mark.parametrize("name", ["netsim", "netsim.collectives.sequence", "netsim.sim.results",
                                  "netsim.topology.config", "netsim.units"])
def test_docstring_examples_run_and_print_what_they_show(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_every_public_name_resolves_and_import_netsim_loads_nothing_heavy():
    for name in netsim.__all__:
        if name != "train":  # (needs the train extra; resolved where it is installed)
            assert getattr(netsim, name) is not None
    code = "import sys, netsim\nprint(sorted(m for m in ('numpy', 'polars', 'simpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sizes_take_unit_strings_and_refuse_fractional_bytes():
    topo = netsim.load_topology("nvlink8")
    ends = []
    for size in ("64MiB", 64 * 2**20, 64.0 * 2**20):
        sim = netsim.Simulation(topo, record_links=False)
        comm = netsim.Communicator(sim, topo.gpus)
        ends.append(sim.run(comm.all_reduce(size, algo="ring")).summary()["time_s"][0])
    assert ends[0] == ends[1] == ends[2]
    sim = netsim.Simulation(topo, record_links=False)
    comm = netsim.Communicator(sim, topo.gpus)
    for bad, words in ((2**30 + 0.5, "not a whole number of bytes"), ("1 lightyear", "size"), ("-1MiB", ">= 0")):
        with pytest.raises(ConfigError, match=words) as info:
            comm.all_reduce(bad)
        assert info.value.field == "size"


def test_summary_busbw_is_the_nccl_tests_factor_times_algbw():
    topo = netsim.load_topology("nvlink8")
    sim = netsim.Simulation(topo, record_links=False)
    comm = netsim.Communicator(sim, topo.gpus)
    results = sim.run(comm.all_gather("8MiB", algo="ring"))
    row = results.summary().row(0, named=True)
    assert row["algbw_Bps"] == pytest.approx(8 * 2**20 / row["time_s"], rel=1e-12)
    assert row["busbw_Bps"] == pytest.approx(row["algbw_Bps"] * 7 / 8, rel=1e-12)


def test_reprs_are_short():
    topo = netsim.load_topology("fattree1024")
    assert repr(topo).startswith("Topology('fattree1024': 1,024 GPUs") and len(repr(topo)) < 200
    assert "<p>" in topo._repr_html_()
    sim = netsim.Simulation(netsim.load_topology("nvlink8"), record_links=False)
    results = sim.run(netsim.Communicator(sim, sim.topology.gpus).barrier())
    assert repr(results).startswith("Results(") and len(repr(results)) < 300
    assert "<table" in results._repr_html_()


def test_the_readme_python_example_runs(capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("```python\nimport netsim\n")
    code = text[start + len("```python\n"):text.index("```", start + 10)]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert "busbw_Bps" in capsys.readouterr().out
    assert len(scope["ends"]) == 2 and scope["ends"][0] < scope["ends"][1]


def test_the_tutorial_runs(tmp_path):
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "tutorial.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Topology('rail64'" in out.stdout and "program: 1 ms of compute" in out.stdout
