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


LAVA_DL = "import lava.lib.dl.slayer as s, lava.lib.dl.netx.hdf5 as h; print(s.block.cuba.Dense.__name__, h.Network.__name__)"


def test_lava_dl_import_fails_without_the_hook():
    r = _run(LAVA_DL)
    assert r.returncode != 0
    assert "mutable default" in r.stderr or "cv2" in r.stderr


def test_lava_dl_imports_with_the_hook_and_the_stub_names_what_is_missing():
    r = _run("import neurohw; " + LAVA_DL + "\nimport lava.lib.dl.slayer as s\n"
             "try:\n    s.obd.yolo_base\nexcept ImportError as e:\n    print(e)")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "Dense Network"
    assert "object_detection.yolo_base" in out[1] and "cv2" in out[1] and "torchvision" in out[1]


def test_stub_only_when_a_package_is_missing():
    import neurohw._lava_compat as c
    f = c._Finder()
    import importlib.util
    absent = any(importlib.util.find_spec(m) is None for m in ("cv2", "torchvision"))
    assert (f.find_spec("lava.lib.dl.slayer.object_detection", None) is not None) == absent
    c.STUBS["_neurohw_probe"] = ("numpy",)
    try:
        assert f.find_spec("_neurohw_probe", None) is None                  # numpy present: no stub
    finally:
        del c.STUBS["_neurohw_probe"]
