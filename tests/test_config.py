"""Pipeline config schema: round trip, defaults, stage hashes, and one-line messages for mistakes."""
import copy
import json
from pathlib import Path

import pytest
import yaml

from neurohw.config import (Config, ConfigError, LayerConfig, load_config, parse_config)

REPO = Path(__file__).resolve().parent.parent
SRC = "cfg.yaml"
_DEL = object()


def full_yinyang() -> dict:
    """A valid config with every key written out."""
    return {
        "name": "yy_test", "seed": 3, "out_dir": "runs/yy",
        "data": {"task": "yinyang", "encoding": "latency", "steps": 30, "t_max": 20,
                 "n_train": 100, "n_test": 50},
        "model": {"layers": [{"n": 16, "du": 409, "dv": 409, "vth": 1.0, "recurrent": False}],
                  "readout": {"n": 3, "du": 409, "dv": 409}},
        "neuron": {"stochastic": True, "escape": "sigmoid", "beta": 5.0, "surrogate": "superspike",
                   "surrogate_beta": 10.0, "scale_by_beta": False, "detach_reset": True, "noise_seed": 7},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.002, "clip": 1.0, "trials": 2,
                  "loss": "max_over_time_ce", "init_xi": 2.0, "rate_low": 0.0, "rate_high": 0.5,
                  "rate_strength": 0.1},
        "quant": {"weight_bits": 8, "qat_epochs": 1, "qat_lr": 0.0005, "qat_hw_exact": True},
        "deploy": {"lava": False, "lava_samples": 10},
        "parity": {"hw_exact": True, "samples": 4},
    }


def digits_rate() -> dict:
    return {"name": "dg", "data": {"task": "digits", "encoding": "rate"},
            "model": {"layers": [{"n": 32}], "readout": {"n": 10}}}


def spike_train() -> dict:
    return {"name": "st", "data": {"task": "spike_train"},
            "model": {"layers": [{"n": 200}, {"n": 200}]}}


def with_(base: dict, **changes) -> dict:
    """Copy of base with dotted keys set (`model__layers__0__du=5`) or removed (`=_DEL`)."""
    d = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = d
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DEL:
            del node[last]
        else:
            node[last] = value
    return d


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as e:
        fn(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg and "; allowed " in msg, msg
    return msg


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- valid configs -----------------------------------------------------------------------------

def test_full_config_round_trips():
    cfg = parse_config(full_yinyang(), source=SRC)
    d = cfg.to_dict()
    assert parse_config(d) == cfg
    assert parse_config(yaml.safe_load(yaml.safe_dump(d))) == cfg      # plain types only
    json.dumps(d)
    assert cfg.model.layers == (LayerConfig(n=16),)
    assert cfg.source == SRC and cfg.n_in == 5 and cfg.n_classes == 3


@pytest.mark.parametrize("base", [digits_rate, spike_train], ids=["digits", "spike_train"])
def test_other_tasks_round_trip(base):
    cfg = parse_config(base())
    assert parse_config(cfg.to_dict()) == cfg


def test_defaults_filled():
    cfg = parse_config({"name": "a", "data": {"task": "yinyang"},
                        "model": {"layers": [{"n": 8}], "readout": {"n": 3}}})
    assert (cfg.seed, cfg.out_dir) == (0, "runs/a")
    d = cfg.data
    assert (d.encoding, d.steps, d.t_max, d.rate_max, d.n_train, d.n_test) == ("latency", 30, 20, None, None, None)
    assert cfg.model.layers[0] == LayerConfig(n=8, du=409, dv=409, vth=1.0, recurrent=False)
    assert cfg.model.readout == LayerConfig(n=3, du=409, dv=409)
    n = cfg.neuron
    assert (n.stochastic, n.escape, n.beta, n.surrogate, n.surrogate_beta, n.scale_by_beta,
            n.detach_reset, n.noise_seed) == (False, "sigmoid", 5.0, "superspike", 10.0, False, True, 1)
    t = cfg.train
    assert (t.epochs, t.batch_size, t.lr, t.clip, t.trials, t.loss, t.init_xi, t.rate_low, t.rate_high,
            t.rate_strength) == (30, 64, 0.002, 1.0, 1, "max_over_time_ce", 2.0, 0.0, 1.0, 0.0)
    assert (cfg.quant.weight_bits, cfg.quant.qat_epochs, cfg.quant.qat_lr, cfg.quant.qat_hw_exact) == (8, 0, 0.0005, False)
    assert (cfg.deploy.lava, cfg.deploy.lava_samples) == (True, 200)
    assert (cfg.parity.hw_exact, cfg.parity.samples) == (True, 32)


def test_task_dependent_defaults():
    dg = parse_config(digits_rate())
    assert (dg.data.encoding, dg.data.steps, dg.data.rate_max, dg.data.t_max) == ("rate", 25, 0.5, None)
    assert (dg.n_in, dg.n_classes) == (64, 10)
    lat = parse_config(with_(digits_rate(), data__encoding="latency", data__t_max=None))
    assert (lat.data.t_max, lat.data.rate_max) == (25 * 2 // 3, None)        # null = default
    st = parse_config(spike_train())
    assert (st.data.encoding, st.data.steps, st.train.loss) == ("poisson", 198, "van_rossum")
    assert (st.n_in, st.n_classes) == (200, None)
    no_readout = parse_config({"name": "b", "data": {"task": "yinyang"}, "model": {"layers": [{"n": 3}]}})
    assert no_readout.train.loss == "spike_count_ce"


def test_int_accepted_for_float():
    cfg = parse_config(with_(full_yinyang(), train__lr=1, neuron__beta=2))
    assert type(cfg.train.lr) is float and cfg.train.lr == 1.0 and cfg.neuron.beta == 2.0


def test_section_hash():
    a = parse_config(full_yinyang())
    b = parse_config(with_(full_yinyang(), train__lr=0.003))
    assert len(a.section_hash("train")) == 64
    assert a.section_hash("train") != b.section_hash("train")
    assert a.section_hash("data", "model") == b.section_hash("data", "model")
    assert a.section_hash("data", "train") == a.section_hash("train", "data")
    c = parse_config(with_(full_yinyang(), seed=4))
    assert a.section_hash("data") != c.section_hash("data")                  # seed always counts
    assert a.section_hash("quant") == parse_config(with_(full_yinyang(), name="other")).section_hash("quant")
    with pytest.raises(ValueError):
        a.section_hash("nope")
    with pytest.raises(ValueError):
        a.section_hash()


def test_spec_and_inline_are_the_same_model():
    inline = {"layers": [{"n": 120, "du": 409, "dv": 409, "vth": 1.0}], "readout": {"n": 3}}
    a = parse_config({"name": "a", "data": {"task": "yinyang"}, "model": inline})
    b = parse_config({"name": "a", "data": {"task": "yinyang"},
                      "model": {"spec": "models/yinyang.yaml"}}, base_dir=REPO)
    assert a == b and a.section_hash("model") == b.section_hash("model")
    assert b.model.spec == str(REPO / "models" / "yinyang.yaml")
    assert parse_config(b.to_dict()) == b                                     # to_dict writes layers inline


@pytest.mark.parametrize("spec,task,n_layers,readout", [
    ("yinyang", "yinyang", 1, 3), ("digits", "digits", 1, 10),
    ("spike_train", "spike_train", 2, None), ("recurrent", "yinyang", 1, 3), ("yinyang_wide", "yinyang", 1, 3)])
def test_shipped_model_specs(spec, task, n_layers, readout):
    cfg = parse_config({"name": spec, "data": {"task": task}, "model": {"spec": f"models/{spec}.yaml"}},
                       base_dir=REPO)
    assert len(cfg.model.layers) == n_layers
    assert (cfg.model.readout.n if cfg.model.readout else None) == readout
    assert cfg.model.layers[0].recurrent == (spec == "recurrent")


def test_load_config_resolves_spec_next_to_config_then_cwd(tmp_path, monkeypatch):
    write(tmp_path / "cfgs" / "specs" / "m.yaml", "layers: [{n: 8}]\nreadout: {n: 3}\n")
    cfg_path = write(tmp_path / "cfgs" / "a.yaml", "name: a\ndata: {task: yinyang}\nmodel: {spec: specs/m.yaml}\n")
    cfg = load_config(cfg_path)
    assert cfg.source == str(cfg_path) and cfg.model.layers[0].n == 8
    assert cfg.model.spec == str(tmp_path / "cfgs" / "specs" / "m.yaml")
    write(tmp_path / "models" / "root.yaml", "layers: [{n: 9}]\nreadout: {n: 3}\n")
    monkeypatch.chdir(tmp_path)                                              # the "repo root"
    cfg2 = load_config(write(tmp_path / "cfgs" / "b.yaml",
                             "name: b\ndata: {task: yinyang}\nmodel: {spec: models/root.yaml}\n"))
    assert cfg2.model.layers[0].n == 9


# --- mistakes in a config mapping: key path, offending value, allowed range/set -----------------

Y = full_yinyang
MISTAKES = [
    ("unknown_top_key", lambda: with_(Y(), colour="red"),
     ["colour = 'red'", "not a known key", "keys name, seed, out_dir, data"]),
    ("unknown_nested_key", lambda: with_(Y(), train__lrate=0.1),
     ["train.lrate = 0.1", "not a known key", "epochs", "rate_strength"]),
    ("unknown_layer_key", lambda: with_(Y(), model__layers__0={"n": 16, "tau": 3}),
     ["model.layers[0].tau = 3", "keys n, du, dv, vth, recurrent"]),
    ("str_for_int", lambda: with_(Y(), train__epochs="ten"),
     ["train.epochs = 'ten'", "expected int", "int 0..10000"]),
    ("bool_for_int", lambda: with_(Y(), train__batch_size=True),
     ["train.batch_size = True", "has type bool, expected int", "int 1..65536"]),
    ("list_for_mapping", lambda: with_(Y(), neuron=[1, 2]),
     ["neuron = [1, 2]", "expected a mapping", "keys stochastic, escape"]),
    ("yaml_text_float", lambda: with_(Y(), train__lr="2e-3"),
     ["train.lr = '2e-3'", "expected float", "2.0e-3", "float (0, 10]"]),
    ("str_for_bool", lambda: with_(Y(), deploy__lava="yes"),
     ["deploy.lava = 'yes'", "expected bool", "true or false"]),
    ("int_for_bool_qat_hw_exact", lambda: with_(Y(), quant__qat_hw_exact=1),
     ["quant.qat_hw_exact = 1", "expected bool", "true or false"]),
    ("null_for_int", lambda: with_(Y(), train__epochs=None),
     ["train.epochs = None", "is null", "int 0..10000"]),
    ("lr_negative", lambda: with_(Y(), train__lr=-1.0),
     ["train.lr = -1.0 must be > 0", "float (0, 10]"]),
    ("lr_too_big", lambda: with_(Y(), train__lr=11),
     ["train.lr = 11 must be <= 10", "float (0, 10]"]),
    ("du_range", lambda: with_(Y(), model__layers__0__du=4096),
     ["model.layers[0].du = 4096", "must be <= 4095", "int 0..4095"]),
    ("dv_range", lambda: with_(Y(), model__readout__dv=-1),
     ["model.readout.dv = -1", "must be >= 0", "int 0..4096"]),
    ("n_range", lambda: with_(Y(), model__layers__0__n=0),
     ["model.layers[0].n = 0", "int 1..4096"]),
    ("too_many_layers", lambda: with_(Y(), model__layers=[{"n": 4}] * 9),
     ["model.layers = [", "has 9 layers", "1..8 layers"]),
    ("steps_range", lambda: with_(Y(), data__steps=1, data__t_max=0),
     ["data.steps = 1", "int 2..10000"]),
    ("t_max_vs_steps", lambda: with_(Y(), data__t_max=30),
     ["data.t_max = 30", "must be < data.steps = 30", "int 0..29"]),
    ("weight_bits_range", lambda: with_(Y(), quant__weight_bits=9),
     ["quant.weight_bits = 9", "int 1..8"]),
    ("noise_seed_range", lambda: with_(Y(), neuron__noise_seed=2**32),
     ["neuron.noise_seed = 4294967296", "int 0..4294967295"]),
    ("seed_negative", lambda: with_(Y(), seed=-1),
     ["seed = -1", "int >= 0"]),
    ("bad_name", lambda: with_(Y(), name="my run"),
     ["name = 'my run'", "[A-Za-z0-9_-]+"]),
    ("bad_task", lambda: with_(Y(), data__task="mnist"),
     ["data.task = 'mnist'", "one of 'yinyang', 'digits', 'spike_train'"]),
    ("bad_escape", lambda: with_(Y(), neuron__escape="chip"),
     ["neuron.escape = 'chip'", "one of 'sigmoid', 'erf', 'exp', 'uniform'"]),
    ("bad_loss", lambda: with_(Y(), train__loss="mse"),
     ["train.loss = 'mse'", "'max_over_time_ce', 'mean_over_time_ce', 'spike_count_ce', 'spike_count_mse', 'van_rossum', 'l2'"]),
    ("encoding_vs_task", lambda: with_(Y(), data__encoding="rate"),
     ["data.encoding = 'rate'", "data.task = 'yinyang'", "one of 'latency'"]),
    ("spike_train_encoding", lambda: with_(spike_train(), data__encoding="latency"),
     ["data.encoding = 'latency'", "data.task = 'spike_train'", "one of 'poisson'"]),
    ("missing_name", lambda: with_(Y(), name=_DEL),
     ["name is missing (required)", "[A-Za-z0-9_-]+"]),
    ("missing_task", lambda: with_(Y(), data__task=_DEL),
     ["data.task is missing (required)", "one of 'yinyang', 'digits', 'spike_train'"]),
    ("missing_layer_n", lambda: with_(Y(), model__layers__0={"du": 3}),
     ["model.layers[0].n is missing", "int 1..4096"]),
    ("spec_and_layers", lambda: with_(Y(), model__spec="models/yinyang.yaml"),
     ["model.spec = 'models/yinyang.yaml'", "model.layers", "exactly one of model.spec"]),
    ("neither_spec_nor_layers", lambda: with_(Y(), model={}),
     ["model = {}", "neither", "exactly one of model.spec"]),
    ("readout_with_spec", lambda: with_(Y(), model={"spec": "models/yinyang.yaml", "readout": {"n": 3}}),
     ["model.readout = {'n': 3}", "model.spec", "readout inside the spec file"]),
    ("readout_vs_classes", lambda: with_(Y(), model__readout__n=4),
     ["model.readout.n = 4", "3 classes of data.task = 'yinyang'", "allowed 3"]),
    ("last_layer_vs_classes", lambda: with_(digits_rate(), model={"layers": [{"n": 16}]}),
     ["model.layers[0].n = 16", "10 classes of data.task = 'digits'", "allowed 10"]),
    ("loss_needs_readout", lambda: with_(Y(), model={"layers": [{"n": 3}], "readout": None}),
     ["train.loss = 'max_over_time_ce'", "model.readout = None", "'spike_count_ce'"]),
    ("count_loss_with_readout", lambda: with_(Y(), train__loss="spike_count_ce"),
     ["train.loss = 'spike_count_ce'", "model.readout = {'n': 3", "readout: null"]),
    ("raster_loss_for_classes", lambda: with_(Y(), train__loss="l2"),
     ["train.loss = 'l2'", "data.task = 'yinyang'", "'max_over_time_ce'"]),
    ("spike_train_last_layer", lambda: with_(spike_train(), model__layers__1__n=100),
     ["model.layers[1].n = 100", "data.task = 'spike_train'", "allowed 200"]),
    ("spike_train_readout", lambda: with_(spike_train(), model__readout={"n": 200}),
     ["model.readout = {'n': 200", "data.task = 'spike_train'", "allowed null"]),
    ("spike_train_loss", lambda: with_(spike_train(), train__loss="spike_count_mse"),
     ["train.loss = 'spike_count_mse'", "data.task = 'spike_train'", "'van_rossum', 'l2'"]),
    ("rate_low_gt_high", lambda: with_(Y(), train__rate_low=0.8, train__rate_high=0.2),
     ["train.rate_low = 0.8", "train.rate_high = 0.2", "rate_low <= rate_high"]),
    ("rate_high_range", lambda: with_(Y(), train__rate_high=1.5),
     ["train.rate_high = 1.5", "float [0, 1]"]),
    ("t_max_with_rate", lambda: with_(digits_rate(), data__t_max=10),
     ["data.t_max = 10", "data.encoding = 'rate'", "only with encoding 'latency'"]),
    ("rate_max_with_latency", lambda: with_(Y(), data__rate_max=0.3),
     ["data.rate_max = 0.3", "data.encoding = 'latency'", "only with encoding 'rate'"]),
    ("n_train_zero", lambda: with_(Y(), data__n_train=0),
     ["data.n_train = 0", "int >= 1 or null"]),
]


@pytest.mark.parametrize("make,expected", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistake_message(make, expected):
    msg = error_of(parse_config, make(), source=SRC, base_dir=REPO)
    assert msg.startswith(f"{SRC}: "), msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_top_level_not_a_mapping():
    msg = error_of(parse_config, [1, 2], source=SRC)
    assert "[1, 2]" in msg and "expected a mapping" in msg and "keys name" in msg


# --- mistakes involving files ------------------------------------------------------------------

def test_missing_config_file(tmp_path):
    p = tmp_path / "nope.yaml"
    msg = error_of(load_config, p)
    assert msg.startswith(f"{p}: ") and "file not found" in msg and "keys name" in msg


@pytest.mark.parametrize("text,expected", [("", "file is empty"), ("# only a comment\n", "file is empty"),
                                           ("- 1\n- 2\n", "holds a list = [1, 2]"),
                                           ("name: [unclosed\n", "could not be read")],
                         ids=["empty", "comment_only", "list", "bad_yaml"])
def test_bad_config_file(tmp_path, text, expected):
    p = write(tmp_path / "c.yaml", text)
    msg = error_of(load_config, p)
    assert msg.startswith(f"{p}: ") and expected in msg and "keys name" in msg


def test_missing_model_spec_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = write(tmp_path / "cfg" / "a.yaml", "name: a\ndata: {task: yinyang}\nmodel: {spec: nope.yaml}\n")
    msg = error_of(load_config, p)
    assert msg.startswith(f"{p}: model.spec = 'nope.yaml' file not found")
    assert str(tmp_path / "cfg" / "nope.yaml") in msg and str(tmp_path / "nope.yaml") in msg
    assert "path to a model YAML" in msg


@pytest.mark.parametrize("spec_text,expected", [
    ("n_in: 4\nlayers: [{n: 8}]\nreadout: {n: 3}\n",
     ["model.spec(m.yaml).n_in = 4", "data.task = 'yinyang'", "4 features + bias spike", "allowed 5"]),
    ("layers: [{n: 8, du: 5000}]\nreadout: {n: 3}\n",
     ["model.spec(m.yaml).layers[0].du = 5000", "int 0..4095"]),
    ("layers: [{n: 8}]\nreadout: {n: 4}\n",
     ["model.spec(m.yaml).readout.n = 4", "allowed 3"]),
    ("layers: [{n: 8}]\nhidden: 3\n",
     ["model.spec(m.yaml).hidden = 3", "keys layers, readout, n_in"]),
    ("readout: {n: 3}\n",
     ["model.spec(m.yaml).layers is missing", "1..8 layers"]),
    ("", ["model.spec = 'm.yaml'", "file is empty", "keys layers, readout, n_in"]),
], ids=["n_in_mismatch", "du_range", "readout_size", "unknown_key", "no_layers", "empty"])
def test_model_spec_mistakes(tmp_path, spec_text, expected):
    write(tmp_path / "m.yaml", spec_text)
    p = write(tmp_path / "a.yaml", "name: a\ndata: {task: yinyang}\nmodel: {spec: m.yaml}\n")
    msg = error_of(load_config, p)
    assert msg.startswith(f"{p}: "), msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_config_is_frozen():
    cfg = parse_config(full_yinyang())
    with pytest.raises(AttributeError):
        cfg.train.lr = 1.0                                                   # type: ignore[misc]
    assert isinstance(cfg, Config)


def test_option_lists_match_the_trainer():
    """config.py stays torch-free, so it lists the trainer's options itself; they must agree."""
    from neurohw import config
    from neurohw.train import escape, losses
    assert config.ESCAPES == tuple(k for k in escape.ESCAPES if k != "chip")
    assert config.SURROGATES == escape.SURROGATES
    from neurohw import generative          # the distribution loss lives with its task
    assert all(callable(getattr(losses, {"l2": "l2_spike_train"}.get(k, k))) for k in config.LOSSES
               if k not in config.DISTRIBUTION_LOSSES)
    assert config.DISTRIBUTION_LOSSES == ("sig_mmd",) and callable(generative.mmd_loss)
