"""The Lava-on-3.11 import hook: lava fails without it and works with it."""
import subprocess
import sys

import numpy as np

PROBE = "import lava.magma.compiler.var_model as m; print(hash(m.ByteEncoder()) is not None)"


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_lava_import_fails_without_the_hook():
    r = _run(PROBE)
    if sys.version_info >= (3, 11):
        assert r.returncode != 0 and "mutable default" in r.stderr


def test_lava_imports_with_the_hook():
    r = _run("import neurohw; " + PROBE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_lava_after_numba_parallel_code():
    """Numba's parallel launch fixes the start method; lava's own set_start_method must not fail."""
    code = ("import numpy as np, neurohw; from neurohw import emu, synth; from neurohw import lava as nl;"
            "rng = np.random.default_rng(0); net = synth.random_network(rng, max_layers=1, max_n=4);"
            "x = synth.random_raster(rng, net, 2, 5); emu.run(net, x);"
            "from neurohw.parity import compare; print(len(compare(emu.run(net, x), nl.run(net, x))))")
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("0")


def test_hook_is_idempotent():
    import neurohw._lava_compat as c
    c.install()
    c.install()
    assert sum(isinstance(f, c._Finder) for f in sys.meta_path) == 1
    assert np.__name__ == "numpy"
