"""The emulator's projection paths (event, matvec and table int32 / int64, dense float32 / float64) give the same
spikes, u, v and wrap / saturation counts as a plain int64 step-by-step oracle, on random
networks and on weights that sit exactly at each exactness bound."""
import numpy as np
import pytest

from neurohw import IntLayer, IntNetwork, Noise, emu, synth
from neurohw.emu import project
from neurohw.emu.reference import reference_run

FORCED = [("event", "int32"), ("event", "int64"), ("matvec", "int32"), ("matvec", "int64"),
          ("table", "int32"), ("table", "int64"), ("dense", "float32"), ("dense", "float64"),
          ("event", "auto"), ("matvec", "auto"), ("table", "auto"), ("dense", "auto"), ("auto", "auto")]


def check_all_paths(net, x, ids=None):
    """Run every exact forced path; all must equal the oracle bit for bit. Returns the paths run."""
    ref, wraps, sats = reference_run(net, x, ids)
    ran = []
    for path, acc in FORCED:
        try:
            got = emu.run(net, x, probes=True, sample_ids=ids, path=path, acc=acc, flags=True)
        except ValueError as e:      # a forced accumulator that is not exact for some layer,
            assert "not exact" in str(e) or "needs binary" in str(e), e     # or a table for payloads
            continue
        for name in ("spikes", "u", "v"):
            for i, (a, b) in enumerate(zip(getattr(got, name), getattr(ref, name))):
                np.testing.assert_array_equal(a, b, err_msg=f"{path}/{acc}: {name} of layer {i}")
        assert (got.wraps, got.sats) == (wraps, sats), (path, acc)
        ran.append((path, acc))
    return ran, wraps, sats


def test_random_networks_all_paths():
    rng = np.random.default_rng(12)
    seen, flags = set(), [0, 0]
    for _ in range(20):
        net = synth.random_network(rng, p_noise=0.5)
        x = synth.random_raster(rng, net, int(rng.integers(1, 4)), int(rng.integers(1, 16)))
        ran, wraps, sats = check_all_paths(net, x, rng.integers(0, 1000, x.shape[0]))
        seen |= set(ran)
        flags[0] += sum(wraps)
        flags[1] += sum(sats)
    assert seen == set(FORCED)
    assert flags[0] > 0 and flags[1] > 0          # the counts were exercised, not just zero


def edge_net(row, n_in, bits=0, weight_exp=0):
    """One neuron per row of `row` values over n_in inputs (a worst-case weight row)."""
    w = np.array([np.full(n_in, r) for r in row], np.int16)
    return IntNetwork(n_in=n_in, input_message_bits=bits, layers=[
        IntLayer(weights=w, du=0, dv=0, vth=1000, weight_exp=weight_exp, noise=Noise("threshold", "uniform", 0, 4, 3))])


def test_float32_bound_exactly():
    # binary spikes: 65536 inputs at -256 sum to exactly -2**24, the float32 limit
    net = edge_net([-256, 254, 0], 1 << 16)
    assert project.exact_accs(net.layers[0].weights, 1, False) == {"int32", "int64", "float32", "float64"}
    x = np.ones((2, 3, 1 << 16), np.uint8)
    x[1, 1, ::3] = 0
    ran, _, _ = check_all_paths(net, x)
    assert ("dense", "float32") in ran
    # one more input: float32 is no longer exact, forcing it is refused, auto picks float64 / int32
    net = edge_net([-256, 2], (1 << 16) + 1)
    assert "float32" not in project.exact_accs(net.layers[0].weights, 1, False)
    with pytest.raises(ValueError, match="not exact"):
        emu.run(net, np.ones((1, 2, net.n_in), np.uint8), path="dense", acc="float32")
    assert project.plan(net.layers[0].weights, 1, False, 1.0, path="dense") == project.Plan("dense", "float64")
    assert project.plan(net.layers[0].weights, 1, False, 1.0) == project.Plan("matvec", "int32")   # two neurons
    check_all_paths(net, np.ones((1, 3, net.n_in), np.uint8))


def test_int32_bound_exactly():
    # 2**23 inputs at -256: the sum is exactly -2**31, int32's lowest value
    n = 1 << 23
    net = edge_net([-256, 2], n, weight_exp=-8)
    assert "int32" in project.exact_accs(net.layers[0].weights, 1, False)
    x = np.ones((1, 2, n), np.uint8)
    ran, _, _ = check_all_paths(net, x)
    assert {("event", "int32"), ("table", "int32"), ("dense", "float64")} <= set(ran)
    net = edge_net([-256, 2], n + 1, weight_exp=-8)
    assert "int32" not in project.exact_accs(net.layers[0].weights, 1, False)
    # two neurons: the matrix-vector step is the cheaper one, and it must fall back to int64 too
    assert project.plan(net.layers[0].weights, 1, False, 0.0) == project.Plan("matvec", "int64")
    assert project.plan(net.layers[0].weights, 1, False, 0.0, path="event") == project.Plan("event", "int64")
    for path in ("event", "matvec"):
        with pytest.raises(ValueError, match="not exact"):
            emu.run(net, np.ones((1, 2, n + 1), np.uint8), path=path, acc="int32")
    ran, _, _ = check_all_paths(net, np.ones((1, 2, n + 1), np.uint8))
    assert {("event", "int64"), ("matvec", "int64"), ("table", "int64")} <= set(ran)
    assert ("event", "int32") not in ran and ("table", "int32") not in ran


@pytest.mark.parametrize("bits", [16, 17, 24])
def test_graded_payloads_at_the_bounds(bits):
    """One payload up to 2**bits - 1 times -256: float32 exact through 16 bits; int32 always, since
    the chip multiplies payloads in int32 and wraps the sum (products here reach -2**32)."""
    net = edge_net([-256, 254 if bits != 24 else 2, 0], 1, bits=bits, weight_exp=-3)
    hi = (1 << bits) - 1
    x = np.full((2, 5, 1), hi, np.int32)
    x[1, 2:4] = hi - 1
    ran, _, _ = check_all_paths(net, x)
    assert (("dense", "float32") in ran) == (bits <= 16)
    assert {("event", "int32"), ("matvec", "int32"), ("dense", "float64")} <= set(ran)


def test_hw_exact_trainer_uses_the_same_kernel():
    import torch
    from neurohw.quant import from_int_network
    from neurohw.train.hw import HwExactNet
    rng = np.random.default_rng(5)
    n_checked = 0
    while n_checked < 6:
        net = synth.random_network(rng, p_noise=0.5, graded=False)
        x = synth.random_raster(rng, net, 3, 12)
        ref, wraps, sats = reference_run(net, x)
        fnet, plans = from_int_network(net)
        with torch.no_grad():
            out = HwExactNet(fnet, plans)(torch.as_tensor(x, dtype=torch.float32), record=True)
        for name in ("spikes", "u", "v"):
            for a, b in zip(out["int"][name], getattr(ref, name)):
                np.testing.assert_array_equal(a, b)
        assert (out["wraps"], out["sats"]) == (wraps, sats)
        n_checked += 1


def test_bad_path_names():
    net = edge_net([1], 2)
    with pytest.raises(ValueError, match="path"):
        emu.run(net, np.zeros((1, 2, 2), np.uint8), path="gemm")
    with pytest.raises(ValueError, match="acc"):
        emu.run(net, np.zeros((1, 2, 2), np.uint8), acc="int16")
    with pytest.raises(ValueError, match="needs path"):
        emu.run(net, np.zeros((1, 2, 2), np.uint8), path="event", acc="float32")
    with pytest.raises(ValueError, match="needs path"):
        emu.run(net, np.zeros((1, 2, 2), np.uint8), path="matvec", acc="float64")


@pytest.mark.parametrize("n_in", [1, 3, 4, 5, 13, 64])
def test_table_rows_are_subset_sums(n_in):
    """Row g * 16 + p of the group table is the sum of the weights of group g's inputs set in p,
    zero for the padding of a last partial group; a dense random raster (every pattern, auto picks
    the table above TABLE_MIN_DENSITY) runs equal to the oracle."""
    rng = np.random.default_rng(n_in)
    w = rng.integers(-128, 128, (7, n_in)) * 2          # mixed-sign 8-bit weights: even values
    t = project.table_rows(w)
    assert t.dtype == np.int16 and t.shape == (-(-n_in // 4) * 16, 7)
    for g in range(-(-n_in // 4)):
        for p in range(16):
            cols = [4 * g + b for b in range(4) if p >> b & 1 and 4 * g + b < n_in]
            np.testing.assert_array_equal(t[g * 16 + p], w[:, cols].sum(axis=1))
    assert project.plan(w, 1, False, project.TABLE_MIN_DENSITY).path in ("table", "matvec")
    assert project.plan(w, 1, False, project.TABLE_MIN_DENSITY - 0.01).path != "table"
    assert project.plan(w, 255, True, 1.0).path != "table"
    net = IntNetwork(n_in=n_in, layers=[IntLayer(weights=w.astype(np.int16), vth=300, du=100, dv=200),
                                        IntLayer(weights=(rng.integers(-128, 128, (300, 7)) * 2).astype(np.int16), vth=900,
                                                 du=4095, dv=300)])
    x = (rng.random((3, 20, n_in)) < 0.6).astype(np.uint8)
    ran, _, _ = check_all_paths(net, x)
    assert ("table", "int32") in ran


def test_gather_finds_every_spike():
    """project.gather (8 bytes per step for uint8 spikes, one by one for int32 payloads) lists
    the non-zero inputs in order, for every length around the 8-byte words and every density."""
    from numba import njit

    @njit
    def run(x, idx):
        return project.gather(x, idx)

    rng = np.random.default_rng(5)
    for n in list(range(0, 26)) + [63, 64, 65, 512]:
        for p in (0.0, 0.1, 0.5, 1.0):
            for dtype in (np.uint8, np.int32):
                x = (rng.random(n) < p).astype(dtype) * (1 if dtype == np.uint8 else rng.integers(1, 9, n).astype(dtype))
                idx = np.full(n + 8, -7, np.int32)
                cnt = run(x, idx)
                assert cnt == np.count_nonzero(x) and np.array_equal(idx[:cnt], np.flatnonzero(x)), (n, p, dtype)
