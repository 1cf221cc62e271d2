"""Randomized parity: the emulator, Lava and the hardware-exact trainer agree on every spike
and every u and v value."""
import numpy as np
import pytest

from neurohw import chip, emu, synth
from neurohw import lava as nlava
from neurohw.parity import compare
from neurohw.train.hw import run_int_network as hw_exact_run

N_NETWORKS, N_NOISY, CHUNK = 200, 100, 20


def check_chunk(seed, n, p_noise):
    """n random networks and batches; returns stats, asserts zero mismatches."""
    rng = np.random.default_rng(seed)
    stats = dict(spikes=0, recurrent=0, graded=0, layers=0, inject=set(), dist=set(), mismatched=[], hw=0)
    for i in range(n):
        net = synth.random_network(rng, p_noise=p_noise)
        x = synth.random_raster(rng, net, int(rng.integers(1, 4)), int(rng.integers(1, 25)))
        a = emu.run(net, x, probes=True)
        b = nlava.run(net, x, probes=True)
        mism = compare(a, b)
        if net.input_message_bits == 0:          # the trainer takes binary spikes only
            mism += [("hw-exact", m) for m in compare(a, hw_exact_run(net, x))]
            stats["hw"] += 1
        if mism:
            stats["mismatched"].append((i, mism))
        stats["spikes"] += int(sum(s.sum() for s in a.spikes))
        stats["recurrent"] += sum(layer.recurrent for layer in net.layers)
        stats["graded"] += net.input_message_bits > 0
        stats["layers"] += len(net.layers)
        stats["inject"] |= {layer.noise.inject for layer in net.layers}
        stats["dist"] |= {layer.noise.dist for layer in net.layers if layer.noise.on}
    assert not stats["mismatched"], stats["mismatched"]
    return stats


@pytest.mark.parity
@pytest.mark.parametrize("chunk", range(N_NETWORKS // CHUNK))
def test_random_networks(chunk):
    s = check_chunk(1000 + chunk, CHUNK, p_noise=0.0)
    assert s["spikes"] > 0 and s["recurrent"] > 0 and s["hw"] >= CHUNK // 2


@pytest.mark.parity
@pytest.mark.parametrize("chunk", range(N_NOISY // CHUNK))
def test_random_noisy_networks(chunk):
    s = check_chunk(2000 + chunk, CHUNK, p_noise=1.0)
    assert s["inject"] == {"current", "voltage", "threshold"}
    assert s["dist"] == set(chip.NOISE_DIST)      # every distribution, gumbel included
    assert s["spikes"] > 0 and s["recurrent"] > 0 and s["hw"] >= CHUNK // 2


@pytest.mark.parity
def test_chiplif_equals_lava_lif():
    """neurohw's ChipLIF process against Lava's own LIFReset, noiseless feed-forward nets."""
    rng = np.random.default_rng(7)
    for _ in range(15):
        net = synth.random_network(rng, p_recurrent=0.0)
        x = synth.random_raster(rng, net, 2, 16)
        assert not compare(nlava.run(net, x, probes=True), nlava.run(net, x, probes=True, use_lava_lif=False))


@pytest.mark.parity
def test_sample_ids_make_noise_independent_of_batch_order():
    rng = np.random.default_rng(8)
    net = synth.random_network(rng, p_noise=1.0)
    x = synth.random_raster(rng, net, 4, 12, density=0.3)
    perm = np.array([2, 0, 3, 1])
    a = emu.run(net, x, probes=True)
    b = emu.run(net, x[perm], probes=True, sample_ids=perm)
    c = nlava.run(net, x[perm], probes=True, sample_ids=perm)
    for la, lb, lc in zip(a.v, b.v, c.v):
        assert np.array_equal(la[perm], lb) and np.array_equal(lb, lc)


def test_emulator_deterministic_and_threads_independent():
    import numba
    rng = np.random.default_rng(9)
    net = synth.random_network(rng, p_noise=1.0, max_n=32)
    x = synth.random_raster(rng, net, 16, 30, density=0.2)
    a = emu.run(net, x, probes=True)
    numba.set_num_threads(1)
    try:
        b = emu.run(net, x, probes=True)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert not compare(a, b)
    # each sample alone gives the same as within the batch
    c = emu.run(net, x[5:6], probes=True, sample_ids=[5])
    assert all(np.array_equal(s[5:6], t) for s, t in zip(a.spikes, c.spikes))
