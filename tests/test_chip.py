"""Hand-written edge cases of the chip's arithmetic (hardware.md), in the emulator and in Lava."""
import numpy as np
import pytest

from neurohw import chip, emu
from neurohw import lava as nlava


def both(net, raster):
    a = emu.run(net, raster, probes=True)
    b = nlava.run(net, raster, probes=True)
    return a, b


def one_input(a_values, steps=None):
    """Column t carries payload a_values[t]; the neuron sees it at index t + 1."""
    steps = steps or len(a_values) + 1
    r = np.zeros((1, steps, 1), np.int32)
    r[0, : len(a_values), 0] = a_values
    return r


@pytest.mark.parity
@pytest.mark.parametrize("a, u_expected", [
    (131072, 8388608),       # u = 2**23 exactly: no wrap
    (-131072, 8388608),      # u = -2**23 wraps to +2**23
    (131073, -8388544),      # just past: one wrap
    (2**20, 50331648),       # far past: still only one wrap
    (131071, 8388544),
    (-131073, 8388544),
    (2**25, -2**31 + 2**24), # a << 6 overflows int32 to -2**31, then +2**24
])
def test_u_wraps_once(neuron, same, a, u_expected):
    """du = 4095 makes u equal to the step's input; the single conditional 24-bit wrap."""
    weight = -1 if a < 0 else 1
    exp = 7 if abs(a) >= 2**24 else 0            # payloads are at most 24 bits
    net = neuron(du=4095, dv=4096, weight=weight, weight_exp=exp)
    x, y = both(net, one_input([abs(a) >> exp]))
    same(x, y, f"a={a}")
    assert x.u[0][0, 1, 0] == u_expected
    # dv = 4096: v is memoryless, v = clip(u), then reset to 0 if above vth_eff
    v = int(np.clip(u_expected, chip.V_MIN, chip.V_MAX))
    spike = v > chip.VTH_RANGE[1] << chip.VTH_SHIFT
    assert x.spikes[0][0, 1, 0] == spike
    assert x.v[0][0, 1, 0] == (0 if spike else v)


@pytest.mark.parity
def test_du_zero_still_decays_and_dv_full(neuron, same):
    net = neuron(du=0, dv=0, weight=1)
    x, y = both(net, one_input([4096], steps=4))
    same(x, y)
    u = x.u[0][0, :, 0]
    assert list(u) == [0, 4096 * 64, 4096 * 64 * 4095 // 4096, (4096 * 64 * 4095 // 4096) * 4095 // 4096]
    # dv = 0: v integrates u without leak
    assert list(x.v[0][0, :, 0]) == list(np.cumsum(u))


@pytest.mark.parity
def test_decay_rounds_toward_zero(neuron, same):
    """Negative currents decay toward zero: -(|p| >> 12), not floor."""
    net = neuron(du=2047, dv=4096, weight=-1)   # factor 2048/4096 = 1/2
    x, y = both(net, one_input([1], steps=5))
    same(x, y)
    assert list(x.u[0][0, :, 0]) == [0, -64, -32, -16, -8]


@pytest.mark.parity
def test_v_saturates_and_threshold_is_strict(neuron, same):
    # v + u past 2**23 saturates (never wraps negative); V_MAX is above every vth_eff, so it spikes
    assert chip.VTH_RANGE[1] << chip.VTH_SHIFT < chip.V_MAX
    net = neuron(du=4095, dv=0, vth=chip.VTH_RANGE[1], weight=1)
    x, y = both(net, one_input([100000] * 4, steps=5))
    same(x, y)
    assert x.v[0][0, 1, 0] == 100000 * 64
    assert x.spikes[0][0, :, 0].tolist() == [0, 0, 1, 0, 1]
    assert x.v[0][0, :, 0].tolist() == [0, 6400000, 0, 6400000, 0]
    # v == vth_eff exactly: no spike; one more: spike and reset to 0
    vth = 1000
    for a, spikes in ((vth, 0), (vth + 1, 1)):
        net = neuron(du=4095, dv=4096, vth=vth, weight=1)
        x, y = both(net, one_input([a]))
        same(x, y)
        assert x.spikes[0][0, 1, 0] == spikes
        assert x.v[0][0, 1, 0] == (0 if spikes else a * 64)


@pytest.mark.parity
def test_v_saturates_negative(neuron, same):
    net = neuron(du=4095, dv=0, weight=-1)
    x, y = both(net, one_input([131000] * 4, steps=5))
    same(x, y)
    assert x.v[0][0, -1, 0] == chip.V_MIN


@pytest.mark.parity
@pytest.mark.parametrize("mant, exp", [(4095, 7), (-4096, 7), (-4096, -7), (-1, -1), (4095, -7), (-3, -1), (5, 0)])
def test_bias_scaling(neuron, same, mant, exp):
    """bias = mant << exp, floor right shift for a negative exponent."""
    net = neuron(du=4095, dv=4096, bias_mant=mant, bias_exp=exp)
    x, y = both(net, one_input([0], steps=3))
    same(x, y)
    expected = mant << exp if exp >= 0 else mant >> -exp
    assert x.v[0][0, 1, 0] == expected


@pytest.mark.parity
def test_large_binary_sums_and_weight_exp(same):
    """64 inputs of weight 255 shifted by weight_exp = 7: sums far past 16 bits."""
    from neurohw import IntLayer, IntNetwork
    net = IntNetwork(n_in=64, layers=[IntLayer(weights=np.full((2, 64), 255), weight_exp=7, du=4095, dv=4096,
                                               vth=chip.VTH_RANGE[1])])
    r = np.ones((1, 3, 64), np.uint8)
    x, y = both(net, r)
    same(x, y)
    a = 64 * 255 << 7
    u = (a << 6) - chip.UV_SPAN if (a << 6) > chip.UV_HALF else a << 6
    assert x.u[0][0, 1, 0] == u


@pytest.mark.parity
def test_negative_weight_exp_floors_the_sum(same):
    from neurohw import IntLayer, IntNetwork
    net = IntNetwork(n_in=3, layers=[IntLayer(weights=np.array([[-2, -2, 4]]), weight_exp=-2, du=4095, dv=4096,
                                              vth=100)])
    r = np.array([[[1, 1, 0], [1, 0, 0], [0, 0, 0]]], np.uint8)
    x, y = both(net, r)
    same(x, y)
    assert list(x.u[0][0, :, 0]) == [0, (-4 >> 2) * 64, (-2 >> 2) * 64]


@pytest.mark.parity
def test_graded_sum_past_16_bits(same):
    from neurohw import IntLayer, IntNetwork
    net = IntNetwork(n_in=4, input_message_bits=8,
                     layers=[IntLayer(weights=np.array([[254, 254, 254, -256]]), du=4095, dv=4096, vth=0)])
    r = np.array([[[255, 255, 0, 0], [255, 0, 0, 255], [0] * 4]], np.int32)
    x, y = both(net, r)
    same(x, y)
    assert 2 * 254 * 255 > 2**16
    assert x.u[0][0, 1, 0] == ((2 * 254 * 255) << 6)
    assert x.u[0][0, 2, 0] == ((254 - 256) * 255 << 6)


def test_timing_convention(neuron):
    """Input column t first moves layer l at index t + 1 + l."""
    from neurohw import IntLayer, IntNetwork
    layers = [IntLayer(weights=np.array([[255]]), du=4095, dv=4096, vth=0) for _ in range(3)]
    net = IntNetwork(n_in=1, layers=layers)
    r = np.zeros((1, 10, 1), np.uint8)
    r[0, 2, 0] = 1
    res = emu.run(net, r)
    for l in range(3):
        assert np.flatnonzero(res.spikes[l][0, :, 0]).tolist() == [2 + 1 + l]


def test_lava_weight_rules_match_measured():
    w = np.array([3, -3, 300, -300, 255, -256, 7, -1, 1])
    assert chip.lava_weights(w).tolist() == [2, -4, 254, -256, 254, -256, 6, -2, 0]
    assert chip.lava_weights(np.array([300, 3])).tolist() == [255, 3]
    assert chip.lava_weights(np.array([-300, -3])).tolist() == [-255, -3]
    assert chip.lava_weights(np.array([-300, -3]), 6).tolist() == [-252, 0]


def test_lava_weight_rules_match_lava_itself():
    """Our clip + truncate equals lava.utils.weightutils on random matrices of every mode and width."""
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights
    rng = np.random.default_rng(5)
    for nwb in range(1, 9):
        for lo, hi in ((-400, 400), (0, 400), (-400, 0)):
            w = rng.integers(lo, hi + 1, (20, 20))
            mode = determine_sign_mode(w)
            ref = truncate_weights(clip_weights(w, mode, num_bits=8), mode, nwb)
            assert np.array_equal(chip.lava_weights(w, nwb), ref), (nwb, lo, hi)


def test_lif_update_reports_wrap_and_saturation():
    """The flags say exactly when u wrapped and v saturated (what reports count)."""
    f = chip.lif_update.py_func
    big = chip.UV_HALF - 1
    # u near the top, input pushes it past 2**23: one wrap, to negative
    u, v, s, fl = f(big, 0, 1000, 0, 4096, chip.VTH_RANGE[1] << chip.VTH_SHIFT, 0, 0, 0, 0)
    assert u < 0 and fl & chip.FLAG_U_WRAP
    # v at the top, positive u: saturates to V_MAX (threshold noise keeps it from spiking)
    u, v, s, fl = f(1000, chip.V_MAX, 0, 0, 0, 0, 0, 0, 0, -(1 << 24))
    assert v == chip.V_MAX and not s and fl == chip.FLAG_V_SAT
    # and at the bottom
    u, v, s, fl = f(-1000, chip.V_MIN, 0, 0, 0, 0, 0, 0, 0, 0)
    assert v == chip.V_MIN and fl == chip.FLAG_V_SAT
    # an ordinary step reports nothing
    assert f(100, 100, 1, 10, 10, 1 << 20, 0, 0, 0, 0)[3] == 0


def test_layer_step_counts_the_flags():
    from neurohw.emu.kernel import layer_step
    from neurohw.noise import NOISE_TABLES
    B, n = 3, 4
    u = np.full((B, n), chip.UV_HALF - 1, np.int64)
    v = np.full((B, n), chip.V_MAX, np.int64)
    acc = np.zeros((B, n), np.int64)
    acc[:, :2] = 1000                       # 2 neurons per sample wrap u
    s, wraps, sats = layer_step(u, v, acc, np.zeros_like(acc), False, 0, 0, False, 0, 0,
                                chip.VTH_RANGE[1] << chip.VTH_SHIFT, np.zeros(n, np.int64),
                                0, 0, 0, 7, 0, NOISE_TABLES, 0, 1, np.arange(B))
    assert wraps == 2 * B
    assert sats == 2 * B                    # the other 2 keep a large positive u: v saturates
    assert s[:, 2:].all() and not s[:, :2].any()   # saturated v is above any threshold


def _lif_python(u, v, a, du, dv, vth_eff, bias, n_u, n_v, n_th):
    """PyLifModelBitAcc's step in Python ints (hardware.md), the oracle for chip.lif_update."""
    def wrap32(x):
        return ((x + 2**31) % 2**32) - 2**31

    def decay(x, f):
        p = x * f
        return -((-p) >> 12) if p < 0 else p >> 12

    cur = wrap32(decay(u, 4096 - (du + 1)) + wrap32(a << 6) + n_u)
    wrapped = cur > 2**23 or cur <= -2**23
    cur += 2**24 if cur <= -2**23 else -2**24 if cur > 2**23 else 0
    vol = wrap32(decay(v, 4096 - dv) + cur + bias + n_v)
    sat = not chip.V_MIN <= vol <= chip.V_MAX
    vol = min(max(vol, chip.V_MIN), chip.V_MAX)
    spike = vol + n_th > vth_eff
    return cur, 0 if spike else vol, spike, chip.FLAG_U_WRAP * wrapped | chip.FLAG_V_SAT * sat


def test_lif_update_full_ranges():
    """chip.lif_update (int32 lanes, split decay) equals the int64 / Python arithmetic over the full
    ranges: u anywhere in int32 (one conditional wrap leaves it there), v and bias at their
    bounds, every decay factor's edge (du, dv = 0, 4095, 4096), inputs whose << 6 overflows, and
    noise terms far outside int32 (n_th too, whose comparison is clamped)."""
    rng = np.random.default_rng(7)
    u_edges = [-2**31, -2**31 + 1, -2**23 - 1, -2**23, -4097, -4096, -1, 0, 1, 4095, 4096, 2**23, 2**31 - 1]
    v_edges = [chip.V_MIN, -1, 0, 1, 4095, chip.V_MAX]
    cases = [(u, v, a, du, dv) for u in u_edges for v in v_edges for a in (0, -2**31, 2**31 - 1, 2**25)
             for du, dv in ((0, 0), (4095, 4096), (0, 4096), (2047, 1))]
    for _ in range(3000):
        cases.append((int(rng.integers(-2**31, 2**31)), int(rng.integers(chip.V_MIN, chip.V_MAX + 1)),
                      int(rng.integers(-2**31, 2**31)), int(rng.integers(0, 4096)), int(rng.integers(0, 4097))))
    for i, (u, v, a, du, dv) in enumerate(cases):
        vth_eff = int(rng.integers(0, 2**17)) << 6
        bias = int(rng.integers(-4096, 4096)) << int(rng.integers(0, 8))
        noise = [0, 0, 0] if i % 2 else [int(rng.integers(-2**40, 2**40)) for _ in range(3)]
        got = chip.lif_update(u, v, a, du, dv, vth_eff, bias, *noise)
        want = _lif_python(u, v, a, du, dv, vth_eff, bias, *noise)
        assert tuple(int(g) for g in got) == tuple(int(w) for w in want), (u, v, a, du, dv, vth_eff, bias, noise)
