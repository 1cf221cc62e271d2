"""NIR in and out, judged by snnTorch's and Norse's own exporters and importers.

Nets are trained here on the digits task (tiny: one torch thread, a few epochs). Float
rasters are compared on a common clock: neurohw's layer l lags a delay-free peer by l + 1 steps
(neurohw.interop.nir.align); inputs get 2 trailing quiet steps so neurohw's last layer sees all."""
import numpy as np
import pytest
import torch

import neurohw
from neurohw import data, emu, quant, synth
from neurohw.interop import nir as nx
from neurohw.network import Conv2d, IntLayer, IntNetwork
from neurohw.parity import compare
from neurohw.train import LayerSpec, SpikingNet

nir = pytest.importorskip("nir")
T, H, EPOCHS = 16, 48, 4
BETA = 0.875                 # on the chip's grid: 1 - 512 / 4096


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    d = data.digits()
    return dict(xtr=data.rate_encode(d["x_train"], T, seed=1).astype(np.float32), ytr=d["y_train"],
                xte=data.rate_encode(d["x_test"], T, seed=2).astype(np.float32), yte=d["y_test"])


def _pad(x, n=2):
    return np.concatenate([x, np.zeros((x.shape[0], n, x.shape[2]), x.dtype)], 1)


def _train(params, run, d, lr=5e-3, epochs=EPOCHS):
    opt = torch.optim.Adam(params, lr=lr)
    for ep in range(epochs):
        perm = np.random.default_rng(ep).permutation(len(d["xtr"]))
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(run(torch.tensor(d["xtr"][b])).sum(1), torch.tensor(d["ytr"][b]))
            opt.zero_grad()
            loss.backward()
            opt.step()


def _acc(spikes, y):
    return float((np.asarray(spikes).sum(1).argmax(1) == y).mean())


def _on_chip(fl, d, path):
    """Quantize an imported float net, run it on the emulator; check Lava on a few samples."""
    plans = quant.plan(fl, d["xtr"][:256])
    inet = quant.to_int_network(fl, plans)
    x = _pad(d["xte"]).astype(np.uint8)
    res = emu.run(inet, x)
    lava = neurohw.lava.run(inet, x[:6], probes=True)
    assert compare(emu.run(inet, x[:6], probes=True), lava) == []
    return inet, _acc(res.spikes[-1], d["yte"])


def _check_float(fl, theirs, d):
    """neurohw's float import reproduces the peer's own run: rasters and accuracy."""
    with torch.no_grad():
        ours = fl(torch.tensor(_pad(d["xte"])))["spikes"]
    agree = float((nx.align(ours[-1].numpy(), len(ours) - 1)[:, :T] == theirs).mean())
    assert agree >= 0.999, agree
    assert _acc(ours[-1].numpy(), d["yte"]) == _acc(theirs, d["yte"])


def test_snntorch_trained_net_exported_by_snntorch_runs_on_the_chip(digits, tmp_path):
    import snntorch as snn
    from snntorch import surrogate, utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    kw = dict(reset_mechanism="zero", reset_delay=False, init_hidden=True, spike_grad=surrogate.fast_sigmoid(10))
    net = torch.nn.Sequential(
        torch.nn.Linear(64, H), snn.Leaky(beta=torch.full((H,), BETA), threshold=torch.ones(H), **kw),
        torch.nn.Linear(H, 10), snn.Leaky(beta=torch.full((10,), BETA), threshold=torch.ones(10), output=True, **kw))

    def run(x):
        utils.reset(net)
        return torch.stack([net(x[:, t])[0] for t in range(x.shape[1])], 1)

    _train(net.parameters(), run, digits)
    with torch.no_grad():
        theirs = run(torch.tensor(digits["xte"])).numpy()
    acc_theirs = _acc(theirs, digits["yte"])
    assert acc_theirs > 0.75
    path = tmp_path / "snntorch.nir"
    nir.write(str(path), export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0]))

    fl = nx.from_nir(path, peer="snntorch")            # dt = 1e-4, snnTorch's
    _check_float(fl, theirs, digits)
    inet, acc_chip = _on_chip(fl, digits, tmp_path)
    assert abs(acc_chip - acc_theirs) <= 0.01, (acc_chip, acc_theirs)


def test_norse_trained_net_exported_by_norse_runs_on_the_chip(digits, tmp_path):
    import norse.torch as norse

    torch.manual_seed(0)

    def cell(n):
        return norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.full((n,), (1 - BETA) / 1e-3),
                                                       v_th=torch.ones(n), v_leak=torch.zeros(n),
                                                       v_reset=torch.zeros(n)), dt=1e-3)
    net = norse.SequentialState(torch.nn.Linear(64, H), cell(H), torch.nn.Linear(H, 10), cell(10))
    with torch.no_grad():                    # Norse scales the input by dt / tau: snnTorch's init in Norse's units
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(1 / (1 - BETA))

    def run(x):
        st, out = None, []
        for t in range(x.shape[1]):
            s, st = net(x[:, t], st)
            out.append(s)
        return torch.stack(out, 1)

    _train(net.parameters(), run, digits, lr=5e-3 / (1 - BETA))   # the same steps as snnTorch's, in Norse's units
    with torch.no_grad():
        theirs = run(torch.tensor(digits["xte"])).numpy()
    acc_theirs = _acc(theirs, digits["yte"])
    assert acc_theirs > 0.75
    path = tmp_path / "norse.nir"
    nir.write(str(path), norse.to_nir(net, torch.zeros(64), dt=1e-3))
    g = nir.read(str(path))
    tau = g.nodes["1"].tau
    assert np.allclose(tau, 1e-3 * 1e-3 / (1 - BETA))          # Norse 1.1.0's tau bug: dt * tau

    with pytest.raises(nx.NirError, match="outside the chip's decays"):
        nx.from_nir(g, dt=1e-3)                                   # read literally, the bug is caught
    fl = nx.from_nir(g, peer="norse")                             # our workaround: tau / dt
    _check_float(fl, theirs, digits)
    inet, acc_chip = _on_chip(fl, digits, tmp_path)
    assert abs(acc_chip - acc_theirs) <= 0.01, (acc_chip, acc_theirs)


@pytest.fixture(scope="module")
def neurohw_net(digits):
    """A neurohw float net (LIF layers: du = 4095, dv = 512) trained on digits, spike-count read-out."""
    torch.manual_seed(0)
    net = SpikingNet(64, [LayerSpec(H, du=4095, dv=512, vth=1.0), LayerSpec(10, du=4095, dv=512, vth=1.0)])
    with torch.no_grad():
        for m in net.layers:
            torch.nn.init.normal_(m.weight, 0.0, 2.0 / np.sqrt(m.weight.shape[1]))

    def run(x):
        return net(torch.cat([x, x.new_zeros(x.shape[0], 2, x.shape[2])], 1))["spikes"][-1]

    _train(net.parameters(), run, digits)
    with torch.no_grad():
        out = net(torch.tensor(_pad(digits["xte"])))["spikes"]
    return net, [s.numpy() for s in out]


def _hooked(module, cls):
    rec = {}
    for name, m in module.named_modules():
        if isinstance(m, cls):
            m.register_forward_hook(lambda mod, i, o, name=name: rec.setdefault(name, []).append(
                (o[0] if isinstance(o, tuple) else o).detach()))
    return rec


def _compare_rasters(ours, rec, y):
    theirs = [torch.stack(v, 1).numpy() for v in rec.values()]
    assert len(theirs) == len(ours)
    agree = [float((nx.align(o, l)[:, :T] == t).mean()) for l, (o, t) in enumerate(zip(ours, theirs))]
    assert min(agree) >= 0.99, agree
    assert abs(_acc(nx.align(ours[-1], len(ours) - 1), y) - _acc(theirs[-1], y)) <= 0.005
    return agree


def test_neurohw_net_in_snntorch(neurohw_net, digits, tmp_path):
    import snntorch as snn
    from snntorch.import_nir import import_from_nir

    net, ours = neurohw_net
    assert _acc(ours[-1], digits["yte"]) > 0.75
    path = nx.write(nx.to_nir(net, dt=1e-4), tmp_path / "neurohw.nir")
    s = import_from_nir(nir.read(str(path)))
    rec = _hooked(s, snn.Leaky)
    with torch.no_grad():
        for t in range(T):
            s(torch.tensor(digits["xte"][:, t]))
    _compare_rasters(ours, rec, digits["yte"])


def test_neurohw_net_in_norse(neurohw_net, digits, tmp_path):
    import norse.torch as norse

    net, ours = neurohw_net
    path = nx.write(nx.to_nir(net, dt=1e-3, fold_r=True), tmp_path / "neurohw.nir")   # Norse ignores r
    m = norse.from_nir(nir.read(str(path)), dt=1e-3)
    rec = _hooked(m, norse.LIFBoxCell)
    st = None
    with torch.no_grad():
        for t in range(T):
            _, st = m(torch.tensor(digits["xte"][:, t]), st)
    _compare_rasters(ours, rec, digits["yte"])


def test_float_round_trip_through_a_nir_file_is_the_identity(tmp_path):
    torch.manual_seed(0)
    net = SpikingNet(5, [LayerSpec(7, du=4095, dv=512, vth=1.0), LayerSpec(6, du=100, dv=300, vth=0.7, recurrent=True),
                         LayerSpec(4, du=4095, dv=0, vth=2.0)], readout=LayerSpec(3, du=4095, dv=409))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    x = (torch.rand(4, 20, 5) < 0.3).float()
    for fold in (False, True):
        back = nx.from_nir(nx.write(nx.to_nir(net, fold_r=fold), tmp_path / "f.nir"))
        a, b = net.state_dict(), back.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (fold, k)
        with torch.no_grad():
            o1, o2 = net(x), back(x)
        assert all(torch.equal(p, q) for p, q in zip(o1["spikes"], o2["spikes"]))
        assert torch.equal(o1["readout_v"], o2["readout_v"])


def test_int_round_trip_through_a_nir_file_is_the_identity(tmp_path):
    rng = np.random.default_rng(0)
    done = 0
    while done < 30:
        net = synth.random_network(rng, max_layers=3, max_n=12, p_recurrent=0.4, graded=False)
        try:
            g = nx.int_to_nir(net)
        except nx.NirError as e:
            assert "dv = 0" in str(e)          # CubaLIF needs a membrane leak
            continue
        back = nx.int_from_nir(nx.write(g, tmp_path / "i.nir"))
        for a, b in zip(net.layers, back.layers):
            for f in ("weights", "weight_exp", "num_weight_bits", "rec_weights", "rec_weight_exp",
                      "rec_num_weight_bits", "du", "dv", "vth", "bias_mant", "bias_exp"):
                x, y = getattr(a, f), getattr(b, f)
                assert (x is None and y is None) or np.array_equal(x, y), f
        done += 1


def _lif(n, **kw):
    d = dict(tau=np.full(n, 1e-3), r=np.full(n, 1.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
             v_reset=np.zeros(n))
    d.update(kw)
    return nir.LIF(**d)


def _graph(nodes, edges, n_in=3, n_out=2):
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}), **nodes,
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    return nir.NIRGraph(nodes=nodes, edges=edges)


W = np.ones((2, 3))


@pytest.mark.parametrize("graph, words", [
    (_graph({"a": nir.Affine(weight=W, bias=np.zeros(2)), "n": _lif(2, v_reset=np.full(2, 0.5))},
            [("input", "a"), ("a", "n"), ("n", "output")]), ["'n'", "v_reset"]),
    (_graph({"a": nir.Affine(weight=W, bias=np.zeros(2)), "n": _lif(2, tau=np.array([1e-3, 2e-3]))},
            [("input", "a"), ("a", "n"), ("n", "output")]), ["'n'", "dt / tau", "differs"]),
    (_graph({"a": nir.Affine(weight=W, bias=np.ones(2)),
             "n": nir.CubaLIF(tau_syn=np.full(2, 2e-3), tau_mem=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2),
                              v_threshold=np.ones(2))},
            [("input", "a"), ("a", "n"), ("n", "output")]), ["'a'", "bias", "CubaLIF"]),
    (_graph({"a": nir.Affine(weight=W, bias=np.zeros(2)), "n": _lif(2), "b": nir.Affine(weight=W, bias=np.zeros(2))},
            [("input", "a"), ("input", "b"), ("a", "n"), ("b", "n"), ("n", "output")]), ["'input'", "successors"]),
    (_graph({"a": nir.Affine(weight=W, bias=np.zeros(2)), "n": nir.Threshold(threshold=np.ones(2))},
            [("input", "a"), ("a", "n"), ("n", "output")]), ["'a'", "neuron"]),
])
def test_import_refuses_what_neurohw_cannot_take_by_node(graph, words):
    with pytest.raises(nx.NirError) as e:
        nx.from_nir(graph, dt=1e-4)
    for w in words:
        assert w in str(e.value)


def test_recurrent_and_per_neuron_thresholds_match_norse(tmp_path):
    """A recurrent LIF graph (snnTorch's RLeaky naming) with per-neuron thresholds, r and v_leak:
    neurohw's import against Norse's own run of the same graph (Norse runs cycles)."""
    import norse.torch as norse

    rng = np.random.default_rng(0)
    n = 6
    dt = 1e-3
    g = _graph({"fc": nir.Affine(weight=rng.normal(2, 8, (n, 3)), bias=rng.normal(0, 1, n)),
                "r.lif": _lif(n, tau=np.full(n, 8e-3), v_threshold=rng.uniform(0.5, 1.5, n)),
                "r.w_rec": nir.Linear(weight=rng.normal(0, 6, (n, n)))},
               [("input", "fc"), ("fc", "r.lif"), ("r.lif", "r.w_rec"), ("r.w_rec", "r.lif"), ("r.lif", "output")],
               n_out=n)
    x = (rng.random((5, 30, 3)) < 0.4).astype(np.float32)
    ours = nx.from_nir(g, dt=dt)
    assert ours.layers[0].rec is not None
    with torch.no_grad():
        mine = ours(torch.tensor(_pad(x, 1)))["spikes"][0].numpy()
    m = norse.from_nir(g, dt=dt)
    st, out = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            z, st = m(torch.tensor(x[:, t]), st)
            out.append(z.numpy())
    theirs = np.stack(out, 1)
    assert theirs.sum() > 10
    assert (nx.align(mine, 0)[:, :30] == theirs).mean() >= 0.99


def test_snntorch_synaptic_exported_as_cubalif_matches_neurohw():
    """snnTorch's Synaptic (syn = a syn + I, mem = b mem + syn: u then v, as the chip) written
    as NIR CubaLIF by snnTorch: neurohw's import reproduces snnTorch's own run."""
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    kw = dict(reset_mechanism="zero", reset_delay=False, init_hidden=True)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8, bias=False),
        snn.Synaptic(alpha=torch.full((8,), 0.75), beta=torch.full((8,), BETA), threshold=torch.ones(8), **kw),
        torch.nn.Linear(8, 4, bias=False),
        snn.Synaptic(alpha=torch.full((4,), 0.75), beta=torch.full((4,), BETA), threshold=torch.ones(4),
                     output=True, **kw))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3)
    x = (torch.rand(5, 30, 6) < 0.4).float()
    utils.reset(net)
    with torch.no_grad():
        theirs = torch.stack([net(x[:, t])[0] for t in range(30)], 1).numpy()
    g = export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0])
    assert [type(v).__name__ for v in g.nodes.values()].count("CubaLIF") == 2
    fl = nx.from_nir(g, peer="snntorch")
    assert [(m.spec.du, m.spec.dv) for m in fl.layers] == [(1023, 512)] * 2     # a_u = 1/4, a_v = 1/8
    with torch.no_grad():
        ours = fl(torch.cat([x, torch.zeros(5, 2, 6)], 1))["spikes"][-1].numpy()
    assert theirs.sum() > 50
    assert (nx.align(ours, 1)[:, :30] == theirs).mean() >= 0.999


# ================================================================================================
# Conv2d, SumPool2d / AvgPool2d, Flatten
# ================================================================================================
def _img(x, n):
    """[B, T, 64] digits rasters -> [B, T, 1, 8, 8], torch's (C, H, W) maps."""
    return torch.tensor(x[:n]).reshape(n, x.shape[1], 8, 8, 1).permute(0, 1, 4, 2, 3)


def _ours(t):
    """A peer's [B, T, C, H, W] (or [B, T, n]) raster in neurohw's [B, T, (H, W, C)] order."""
    t = t.numpy() if isinstance(t, torch.Tensor) else t
    if t.ndim == 5:
        t = t.transpose(0, 1, 3, 4, 2)
    return t.reshape(t.shape[0], t.shape[1], -1)


def _agree(ours, theirs):
    return [float((nx.align(o, l)[:, :T] == _ours(t)).mean()) for l, (o, t) in enumerate(zip(ours, theirs))]


def _unbatched(module, cls, x, state=False):
    """Run an imported peer module one sample at a time: snnTorch's and Norse's importers map
    NIR's Flatten(start_dim=0) (NIR types carry no batch) to torch.nn.Flatten(0), which would
    flatten a batch too. Returns per neuron module [B, T, ...] rasters."""
    import snntorch as snn
    rec = _hooked(module, cls)
    with torch.no_grad():
        for b in range(x.shape[0]):
            st = None
            for m in module.modules():
                if isinstance(m, snn.Leaky):
                    m.reset_mem()
            for t in range(x.shape[1]):
                if state:
                    _, st = module(x[b, t], st)
                else:
                    module(x[b, t])
    return [torch.stack(v, 0).reshape(x.shape[0], x.shape[1], *v[0].shape) for v in rec.values()]


def test_float_conv_pool_round_trip_through_a_nir_file_is_the_identity(tmp_path):
    """conv (stride (1, 2), padding 1) -> sum-pool (CubaLIF) -> flatten -> IF -> LI readout, with
    r folded or not: written, read back, the same spikes and readout v."""
    torch.manual_seed(0)
    net = SpikingNet(60, [LayerSpec(0, kind="conv", channels=4, kernel=3, padding=1, stride=(1, 2), du=4095, dv=512,
                                    vth=1.0),
                          LayerSpec(0, kind="pool", kernel=2, du=100, dv=300, vth=0.7),
                          LayerSpec(7, du=4095, dv=0, vth=2.0)], readout=LayerSpec(3, du=4095, dv=409),
                     in_shape=(5, 6, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
        net.layers[1].weight.abs_()
    x = torch.tensor((np.random.default_rng(0).random((3, 12, 60)) < 0.4).astype(np.float32))
    for fold in (False, True):
        g = nx.to_nir(net, dt=1e-4, fold_r=fold)
        assert [type(v).__name__ for v in g.nodes.values()] == [
            "Input", "Conv2d", "LIF", "SumPool2d", "CubaLIF", "Flatten", "Affine", "IF", "Affine", "LI", "Output"]
        back = nx.from_nir(nx.write(g, tmp_path / "c.nir"), dt=1e-4)
        with torch.no_grad():
            a, b = net(x), back(x)
        assert all(torch.equal(p, q) for p, q in zip(a["spikes"], b["spikes"]))
        assert torch.allclose(a["readout_v"], b["readout_v"], rtol=1e-5, atol=1e-5)


def test_int_conv_pool_round_trip_through_a_nir_file_is_the_identity(tmp_path):
    """30 random conv / sum-pool / dense IntNetworks (grouped, strided, dilated, padded, odd and
    even maps) through a NIR file: the identical IntNetwork (emulator: spikes, u, v equal)."""
    rng = np.random.default_rng(1)
    done, refused = 0, set()
    while done < 30:
        net = synth.random_projection_network(rng, max_layers=3, max_map=7, max_n=24, p_recurrent=0.2,
                                              kinds=("conv", "pool", "dense"), graded=False)
        try:
            g = nx.int_to_nir(net)
        except nx.NirError as e:
            refused.add(str(e))
            continue
        back = nx.int_from_nir(nx.write(g, tmp_path / "n.nir"))
        for a, b in zip(net.layers, back.layers):
            assert np.array_equal(a.weights, b.weights) and a.conv == b.conv and np.array_equal(a.bias, b.bias)
        x = synth.random_raster(rng, net, 2, 10)
        assert compare(emu.run(net, x, probes=True), emu.run(back, x, probes=True)) == []
        done += 1
    assert any("reading a flat layer" in r for r in refused) and any("recurrent" in r for r in refused)


@pytest.fixture(scope="module")
def conv_net(digits):
    """A neurohw float conv net on 8x8 digits: conv 3x3 (4 channels, pad 1) -> sum-pool 2 ->
    flatten -> dense 10, LIF layers, zero biases (snnTorch's LIF import takes no v_leak)."""
    torch.manual_seed(0)
    net = SpikingNet(64, [LayerSpec(0, kind="conv", channels=4, kernel=3, padding=1, du=4095, dv=512, vth=1.0),
                          LayerSpec(0, kind="pool", kernel=2, du=4095, dv=512, vth=1.0),
                          LayerSpec(10, du=4095, dv=512, vth=1.0)], in_shape=(8, 8, 1))
    with torch.no_grad():
        net.layers[0].weight.normal_(0, 0.6)
        net.layers[1].weight.fill_(0.6)
        net.layers[2].weight.normal_(0, 0.2)
    for m in net.layers:
        m.bias.requires_grad_(False)

    def run(x):
        return net(torch.cat([x, x.new_zeros(x.shape[0], 3, x.shape[2])], 1))["spikes"][-1]

    _train([p for p in net.parameters() if p.requires_grad], run, digits, epochs=3)
    with torch.no_grad():
        out = net(torch.tensor(_pad(digits["xte"][:40], 3)))["spikes"]
    return net, [s.numpy() for s in out]


def test_neurohw_conv_net_in_snntorch_and_norse(conv_net, digits, tmp_path):
    """Our Conv2d -> LIF -> SumPool2d -> LIF -> Flatten -> Affine -> LIF graph, read by snnTorch's
    and Norse's own importers (SumPool2d: nirtorch's / Norse's LPPool2d(1)), run one sample at a
    time: rasters identical to neurohw's float run in every layer."""
    import norse.torch as norse
    import snntorch as snn
    from snntorch.import_nir import import_from_nir

    net, ours = conv_net
    assert _acc(ours[-1], digits["yte"][:40]) > 0.2
    x = _img(digits["xte"], 40)
    s = import_from_nir(nir.read(str(nx.write(nx.to_nir(net, dt=1e-4), tmp_path / "s.nir"))))
    assert _agree(ours, _unbatched(s, snn.Leaky, x)) == [1.0, 1.0, 1.0]
    m = norse.from_nir(nir.read(str(nx.write(nx.to_nir(net, dt=1e-3, fold_r=True), tmp_path / "n.nir"))), dt=1e-3)
    assert _agree(ours, _unbatched(m, norse.LIFBoxCell, x, state=True)) == [1.0, 1.0, 1.0]


def test_snntorch_conv_net_exported_by_snntorch_runs_on_the_chip(digits, tmp_path):
    """snnTorch's Conv2d -> Leaky -> AvgPool2d -> Leaky -> Flatten -> Linear -> Leaky, written by
    snnTorch's export_to_nir (per-neuron Leaky parameters: its exporter types a node by them):
    neurohw's import reproduces snnTorch's run; quantized, emulator = Lava."""
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)

    def leaky(shape, **kw):
        return snn.Leaky(beta=torch.full(shape, BETA), threshold=torch.ones(shape), reset_mechanism="zero",
                         reset_delay=False, init_hidden=True, **kw)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), leaky((4, 8, 8)), torch.nn.AvgPool2d(2),
                              leaky((4, 4, 4)), torch.nn.Flatten(), torch.nn.Linear(64, 10), leaky((10,), output=True))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[5].weight.mul_(3)
    rec = _hooked(net, snn.Leaky)
    x = _img(digits["xte"], 40)
    utils.reset(net)
    with torch.no_grad():
        for t in range(T):
            net(x[:, t])
    theirs = [torch.stack(v, 1) for v in rec.values()]
    g = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    assert [type(v).__name__ for v in g.nodes.values()].count("AvgPool2d") == 1
    fl = nx.from_nir(nx.write(g, tmp_path / "s.nir"), peer="snntorch")
    assert [m.spec.kind for m in fl.layers] == ["conv", "pool", "dense"]
    assert float(fl.layers[1].weight.detach()) == pytest.approx(0.25)          # avg = sum / 4
    with torch.no_grad():
        ours = [s.numpy() for s in fl(torch.tensor(_pad(digits["xte"][:40], 3)))["spikes"]]
    assert _agree(ours, theirs) == [1.0, 1.0, 1.0] and all(t.sum() > 0 for t in theirs)
    inet = quant.to_int_network(fl, quant.plan(fl, digits["xtr"][:128]))
    assert inet.kinds == ["conv", "pool", "dense"]
    xi = _pad(digits["xte"][:4], 3).astype(np.uint8)
    assert compare(emu.run(inet, xi, probes=True), neurohw.lava.run(inet, xi, probes=True)) == []


def test_norse_conv_net_exported_by_norse_matches_neurohw(digits):
    """Norse's Conv2d -> LIFBoxCell -> Conv2d (stride 2, groups 2) -> LIFBoxCell written by
    norse.to_nir (its Input keeps the sample's batch of 1; tau written as dt * tau): neurohw's
    import reproduces Norse's run. (Norse 1.1.0 cannot export a Flatten: it writes a None node.)"""
    import norse.torch as norse

    torch.manual_seed(0)

    def cell(shape):
        return norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.full(shape, (1 - BETA) / 1e-3),
                                                       v_th=torch.ones(shape), v_leak=torch.zeros(shape),
                                                       v_reset=torch.zeros(shape)), dt=1e-3)
    net = norse.SequentialState(torch.nn.Conv2d(1, 4, 3, padding=1), cell((4, 8, 8)),
                                torch.nn.Conv2d(4, 6, 3, stride=2, groups=2), cell((6, 3, 3)))
    with torch.no_grad():
        for i in (0, 2):
            net[i].weight.mul_(3 / (1 - BETA))
            net[i].bias.mul_(1 / (1 - BETA))
    rec = _hooked(net, norse.LIFBoxCell)
    x = _img(digits["xte"], 40)
    st = None
    with torch.no_grad():
        for t in range(T):
            _, st = net(x[:, t], st)
    theirs = [torch.stack(v, 1) for v in rec.values()]
    g = norse.to_nir(net, torch.zeros(1, 1, 8, 8), dt=1e-3)
    fl = nx.from_nir(g, peer="norse")
    assert [m.spec.kind for m in fl.layers] == ["conv", "conv"] and fl.layers[1].spec.groups == 2
    with torch.no_grad():
        ours = [s.numpy() for s in fl(torch.tensor(_pad(digits["xte"][:40], 3)))["spikes"]]
    assert _agree(ours, theirs) == [1.0, 1.0] and all(t.sum() > 0 for t in theirs)
    bad = norse.to_nir(norse.SequentialState(torch.nn.Conv2d(1, 2, 3), cell((2, 6, 6)), torch.nn.Flatten(),
                                             torch.nn.Linear(72, 3), cell((3,))), torch.zeros(1, 1, 8, 8), dt=1e-3)
    with pytest.raises(nx.NirError, match=r"an empty \(None\) node, as Norse 1.1.0's to_nir writes"):
        nx.from_nir(bad, peer="norse")


def test_nir_refuses_delays_maps_from_flat_layers_and_partial_flattens():
    rng = np.random.default_rng(0)
    d = IntLayer(weights=synth.random_weights(rng, (4, 3), 8), du=0, dv=0, vth=5, delays=np.ones((4, 3), np.int64))
    with pytest.raises(nx.NirError, match=r"^layer 0: synaptic delays have no NIR node"):
        nx.int_to_nir(IntNetwork(n_in=3, layers=[d]))
    flat = IntLayer(weights=synth.random_weights(rng, (6, 3), 8), du=0, dv=100, vth=5)
    conv = IntLayer(weights=synth.random_weights(rng, (2, 1, 1, 1), 8), du=0, dv=100, vth=5, conv=Conv2d((6, 1, 1)))
    with pytest.raises(nx.NirError, match=r"^layer 1: a conv layer reading a flat layer's neurons as a map"):
        nx.int_to_nir(IntNetwork(n_in=3, layers=[flat, conv]))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3, 1])}),
                            "f": nir.Flatten(input_type={"input": np.array([3, 1])}, start_dim=1),
                            "a": nir.Affine(weight=W, bias=np.zeros(2)), "n": _lif(2),
                            "output": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("input", "f"), ("f", "a"), ("a", "n"), ("n", "output")], type_check=False)
    with pytest.raises(nx.NirError, match=r"node 'f': Flatten\(start_dim=1"):
        nx.from_nir(g, dt=1e-4)
