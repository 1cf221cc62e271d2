"""The on-chip random source and the noise it makes: exact definition, statistics, physics."""
import mmh3
import numpy as np
import pytest

from neurohw import IntLayer, IntNetwork, Noise, chip, emu
from neurohw.noise import (LOGISTIC_TABLE, draw, escape_probability, murmur3_key, noise_moments)

KEYS = [(0, 0, 0, 0, 0), (1, 2, 3, 4, 5), (2**32 - 1, 7, 2**31, 12345, 2**32 - 1), (42, 3, 255, 99, 1000)]


@pytest.mark.parametrize("key", KEYS)
def test_hash_is_published_murmur3(key):
    seed, *words = key
    data = b"".join(int(w).to_bytes(4, "little") for w in words)
    ref = mmh3.hash(data, seed, signed=False)
    assert murmur3_key.py_func(*key) == ref          # Python ints
    assert murmur3_key(*key) == ref                  # Numba
    arr = murmur3_key.py_func(*(np.array([k], np.int64) for k in key))
    assert int(arr[0]) == ref                        # NumPy


def test_numpy_reference_equals_numba_on_many_keys():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**32, (5, 2000), dtype=np.int64)
    ref = murmur3_key.py_func(*keys)
    assert all(murmur3_key(*(int(k[i]) for k in keys)) == ref[i] for i in range(2000))


def _draws(n=10**6, vary="step", seed=11):
    i = np.arange(n, dtype=np.int64)
    key = dict(seed=seed, layer=1, neuron=3, step=5, sample=7)
    key[vary] = i
    return murmur3_key.py_func(key["seed"], key["layer"], key["neuron"], key["step"], key["sample"])


def test_reproducible_and_distinct_streams():
    a = _draws(1000)
    assert np.array_equal(a, _draws(1000))
    base = dict(seed=1, layer=0, neuron=0, step=0, sample=0)
    streams = []
    for f in base:
        for v in (0, 1):
            k = dict(base, **{f: v})
            k["step"] = np.arange(64) if f != "step" else np.arange(64) + 64 * v
            streams.append(tuple(murmur3_key.py_func(*k.values())))
    assert len(set(streams)) == len(streams) - 4      # each field's value 0 is the same base stream


@pytest.mark.parametrize("vary", ["step", "neuron", "sample", "layer", "seed"])
def test_uniformity_chi_square(vary):
    """8-bit and 16-bit outputs over 10**6 draws; chi-square within 5 sigma of its mean."""
    h = _draws(vary=vary)
    for bits in (8, 16):
        counts = np.bincount((h >> (32 - bits)).astype(np.int64), minlength=1 << bits)
        e = h.size / (1 << bits)
        chi2 = ((counts - e) ** 2 / e).sum()
        dof = (1 << bits) - 1
        assert abs(chi2 - dof) < 5 * np.sqrt(2 * dof), (bits, chi2)


@pytest.mark.parametrize("vary", ["step", "neuron", "sample"])
def test_no_correlation_between_neighbours(vary):
    r = (_draws(vary=vary) >> 24).astype(np.float64)
    assert abs(np.corrcoef(r[:-1], r[1:])[0, 1]) < 0.01
    # and between neighbouring neurons/samples at the same index of another axis
    other = "sample" if vary != "sample" else "neuron"
    i = np.arange(10**5, dtype=np.int64)
    k0 = dict(seed=3, layer=0, neuron=0, step=0, sample=0)
    k0[vary] = i
    k1 = dict(k0, **{other: 1})
    a = murmur3_key.py_func(*k0.values()) >> 24
    b = murmur3_key.py_func(*k1.values()) >> 24
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01


def test_logistic_table():
    assert LOGISTIC_TABLE.shape == (256,)
    assert np.array_equal(LOGISTIC_TABLE, -LOGISTIC_TABLE[::-1])
    assert np.all(np.diff(LOGISTIC_TABLE) >= 0) and LOGISTIC_TABLE.max() == 100


@pytest.mark.parametrize("mant, exp", [(0, 7), (0, 0), (3, 10), (-2, 4), (0, 23)])
def test_amplitude(mant, exp):
    nz = Noise(inject="voltage", mant=mant, exp=exp)
    v = nz.values()
    x = np.arange(256) - 128 + 64 * mant
    assert np.array_equal(v, x << (exp - 7) if exp >= 7 else x >> (7 - exp))
    assert np.array_equal(np.sort(draw(0, 0, 0, np.arange(5000), 0, "uniform", mant, exp)) [[0, -1]],
                          [v.min(), v.max()])


def _held_neuron(noise, vth, bias_v):
    """A neuron whose v is pinned to bias_v every step (dv = 4096, no input, bias = v)."""
    mant, exp = bias_v, 0
    assert chip.BIAS_MANT_RANGE[0] <= mant <= chip.BIAS_MANT_RANGE[1]
    layer = IntLayer(weights=np.zeros((1, 1), np.int16), du=4095, dv=4096, vth=vth,
                     bias_mant=np.array([mant]), bias_exp=np.array([exp]), noise=noise)
    return IntNetwork(n_in=1, layers=[layer])


@pytest.mark.parametrize("dist", ["uniform", "logistic"])
def test_threshold_noise_fires_with_the_analytic_escape_probability(dist):
    """A neuron held at each of 24 v values fires with P(v + n > vth_eff), 10**5 draws each."""
    vth = 16
    vth_eff = vth << chip.VTH_SHIFT
    noise = Noise(inject="threshold", dist=dist, exp=10, seed=5)      # n = x * 8: within +-1024
    span = np.abs(noise.values()).max()
    vs = np.linspace(vth_eff - 1.05 * span, vth_eff + 1.05 * span, 24).astype(np.int64)
    ps = escape_probability(vs, vth_eff, noise)
    assert ps[0] == 0 and ps[-1] == 1 and np.sum((ps > 0) & (ps < 1)) >= 20
    for v in vs:
        net = _held_neuron(noise, vth, int(v))
        res = emu.run(net, np.zeros((100, 1001, 1), np.uint8))
        fired = res.spikes[0][:, 1:, 0]
        p = escape_probability(v, vth_eff, noise)
        se = np.sqrt(max(p * (1 - p), 1e-12) / fired.size)
        assert abs(fired.mean() - p) <= 4 * se + 1e-12, (v, fired.mean(), p)


def test_escape_probability_is_a_monotone_staircase():
    nz = Noise(inject="threshold", dist="logistic", exp=7)
    v = np.arange(-300, 300)
    p = escape_probability(v, 0, nz)
    assert p[0] == 0 and p[-1] == 1 and np.all(np.diff(p) >= 0)
    # logistic: P close to sigmoid(v / 16) in raw units
    sig = 1 / (1 + np.exp(-v / chip.LOGISTIC_SCALE))
    assert np.max(np.abs(p - sig)) < 0.01


@pytest.mark.parametrize("dist", ["uniform", "logistic"])
def test_voltage_noise_variance(dist):
    """dv = 4096 and no input: v is the noise itself each step, so its variance is analytic."""
    noise = Noise(inject="voltage", dist=dist, exp=9, mant=1, seed=9)
    net = _held_neuron(noise, chip.VTH_RANGE[1], 0)
    res = emu.run(net, np.zeros((50, 2001, 1), np.uint8), probes=True)
    v = res.v[0][:, 1:, 0].astype(np.float64)
    mean, var = noise_moments(noise)
    n = v.size
    assert abs(v.mean() - mean) < 5 * np.sqrt(var / n)
    assert abs(v.var() / var - 1) < 5 * np.sqrt(2 / n) * 2


def test_current_noise_accumulates_as_ar1():
    """Current noise with du: u is an AR(1) process; its stationary variance follows."""
    noise = Noise(inject="current", dist="uniform", exp=10, seed=2)
    layer = IntLayer(weights=np.zeros((1, 1), np.int16), du=1023, dv=4096, vth=chip.VTH_RANGE[1], noise=noise)
    net = IntNetwork(n_in=1, layers=[layer])
    res = emu.run(net, np.zeros((50, 2001, 1), np.uint8), probes=True)
    u = res.u[0][:, 200:, 0].astype(np.float64)
    _, var = noise_moments(noise)
    a = (4096 - 1024) / 4096
    assert abs(u.var() / (var / (1 - a * a)) - 1) < 0.05


def test_gumbel_threshold_noise_is_a_per_step_exponential_clock():
    """Gumbel threshold noise of scale s escapes with 1 - exp(-exp((v - vth) / s)): the SLIF clock's
    P(spike in a step) = 1 - exp(-lambda dt), up to the table's 256 levels and its rounding."""
    nz = Noise(inject="threshold", dist="gumbel", exp=9)                  # s = 16 * 4 = 64 raw units
    s = chip.GUMBEL_SCALE * 4
    v = np.arange(-400, 700)
    p = escape_probability(v, 0, nz)
    clock = 1 - np.exp(-np.exp(v / s))
    assert np.all(np.diff(p) >= 0) and p[-1] == 1
    # staircase of 256 levels + table rounding (half a table unit = 2 raw units at the max density)
    assert np.max(np.abs(p - clock)) < 1.5 / 256 + 2 / (np.e * s)
    logistic = escape_probability(v, 0, Noise(inject="threshold", dist="logistic", exp=9))
    assert np.max(np.abs(logistic - clock)) > 0.05                        # a different law
    # the emulator fires with it (neuron held at v, 10**5 draws each)
    vth = 16
    vth_eff = vth << chip.VTH_SHIFT
    nz = Noise(inject="threshold", dist="gumbel", exp=10, seed=3)
    for v in (vth_eff - 150, vth_eff, vth_eff + 60):
        fired = emu.run(_held_neuron(nz, vth, int(v)), np.zeros((100, 1001, 1), np.uint8)).spikes[0][:, 1:, 0]
        q = escape_probability(v, vth_eff, nz)
        assert 0.02 < q < 0.98 and abs(fired.mean() - q) <= 4 * np.sqrt(q * (1 - q) / fired.size)
