"""`neurohw export` / `neurohw import` and pipeline configs whose model comes from a NIR or netx file."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import neurohw
from neurohw.cli import main
from neurohw.config import ConfigError, load_config
from neurohw.interop import nir as nx
from neurohw.network import IntLayer, IntNetwork
from neurohw.train import LayerSpec, SpikingNet

pytest.importorskip("nir")
pytest.importorskip("h5py")
REPO = Path(__file__).resolve().parents[1]
FIELDS = ("weights", "weight_exp", "num_weight_bits", "rec_weights", "rec_weight_exp", "rec_num_weight_bits",
          "du", "dv", "vth", "bias_mant", "bias_exp")


def _same(a: IntNetwork, b: IntNetwork):
    assert a.n_in == b.n_in and a.input_message_bits == b.input_message_bits
    for x, y in zip(a.layers, b.layers, strict=True):
        for f in FIELDS:
            p, q = getattr(x, f), getattr(y, f)
            assert (p is None and q is None) or np.array_equal(p, q), f


def _netx_net(seed=0, n_in=5, n_out=3):
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-60, 60, (12, n_in)) * 2
    w2 = rng.integers(-40, 40, (n_out, 12)) * 2
    return IntNetwork(n_in=n_in, layers=[
        IntLayer(weights=w1.astype(np.int16), du=4095, dv=300, vth=40, weight_exp=1,
                 bias_mant=rng.integers(-20, 40, 12).astype(np.int16), bias_exp=np.full(12, 6, np.int8)),
        IntLayer(weights=w2.astype(np.int16), du=4095, dv=300, vth=30, weight_exp=1,
                 bias_mant=np.zeros(n_out, np.int16), bias_exp=np.full(n_out, 6, np.int8))])


def test_cli_nir_round_trip_of_a_deploy_bundle(tmp_path, capsys):
    assert main(["export", str(REPO / "deploy/digits"), "--format", "nir", str(tmp_path / "d.nir")]) == 0
    assert main(["import", str(tmp_path / "d.nir"), str(tmp_path / "back")]) == 0
    _same(neurohw.load_bundle(REPO / "deploy/digits"), neurohw.load_bundle(tmp_path / "back"))


def test_cli_netx_round_trip_and_refusal(tmp_path, capsys):
    _netx_net().save(tmp_path / "b")
    assert main(["export", str(tmp_path / "b"), "--format", "netx", str(tmp_path / "n.h5")]) == 0
    assert main(["import", str(tmp_path / "n.h5"), str(tmp_path / "back")]) == 0
    _same(neurohw.load_bundle(tmp_path / "b"), neurohw.load_bundle(tmp_path / "back"))
    capsys.readouterr()
    assert main(["export", str(REPO / "deploy/digits"), "--format", "netx", str(tmp_path / "d.h5")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neurohw: error: layer 0: ") and "netx" in err
    assert not (tmp_path / "d.h5").exists()


def test_cli_imports_a_foreign_nir_graph_as_a_float_model(tmp_path):
    net = SpikingNet(5, [LayerSpec(4, du=4095, dv=512)])
    g = nx.to_nir(net)
    for node in g.nodes.values():
        node.metadata.clear()
    nx.write(g, tmp_path / "f.nir")
    assert main(["import", str(tmp_path / "f.nir"), str(tmp_path / "f.pt"), "--peer", "snntorch"]) == 0
    sd = torch.load(tmp_path / "f.pt")
    assert torch.equal(sd["layers.0.weight"], net.layers[0].weight.detach())


def _config(tmp_path, model, epochs):
    cfg = dict(name="filemodel", out_dir=str(tmp_path / "run"),
               data=dict(task="yinyang", steps=20, t_max=12, n_train=200, n_test=64),
               model=model, train=dict(epochs=epochs, batch_size=50, lr=0.005),
               quant=dict(qat_epochs=0), deploy=dict(lava=True, lava_samples=6), parity=dict(samples=6))
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.slow
def test_pipeline_runs_a_netx_model_exactly(tmp_path, capsys):
    from neurohw.interop import netx
    net = _netx_net(1)
    netx.export(net, tmp_path / "m.h5")
    cfg = _config(tmp_path, {"netx": "m.h5"}, epochs=0)
    assert main(["run", str(cfg), "--quiet"]) == 0          # exit 0: parity emulator = Lava = trainer
    _same(net, neurohw.load_bundle(tmp_path / "run/bundle"))
    rep = json.loads((tmp_path / "run/report.json").read_text())
    assert rep["parity"]["ok"]


@pytest.mark.slow
def test_pipeline_quantizes_and_deploys_a_nir_model(tmp_path):
    torch.manual_seed(0)
    net = SpikingNet(5, [LayerSpec(16, du=4095, dv=512, vth=1.0)], readout=LayerSpec(3, du=4095, dv=512))
    with torch.no_grad():
        net.layers[0].weight.normal_(0, 1.5)
        net.readout.weight.normal_(0, 0.5)
    nx.write(nx.to_nir(net), tmp_path / "m.nir")
    cfg = _config(tmp_path, {"nir": "m.nir", "peer": "neurohw"}, epochs=1)     # fine-tuned one epoch
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert json.loads((tmp_path / "run/report.json").read_text())["parity"]["ok"]
    c = load_config(cfg)
    assert c.model.file.kind == "nir" and c.model.readout.n == 3


def test_config_errors_name_the_model_file_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.nir = .*file not found"):
        load_config(_config(tmp_path, {"nir": "missing.nir"}, 0))
    (tmp_path / "bad.nir").write_text("not hdf5")
    with pytest.raises(ConfigError, match=r"model\.nir = .*cannot be read"):
        load_config(_config(tmp_path, {"nir": "bad.nir"}, 0))
    nx.write(nx.to_nir(SpikingNet(5, [LayerSpec(3, du=4095, dv=512)])), tmp_path / "m.nir")
    with pytest.raises(ConfigError, match=r"model\.spec .*together with model\.nir"):
        load_config(_config(tmp_path, {"nir": "m.nir", "spec": "x.yaml"}, 0))
    with pytest.raises(ConfigError, match=r"model\.dt .*model file only"):
        load_config(_config(tmp_path, {"layers": [{"n": 3}], "dt": 1e-3}, 0))
    with pytest.raises(ConfigError, match=r"model\.peer"):
        load_config(_config(tmp_path, {"nir": "m.nir", "peer": "rockpool"}, 0))


def test_cli_netx_requantize_a_deploy_bundle(tmp_path, capsys):
    """export --requantize: a bundle netx refuses for its grids, quantized again for netx from its
    exact float equivalent (calibrated on its stored inputs); lava-dl's netx loads the file."""
    from neurohw.interop import netx
    assert main(["export", str(REPO / "deploy/digits"), "--format", "netx", "--requantize",
                 str(tmp_path / "d.h5")]) == 0
    assert "requantized for netx" in capsys.readouterr().out
    back = netx.load(tmp_path / "d.h5")
    netx.check(back)
    assert back.kinds == neurohw.load_bundle(REPO / "deploy/digits").kinds
    _netx_net().save(tmp_path / "b")                   # no stored inputs: a one-line refusal
    assert main(["export", str(tmp_path / "b"), "--format", "netx", "--requantize", str(tmp_path / "x.h5")]) == 1
    assert "--requantize calibrates on the bundle's stored inputs" in capsys.readouterr().err


@pytest.mark.slow
def test_pipeline_with_quant_target_netx_exports_to_netx(tmp_path):
    """quant.target: netx: the run's bundle is one lava-dl's netx holds exactly (weight_exp 0,
    biases on the 64 grid), and neurohw export writes it without refusal."""
    cfg = _config(tmp_path, {"layers": [{"n": 16, "du": 4095, "dv": 512}], "readout": {"n": 3}}, epochs=1)
    raw = yaml.safe_load(cfg.read_text())
    raw["quant"]["target"] = "netx"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["run", str(cfg), "--quiet"]) == 0
    net = neurohw.load_bundle(tmp_path / "run/bundle")
    assert all(x.weight_exp == 0 and np.all(x.bias_exp == 6) for x in net.layers)
    assert main(["export", str(tmp_path / "run"), "--format", "netx", str(tmp_path / "r.h5")]) == 0
