"""netx HDF5 in and out, judged by lava-dl's own loader (lava.lib.dl.netx.hdf5.Network) in Lava."""
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import neurohw
from neurohw import chip, emu, synth
from neurohw.interop import netx
from neurohw.network import Conv2d, IntLayer, IntNetwork
from neurohw.parity import compare

pytest.importorskip("h5py")
pytest.importorskip("lava.lib.dl.netx")

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("weights", "weight_exp", "num_weight_bits", "rec_weights", "rec_weight_exp", "rec_num_weight_bits",
          "du", "dv", "vth", "bias_mant", "bias_exp", "delays")


def _fit(w, nwb):
    while not np.array_equal(f := chip.lava_weights(w, nwb), w):
        w = f
    return w


def _shrink_by_exp(layer, e: int) -> None:
    """Move a layer's (and its recurrent) weights onto weight_exp e: magnitudes shifted right by
    e (e > 0) or onto the 2**-e grid (e < 0), then onto Lava's grid for their bit width."""
    for wk, ek, bk in (("weights", "weight_exp", "num_weight_bits"),
                       ("rec_weights", "rec_weight_exp", "rec_num_weight_bits")):
        w = getattr(layer, wk)
        if w is None:
            continue
        w = w.astype(np.int64)
        w = np.sign(w) * (np.abs(w) >> max(e, 0))
        if e < 0:
            w = np.sign(w) * (np.abs(w) >> -e << -e)
        setattr(layer, wk, _fit(w, getattr(layer, bk)).astype(np.int16))
        setattr(layer, ek, e)


def _netx_candidate(rng, max_layers=2, max_n=10):
    """synth's random network (full ranges, all sign modes, graded inputs, recurrence) moved onto
    what netx can express: weights shrunk by weight_exp (-2..7), biases on netx's 64 grid
    (bias_exp 6 or 7), no noise; a quarter of the feed-forward layers get delays. Biases before
    recurrent and delayed layers stay: netx.check refuses the few whose start-up would differ."""
    net = synth.random_network(rng, max_layers=max_layers, max_n=max_n, p_recurrent=0.3)
    for layer in net.layers:
        _shrink_by_exp(layer, int(rng.choice([-2, -1, 0, 0, 1, 2, 3, 7])))
        if rng.random() < 0.15:
            layer.vth = int(rng.choice(chip.VTH_RANGE))
        bexp = rng.choice([6, 7], size=layer.n_out)
        layer.bias_exp = bexp.astype(np.int8)
        layer.bias_mant = np.where(bexp == 7, layer.bias_mant // 2, layer.bias_mant).astype(np.int16)
    for layer in net.layers:                 # delayed Dense (netx DelayDense), delays 0..62
        if not layer.recurrent and rng.random() < 0.25:
            layer.delays = synth.random_delays(rng, layer.weights.shape) % 63
    return IntNetwork(n_in=net.n_in, layers=net.layers, input_message_bits=net.input_message_bits)


def netx_networks(seed, count):
    """`count` random networks netx can express (candidates it refuses are drawn again)."""
    rng, out, refused = np.random.default_rng(seed), [], 0
    while len(out) < count:
        net = _netx_candidate(rng)
        try:
            netx.check(net)
        except netx.NetxError:
            refused += 1
            continue
        out.append(net)
    return out, refused


@pytest.mark.slow
def test_random_networks_run_identically_through_lava_dl_netx(tmp_path):
    """>= 50 random networks exported, loaded by lava-dl's netx in Lava: 0 mismatched spikes, u, v;
    biases before recurrent and delayed layers included (the start-up rule lets them through)."""
    nets, _ = netx_networks(seed=14, count=50)
    modes = {chip.sign_mode(x.weights) for n in nets for x in n.layers}
    assert modes == {chip.SIGN_EXCITATORY, chip.SIGN_MIXED, chip.SIGN_INHIBITORY}
    assert any(x.recurrent for n in nets for x in n.layers) and any(n.input_message_bits for n in nets)
    assert sum(any(x.kind == "delay" for x in n.layers) for n in nets) >= 5
    assert any(x.recurrent and np.any(x.bias) for n in nets for x in n.layers)
    assert any(x.kind == "delay" and any(np.any(y.bias) for y in n.layers[:k])
               for n in nets for k, x in enumerate(n.layers))
    assert {x.weight_exp for n in nets for x in n.layers} >= {-2, 0, 7}
    for edge in ((0, "du"), (chip.DU_RANGE[1], "du"), (0, "dv"), (chip.DV_RANGE[1], "dv"), (0, "vth"),
                 (chip.VTH_RANGE[1], "vth")):
        assert any(getattr(x, edge[1]) == edge[0] for n in nets for x in n.layers), edge
    rng = np.random.default_rng(1)
    xs = [synth.random_raster(rng, net, 2, 10) for net in nets]
    paths = [netx.export(net, tmp_path / f"n{i}.h5") for i, net in enumerate(nets)]
    spiking = 0
    for a in range(0, len(nets), 10):            # ten networks per Lava run (one start-up)
        got = netx.run_many([(p, x, n.input_message_bits) for p, x, n in
                             zip(paths[a:a + 10], xs[a:a + 10], nets[a:a + 10])])
        for i, (net, x, res) in enumerate(zip(nets[a:a + 10], xs[a:a + 10], got), start=a):
            assert compare(emu.run(net, x, probes=True), res) == [], f"network {i}"   # spikes, u and v
            spiking += any(s.any() for s in res.spikes)
    assert spiking >= 20          # 24 of the 50 spike somewhere (seed 14)


def test_round_trip_neurohw_netx_neurohw_is_the_identity(tmp_path):
    nets, _ = netx_networks(seed=5, count=40)
    for i, net in enumerate(nets):
        back = netx.load(netx.export(net, tmp_path / "n.h5"))
        assert back.n_in == net.n_in and back.input_message_bits == net.input_message_bits
        for a, b in zip(net.layers, back.layers):
            for f in FIELDS:
                x, y = getattr(a, f), getattr(b, f)
                assert (x is None and y is None) or np.array_equal(x, y), (i, f)


def test_a_file_without_our_attributes_imports_to_the_same_behaviour(tmp_path):
    """Canonical decomposition (no neurohw hints): a different but equivalent IntNetwork."""
    import h5py
    nets, _ = netx_networks(seed=6, count=6)
    rng = np.random.default_rng(2)
    for i, net in enumerate(nets):
        p = netx.export(net, tmp_path / "n.h5")
        with h5py.File(p, "a") as f:
            for g in f["layer"].values():
                for k in list(g.attrs):
                    del g.attrs[k]
        back = netx.load(p)
        back.input_message_bits = net.input_message_bits
        x = synth.random_raster(rng, net, 3, 12)
        assert compare(emu.run(net, x), emu.run(back, x)) == [], i


def _layer(**kw):
    d = dict(weights=np.array([[2, -4], [6, 8]], np.int16), du=10, dv=20, vth=100,
             bias_mant=np.array([1, 2], np.int16), bias_exp=np.array([6, 6], np.int8))
    d.update(kw)
    return IntLayer(**d)


@pytest.mark.parametrize("layer, words", [
    (_layer(noise=neurohw.Noise(inject="current", mant=1, exp=3, seed=1)), ["layer 0", "noise"]),
    (_layer(bias_exp=np.array([0, 6], np.int8)), ["layer 0", "bias", "neuron 0", "multiple of 64"]),
    (_layer(weights=np.array([[6, -10], [6, 8]], np.int16), weight_exp=-2), ["layer 0", "weight_exp = -2"]),
    (_layer(weights=np.array([[0, 0], [0, 0]], np.int16)), ["layer 0", "all zero"]),
    (_layer(weight_exp=6), ["layer 0", "weight", "[-256, 254]"]),
    (_layer(rec_weights=np.array([[0, 2], [2, 0]], np.int16), bias_mant=np.array([4000, 0], np.int16)),
     ["layer 0", "recurrent", "neuron 0", "step 1", "reset"]),
])
def test_export_refuses_what_netx_cannot_express(tmp_path, layer, words):
    net = IntNetwork(n_in=2, layers=[layer])
    with pytest.raises(netx.NetxError) as e:
        netx.export(net, tmp_path / "x.h5")
    for w in words:
        assert w in str(e.value)
    assert not (tmp_path / "x.h5").exists() and not list(tmp_path.iterdir())


def test_import_names_unsupported_blocks(tmp_path):
    import h5py
    p = tmp_path / "avg.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("layer/0")
        g.create_dataset("type", (1,), "S10", [b"average"])
    with pytest.raises(netx.NetxError, match=r"layer/0: block type 'average' is not supported"):
        netx.load(p)


def test_slayer_trained_network_imports_and_matches_netx_in_lava(tmp_path):
    """A CUBA Dense net trained by lava-dl slayer, exported by slayer, imported by neurohw:
    emulator == lava-dl's netx in Lava, spike for spike."""
    import torch
    import lava.lib.dl.slayer as slayer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n_in, T, N = 12, 24, 64
    labels = rng.integers(0, 2, N)
    hi_lo, lo_hi = np.r_[np.full(6, .5), np.full(6, .05)], np.r_[np.full(6, .05), np.full(6, .5)]
    rates = np.where(labels[:, None] == 1, hi_lo, lo_hi)
    x = (rng.random((N, T, n_in)) < rates[:, None, :]).astype(np.float32)
    params = dict(threshold=1.0, current_decay=0.25, voltage_decay=0.03, requires_grad=False)

    model = _slayer_net([slayer.block.cuba.Dense(params, n_in, 16, weight_norm=False),
                         slayer.block.cuba.Dense(params, 16, 2, weight_norm=False)])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt = torch.tensor(x).permute(0, 2, 1)          # slayer: [N, C, T]
    yt = torch.tensor(labels)
    t0 = time.time()
    for _ in range(8):
        out = model(xt)
        loss = torch.nn.functional.cross_entropy(out.sum(-1), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert time.time() - t0 < 60
    path = tmp_path / "slayer.h5"
    model.export_hdf5(path)

    net = netx.load(path)
    assert [x.n_out for x in net.layers] == [16, 2] and net.n_in == n_in
    raster = x[:6].astype(np.uint8)
    ours = emu.run(net, raster)
    theirs = netx.run(path, raster)
    assert compare(ours, theirs) == []
    assert sum(int(s.sum()) for s in ours.spikes) > 0


def test_export_refuses_delays_after_bias_and_in_recurrent_layers(tmp_path):
    d = np.ones((2, 2), np.int64)
    loud = _layer(bias_mant=np.array([4000, 0], np.int16))          # spikes at netx's step 1 from its bias
    net = IntNetwork(n_in=2, layers=[loud, _layer(delays=d, bias_mant=np.zeros(2, np.int16))])
    with pytest.raises(netx.NetxError, match=r"layer 1: delayed, and layer 0's neuron 0 spikes from its bias at "
                                             r"netx's step 1, before its first reset: through delay 1"):
        netx.export(net, tmp_path / "x.h5")
    net = IntNetwork(n_in=2, layers=[_layer(delays=d, bias_mant=np.zeros(2, np.int16),
                                            rec_weights=np.array([[0, 2], [2, 0]], np.int16))])
    with pytest.raises(netx.NetxError, match=r"layer 0: delays in a recurrent layer"):
        netx.export(net, tmp_path / "x.h5")


def test_bias_before_recurrent_and_delayed_layers_is_fine_when_it_spikes_no_one_early(tmp_path):
    """The start-up rule is exact: biases that make no neuron spike before its layer's first reset
    (early_spikes) export, and netx in Lava = emulator, spikes, u and v; the early spikes that
    die at the resets (a feed-forward layer's) are harmless too."""
    rng = np.random.default_rng(4)
    d = rng.integers(0, 5, (3, 2))
    quiet = _layer(bias_mant=np.array([40, -30], np.int16))          # 2560 / 6400: no early spike
    loud = _layer(bias_mant=np.array([4000, 0], np.int16))           # spikes early, but only into Dense
    w3 = np.array([[4, 6], [-8, 2], [6, 6]], np.int16)
    nets = [IntNetwork(n_in=2, layers=[quiet, _layer(weights=w3, bias_mant=np.array([3, 0, 1], np.int16),
                                                      bias_exp=np.full(3, 6, np.int8), delays=d)]),
            IntNetwork(n_in=2, layers=[_layer(bias_mant=np.array([40, 20], np.int16),
                                              rec_weights=np.array([[0, 20], [-20, 0]], np.int16))]),
            IntNetwork(n_in=2, layers=[loud, _layer(weights=w3, bias_mant=np.zeros(3, np.int16),
                                                    bias_exp=np.zeros(3, np.int8))])]
    assert netx.early_spikes(nets[2])[0].any()
    items = []
    for i, net in enumerate(nets):
        x = synth.random_raster(rng, net, 2, 14, density=0.4)
        items.append((netx.export(net, tmp_path / f"n{i}.h5"), x, 0))
    for net, (p, x, _), res in zip(nets, items, netx.run_many(items)):
        assert compare(emu.run(net, x, probes=True), res) == []
        assert any(s.any() for s in res.spikes)


# ================================================================================================
# conv, sum-pool and flatten
# ================================================================================================
def _netx_conv_candidate(rng):
    """synth's random projection network (maps odd and even, kernels 1..7, strides, paddings,
    dilations, groups, every sign mode, graded inputs, delays), with dense weights shrunk by a
    weight_exp (-1..3) and biases on netx's 64 grid; None if the draw is not a valid network."""
    net = synth.random_projection_network(rng, max_layers=3, max_map=9, max_n=40, p_recurrent=0.15,
                                          kinds=("conv", "conv", "pool", "dense", "delay"))
    for layer in net.layers:
        if layer.kind in ("dense", "delay"):
            _shrink_by_exp(layer, int(rng.choice([-1, 0, 0, 1, 3])))
        bexp = rng.choice([6, 7], size=layer.n_out)
        layer.bias_exp = bexp.astype(np.int8)
        layer.bias_mant = np.where(bexp == 7, layer.bias_mant // 2, layer.bias_mant).astype(np.int16)
    try:
        return IntNetwork(n_in=net.n_in, layers=net.layers, input_message_bits=net.input_message_bits)
    except ValueError:
        return None


def netx_conv_networks(seed, count):
    """`count` random networks with a conv or pool layer that netx can express; and the refusals."""
    rng, out, refused = np.random.default_rng(seed), [], {}
    while len(out) < count:
        net = _netx_conv_candidate(rng)
        if net is None or not any(x.kind in ("conv", "pool") for x in net.layers):
            continue
        try:
            netx.check(net)
        except netx.NetxError as e:
            key = str(e).split(": ")[1][:30]
            refused[key] = refused.get(key, 0) + 1
            continue
        out.append(net)
    return out, refused


@pytest.mark.slow
def test_random_conv_pool_networks_run_identically_through_lava_dl_netx(tmp_path):
    """50 random conv / sum-pool networks (with flatten -> dense and delayed dense after them),
    exported as netx conv / flatten / dense blocks, run by lava-dl's netx in Lava: spikes, u and
    v equal to the emulator's in every layer (about 35 s, five Lava runs)."""
    nets, refused = netx_conv_networks(seed=11, count=50)
    assert any("after a flat" in k for k in refused) and any("recurrent" in k for k in refused)
    convs = [x for n in nets for x in n.layers if x.kind == "conv"]
    assert sum(x.kind == "pool" for n in nets for x in n.layers) >= 10
    assert {x.conv.groups > 1 for x in convs} == {True, False}
    assert any(max(x.conv.dilation) > 1 for x in convs) and any(max(x.conv.stride) > 1 for x in convs)
    assert any(max(x.conv.padding) > 0 for x in convs) and any(x.conv.in_shape[0] % 2 for x in convs)
    assert any(x.conv.in_shape[0] % 2 == 0 for x in convs) and any(max(x.weights.shape[1:3]) >= 5 for x in convs)
    assert any(n.kinds[-1] == "dense" for n in nets) and any("delay" in n.kinds for n in nets)
    assert any(n.input_message_bits for n in nets)
    rng = np.random.default_rng(2)
    xs = [synth.random_raster(rng, net, 2, 10) for net in nets]
    paths = [netx.export(net, tmp_path / f"n{i}.h5") for i, net in enumerate(nets)]
    spiking = 0
    for a in range(0, len(nets), 10):
        got = netx.run_many([(p, x, n.input_message_bits) for p, x, n in
                             zip(paths[a:a + 10], xs[a:a + 10], nets[a:a + 10])])
        for i, (net, x, res) in enumerate(zip(nets[a:a + 10], xs[a:a + 10], got), start=a):
            assert compare(emu.run(net, x, probes=True), res) == [], f"network {i} {net.kinds}"
            spiking += any(s.any() for s in res.spikes)
    assert spiking >= 30


def test_conv_round_trip_is_the_identity_and_the_file_is_torch_ordered(tmp_path):
    import h5py
    nets, _ = netx_conv_networks(seed=12, count=20)
    for i, net in enumerate(nets):
        p = netx.export(net, tmp_path / "n.h5")
        back = netx.load(p)
        assert back.kinds == net.kinds and back.input_message_bits == net.input_message_bits
        for a, b in zip(net.layers, back.layers):
            for f in FIELDS:
                x, y = getattr(a, f), getattr(b, f)
                assert (x is None and y is None) or np.array_equal(x, y), (i, f)
            assert (a.conv is None and b.conv is None) or a.conv == b.conv, i
    net = next(n for n in nets if n.kinds[0] == "conv")
    c, L = net.layers[0].conv, net.layers[0]
    with h5py.File(netx.export(net, tmp_path / "n.h5"), "r") as f:
        H, W, C = c.in_shape
        assert list(f["layer/0/shape"][()]) == [C, H, W]                 # torch / slayer (C, H, W)
        assert f["layer/1/type"][0] == b"conv"
        assert np.array_equal(f["layer/1/weight"][()], L.weights.transpose(0, 3, 1, 2))
        assert list(f["layer/1/stride"][()]) == list(c.stride) and int(f["layer/1/groups"][()]) == c.groups


def test_export_refuses_conv_after_a_flat_layer_and_recurrent_conv(tmp_path):
    rng = np.random.default_rng(0)
    dense = IntLayer(weights=synth.random_weights(rng, (12, 4), 8, chip.SIGN_MIXED), du=0, dv=0, vth=10)
    conv = IntLayer(weights=synth.random_weights(rng, (2, 3, 3, 1), 8, chip.SIGN_MIXED), du=0, dv=0, vth=10,
                    conv=Conv2d((4, 3, 1), padding=1))
    with pytest.raises(netx.NetxError, match=r"^layer 1: a conv layer after a flat \(dense\) layer"):
        netx.export(IntNetwork(n_in=4, layers=[dense, conv]), tmp_path / "x.h5")
    rc = IntLayer(weights=conv.weights, du=0, dv=0, vth=10, conv=Conv2d((4, 3, 1), padding=1),
                  rec_weights=np.zeros((24, 24), np.int16) + 2)
    with pytest.raises(netx.NetxError, match=r"^layer 0: a recurrent conv layer: netx has no recurrent conv block"):
        netx.export(IntNetwork(n_in=12, layers=[rc]), tmp_path / "x.h5")
    assert not list(tmp_path.iterdir())


def test_layout_helpers_invert_each_other():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 9, (3, 5 * 4 * 2))
    port = netx.to_port(x, (5, 4, 2))
    assert port.shape == (3, 4, 5, 2) and port[1, 2, 3, 1] == x[1, (3 * 4 + 2) * 2 + 1]
    assert np.array_equal(netx.from_port(port.reshape(3, -1), (5, 4, 2)), x)
    p = netx.flatten_order((5, 4, 2))                  # netx's flat index j holds our p[j]: (c, h, w)
    assert p[(1 * 5 + 3) * 4 + 2] == (3 * 4 + 2) * 2 + 1


def _slayer_net(blocks, chw=None):
    """A torch module of lava-dl slayer blocks whose export_hdf5 writes them with slayer's own block
    exporters, behind an input block holding the (C, H, W) shape when chw is given."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList(blocks)

        def forward(self, s):
            for b in self.blocks:
                s = b(s)
            return s

        def export_hdf5(self, path):
            import h5py
            with h5py.File(path, "w") as h:
                layer = h.create_group("layer")
                if chw is not None:
                    g = layer.create_group("0")
                    g.create_dataset("type", (1,), "S10", [b"input"])
                    g.create_dataset("shape", data=np.array(chw))
                for i, b in enumerate(self.blocks):
                    b.export_hdf5(layer.create_group(f"{i + (chw is not None)}"))
    return Net()


def test_slayer_trained_conv_network_imports_and_matches_netx_in_lava(tmp_path):
    """A CUBA conv net built and trained by lava-dl slayer (conv 3x3 pad 1 -> conv stride 2,
    padding (1, 0), groups 2 -> flatten -> dense on a 9x8x2 event map), exported by slayer's own
    export_hdf5, imported by neurohw: emulator == lava-dl's netx in Lava (spikes, u, v)."""
    import torch
    import lava.lib.dl.slayer as slayer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    C, H, W, T, N = 2, 9, 8, 16, 32
    labels = rng.integers(0, 2, N)
    x = (rng.random((N, C, H, W, T)) < np.where(labels[:, None, None, None, None] == 1, 0.3, 0.08)).astype(np.float32)
    params = dict(threshold=1.0, current_decay=0.25, voltage_decay=0.03, requires_grad=False)
    model = _slayer_net([
        slayer.block.cuba.Conv(params, C, 4, 3, padding=1, weight_scale=2, weight_norm=False),
        slayer.block.cuba.Conv(params, 4, 6, 3, stride=2, padding=(1, 0), groups=2, weight_scale=2,
                               weight_norm=False),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(params, 6 * 5 * 3, 2, weight_norm=False)], (C, H, W))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.tensor(x), torch.tensor(labels)           # slayer: [N, C, H, W, T]
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(xt).sum(-1), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "slayer_conv.h5"
    model.export_hdf5(path)

    net = netx.load(path)
    assert net.kinds == ["conv", "conv", "dense"] and [x.shape for x in net.layers] == [(9, 8, 4), (5, 3, 6), (2,)]
    assert net.layers[1].conv.groups == 2 and net.layers[1].conv.padding == (1, 0)
    raster = x[:4].transpose(0, 4, 2, 3, 1).reshape(4, T, -1).astype(np.uint8)     # [N, T, (H, W, C)]
    ours = emu.run(net, raster, probes=True)
    assert compare(ours, netx.run(path, raster)) == []
    assert all(int(s.sum()) > 0 for s in ours.spikes)


def test_slayer_pool_block_imports_as_the_conv_netx_runs(tmp_path):
    """lava-dl netx cannot load slayer's 'pool' block (NotImplementedError); neurohw imports it as
    the sum-pool it is (one kernel, groups = C, stride = kernel). Checked against netx running the
    same file with the block rewritten as that conv."""
    import h5py
    import torch
    import lava.lib.dl.slayer as slayer
    from lava.lib.dl import netx as lava_netx

    torch.manual_seed(1)
    C, H, W, T = 3, 8, 6, 12
    params = dict(threshold=1.0, current_decay=0.5, voltage_decay=0.1, requires_grad=False)
    model = _slayer_net([
        slayer.block.cuba.Conv(params, C, 4, 3, padding=1, weight_scale=3, weight_norm=False),
        slayer.block.cuba.Pool(params, 2, weight_scale=2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(params, 4 * 4 * 3, 3, weight_scale=3, weight_norm=False)], (C, H, W))
    rng = np.random.default_rng(3)
    x = (rng.random((3, C, H, W, T)) < 0.3).astype(np.float32)
    with torch.no_grad():
        model(torch.tensor(x))
    path, conv = tmp_path / "pool.h5", tmp_path / "pool_as_conv.h5"
    model.export_hdf5(path)
    shutil.copy(path, conv)
    with pytest.raises(NotImplementedError):       # (netx leaves the file open)
        lava_netx.hdf5.Network(net_config=str(path))
    net = netx.load(path)
    assert net.kinds == ["conv", "pool", "dense"] and net.layers[1].shape == (4, 3, 4)
    with h5py.File(conv, "a") as f:                # the same pool, as the conv netx can build
        g = f["layer/2"]
        k = g["weight"][()].reshape(2, 2)
        del g["type"], g["weight"]
        g.create_dataset("type", (1,), "S10", [b"conv"])
        g.create_dataset("weight", data=np.repeat(k[None, None], 4, axis=0))
        g.create_dataset("groups", data=4)
    raster = x.transpose(0, 4, 2, 3, 1).reshape(3, T, -1).astype(np.uint8)
    ours = emu.run(net, raster, probes=True)
    assert compare(ours, netx.run(conv, raster)) == []
    assert int(ours.spikes[1].sum()) > 0


# ================================================================================================
# memoryless layers remapped; every deploy/ bundle
# ================================================================================================
def _memoryless_candidate(rng):
    """synth's random dense / delay / conv network made memoryless (du = 4095, dv = 4096), its
    biases, weight_exp and thresholds left off netx's grids."""
    net = synth.random_projection_network(rng, max_layers=2, max_map=7, max_n=24, p_recurrent=0.0,
                                          kinds=("dense", "delay", "conv", "dense"))
    for layer in net.layers:
        layer.du, layer.dv = chip.DU_RANGE[1], chip.DV_RANGE[1]
        layer.vth = int(rng.integers(0, 300))
        if layer.kind == "delay":
            layer.weight_exp = abs(layer.weight_exp)
    try:
        return IntNetwork(n_in=net.n_in, layers=net.layers, input_message_bits=net.input_message_bits)
    except ValueError:
        return None


def test_memoryless_layers_off_netx_grid_are_remapped_for_identical_spikes(tmp_path):
    """A memoryless layer spikes iff its input sum passes a per-neuron integer threshold; netx holds
    that at weight_exp 0 with one vth and per-neuron biases on its 64 grid. Random memoryless
    networks netx cannot hold as they are (biases off the grid, weight_exp -8..7): through lava-dl's
    netx in Lava, spikes equal to the original's in every layer, u and v equal to netx_form's. And
    deploy/delays' hidden layer (weight_exp 7, biases off the grid)."""
    rng, nets = np.random.default_rng(21), []
    while len(nets) < 12:
        net = _memoryless_candidate(rng)
        if net is None:
            continue
        try:
            _, remapped = netx.netx_form(net)
            netx.check(net)
        except netx.NetxError:
            continue
        if remapped:
            nets.append(net)
    delays = neurohw.load_bundle(REPO / "deploy" / "delays", with_extra=True) if (REPO / "deploy/delays").is_dir() \
        else None
    xs = [synth.random_raster(rng, net, 2, 12, density=0.3) for net in nets]
    if delays is not None:
        nets.append(IntNetwork(n_in=delays[0].n_in, layers=delays[0].layers[:1]))
        xs.append(delays[1]["input"][:2])
    assert {x.weight_exp for n in nets for x in n.layers} - {0}
    items = [(netx.export(net, tmp_path / f"m{i}.h5"), x, net.input_message_bits)
             for i, (net, x) in enumerate(zip(nets, xs))]
    spiking = 0
    for net, x, res in zip(nets, xs, netx.run_many(items)):
        ours = emu.run(net, x)
        assert compare(ours, type(res)(spikes=res.spikes)) == []
        assert compare(emu.run(netx.netx_form(net)[0], x, probes=True), res) == []
        spiking += sum(int(s.sum()) for s in ours.spikes) > 0
    assert spiking >= 8


def test_a_v_readout_is_not_remapped_and_wrapping_layers_are_refused(tmp_path):
    w = np.array([[254, 254], [-2, 4]], np.int16)
    ro = IntLayer(weights=w, du=4095, dv=4096, vth=chip.VTH_RANGE[1], bias_mant=np.array([5, 0], np.int16))
    with pytest.raises(netx.NetxError, match=r"layer 0: bias of neuron 0 = 5 .* the readout, read through its v"):
        netx.export(IntNetwork(n_in=2, layers=[ro]), tmp_path / "x.h5")
    w5 = np.full((2, 5), 254, np.int16)               # 5 * 254 << 7 << 6 > 2**23: u wraps
    wraps = IntLayer(weights=w5, du=4095, dv=4096, vth=100, weight_exp=7, bias_mant=np.array([5, 0], np.int16))
    with pytest.raises(netx.NetxError, match=r"memoryless remap: neuron 0's u can wrap"):
        netx.export(IntNetwork(n_in=5, layers=[wraps]), tmp_path / "x.h5")


def _bundles():
    return sorted(p for p in (REPO / "deploy").iterdir() if (p / "manifest.yaml").is_file())


def test_every_deploy_bundle_through_lava_dl_netx(tmp_path):
    """Every deploy/ bundle (whatever is there): a noisy one is refused naming the layer and the
    noise; a noiseless one is exported as it is where netx holds it, else quantized again for netx
    (netx.requantize: weight_exp 0, biases on the 64 grid) from its exact float equivalent,
    calibrated on its stored inputs; either runs through lava-dl's netx in Lava with spikes, u and
    v equal to the emulator's on 2 stored samples (all bundles in one Lava run)."""
    items, nets, kinds = [], [], {}
    for d in _bundles():
        net, extra = neurohw.load_bundle(d, with_extra=True)
        noisy = [k for k, x in enumerate(net.layers) if x.noise.on]
        if noisy:
            for f in (netx.check, lambda n: netx.requantize(n, extra["input"])):
                with pytest.raises(netx.NetxError, match=rf"^layer {noisy[0]}: on-chip noise \(inject = "):
                    f(net)
            kinds[d.name] = "refused"
            continue
        try:
            netx.check(net)
            kinds[d.name] = "exact"
        except netx.NetxError as e:
            assert str(e).startswith("layer "), e
            net = netx.requantize(net, extra["input"])
            kinds[d.name] = "requantized"
        x = extra["input"][:2]
        items.append((netx.export(net, tmp_path / f"{d.name}.h5"), x, net.input_message_bits))
        nets.append((d.name, net, x))
    assert nets and all(v in ("exact", "requantized", "refused") for v in kinds.values())
    for (name, net, x), res in zip(nets, netx.run_many(items)):
        ours = emu.run(net, x, probes=True)
        assert compare(ours, res) == [], name
        assert sum(int(s.sum()) for s in ours.spikes) > 0, name


def test_requantized_bundles_keep_their_architecture_and_most_decisions():
    """netx.requantize changes only the grids: same layers, kinds, geometry and delays; on the
    stored test inputs each bundle's classifications agree with the original's in >= 14 of 16."""
    from neurohw import tasks
    from neurohw.config import load_config
    for d in _bundles():
        net, extra = neurohw.load_bundle(d, with_extra=True)
        if any(x.noise.on for x in net.layers):
            continue
        q = netx.requantize(net, extra["input"])
        netx.check(q)
        assert q.kinds == net.kinds and [x.n_out for x in q.layers] == [x.n_out for x in net.layers]
        for a, b in zip(net.layers, q.layers):
            assert a.conv == b.conv and (a.delays is None or np.array_equal(a.delays, b.delays))
            assert b.weight_exp == 0 and np.all(b.bias_exp == 6) and not b.noise.on
        cfg_path = REPO / "configs" / f"{d.name}.yaml"
        if "labels" not in extra or not cfg_path.is_file():
            continue
        cfg = load_config(cfg_path)
        x = extra["input"]
        same = (tasks.predict_int(cfg, emu.run(net, x, probes=True))
                == tasks.predict_int(cfg, emu.run(q, x, probes=True)))
        assert same.sum() >= 14, (d.name, same)


def test_quant_target_netx_makes_netx_ready_networks(tmp_path):
    """quant.plan(..., target="netx") on a float net: weight_exp 0, biases on the 64 grid, one sign
    mode for input and recurrent weights; netx.check accepts it. A stochastic layer is refused."""
    import torch
    from neurohw import quant
    from neurohw.config import ConfigError, parse_config
    from neurohw.train.escape import Spiking
    from neurohw.train.model import LayerSpec, SpikingNet

    torch.manual_seed(0)
    net = SpikingNet(6, [LayerSpec(n_out=12, du=300, dv=500, vth=1.0, recurrent=True)],
                     readout=LayerSpec(n_out=3, du=409, dv=409))
    with torch.no_grad():
        for m in net.modules_in_order:
            m.weight.normal_(0, 0.6)
            m.bias.normal_(0, 0.05)
            if m.rec is not None:
                m.rec.uniform_(0.0, 0.2)          # one-sign recurrence beside mixed input weights
    x = (np.random.default_rng(0).random((64, 20, 6)) < 0.3).astype(np.float32)
    inet = quant.to_int_network(net, quant.plan(net, x, target="netx"))
    assert all(L.weight_exp == 0 and L.rec_weight_exp == 0 and np.all(L.bias_exp == 6) for L in inet.layers)
    netx.check(inet)
    res = emu.run(inet, x[:4].astype(np.uint8), probes=True)
    assert compare(res, netx.run(netx.export(inet, tmp_path / "q.h5"), x[:4].astype(np.uint8))) == []
    sto = SpikingNet(6, [LayerSpec(n_out=4, spiking=Spiking(stochastic=True))])
    with pytest.raises(ValueError, match=r"layer 0 has stochastic spiking .* target netx has no noise"):
        quant.plan(sto, x, target="netx")
    raw = dict(name="t", data=dict(task="yinyang"), model=dict(layers=[dict(n=8)], readout=dict(n=3)),
               train=dict(loss="max_over_time_ce"), neuron=dict(stochastic=True), quant=dict(target="netx"))
    with pytest.raises(ConfigError, match=r"quant.target = 'netx' has no noise"):
        parse_config(raw, source="cfg.yaml")
    with pytest.raises(ConfigError, match=r"quant.target = 'fpga'"):
        parse_config(dict(raw, neuron={}, quant=dict(target="fpga")), source="cfg.yaml")
