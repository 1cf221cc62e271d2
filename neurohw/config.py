"""Pipeline config: the YAML schema, its validation, and stable per-section hashes.

Why validate explicitly: a train -> quantise -> deploy run should stop in its first second with
one line naming the file, the key, the value and what is allowed, not an hour later inside torch
or Lava. Every error is a `ConfigError` of the form
``<file>: <key.path> = <value!r> <problem>; allowed <what>``.

This module imports neither torch nor Lava, so checking a config stays instant; the enum lists
below mirror the ones in `neurohw.train` (escape functions, surrogates, losses).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

TASKS = ("yinyang", "digits", "spike_train", "event_digits", "intervals", "generative")
ENCODINGS = {"yinyang": ("latency",), "digits": ("rate", "latency"), "spike_train": ("poisson",),
             "event_digits": ("events",), "intervals": ("spikes",), "generative": ("clock",)}
DEFAULT_STEPS = {"yinyang": 30, "digits": 25, "spike_train": 198, "event_digits": 18, "intervals": 32, "generative": 32}
N_IN = {"yinyang": 5, "digits": 64, "spike_train": 200,      # yinyang: 4 features + bias spike
        "event_digits": 16 * 16 * 2, "intervals": 8, "generative": 48}   # generative: 3 classes x 16 (neurohw.generative)
N_IN_NOTE = {"yinyang": "4 features + bias spike", "digits": "8x8 pixels", "spike_train": "Poisson inputs",
             "event_digits": "16x16 pixels x ON/OFF", "intervals": "4 start/stop channel pairs",
             "generative": "3 classes x 16 clock windows"}
IN_SHAPE = {"event_digits": (16, 16, 2)}     # (height, width, channels) maps a conv layer can read
N_CLASSES = {"yinyang": 3, "digits": 10, "event_digits": 10, "intervals": 4}
KINDS = ("dense", "conv", "pool")
MAX_DELAY = 62                                # Lava's DelayDense fails above 63 (shared/docs/hardware.md)
SPIKE_TRAIN_N_OUT = 200
GENERATIVE_N_OUT = 4                          # neurohw.generative.N_OUT
ESCAPES = ("sigmoid", "erf", "exp", "uniform")
SURROGATES = ("superspike", "sigmoid")
LOSSES = ("max_over_time_ce", "mean_over_time_ce", "spike_count_ce", "spike_count_mse", "van_rossum", "l2",
          "sig_mmd")
READOUT_LOSSES = ("max_over_time_ce", "mean_over_time_ce")   # read the non-spiking readout's membrane
COUNT_LOSSES = ("spike_count_ce", "spike_count_mse")   # count the last spiking layer's spikes
RASTER_LOSSES = ("van_rossum", "l2")                   # compare against a target spike raster
DISTRIBUTION_LOSSES = ("sig_mmd",)                     # compare sample sets (data.task generative)
MAX_LAYERS = 8
NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
SECTIONS = ("data", "model", "neuron", "train", "quant", "deploy", "parity")

TOP_KEYS = ("name", "seed", "out_dir") + SECTIONS
DATA_KEYS = ("task", "encoding", "steps", "t_max", "rate_max", "n_train", "n_test", "n_val", "copies")
MODEL_KEYS = ("spec", "layers", "readout") + ("nir", "netx", "dt", "peer", "sha256")
MODEL_FILE_KINDS = ("nir", "netx")
NIR_PEERS = ("neurohw", "snntorch", "norse")
SPEC_KEYS = ("layers", "readout", "n_in")
LAYER_KEYS = ("n", "du", "dv", "vth", "recurrent", "kind", "channels", "kernel", "stride", "padding", "dilation",
              "groups", "max_delay", "train_delays", "delay_sigma")
READOUT_KEYS = ("n", "du", "dv")
NEURON_KEYS = ("stochastic", "escape", "beta", "surrogate", "surrogate_beta", "scale_by_beta",
               "detach_reset", "noise_seed")
TRAIN_KEYS = ("epochs", "batch_size", "lr", "clip", "trials", "loss", "init_xi", "rate_low",
              "rate_high", "rate_strength", "estimator", "paths", "max_over_time_tau", "score_epochs", "score_lr")
ESTIMATORS = ("surrogate", "score", "mixed")      # neurohw.grad (docs/gradients.md)
QUANT_KEYS = ("weight_bits", "qat_epochs", "qat_lr", "qat_hw_exact", "clip_select", "target")
CLIP_SELECT = ("train_accuracy", "weight_error", "agreement")
QUANT_TARGETS = ("chip", "netx")
DEPLOY_KEYS = ("lava", "lava_samples")
PARITY_KEYS = ("hw_exact", "samples")


class ConfigError(ValueError):
    """A config mistake, as one line: file, key path, value, problem and what is allowed."""


# ---------------------------------------------------------------------------------------------
# Dataclasses: the validated, immutable result. Build them through parse_config / load_config;
# constructing one directly (or dataclasses.replace) skips validation.

@dataclass(frozen=True)
class DataConfig:
    task: str
    encoding: str
    steps: int
    t_max: int | None = None        # latency encoding only: last step a feature spike may fall on
    rate_max: float | None = None   # rate encoding only: spike probability per step at value 1
    n_train: int | None = None      # None = all samples
    n_test: int | None = None
    # the last n_val training samples, held out of training: choices made by looking at scores
    # (e.g. which quantization to deploy) are made on them, never on the test set
    n_val: int = 0
    # event_digits: the training digits recorded this many times, each with new sensor draws
    # (placement jitter, pixel thresholds, background noise): augmentation of the training split only
    copies: int = 1


@dataclass(frozen=True)
class LayerConfig:
    n: int
    du: int = 409                   # chip decay integers (4096 = full decay)
    dv: int = 409
    vth: float = 1.0
    recurrent: bool = False
    # the input projection (docs/layers.md); n of conv and pool layers is derived from the map
    kind: str = "dense"
    channels: int = 0
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    max_delay: int = 0
    train_delays: bool = False
    delay_sigma: float = 2.0


# the projection keys, written out only where they differ from the defaults (so the hashes of
# dense models, and their saved configs, are what they were before these keys existed)
_PROJ_KEYS = ("kind", "channels", "kernel", "stride", "padding", "dilation", "groups", "max_delay",
              "train_delays", "delay_sigma")
_PROJ_DEFAULTS = {f.name: f.default for f in fields(LayerConfig) if f.name in _PROJ_KEYS}


def _layer_dict(layer: "LayerConfig") -> dict:
    return {k: v for k, v in asdict(layer).items() if k not in _PROJ_DEFAULTS or v != _PROJ_DEFAULTS[k]}


def conv_out_shape(in_shape: tuple[int, int, int], kind: str, channels: int, kernel: int, stride: int,
                   padding: int, dilation: int, groups: int) -> tuple[int, int, int]:
    """(H', W', C') of a conv or sum-pool layer on an (H, W, C) map: Lava's Conv size rule per axis,
    floor((X + 2 padding - dilation (kernel - 1) - 1) / stride) + 1; a pool keeps C and has
    stride = kernel. Sizes below 1 come back as they are: the caller names the key."""
    h, w, c = in_shape
    if kind == "pool":
        stride, padding, dilation, channels = kernel, 0, 1, c
    out = [(x + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1 for x in (h, w)]
    return out[0], out[1], channels


@dataclass(frozen=True)
class ModelFile:
    """`model: {nir: path, dt, peer}` or `model: {netx: path}`; sha256 pins the file's content."""
    kind: str
    path: str
    sha256: str
    dt: float | None = None
    peer: str = "neurohw"

    def to_dict(self) -> dict:
        d = {self.kind: self.path, "sha256": self.sha256}
        if self.kind == "nir":
            d.update(dt=self.dt, peer=self.peer)
        return d


@dataclass(frozen=True)
class ModelConfig:
    layers: tuple[LayerConfig, ...]
    readout: LayerConfig | None = None   # non-spiking readout (vth / recurrent unused)
    # Where the layers came from, for logs only: equality and hashes look at the layers, so a
    # spec file and the same layers written inline are the same model.
    spec: str | None = field(default=None, compare=False)
    # A model read from a NIR or netx file (neurohw.interop): then `layers` holds only the output
    # layer (its size, for validation) and the pipeline builds the network from the file.
    file: ModelFile | None = None

    def to_dict(self) -> dict:
        ro = self.readout
        if self.file is not None:
            return self.file.to_dict()
        return {"layers": [_layer_dict(l) for l in self.layers],
                "readout": None if ro is None else {"n": ro.n, "du": ro.du, "dv": ro.dv}}


@dataclass(frozen=True)
class NeuronConfig:
    stochastic: bool = False
    escape: str = "sigmoid"
    beta: float = 5.0
    surrogate: str = "superspike"
    surrogate_beta: float = 10.0
    scale_by_beta: bool = False
    detach_reset: bool = True
    noise_seed: int = 1


@dataclass(frozen=True)
class TrainSection:
    """The `train:` section (not neurohw.train.loop.TrainConfig, which the pipeline builds from it)."""
    loss: str
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.002
    clip: float = 1.0
    trials: int = 1
    init_xi: float = 2.0
    rate_low: float = 0.0
    rate_high: float = 1.0
    rate_strength: float = 0.0
    estimator: str = "surrogate"   # gradient estimator (neurohw.grad); score and mixed sample `paths`
    paths: int | None = None       # paths per sample for score / mixed (None: surrogate)
    # max_over_time_ce's logit: 0 = the max over time of the readout's membrane; > 0 = tau *
    # logsumexp(v / tau) over time, which a class whose membrane never rises above the constant 0
    # of the first steps cannot pin (docs/quant.md); the decision is the max either way
    max_over_time_tau: float = 0.0
    # a second phase after `epochs`: score_epochs more with the score-function (likelihood-ratio)
    # estimator, unbiased where the surrogate is not, at score_lr (None: lr), `paths` paths
    score_epochs: int = 0
    score_lr: float | None = None


@dataclass(frozen=True)
class QuantConfig:
    weight_bits: int = 8
    qat_epochs: int = 0
    qat_lr: float = 0.0005
    qat_hw_exact: bool = False     # QAT forward in the chip's integer arithmetic (HwExactNet)
    # deterministic layers' weight clip level: the one giving the fake-quantized net the best
    # training-split accuracy (classification), the least weight error (the old rule), or the
    # best agreement with the float net's decisions (training split for the clip level, validation
    # split for the QAT epoch; bounds |chip - float|, docs/quant.md)
    clip_select: str = "train_accuracy"
    # chip: the chip's whole grid; netx: weight_exp 0, biases on the 64 grid, no noise, so that
    # lava-dl's netx holds the network exactly (neurohw export --format netx; docs/interop.md)
    target: str = "chip"


@dataclass(frozen=True)
class DeployConfig:
    lava: bool = True
    lava_samples: int = 200


@dataclass(frozen=True)
class ParityConfig:
    hw_exact: bool = True
    samples: int = 32


@dataclass(frozen=True)
class Config:
    name: str
    seed: int
    out_dir: str
    data: DataConfig
    model: ModelConfig
    neuron: NeuronConfig
    train: TrainSection
    quant: QuantConfig
    deploy: DeployConfig
    parity: ParityConfig
    source: str = field(default="<dict>", compare=False)   # file it was read from, for messages

    @property
    def n_in(self) -> int:
        """Input neurons the task's encoder produces (yinyang 5, digits 64, spike_train 200)."""
        return N_IN[self.data.task]

    @property
    def in_shape(self) -> tuple[int, int, int] | None:
        """The input as an (H, W, C) map for tasks that have one (event_digits), else None."""
        return IN_SHAPE.get(self.data.task)

    @property
    def n_classes(self) -> int | None:
        """Classes of a classification task; None for spike_train."""
        return N_CLASSES.get(self.data.task)

    def to_dict(self) -> dict:
        """Plain dict (lists, no tuples) with every default filled and the model inline, so a
        saved copy reproduces the run even if the spec file changes; parse_config(d) == self."""
        return {"name": self.name, "seed": self.seed, "out_dir": self.out_dir,
                "data": _data_dict(self.data), "model": self.model.to_dict(),
                "neuron": asdict(self.neuron), "train": _train_dict(self.train),
                "quant": asdict(self.quant), "deploy": asdict(self.deploy),
                "parity": asdict(self.parity)}

    def section_hash(self, *sections: str) -> str:
        """sha256 hex of the canonical JSON of the named sections plus `seed`.

        Why: a pipeline stage is skipped when the hash of everything it depends on matches the
        one stored with its outputs. The order of `sections` does not matter; name every section
        a stage depends on (e.g. quantisation: data, model, neuron, train, quant)."""
        bad = [s for s in sections if s not in SECTIONS]
        if not sections or bad:
            raise ValueError(f"section_hash: sections = {sections!r}; allowed one or more of {SECTIONS}")
        d = self.to_dict()
        payload = {"seed": self.seed, **{s: d[s] for s in sections}}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()


def _train_dict(t: TrainSection) -> dict:
    """asdict, leaving out the estimator keys and max_over_time_tau while they hold their defaults,
    so that configs written before they existed keep their section hashes (and their runs stay up
    to date)."""
    d = asdict(t)
    if t.estimator == "surrogate" and t.paths is None:
        del d["estimator"], d["paths"]
    if not t.max_over_time_tau:
        del d["max_over_time_tau"]
    if not t.score_epochs:
        del d["score_epochs"], d["score_lr"]
    return d


def _data_dict(d: DataConfig) -> dict:
    """n_val = 0 and copies = 1 (the defaults) are left out, so configs without them keep their
    hashes and runs."""
    out = asdict(d)
    if not out["n_val"]:
        del out["n_val"]
    if out["copies"] == 1:
        del out["copies"]
    return out


# ---------------------------------------------------------------------------------------------
# Validation helpers.

_REQUIRED = object()


def _fail(src: str, key: str, value: Any, problem: str, allowed: str) -> ConfigError:
    return ConfigError(f"{src}: {key} = {value!r} {problem}; allowed {allowed}")


def _one_of(options) -> str:
    return "one of " + ", ".join(repr(o) for o in options)


def _int_range(lo: int, hi: int | None) -> str:
    return f"int {lo}..{hi}" if hi is not None else f"int >= {lo}"


def _float_range(gt=None, ge=None, le=None) -> str:
    left = f"({gt}" if gt is not None else f"[{ge}"
    if le is None:
        return f"float > {gt}" if gt is not None else f"float >= {ge}"
    return f"float {left}, {le}]"


class _Map:
    """One YAML mapping under validation; knows its file and key path so errors can name them."""

    def __init__(self, src: str, path: str, raw: Any, keys: tuple[str, ...]):
        self.src, self.path, self.keys = src, path, keys
        if raw is None:                       # `train:` with nothing under it = all defaults
            raw = {}
        if not isinstance(raw, dict):
            raise _fail(src, path or "<top level>", raw, f"has type {type(raw).__name__}, expected a mapping",
                        "keys " + ", ".join(keys))
        for k in raw:
            if k not in keys:
                raise _fail(src, self.key(k), raw[k], "is not a known key", "keys " + ", ".join(keys))
        self.raw = raw

    def key(self, k) -> str:
        return f"{self.path}.{k}" if self.path else str(k)

    def sub(self, k: str, keys: tuple[str, ...]) -> "_Map":
        return _Map(self.src, self.key(k), self.raw.get(k), keys)

    def fail(self, k: str, value: Any, problem: str, allowed: str) -> ConfigError:
        return _fail(self.src, self.key(k), value, problem, allowed)

    def given(self, k: str) -> bool:
        """Present and not null (null means 'not set' for the optional keys that allow it)."""
        return self.raw.get(k) is not None

    def _get(self, k: str, default: Any, allowed: str, nullable: bool):
        """(present, value); raises for a missing required key or an unexpected null."""
        if k not in self.raw or (self.raw[k] is None and nullable):
            if default is _REQUIRED:
                raise ConfigError(f"{self.src}: {self.key(k)} is missing (required); allowed {allowed}")
            return False, default
        v = self.raw[k]
        if v is None:
            raise self.fail(k, v, "is null", allowed)
        return True, v

    def _wrong_type(self, k: str, v: Any, expected: str, allowed: str) -> ConfigError:
        return self.fail(k, v, f"has type {type(v).__name__}, expected {expected}", allowed)

    def int_(self, k: str, default: Any, lo: int, hi: int | None = None, nullable: bool = False):
        allowed = _int_range(lo, hi) + (" or null" if nullable else "")
        present, v = self._get(k, default, allowed, nullable)
        if not present:
            return v
        if isinstance(v, bool) or not isinstance(v, int):      # bool is an int in Python; not here
            raise self._wrong_type(k, v, "int", allowed)
        if v < lo:
            raise self.fail(k, v, f"must be >= {lo}", allowed)
        if hi is not None and v > hi:
            raise self.fail(k, v, f"must be <= {hi}", allowed)
        return v

    def float_(self, k: str, default: Any, gt=None, ge=None, le=None, nullable: bool = False):
        allowed = _float_range(gt, ge, le) + (" or null" if nullable else "")
        present, v = self._get(k, default, allowed, nullable)
        if not present:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            problem = f"has type {type(v).__name__}, expected float"
            if isinstance(v, str) and _parses_as_float(v):
                problem += " (YAML reads 2e-3 as text: write 2.0e-3)"
            raise self.fail(k, v, problem, allowed)
        x = float(v)                                # int accepted: 1 -> 1.0; messages show v as written
        if not math.isfinite(x):
            raise self.fail(k, v, "must be finite", allowed)
        if gt is not None and not x > gt:
            raise self.fail(k, v, f"must be > {gt}", allowed)
        if ge is not None and not x >= ge:
            raise self.fail(k, v, f"must be >= {ge}", allowed)
        if le is not None and not x <= le:
            raise self.fail(k, v, f"must be <= {le}", allowed)
        return x

    def bool_(self, k: str, default: bool) -> bool:
        present, v = self._get(k, default, "true or false", False)
        if present and not isinstance(v, bool):
            raise self._wrong_type(k, v, "bool", "true or false")
        return v

    def str_(self, k: str, default: Any, pattern: re.Pattern | None = None):
        allowed = f"str matching {pattern.pattern}" if pattern else "a non-empty str"
        present, v = self._get(k, default, allowed, False)
        if not present:
            return v
        if not isinstance(v, str):
            raise self._wrong_type(k, v, "str", allowed)
        if not v or (pattern is not None and not pattern.fullmatch(v)):
            raise self.fail(k, v, "is not valid", allowed)
        return v

    def choice(self, k: str, default: Any, options: tuple[str, ...], problem: str = "is not allowed"):
        allowed = _one_of(options)
        present, v = self._get(k, default, allowed, False)
        if present and not isinstance(v, str):
            raise self._wrong_type(k, v, "str", allowed)
        if v not in options:
            raise self.fail(k, v, problem, allowed)
        return v


def _parses_as_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_yaml(path: Path, prefix: str, allowed: str) -> dict:
    """Read one YAML mapping; `prefix` starts every message ("<file>:" or "<file>: model.spec = ..")."""
    if not path.is_file():
        raise ConfigError(f"{prefix} file not found; allowed {allowed}")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{prefix} could not be read ({_one_line(str(e))}); allowed {allowed}") from None
    if raw is None:
        raise ConfigError(f"{prefix} file is empty; allowed {allowed}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix} holds a {type(raw).__name__} = {raw!r}, not a mapping; allowed {allowed}")
    return raw


# ---------------------------------------------------------------------------------------------
# Sections.

def _parse_data(m: _Map) -> DataConfig:
    task = m.choice("task", _REQUIRED, TASKS)
    encodings = ENCODINGS[task]
    encoding = m.choice("encoding", encodings[0], encodings,
                        problem=f"is not supported by data.task = {task!r}")
    steps = m.int_("steps", DEFAULT_STEPS[task], 2, 10000)
    t_max = rate_max = None
    if task == "event_digits" and steps % 3:
        raise m.fail("steps", steps, "is not a multiple of 3 (three saccades of equal length)", "6, 9, 12, ...")
    if task == "generative" and steps % 16:
        raise m.fail("steps", steps, "must be a multiple of the 16 clock windows", "16, 32, 48, ...")
    if task == "intervals" and steps < 14:
        raise m.fail("steps", steps, "is too short for the longest interval (11) and its onset", "int 14..10000")
    if encoding == "latency":
        t_max = m.int_("t_max", steps * 2 // 3, 0, nullable=True)
        if t_max >= steps:
            raise m.fail("t_max", t_max, f"must be < data.steps = {steps}", f"int 0..{steps - 1}")
    elif m.given("t_max"):
        raise m.fail("t_max", m.raw["t_max"], f"only applies to latency encoding, but data.encoding = {encoding!r}",
                     "t_max only with encoding 'latency' (omit it or set null)")
    if encoding == "rate":
        rate_max = m.float_("rate_max", 0.5, gt=0, le=1, nullable=True)
    elif m.given("rate_max"):
        raise m.fail("rate_max", m.raw["rate_max"], f"only applies to rate encoding, but data.encoding = {encoding!r}",
                     "rate_max only with encoding 'rate' (omit it or set null)")
    n_train = m.int_("n_train", None, 1, nullable=True)
    n_val = m.int_("n_val", 0, 0)
    if n_val and task == "spike_train":
        raise m.fail("n_val", n_val, "has no training samples to hold out for data.task = 'spike_train'", "0")
    if n_train is not None and n_val >= n_train:
        raise m.fail("n_val", n_val, f"must be < data.n_train = {n_train}", f"int 0..{n_train - 1}")
    copies = m.int_("copies", 1, 1, 100)
    if copies > 1 and task != "event_digits":
        raise m.fail("copies", copies, f"only applies to data.task = 'event_digits', not {task!r}", "1")
    return DataConfig(task=task, encoding=encoding, steps=steps, t_max=t_max, rate_max=rate_max,
                      n_train=n_train, n_test=m.int_("n_test", None, 1, nullable=True), n_val=n_val, copies=copies)


def _parse_layer(m: _Map, readout: bool) -> LayerConfig:
    kind = "dense" if readout else m.choice("kind", "dense", KINDS)
    n = m.int_("n", _REQUIRED if kind == "dense" else 0, 1, 65536 if kind != "dense" else 4096,
               nullable=kind != "dense")
    du = m.int_("du", 409, 0, 4095)
    dv = m.int_("dv", 409, 0, 4096)
    if readout:
        return LayerConfig(n=n, du=du, dv=dv)
    proj = {}
    if kind == "conv":
        proj = dict(channels=m.int_("channels", _REQUIRED, 1, 1024), kernel=m.int_("kernel", 3, 1, 16),
                    stride=m.int_("stride", 1, 1, 16), padding=m.int_("padding", 0, 0, 16),
                    dilation=m.int_("dilation", 1, 1, 16), groups=m.int_("groups", 1, 1, 1024))
        if proj["channels"] % proj["groups"]:
            raise m.fail("groups", proj["groups"], f"does not divide channels = {proj['channels']}",
                         "a divisor of both the input and the output channels")
    elif kind == "pool":
        proj = dict(kernel=m.int_("kernel", 2, 1, 16))
    else:
        proj = dict(max_delay=m.int_("max_delay", 0, 0, MAX_DELAY), train_delays=m.bool_("train_delays", False),
                    delay_sigma=m.float_("delay_sigma", 2.0, gt=0))
    for k in ("channels", "stride", "padding", "dilation", "groups", "max_delay", "train_delays", "delay_sigma",
              "kernel"):
        if k in m.raw and k not in proj:
            raise m.fail(k, m.raw[k], f"does not apply to kind = {kind!r}",
                         {"dense": "max_delay, train_delays, delay_sigma", "pool": "kernel",
                          "conv": "channels, kernel, stride, padding, dilation, groups"}[kind])
    if proj.get("train_delays") and not proj.get("max_delay"):
        raise m.fail("train_delays", True, "needs max_delay >= 1", f"max_delay 1..{MAX_DELAY} with train_delays")
    recurrent = m.bool_("recurrent", False)
    if recurrent and kind != "dense":
        raise m.fail("recurrent", True, f"is not supported for kind = {kind!r}", "recurrent only for dense layers")
    return LayerConfig(n=n, du=du, dv=dv, vth=m.float_("vth", 1.0, gt=0), recurrent=recurrent, kind=kind, **proj)


def _parse_layers(m: _Map) -> tuple[tuple[LayerConfig, ...], LayerConfig | None]:
    """`layers` and `readout` of a mapping: the inline model section or a spec file."""
    allowed = f"a list of 1..{MAX_LAYERS} layers, each a mapping with keys {', '.join(LAYER_KEYS)}"
    _, raw = m._get("layers", _REQUIRED, allowed, False)
    if not isinstance(raw, list):
        raise m._wrong_type("layers", raw, "list", allowed)
    if not 1 <= len(raw) <= MAX_LAYERS:
        raise m.fail("layers", raw, f"has {len(raw)} layers", allowed)
    layers = tuple(_parse_layer(_Map(m.src, f"{m.key('layers')}[{i}]", item, LAYER_KEYS), readout=False)
                   for i, item in enumerate(raw))
    readout = None
    if m.given("readout"):
        readout = _parse_layer(m.sub("readout", READOUT_KEYS), readout=True)
    return layers, readout


def _find_spec(m: _Map, spec: str, base_dir: Path | None) -> Path:
    """A relative spec is looked up next to the config file first, then in the working directory
    (the repo root), so `models/x.yaml` works from a config anywhere."""
    p = Path(spec)
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = ([Path(base_dir) / p] if base_dir is not None else []) + [Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c
    raise m.fail("spec", spec, f"file not found (looked for {', '.join(str(c) for c in candidates)})",
                 "a path to a model YAML, relative to the config's directory or the working directory")


def _file_outputs(kind: str, path: Path) -> tuple[int, bool, int]:
    """(output size, has a non-spiking readout, n_in) of a NIR / netx model file, read plainly."""
    import numpy as np
    if kind == "netx":
        import h5py
        with h5py.File(path, "r") as f:
            g = f["layer"]
            shapes = [int(np.prod(g[k]["shape"][()])) for k in sorted(g, key=int) if "shape" in g[k]]
            return shapes[-1], False, shapes[0]
    import nir
    g = nir.read(str(path))
    out = [k for k, v in g.nodes.items() if type(v).__name__ == "Output"]
    inp = [v for v in g.nodes.values() if type(v).__name__ == "Input"]
    last = [a for a, b in g.edges if out and b == out[0]]
    if len(out) != 1 or len(last) != 1 or len(inp) != 1:
        raise ValueError("needs one Input and one Output node fed by one node")
    node = g.nodes[last[0]]
    n_out = int(np.prod(list(g.nodes[out[0]].output_type.values())[0]))
    n_in = int(np.prod(list(inp[0].input_type.values())[0]))
    return n_out, type(node).__name__ in ("LI", "CubaLI"), n_in


def _parse_model_file(m: _Map, base_dir: Path | None) -> tuple[ModelConfig, str, int | None]:
    kinds = [k for k in MODEL_FILE_KINDS if m.given(k)]
    allowed = "exactly one of model.spec, model.layers, model.nir, model.netx"
    if len(kinds) > 1 or m.given("spec") or m.given("layers") or m.given("readout"):
        other = next(k for k in ("spec", "layers", "readout") + MODEL_FILE_KINDS if m.given(k) and k != kinds[0])
        raise m.fail(other, m.raw[other], f"is given together with model.{kinds[0]}", allowed)
    kind = kinds[0]
    p = Path(m.str_(kind, _REQUIRED))
    cands = [p] if p.is_absolute() else ([Path(base_dir) / p] if base_dir is not None else []) + [Path.cwd() / p]
    path = next((c for c in cands if c.is_file()), None)
    if path is None:
        raise m.fail(kind, str(p), f"file not found (looked for {', '.join(str(c) for c in cands)})",
                     f"a path to a {'NIR (.nir)' if kind == 'nir' else 'netx HDF5 (.h5)'} file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if m.given("sha256") and m.raw["sha256"] != digest:
        raise m.fail("sha256", m.raw["sha256"], f"does not match {path} (sha256 {digest[:12]}...): the file changed",
                     "the sha256 of the file, or no sha256")
    if kind == "netx" and (m.given("dt") or m.given("peer")):
        raise m.fail("dt" if m.given("dt") else "peer", m.raw.get("dt", m.raw.get("peer")),
                     "applies to model.nir only", "no dt / peer with model.netx")
    dt = m.float_("dt", None, gt=0, nullable=True) if kind == "nir" else None
    peer = m.choice("peer", "neurohw", NIR_PEERS) if kind == "nir" else "neurohw"
    try:
        n_out, readout, n_in = _file_outputs(kind, path)
    except Exception as e:  # noqa: BLE001 - any reader failure is a config error naming the key
        raise m.fail(kind, str(p), f"cannot be read as a {kind} model ({_one_line(str(e))})",
                     f"a {kind} file neurohw.interop can import") from None
    last = LayerConfig(n=n_out)
    mf = ModelFile(kind=kind, path=str(path.resolve()), sha256=digest, dt=dt, peer=peer)
    return (ModelConfig(layers=() if readout else (last,), readout=last if readout else None, file=mf),
            m.path, n_in)


def _parse_model(m: _Map, base_dir: Path | None) -> tuple[ModelConfig, str, int | None]:
    """Returns the model, the key path its layers live under (for later messages) and spec n_in."""
    if any(m.given(k) for k in MODEL_FILE_KINDS):
        return _parse_model_file(m, base_dir)
    for k in ("dt", "peer", "sha256"):
        if m.given(k):
            raise m.fail(k, m.raw[k], "applies to a model file only", "model.nir (dt, peer) or model.netx")
    has_spec, has_layers = m.given("spec"), m.given("layers")
    allowed = "exactly one of model.spec (path to a model YAML) or model.layers (inline list)"
    if has_spec and has_layers:
        raise m.fail("spec", m.raw["spec"], "is given together with model.layers", allowed)
    if not has_spec and not has_layers:
        raise _fail(m.src, "model", m.raw, "has neither model.spec nor model.layers", allowed)
    if not has_spec:
        layers, readout = _parse_layers(m)
        return ModelConfig(layers=layers, readout=readout), m.path, None
    spec = m.str_("spec", _REQUIRED)
    if "readout" in m.raw:
        raise m.fail("readout", m.raw["readout"], "is given together with model.spec",
                     "readout inside the spec file, or inline model.layers + model.readout")
    path = _find_spec(m, spec, base_dir)
    raw = _read_yaml(path, f"{m.src}: model.spec = {spec!r} ({path})",
                     "a mapping with keys " + ", ".join(SPEC_KEYS))
    s = _Map(m.src, f"model.spec({spec})", raw, SPEC_KEYS)
    layers, readout = _parse_layers(s)
    n_in = s.int_("n_in", None, 1, nullable=True)
    return ModelConfig(layers=layers, readout=readout, spec=str(path)), s.path, n_in


def _parse_neuron(m: _Map) -> NeuronConfig:
    return NeuronConfig(
        stochastic=m.bool_("stochastic", False),
        escape=m.choice("escape", "sigmoid", ESCAPES),
        beta=m.float_("beta", 5.0, gt=0),
        surrogate=m.choice("surrogate", "superspike", SURROGATES),
        surrogate_beta=m.float_("surrogate_beta", 10.0, gt=0),
        scale_by_beta=m.bool_("scale_by_beta", False),
        detach_reset=m.bool_("detach_reset", True),
        noise_seed=m.int_("noise_seed", 1, 0, 2**32 - 1))


def _default_loss(data: DataConfig, model: ModelConfig) -> str:
    if data.task == "spike_train":
        return "van_rossum"
    if data.task == "generative":
        return "sig_mmd"
    return "max_over_time_ce" if model.readout is not None else "spike_count_ce"


def _parse_train(m: _Map, data: DataConfig, model: ModelConfig) -> TrainSection:
    t = TrainSection(
        loss=m.choice("loss", _default_loss(data, model), LOSSES),
        epochs=m.int_("epochs", 30, 0, 10000),
        batch_size=m.int_("batch_size", 64, 1, 65536),
        lr=m.float_("lr", 0.002, gt=0, le=10),
        clip=m.float_("clip", 1.0, gt=0),
        trials=m.int_("trials", 1, 1, 1000),
        init_xi=m.float_("init_xi", 2.0, gt=0),
        rate_low=m.float_("rate_low", 0.0, ge=0, le=1),
        rate_high=m.float_("rate_high", 1.0, ge=0, le=1),
        rate_strength=m.float_("rate_strength", 0.0, ge=0),
        max_over_time_tau=m.float_("max_over_time_tau", 0.0, ge=0, le=100))
    if t.max_over_time_tau and t.loss != "max_over_time_ce":
        raise m.fail("max_over_time_tau", t.max_over_time_tau, f"only applies to train.loss 'max_over_time_ce', "
                     f"but train.loss = {t.loss!r}", "0 (or omit it) with any other loss")
    if t.rate_low > t.rate_high:
        raise m.fail("rate_low", t.rate_low, f"must be <= train.rate_high = {t.rate_high!r}",
                     "0 <= rate_low <= rate_high <= 1")
    return _parse_estimator(m, t)


def _parse_estimator(m: _Map, t: TrainSection) -> TrainSection:
    """train.estimator and train.paths: score and mixed sample `paths` (>= 2, for the leave-one-out
    baseline) paths per sample and replace `trials`; the surrogate averages `trials` paths."""
    est = m.choice("estimator", "surrogate", ESTIMATORS)
    score_epochs = m.int_("score_epochs", 0, 0, 10000)
    score_lr = m.float_("score_lr", None, gt=0, le=10, nullable=True)
    if score_lr is not None and not score_epochs:
        raise m.fail("score_lr", score_lr, "only applies with train.score_epochs > 0",
                     "omit it, or set train.score_epochs")
    if score_epochs:
        if est != "surrogate":
            raise m.fail("score_epochs", score_epochs, f"follows a surrogate training, but train.estimator = "
                         f"{est!r} trains every epoch with its own estimator", "0 with estimator 'score' or 'mixed'")
        paths = m.int_("paths", 2, 2, 4096)
        return TrainSection(**{**asdict(t), "score_epochs": score_epochs, "score_lr": score_lr, "paths": paths})
    if est == "surrogate":
        if m.given("paths"):
            raise m.fail("paths", m.raw["paths"], "only applies to train.estimator 'score' or 'mixed', but "
                         "train.estimator = 'surrogate' (it averages train.trials paths)",
                         "paths only with estimator 'score' or 'mixed' or train.score_epochs > 0 (omit it or set null)")
        return t
    if t.trials != 1:
        raise m.fail("trials", t.trials, f"does not apply to train.estimator = {est!r} (it samples "
                     "train.paths paths per update)", "1 (or omit it) with estimator 'score' or 'mixed'")
    paths = m.int_("paths", 4, 2, 4096)
    return TrainSection(**{**asdict(t), "estimator": est, "paths": paths})


def _check_estimator(src: str, train: TrainSection, neuron: NeuronConfig) -> None:
    if train.score_epochs and not neuron.stochastic:
        raise _fail(src, "train.score_epochs", train.score_epochs, "needs spikes of known probability, but "
                    "neuron.stochastic = False", "0 for deterministic neurons, or neuron.stochastic: true")
    if train.estimator != "surrogate" and not neuron.stochastic:
        raise _fail(src, "train.estimator", train.estimator, "needs spikes of known probability, but "
                    "neuron.stochastic = False", "'surrogate' for deterministic neurons, or neuron.stochastic: true")
    if train.estimator == "mixed" and train.loss in DISTRIBUTION_LOSSES:
        raise _fail(src, "train.estimator", train.estimator, f"needs a per-sample loss, but train.loss = "
                    f"{train.loss!r} compares sets of samples", "'surrogate' or 'score' with a distribution loss")


def _check_model_vs_task(src: str, data: DataConfig, model: ModelConfig, mpath: str,
                         spec_n_in: int | None, loss: str) -> None:
    """Cross-section rules: each message names both keys involved."""
    _check_shapes(src, data, model, mpath)
    task, ro = data.task, model.readout
    if ro is not None:
        out_key, out_n = f"{mpath}.readout.n", ro.n
    else:
        out_key, out_n = f"{mpath}.layers[{len(model.layers) - 1}].n", model.layers[-1].n
    if loss in READOUT_LOSSES and ro is None:
        raise _fail(src, "train.loss", loss, f"needs a non-spiking readout, but {mpath}.readout = None",
                    f"{_one_of(COUNT_LOSSES + RASTER_LOSSES)} without a readout, or add a readout")
    if loss in COUNT_LOSSES and ro is not None:
        raise _fail(src, "train.loss", loss, f"counts the last spiking layer's spikes, but {mpath}.readout "
                    f"= {model.to_dict()['readout']!r} is a non-spiking output",
                    f"{_one_of(READOUT_LOSSES)} with a readout, or readout: null")
    if (loss in DISTRIBUTION_LOSSES) != (task == "generative"):
        allowed = _one_of(DISTRIBUTION_LOSSES) if task == "generative" else "a loss other than 'sig_mmd'"
        raise _fail(src, "train.loss", loss, f"does not fit data.task = {task!r} (sig_mmd compares sample "
                    "sets of the generative task)", allowed)
    if task == "generative":
        if ro is not None:
            raise _fail(src, f"{mpath}.readout", model.to_dict()["readout"],
                        "must be null for data.task = 'generative' (its last layer's spikes are the samples)", "null")
        if out_n != GENERATIVE_N_OUT:
            raise _fail(src, out_key, out_n, f"must equal the {GENERATIVE_N_OUT} output neurons of "
                        "data.task = 'generative'", str(GENERATIVE_N_OUT))
    elif task == "spike_train":
        if ro is not None:
            raise _fail(src, f"{mpath}.readout", model.to_dict()["readout"],
                        "must be null for data.task = 'spike_train' (its last layer's spikes are the output)",
                        "null")
        if out_n != SPIKE_TRAIN_N_OUT:
            raise _fail(src, out_key, out_n, f"must equal the {SPIKE_TRAIN_N_OUT} target neurons of "
                        "data.task = 'spike_train'", str(SPIKE_TRAIN_N_OUT))
        if loss not in RASTER_LOSSES:
            raise _fail(src, "train.loss", loss, "cannot score the target raster of data.task = 'spike_train'",
                        _one_of(RASTER_LOSSES))
    else:
        if loss in RASTER_LOSSES:
            raise _fail(src, "train.loss", loss, f"needs a target spike raster, which data.task = {task!r} lacks",
                        _one_of(READOUT_LOSSES + COUNT_LOSSES))
        k = N_CLASSES[task]
        if out_n != k:
            raise _fail(src, out_key, out_n, f"does not match the {k} classes of data.task = {task!r}", str(k))
    if spec_n_in is not None and spec_n_in != N_IN[task]:
        raise _fail(src, f"{mpath}.n_in", spec_n_in, f"does not match the input size of data.task = {task!r} "
                    f"({N_IN_NOTE[task]})", str(N_IN[task]))


def _derive_shapes(src: str, task: str, model: ModelConfig, mpath: str) -> ModelConfig:
    """Walk the (H, W, C) maps through conv and pool layers; fill in their n (checked if given)."""
    shape, layers = IN_SHAPE.get(task), []
    for i, L in enumerate(model.layers):
        key = f"{mpath}.layers[{i}]"
        if L.kind == "dense":
            layers.append(L)
            shape = None                              # a dense layer reads the map flattened
            continue
        if shape is None:
            raise _fail(src, f"{key}.kind", L.kind, f"needs an (H, W, C) input map, but its input is flat "
                        f"(data.task = {task!r}{'' if i == 0 else ', or a dense layer before it'})",
                        f"conv/pool only on {', '.join(IN_SHAPE)} inputs and after conv/pool layers")
        if L.kind == "conv" and shape[2] % L.groups:
            raise _fail(src, f"{key}.groups", L.groups, f"does not divide the {shape[2]} input channels",
                        "a divisor of both the input and the output channels")
        new = conv_out_shape(shape, L.kind, L.channels, L.kernel, L.stride, L.padding, L.dilation, L.groups)
        if min(new[:2]) < 1:
            raise _fail(src, f"{key}.kernel", L.kernel, f"does not fit the {shape[0]}x{shape[1]} input map "
                        f"(dilation {L.dilation}, padding {L.padding})",
                        "dilation * (kernel - 1) + 1 <= map size + 2 * padding")
        n = new[0] * new[1] * new[2]
        if L.n not in (0, n):
            raise _fail(src, f"{key}.n", L.n, f"does not match the {L.kind} output map {new[0]}x{new[1]}x{new[2]}",
                        f"{n} or omit it")
        layers.append(replace(L, n=n))
        shape = new
    return replace(model, layers=tuple(layers))


def _check_shapes(src: str, data: DataConfig, model: ModelConfig, mpath: str) -> None:
    if model.readout is None and model.layers[-1].kind != "dense" and data.task in N_CLASSES:
        raise _fail(src, f"{mpath}.layers[{len(model.layers) - 1}].kind", model.layers[-1].kind,
                    "cannot be the output layer", "a dense last layer or a readout")


# ---------------------------------------------------------------------------------------------
# Entry points.

def parse_config(d: dict, source: str = "<dict>", base_dir: Path | None = None) -> Config:
    """Validate a config mapping and fill defaults. `source` names it in messages; `base_dir` is
    where a relative model.spec is looked up first (then the working directory)."""
    top = _Map(source, "", d, TOP_KEYS)
    name = top.str_("name", _REQUIRED, pattern=NAME_RE)
    seed = top.int_("seed", 0, 0)
    out_dir = top.str_("out_dir", f"runs/{name}")
    data = _parse_data(top.sub("data", DATA_KEYS))
    model, mpath, spec_n_in = _parse_model(top.sub("model", MODEL_KEYS), base_dir)
    model = _derive_shapes(source, data.task, model, mpath)
    neuron = _parse_neuron(top.sub("neuron", NEURON_KEYS))
    train = _parse_train(top.sub("train", TRAIN_KEYS), data, model)
    qm = top.sub("quant", QUANT_KEYS)
    quant = QuantConfig(weight_bits=qm.int_("weight_bits", 8, 1, 8),
                        qat_epochs=qm.int_("qat_epochs", 0, 0, 10000),
                        qat_lr=qm.float_("qat_lr", 0.0005, gt=0, le=10),
                        qat_hw_exact=qm.bool_("qat_hw_exact", False),
                        clip_select=qm.choice("clip_select", "train_accuracy", CLIP_SELECT),
                        target=qm.choice("target", "chip", QUANT_TARGETS))
    dm = top.sub("deploy", DEPLOY_KEYS)
    deploy = DeployConfig(lava=dm.bool_("lava", True), lava_samples=dm.int_("lava_samples", 200, 0, 100000))
    pm = top.sub("parity", PARITY_KEYS)
    parity = ParityConfig(hw_exact=pm.bool_("hw_exact", True), samples=pm.int_("samples", 32, 1, 100000))
    _check_model_vs_task(source, data, model, mpath, spec_n_in, train.loss)
    _check_estimator(source, train, neuron)
    if quant.target == "netx" and neuron.stochastic:
        raise _fail(source, "quant.target", "netx", "has no noise, but neuron.stochastic = True (deployed as "
                    "on-chip threshold noise)", "'chip' for a stochastic network, or neuron.stochastic: false")
    return Config(name=name, seed=seed, out_dir=out_dir, data=data, model=model, neuron=neuron,
                  train=train, quant=quant, deploy=deploy, parity=parity, source=source)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; a relative model.spec resolves next to it first."""
    p = Path(path)
    raw = _read_yaml(p, f"{path}:", "a YAML mapping with keys " + ", ".join(TOP_KEYS))
    return parse_config(raw, source=str(path), base_dir=p.parent)
