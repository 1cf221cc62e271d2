"""neurohw.energy over SANA-FE: its totals equal a hand count (events x energy per event) on a
network small enough to count, and its event counts equal the ones we count from the spikes."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sanafe")

from neurohw import IntLayer, IntNetwork, energy  # noqa: E402
from neurohw.fit import partition  # noqa: E402


def small():
    """2 inputs -> 3 LIF (recurrent) -> 2 LIF, every weight non-zero (dense format), one neuron
    per core: layer 0 on cores 0-2, layer 1 on cores 3-4, the inputs on core 5. Cores 0-3 are
    tile 0, cores 4-5 tile 1 (one mesh hop north of tile 0)."""
    net = IntNetwork(n_in=2, layers=[
        IntLayer(weights=np.full((3, 2), 2, np.int16), du=0, dv=0, vth=1, rec_weights=np.full((3, 3), -2, np.int16)),
        IntLayer(weights=np.full((2, 3), 4, np.int16), du=0, dv=0, vth=1)])
    x = np.zeros((2, 4, 2), np.uint8)
    x[0, 0, :] = 1
    x[1, 2, 1] = 1                                   # 3 input spikes
    s0 = np.zeros((2, 4, 3), np.uint8)
    s0[0, 1, 0] = s0[0, 2, 1] = s0[1, 3, 2] = 1      # 3 spikes in layer 0
    s1 = np.zeros((2, 4, 2), np.uint8)
    s1[0, 3, 1] = 1                                  # 1 spike in layer 1 (no fan-out)
    return net, x, [s0, s1]


def test_sanafe_totals_equal_a_hand_count():
    net, x, spikes = small()
    fit = partition(net, "loihi1", chunks=[1, 1])
    assert [list(c) for c in fit.core_of()] == [[0, 1, 2], [3, 4]]
    r = energy.simulate(net, fit, x, spikes)
    c = energy.costs()
    # synaptic events: 3 input spikes x 3 targets + 3 layer-0 spikes x (2 forward + 3 recurrent)
    events = 3 * 3 + 3 * 5
    # messages: one per destination core (each neuron has its own core, its own one included)
    messages = 3 * 3 + 3 * (2 + 3)
    # hops: input (tile 1) -> layer 0 (tile 0): 9 messages x 1; layer 0 -> neuron 1 of layer 1 (tile 1): 3 x 1
    hops = 9 + 3
    updates = 5 * 8                                  # 5 LIF neurons x 8 steps (inputs cost nothing)
    fired = 4
    e = r["sanafe"]["energy"]
    assert r["sanafe"]["spikes"] == events and r["sanafe"]["packets_sent"] == messages
    assert e["synapse"] == pytest.approx(events * c["dense_synapse"], rel=1e-12)
    assert e["soma"] == pytest.approx(updates * c["update"] + fired * c["spike"], rel=1e-12)
    assert e["network"] == pytest.approx(messages * c["message"] + hops * c["hop_north_south"], rel=1e-12)
    assert e["total"] == pytest.approx(e["synapse"] + e["soma"] + e["network"], rel=1e-12)
    # the same numbers in neurohw's report, per inference (2 samples)
    assert r["counts_per_inference"] == dict(synaptic_events=events / 2, neuron_updates=updates / 2, spikes=fired / 2,
                                             messages=messages / 2, hops=hops / 2)
    b = r["breakdown_per_inference_J"]
    assert sum(b.values()) == pytest.approx(r["energy_per_inference_J"], rel=1e-12)
    assert b["spikes"] == pytest.approx(fired * c["spike"] / 2, rel=1e-9)
    assert r["time_per_step_s"]["mean"] > 0 and r["time_per_inference_s"] == pytest.approx(
        r["sanafe"]["sim_time"] / 2)


def test_sparse_cores_store_and_process_only_nonzero_synapses():
    """A diagonal layer is stored sparse: SANA-FE processes one synaptic event per input spike
    (its sparse synapse unit), not one per neuron of the core."""
    w = np.eye(40, dtype=np.int16) * 2
    net = IntNetwork(n_in=40, layers=[IntLayer(weights=w, du=0, dv=0, vth=1)])
    fit = partition(net, "loihi1")
    assert fit.layers[0].formats == {"dense": 0, "sparse": 1}
    x = (np.random.default_rng(0).random((3, 5, 40)) < 0.3).astype(np.uint8)
    r = energy.simulate(net, fit, x, [np.zeros((3, 5, 40), np.uint8)])
    assert r["sanafe"]["spikes"] == int(x.sum())
    assert r["sanafe"]["energy"]["synapse"] == pytest.approx(int(x.sum()) * energy.costs()["sparse_synapse"])


@pytest.mark.parametrize("seed", range(4))
def test_conv_edges_are_the_chips_conv(seed):
    """The synapses handed to SANA-FE for a conv / sum-pool layer are exactly the non-zero
    entries of the chip's own conv (neurohw.chip.conv_reference applied to one-hot inputs), and
    SANA-FE charges its conv synapse unit once per event."""
    from neurohw import chip
    from neurohw.energy import _conv_edges
    from neurohw.network import Conv2d
    rng = np.random.default_rng(seed)
    H, W, g = int(rng.integers(3, 8)), int(rng.integers(3, 8)), int(rng.choice([1, 2]))
    C, F, k = 2 * g, 2 * g, int(rng.integers(1, 4))
    s, p, d = int(rng.integers(1, 3)), int(rng.integers(0, 2)), int(rng.integers(1, 3))
    kern = (rng.integers(-1, 2, (F, k, k, C // g)) * 2).astype(np.int16)
    layer = IntLayer(weights=kern, conv=Conv2d(in_shape=(H, W, C), stride=s, padding=p, dilation=d, groups=g),
                     du=0, dv=0, vth=1)
    net = IntNetwork(n_in=H * W * C, layers=[layer])
    dense = np.stack([chip.conv_reference(np.eye(H * W * C)[i], kern, (H, W, C), (s, s), (p, p), (d, d), g)
                      for i in range(H * W * C)])                      # (n_in, n_out)
    src, tgt = _conv_edges(layer)
    assert sorted(zip(src.tolist(), tgt.tolist())) == sorted(zip(*np.nonzero(dense)))
    x = (rng.random((2, 3, H * W * C)) < 0.4).astype(np.uint8)
    r = energy.simulate(net, partition(net, "loihi1"), x, [np.zeros((2, 3, layer.n_out), np.uint8)])
    n_events = int((x.reshape(6, -1).sum(0) * (dense != 0).sum(1)).sum())
    assert r["sanafe"]["spikes"] == n_events
    assert r["sanafe"]["energy"]["synapse"] == pytest.approx(n_events * energy.costs()["conv_synapse"], rel=1e-12)


def test_time_breakdown_is_counts_times_unit_latencies():
    net, x, spikes = small()
    r = energy.simulate(net, partition(net, "loihi1", chunks=[1, 1]), x, spikes)
    lat = energy.costs()["latency"]
    steps = 8
    assert r["synaptic_events_by_unit"] == dict(dense=24, sparse=0, conv=0)
    assert r["busy_time_per_step_s"] == pytest.approx(dict(
        synaptic_events=24 * lat["dense_synapse"] / steps, neuron_updates=5 * lat["update"],
        spikes=4 * lat["spike"] / steps, network=(24 * lat["message"] + 12 * lat["hop_north_south"]) / steps),
        rel=1e-9)
