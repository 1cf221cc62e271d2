"""Config schema for conv, pool and delayed layers and the event / interval tasks."""
from pathlib import Path

import pytest

from neurohw.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parent.parent
SRC = "cfg.yaml"


def events_cfg(layers, readout=None) -> dict:
    return {"name": "ev", "data": {"task": "event_digits", "steps": 6},
            "model": {"layers": layers, "readout": readout or {"n": 10}}}


@pytest.mark.parametrize("name", ["events_conv", "delays", "nodelays"])
def test_shipped_configs_load(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert parse_config(cfg.to_dict()) == cfg                     # round trip, derived n included
    if name == "events_conv":
        assert [l.kind for l in cfg.model.layers] == ["conv", "pool", "conv"]
        assert [l.n for l in cfg.model.layers] == [16 * 16 * 8, 8 * 8 * 8, 4 * 4 * 16]
        assert cfg.in_shape == (16, 16, 2) and cfg.n_in == 512
    else:
        assert cfg.in_shape is None and cfg.n_in == 8 and cfg.n_classes == 4
        assert cfg.model.layers[0].max_delay == (12 if name == "delays" else 0)
        assert cfg.model.layers[0].train_delays == (name == "delays")


def test_dense_model_hash_is_unchanged_by_the_new_keys():
    """Projection keys at their defaults are left out of to_dict, so existing runs keep their hashes."""
    cfg = parse_config({"name": "a", "data": {"task": "yinyang"}, "model": {"layers": [{"n": 8}], "readout": {"n": 3}}})
    assert cfg.to_dict()["model"]["layers"] == [{"n": 8, "du": 409, "dv": 409, "vth": 1.0, "recurrent": False}]


def test_conv_geometry_rectangular_maps_and_groups():
    cfg = parse_config(events_cfg([{"kind": "conv", "channels": 6, "kernel": 5, "stride": 3, "padding": 2,
                                    "dilation": 2, "groups": 2}, {"kind": "pool", "kernel": 2}, {"n": 7}]))
    # (16 + 4 - 2*4 - 1) // 3 + 1 = 4 per axis; pool 2 -> 2
    assert [l.n for l in cfg.model.layers] == [4 * 4 * 6, 2 * 2 * 6, 7]


MISTAKES = [
    ("kind", events_cfg([{"kind": "maxpool"}]), ["model.layers[0].kind = 'maxpool'", "'dense', 'conv', 'pool'"]),
    ("no_channels", events_cfg([{"kind": "conv"}]), ["model.layers[0].channels is missing", "int 1..1024"]),
    ("groups_out", events_cfg([{"kind": "conv", "channels": 3, "groups": 2}]),
     ["model.layers[0].groups = 2", "does not divide channels = 3"]),
    ("groups_in", events_cfg([{"kind": "conv", "channels": 4, "groups": 4}]),
     ["model.layers[0].groups = 4", "does not divide the 2 input channels"]),
    ("kernel_too_big", events_cfg([{"kind": "conv", "channels": 2, "kernel": 9, "dilation": 2}]),
     ["model.layers[0].kernel = 9", "does not fit the 16x16 input map"]),
    ("n_mismatch", events_cfg([{"kind": "pool", "kernel": 2, "n": 100}]),
     ["model.layers[0].n = 100", "8x8x2", "allowed 128 or omit it"]),
    ("conv_on_flat", {"name": "a", "data": {"task": "intervals"},
                      "model": {"layers": [{"kind": "conv", "channels": 2}], "readout": {"n": 4}}},
     ["model.layers[0].kind = 'conv'", "needs an (H, W, C) input map", "data.task = 'intervals'"]),
    ("conv_after_dense", events_cfg([{"n": 20}, {"kind": "pool"}]),
     ["model.layers[1].kind = 'pool'", "or a dense layer before it"]),
    ("stride_on_pool", events_cfg([{"kind": "pool", "stride": 2}]),
     ["model.layers[0].stride = 2", "does not apply to kind = 'pool'", "allowed kernel"]),
    ("delay_on_conv", events_cfg([{"kind": "conv", "channels": 2, "max_delay": 3}]),
     ["model.layers[0].max_delay = 3", "does not apply to kind = 'conv'"]),
    ("recurrent_conv", events_cfg([{"kind": "conv", "channels": 2, "recurrent": True}]),
     ["model.layers[0].recurrent = True", "only for dense layers"]),
    ("max_delay_range", {"name": "a", "data": {"task": "intervals"},
                         "model": {"layers": [{"n": 4, "max_delay": 63}], "readout": {"n": 4}}},
     ["model.layers[0].max_delay = 63", "int 0..62"]),
    ("train_without_max", {"name": "a", "data": {"task": "intervals"},
                           "model": {"layers": [{"n": 4, "train_delays": True}], "readout": {"n": 4}}},
     ["model.layers[0].train_delays = True", "needs max_delay >= 1"]),
    ("conv_last_no_readout", {"name": "a", "data": {"task": "event_digits", "steps": 6},
                              "model": {"layers": [{"kind": "conv", "channels": 10, "kernel": 16}]}},
     ["model.layers[0].kind = 'conv'", "cannot be the output layer"]),
    ("event_steps", {"name": "a", "data": {"task": "event_digits", "steps": 10},
                     "model": {"layers": [{"n": 4}], "readout": {"n": 10}}},
     ["data.steps = 10", "multiple of 3"]),
    ("copies_not_events", {"name": "a", "data": {"task": "intervals", "copies": 2},
                           "model": {"layers": [{"n": 4}], "readout": {"n": 4}}},
     ["data.copies = 2", "only applies to data.task = 'event_digits'"]),
    ("interval_steps", {"name": "a", "data": {"task": "intervals", "steps": 12},
                        "model": {"layers": [{"n": 4}], "readout": {"n": 4}}},
     ["data.steps = 12", "too short"]),
    ("interval_classes", {"name": "a", "data": {"task": "intervals"},
                          "model": {"layers": [{"n": 4}], "readout": {"n": 10}}},
     ["model.readout.n = 10", "4 classes of data.task = 'intervals'"]),
]


@pytest.mark.parametrize("cfg,expected", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_layer_mistakes_are_one_line(cfg, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(cfg, source=SRC)
    msg = str(e.value)
    assert msg.startswith(f"{SRC}: ") and "\n" not in msg, msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_build_model_follows_the_config():
    from neurohw import tasks
    cfg = load_config(REPO / "configs" / "events_conv.yaml")
    net = tasks.build_model(cfg)
    assert [m.spec.n_out for m in net.modules_in_order] == [2048, 512, 256, 10]
    assert [m.out_shape for m in net.layers] == [(16, 16, 8), (8, 8, 8), (4, 4, 16)]
    d = tasks.build_model(load_config(REPO / "configs" / "delays.yaml"))
    assert d.layers[0].spec.max_delay == 12 and d.layers[0].delay is not None
