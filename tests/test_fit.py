"""neurohw.fit checked by nengo-loihi 1.1.0's own code: its synapse-memory accounting, its block
splitting (split_blocks.split_model) and its validation (validate.validate_model), on networks
built at each Loihi 1 limit and one past it, in every resource."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from neurohw.chip_profiles import ProfileError, load_profile
from neurohw.fit import FitError, list_bits, partition
from neurohw.network import IntLayer, IntNetwork

warnings.filterwarnings("ignore", message=".*has not been tested with your `nengo` version.*")
nengo_loihi = pytest.importorskip("nengo_loihi")
from nengo.exceptions import BuildError  # noqa: E402
from nengo_loihi.block import Axon, LoihiBlock, Synapse  # noqa: E402
from nengo_loihi.builder.builder import Model  # noqa: E402
from nengo_loihi.builder.split_blocks import split_model  # noqa: E402
from nengo_loihi.builder.validate import validate_model  # noqa: E402
from nengo_loihi.config import BlockShape  # noqa: E402
from nengo_loihi.inputs import SpikeInput  # noqa: E402


def nengo_fit(net: IntNetwork, chunks=None):
    """net as nengo-loihi blocks (one block per layer, a dense Synapse per projection, an Axon
    per source), split by nengo-loihi's rule or by the given neurons per core, then validated.
    Returns (fits, error, cores per layer, per-core utilization rows)."""
    model = Model()
    inp = SpikeInput(net.n_in)
    model.add_input(inp)
    blocks, src = [], inp
    for i, layer in enumerate(net.layers):
        b = LoihiBlock(layer.n_out, label=f"layer{i}")
        for w, s in [(layer.weights, src)] + ([(layer.rec_weights, b)] if layer.recurrent else []):
            syn = Synapse(w.shape[1])
            syn.set_weights(w.T.astype(np.float32))      # (n_axons, n_compartments)
            b.add_synapse(syn)
            ax = Axon(w.shape[1])
            ax.target = syn
            s.add_axon(ax)
        model.add_block(b)
        if chunks is not None:
            model.block_shapes[b] = BlockShape((int(chunks[i]),), (layer.n_out,))
        blocks.append(b)
        src = b
    bmap = split_model(model)
    use = [tuple(v[0] for v in nb.utilization().values()) for b in blocks for nb in bmap[b]]
    try:
        validate_model(model)
    except BuildError as e:
        return False, str(e), [len(bmap[b]) for b in blocks], use
    return True, "", [len(bmap[b]) for b in blocks], use


def ours(net, chunks=None):
    try:
        r = partition(net, "loihi1", chunks=chunks)
    except FitError as e:
        return False, e, None, None
    use = list(zip(r.core_neurons, r.core_input_axons, r.core_output_axons, r.core_synapse_bits))
    return True, None, [l.cores for l in r.layers], [tuple(int(x) for x in u) for u in use]


def dense_net(n_in, sizes, seed, recurrent=False):
    """Every weight non-zero (mixed sign, 8 bits): the dense synapse format of nengo-loihi."""
    rng = np.random.default_rng(seed)
    w = lambda o, i: (rng.integers(1, 128, (o, i)) * rng.choice([-2, 2], (o, i))).astype(np.int16)  # noqa: E731
    layers, n = [], n_in
    for k, m in enumerate(sizes):
        layers.append(IntLayer(weights=w(m, n), du=0, dv=0, vth=1,
                               rec_weights=w(m, m) if recurrent and k == 0 else None))
        n = m
    return IntNetwork(n_in=n_in, layers=layers)


# (resource, n_in, layer sizes, chunks that put one layer at the limit): "at" is exactly at the
# limit, "past" one unit (one memory word for synapse bits) over it.
CASES = {
    "compartments": {"at": (1, [1024]), "past": (1, [1025])},
    "input_axons": {"at": (4096, [1]), "past": (4097, [1])},
    # 2048 axons x (56 synapses x 8 bits + 10 header bits -> 512 bits) = 2**20 bits exactly
    "synapse_bits": {"at": (2048, [56]), "past": (2049, [56])},
    # output routes of layer 0 = its neurons x the cores of layer 1: 1024 x 4 = 4096; 820 x 5 = 4100
    # (4097 = 241 x 17 needs an 8,100-neuron layer 1 that nengo-loihi takes a minute to split; it
    # agrees too: docs/fit.md)
    "output_axons": {"at": (1, [1024, 400]), "past": (1, [820, 650])},
}


@pytest.mark.parametrize("resource", list(CASES))
@pytest.mark.parametrize("side", ["at", "past"])
def test_single_block_agrees_with_nengo_loihi_validation(resource, side):
    """Layer 0 on one core (and layer 1 cut as nengo-loihi cuts it): fit or no fit agrees with
    nengo-loihi's validate_model, and where it fits every core's compartments, input axons,
    output axons and synapse bits equal nengo-loihi's own utilization()."""
    n_in, sizes = CASES[resource][side]
    net = dense_net(n_in, sizes, seed=len(resource) + (side == "past"))
    ok_auto, _, cores_auto, _ = nengo_fit(net)
    chunks = [sizes[0]] + [-(-m // c) for m, c in zip(sizes[1:], cores_auto[1:])]
    theirs = nengo_fit(net, chunks)
    mine = ours(net, chunks)
    assert mine[0] == theirs[0] == (side == "at"), (resource, side, theirs[1], mine[1])
    if mine[0]:
        assert mine[2] == theirs[2]
        assert mine[3] == theirs[3]
    else:
        limit = {"compartments": "neurons"}.get(resource, resource)
        assert mine[1].limit == limit and mine[1].layer == 0
        assert f"({mine[1].value})" in theirs[1]          # nengo-loihi names the same value


@pytest.mark.parametrize("resource", list(CASES))
@pytest.mark.parametrize("side", ["at", "past"])
def test_automatic_split_agrees_with_nengo_loihi(resource, side):
    """Both split on their own: same fit or no fit and the same core counts, except where output
    routes bind: nengo-loihi sizes its split from the layer's totals and cannot see the routes
    its split of the next layer creates; ours cuts layer 0 in two, and that mapping, handed to
    nengo-loihi as block shapes, passes its validation."""
    n_in, sizes = CASES[resource][side]
    net = dense_net(n_in, sizes, seed=7)
    ok_n, err_n, cores_n, _ = nengo_fit(net)
    ok_o, err_o, cores_o, _ = ours(net)
    if resource == "output_axons" and side == "past":
        assert not ok_n and "Output axons (4100) exceeded max (4096)" in err_n
        assert ok_o and cores_o == [2, 5]
        r = partition(net, "loihi1")
        ok_v, _, cores_v, use_v = nengo_fit(net, [l.neurons_per_core for l in r.layers])
        assert ok_v and cores_v == cores_o and use_v == ours(net)[3]
        return
    fits = resource not in ("input_axons",) or side == "at"
    assert ok_n == ok_o == fits, (err_n, err_o)
    if fits:
        assert cores_o == cores_n


@pytest.mark.parametrize("seed", range(8))
def test_random_networks_match_nengo_loihi_accounting(seed):
    """Random sizes, recurrent or not, near the memory and neuron limits: our automatic mapping
    validates in nengo-loihi, every core's use equals its utilization(), and where nengo-loihi's
    own split validates it uses as many cores as ours."""
    rng = np.random.default_rng(100 + seed)
    n_in = int(rng.integers(1, 400))
    sizes = [int(rng.integers(1, 800)) for _ in range(int(rng.integers(1, 3)))]
    net = dense_net(n_in, sizes, seed, recurrent=bool(rng.integers(0, 2)))
    ok_o, err, cores_o, use_o = ours(net)
    if not ok_o:                       # only input axons can make a layer impossible here
        assert err.limit == "input_axons"
        assert not nengo_fit(net)[0]
        return
    r = partition(net, "loihi1")
    ok_v, err_v, cores_v, use_v = nengo_fit(net, [l.neurons_per_core for l in r.layers])
    assert ok_v, err_v
    assert cores_v == cores_o and use_v == use_o
    ok_n, _, cores_n, _ = nengo_fit(net)
    if ok_n:
        assert cores_n == cores_o


def test_list_bits_equals_nengo_loihi_bits_per_axon():
    from nengo_loihi.block import SynapseConfig
    p = load_profile("loihi1")
    for wb, real in ((7, 8), (5, 5), (1, 1)):
        cfg = SynapseConfig(weight_bits=wb, n_synapses=63, compression=3)
        n = np.arange(0, 700)
        assert list(list_bits(n, real, p)) == [cfg.bits_per_axon(int(k)) for k in n]


def test_fit_errors_and_chips():
    net = dense_net(16, [3000, 10], seed=1)
    r = partition(net, "loihi1")
    assert [l.cores for l in r.layers] == [3, 1] and r.chips == 1
    big = IntNetwork(n_in=1, layers=[IntLayer(weights=np.full((128 * 1024 + 1, 1), 2, np.int16), du=0, dv=0, vth=1)])
    assert partition(big, "loihi1").chips == 2
    with pytest.raises(FitError, match=r"network: needs 129 cores = 2 chips of 128; --chips 1 allows 128"):
        partition(big, "loihi1", chips=1)
    with pytest.raises(FitError, match=r"layer 1: input axons per core = 4,097 exceeds the limit 4,096"):
        partition(dense_net(2, [4097, 2], seed=3), "loihi1")
    graded = IntNetwork(n_in=2, layers=[IntLayer(weights=np.ones((2, 2), np.int16), du=0, dv=0, vth=1)],
                        input_message_bits=8)
    with pytest.raises(FitError, match="graded spikes"):
        partition(graded, "loihi1")
    assert partition(graded, "loihi2").cores == 1


def test_weight_widths_and_sparse_format():
    p1 = load_profile("loihi1")
    assert p1.stored_weight_bits(7) == 8 and p1.stored_weight_bits(3) == 3
    assert load_profile("loihi2").stored_weight_bits(7) == 7
    # a diagonal layer: the sparse format stores one indexed synapse per source, not n
    w = (np.eye(500, dtype=np.int16) * 2)
    r = partition(IntNetwork(n_in=500, layers=[IntLayer(weights=w, du=0, dv=0, vth=1)]), p1)
    assert r.layers[0].formats == {"dense": 0, "sparse": 1}
    assert r.core_input_axons[0] == 500 and r.core_synapse_bits[0] == 500 * 64   # 8 + 9 idx + 10 -> 1 word


def test_bad_profiles_are_one_line_errors(tmp_path):
    good = (load_profile("loihi1").__dict__)
    assert good["neurons_per_core"] == 1024 and "input_axons_per_core" in load_profile("loihi2").assumptions
    cases = {"neurons_per_core: 0\n": "neurons_per_core = 0 must be an integer >= 1",
             "weight_bits: []\n": "weight_bits = [] must be a non-empty list",
             "bogus: 1\n": "unknown key 'bogus'",
             "graded_spikes: 3\n": "graded_spikes = 3 must be true or false",
             ": :\n  - [\n": "not valid YAML"}
    base = (load_profile.__globals__["HERE"] / "loihi1.yaml").read_text()
    for i, (patch, msg) in enumerate(cases.items()):
        f = tmp_path / f"p{i}.yaml"
        key = patch.split(":")[0]
        lines = [l for l in base.splitlines() if not l.startswith(key + ":")] if key.strip() else []
        f.write_text("\n".join(lines) + "\n" + patch)
        with pytest.raises(ProfileError) as e:
            load_profile(f)
        assert msg in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ProfileError, match="no such profile"):
        load_profile("loihi9")


def test_cli_fit_exit_codes_and_one_line_errors(tmp_path, capsys):
    from neurohw import cli
    assert cli.main(["fit", "deploy/yinyang", "--energy", "--json", str(tmp_path / "f.json")]) == 0
    out = capsys.readouterr().out
    assert "binding limit" in out and "fits: 2 cores on 1 chip(s)" in out and "nJ per inference" in out
    import json
    rep = json.loads((tmp_path / "f.json").read_text())
    assert rep["fit"]["cores"] == 2 and rep["energy"]["samples"] == 16
    dense_net(4097, [2], seed=0).save(tmp_path / "wide")
    assert cli.main(["fit", str(tmp_path / "wide")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("neurohw: error: layer 0: input axons per core = 4,097 exceeds the limit 4,096 of chip loihi1 "
                   "even with one neuron per core (neuron 0)")
    assert cli.main(["fit", str(tmp_path / "wide"), "--chip", "loihi2", "--chips", "1"]) == 1
    (tmp_path / "bad.yaml").write_text("name: x\n")
    assert cli.main(["fit", "deploy/yinyang", "--chip", str(tmp_path / "bad.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "missing key 'cores_per_chip'" in err[1]


@pytest.mark.parametrize("H,W,C,F,k,s,pad", [(8, 8, 2, 4, 3, 1, "valid"), (10, 9, 3, 5, 3, 1, "same"),
                                             (12, 12, 2, 3, 3, 2, "valid"), (9, 11, 1, 6, 5, 2, "same"),
                                             (16, 16, 4, 4, 1, 1, "valid"), (7, 7, 2, 2, 2, 2, "valid"),
                                             (20, 20, 2, 2, 3, 1, "same")])
def test_conv_shared_kernel_memory_equals_nengo_loihi(H, W, C, F, k, s, pad):
    """A conv layer on one core: synapse bits and used input axons equal those of nengo-loihi's
    own conv layout (nengo_loihi.conv.conv2d_loihi_weights, population axons, shared weights)."""
    import nengo
    from nengo_loihi.conv import conv2d_loihi_weights

    from neurohw.network import Conv2d
    rng = np.random.default_rng(H * W + k)
    kern = (rng.integers(1, 128, (F, k, k, C)) * 2).astype(np.int16)           # (C_out, kh, kw, C_in)
    tr = nengo.Convolution(F, (H, W, C), kernel_size=(k, k), strides=(s, s), padding=pad, channels_last=True,
                           init=np.transpose(kern, (1, 2, 3, 0)).astype(float))
    w, idx, a2w, off = conv2d_loihi_weights(tr)
    syn = Synapse(H * W)
    syn.set_population_weights(w, idx, a2w, off, pop_type=32)
    p = (k - 1) // 2 if pad == "same" else 0
    layer = IntLayer(weights=kern, conv=Conv2d(in_shape=(H, W, C), stride=s, padding=p), du=0, dv=0, vth=1)
    net = IntNetwork(n_in=H * W * C, layers=[layer])
    assert layer.shape == tuple(tr.output_shape.shape)
    r = partition(net, "loihi1", chunks=[layer.n_out])
    assert r.core_synapse_bits[0] == syn.bits()
    assert r.core_input_axons[0] == int((off >= 0).sum())


def test_delays_cost_their_bits_and_need_a_chip_with_delays():
    rng = np.random.default_rng(3)
    w = (rng.integers(1, 128, (50, 30)) * 2).astype(np.int16)
    for dmax, dbits in ((0, 0), (1, 1), (5, 3), (63, 6)):
        d = rng.integers(0, dmax + 1, (50, 30))
        d.flat[0] = dmax
        net = IntNetwork(n_in=30, layers=[IntLayer(weights=w, delays=d, du=0, dv=0, vth=1)])
        r = partition(net, "loihi2")
        assert r.layers[0].delay_bits == dbits
        assert r.core_synapse_bits[0] == 30 * list_bits(50, 8 + dbits, load_profile("loihi2"))
    p0 = load_profile("loihi1").__class__(**{**load_profile("loihi1").__dict__, "max_delay_bits": 0})
    with pytest.raises(FitError, match="layer 0: feedforward delays need 6 delay bits; chip loihi1 has 0"):
        partition(net, p0)


def test_deploy_fit_report_has_table_and_sanafe_numbers():
    from neurohw.deploy import fit_report
    md = fit_report(names=["recurrent"])
    assert "## recurrent" in md and "binding limit" in md and "SANA-FE energy per inference" in md
