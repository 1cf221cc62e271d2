"""train.max_over_time_tau: max_over_time_ce's soft max over time, which a readout class whose
membrane never rises above the constant 0 of the first steps cannot pin (docs/quant.md)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

from neurohw import tasks
from neurohw.config import ConfigError, parse_config
from neurohw.data import latency_encode
from neurohw.train import losses

ROOT = Path(__file__).resolve().parents[1]


def yinyang(**train) -> dict:
    d = yaml.safe_load((ROOT / "configs" / "yinyang.yaml").read_text())
    d["model"]["spec"] = str(ROOT / "models" / "yinyang.yaml")
    d["train"].update(train)
    return d


def dead_class_net(cfg):
    """The Yin-Yang net with readout class 2's weights all negative: its membrane is 0 until the
    first hidden spike arrives and negative from then on, on every input (the seed-7 collapse)."""
    torch.manual_seed(0)
    net = tasks.build_model(cfg)
    with torch.no_grad():
        net.layers[0].weight.uniform_(0.5, 1.5)          # every hidden neuron fires
        net.readout.weight.normal_(0.0, 0.3)
        net.readout.weight[2] = -net.readout.weight[2].abs() - 0.1
    return net


def inputs(n: int = 16):
    g = torch.Generator().manual_seed(1)
    x = latency_encode(torch.rand(n, 4, generator=g).numpy(), 60, t_max=50)
    return torch.as_tensor(x, dtype=torch.float32), torch.full((n,), 2)


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_a_pinned_readout_class_gets_a_gradient_only_with_tau(tau):
    cfg = parse_config(yinyang(max_over_time_tau=tau, loss="max_over_time_ce"))
    net = dead_class_net(cfg)
    x, y = inputs()
    out = net(x)
    v = out["readout_v"][:, :, 2]
    assert (v <= 0).all() and (v < 0).any(1).all()            # pinned: the max is a constant 0 step
    assert (v.max(1).values == 0).all()
    tasks.loss_fn(cfg)(out, y).backward()
    g = net.readout.weight.grad[2]
    if tau == 0:
        assert torch.count_nonzero(g) == 0                    # no way back for class 2
    else:
        # every label is 2: descending the gradient raises class 2's weights from every neuron
        # that fired (all of them here)
        assert (g < 0).all()


def test_soft_max_is_between_the_max_and_the_max_plus_tau_log_t_and_tends_to_it():
    torch.manual_seed(0)
    v = torch.randn(5, 30, 3) * 4
    y = torch.tensor([0, 1, 2, 0, 1])
    hard = losses.max_over_time_ce(v, y)
    assert losses.max_over_time_ce(v, y, tau=1e-4).item() == pytest.approx(hard.item(), abs=1e-5)
    soft = 0.5 * torch.logsumexp(v / 0.5, 1)
    m = v.max(1).values
    assert (soft >= m).all() and (soft <= m + 0.5 * torch.log(torch.tensor(30.0)) + 1e-6).all()
    assert losses.max_over_time_ce(v, y, tau=0.5).item() == pytest.approx(
        torch.nn.functional.cross_entropy(soft, y).item(), rel=1e-6)


def test_the_decision_stays_the_hard_max():
    v = torch.zeros(1, 4, 2)
    v[0, :, 0] = torch.tensor([0.0, 1.0, 1.0, 1.0])         # soft max of class 0 > class 1's ...
    v[0, :, 1] = torch.tensor([0.0, 0.0, 0.0, 1.2])         # ... but class 1 has the higher peak
    for tau in (0.0, 1.0):
        cfg = parse_config(yinyang(max_over_time_tau=tau))
        assert tasks.predictor(cfg)({"readout_v": v}).tolist() == [1]


def test_config_key_default_keeps_hashes_and_round_trips():
    base = parse_config(yinyang(max_over_time_tau=0.0))
    d = yinyang()
    d["train"].pop("max_over_time_tau", None)
    assert base == parse_config(d) and base.section_hash("train") == parse_config(d).section_hash("train")
    assert "max_over_time_tau" not in base.to_dict()["train"]
    soft = parse_config(yinyang(max_over_time_tau=1.0))
    assert soft.to_dict()["train"]["max_over_time_tau"] == 1.0
    assert parse_config(copy.deepcopy(soft.to_dict())) == soft
    assert soft.section_hash("train") != base.section_hash("train")


@pytest.mark.parametrize("train,parts", [
    ({"max_over_time_tau": -1.0}, ["train.max_over_time_tau = -1.0", "float [0, 100]"]),
    ({"max_over_time_tau": "soft"}, ["train.max_over_time_tau = 'soft'", "float"]),
    ({"max_over_time_tau": 1.0, "loss": "mean_over_time_ce"},
     ["train.max_over_time_tau = 1.0", "train.loss = 'mean_over_time_ce'", "0 (or omit it)"]),
])
def test_bad_max_over_time_tau_is_one_line(train, parts):
    with pytest.raises(ConfigError) as e:
        parse_config(yinyang(**train), source="cfg.yaml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("cfg.yaml: ")
    for p in parts:
        assert p in msg
