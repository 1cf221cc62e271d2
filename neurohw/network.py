"""The integer network: what runs on the chip, validated on construction, saved as a bundle.

A layer is an input projection (plus an optional recurrent one) into a population of
current-based LIF neurons. The input projection is one of (see docs/chip.md):

* Dense      weights (n_out, n_in)                              Lava's Dense
* DelayDense weights and delays (n_out, n_in), delays 0..63      Lava's DelayDense
* Conv2d     weights (C_out, kh, kw, C_in/groups), `conv` set   Lava's Conv
* sum-pool   a Conv2d with weights w * ones, groups = C, stride = kernel (conv.pool = True)

A population is always flat (n neurons); a conv layer's neurons are its output map
(H', W', C') in C order, index (h * W' + w) * C' + c, so a flatten between a conv and a Dense
is only this indexing. All parameters are integers in the chip's ranges (neurohw.chip), and
every weight must be *representable*: left unchanged by Lava's clip + truncate for its sign
mode, so that what you build is exactly what runs.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import chip
from .noise import Noise

BUNDLE_FORMAT = "neurohw-bundle"
BUNDLE_VERSION = 3          # 3: conv / pool / delay projections; 2: per-layer noise; 1 and 2 still load
MANIFEST = "manifest.yaml"
ARRAYS = "arrays.npz"


class BundleError(ValueError):
    """A bundle that cannot be loaded as it is: the message says what and where."""


def _weights(where: str, name: str, w, shape, num_weight_bits: int) -> np.ndarray:
    w = chip.check_int(where, name, w)
    if w.shape != shape:
        raise ValueError(f"{where}: {name} has shape {w.shape}, expected {shape}")
    chip.check_range(where, name, w, -(1 << chip.MAX_WEIGHT_BITS), (1 << chip.MAX_WEIGHT_BITS) - 1)
    got = chip.lava_weights(w, num_weight_bits)
    bad = np.argwhere(got != w)
    if bad.size:
        i = tuple(int(x) for x in bad[0])
        mode = chip.sign_mode(w)
        lo, hi, step = chip.weight_limits(mode, num_weight_bits)
        raise ValueError(
            f"{where}: {name}{list(i)} = {int(w[i])} is not representable: Lava's "
            f"{chip.SIGN_MODE_NAMES[mode]} {num_weight_bits}-bit Dense would make it {int(got[i])}; "
            f"allowed multiples of {step} in [{lo}, {hi}] ({bad.shape[0]} weights affected)")
    return w.astype(np.int16)


def _delays(where: str, name: str, d, shape) -> np.ndarray:
    d = chip.check_int(where, name, d)
    if d.ndim == 0:
        d = np.full(shape, d)
    if d.shape != shape:
        raise ValueError(f"{where}: {name} has shape {d.shape}, expected {shape} (one delay per synapse)")
    chip.check_range(where, name, d, *chip.DELAY_RANGE)
    return d.astype(np.int8)


def _pair(where: str, name: str, val, lo: int) -> tuple[int, int]:
    """An int or a pair of ints (height, width) in [lo, CONV_GEOM_MAX] (Lava keeps them in int8)."""
    vals = (val, val) if np.ndim(val) == 0 else tuple(val)
    if len(vals) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in vals):
        raise ValueError(f"{where}: conv {name} = {val!r} must be an int or a pair of ints (height, width)")
    for v in vals:
        if not lo <= v <= chip.CONV_GEOM_MAX:       # (the check is on every shape query: keep it cheap)
            chip.check_range(where, f"conv {name}", v, lo, chip.CONV_GEOM_MAX)
    return int(vals[0]), int(vals[1])


@dataclass
class Conv2d:
    """The geometry of a 2-D convolution, a layer's input projection (Lava's Conv).

    in_shape (H, W, C) is the input map, flat index (h * W + w) * C + c (Lava's (x, y, c)
    with x = h, y = w; its port flatten is this C order). The layer's weights are
    (C_out, kh, kw, C / groups) and act as a cross-correlation, as in torch.conv2d:

        out[h, w, o] = sum_{i, j, c} weights[o, i, j, c]
                       * in[h * sh + i * dh - ph, w * sw + j * dw - pw, g * C / groups + c]

    with g = o // (C_out / groups) and zero outside the map (padding on both sides). Lava's
    Conv is a true convolution; the runner hands it the kernel flipped in both spatial axes.
    stride, padding, dilation: an int or (height, width). pool = True marks a sum-pool
    (checked: weights w * ones, groups = C_in = C_out, stride = kernel, dilation 1)."""

    in_shape: tuple
    stride: tuple | int = 1
    padding: tuple | int = 0
    dilation: tuple | int = 1
    groups: int = 1
    pool: bool = False

    def validate(self, where: str, kernel_shape: tuple) -> None:
        shape = tuple(self.in_shape) if np.ndim(self.in_shape) == 1 else ()
        if len(shape) != 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                                  for v in shape):
            raise ValueError(f"{where}: conv in_shape = {self.in_shape!r} must be 3 positive ints (H, W, C)")
        self.in_shape = tuple(int(v) for v in shape)
        self.stride = _pair(where, "stride", self.stride, 1)
        self.padding = _pair(where, "padding", self.padding, 0)
        self.dilation = _pair(where, "dilation", self.dilation, 1)
        g = self.groups
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)):
            raise ValueError(f"{where}: conv groups = {g!r} must be an integer")
        chip.check_range(where, "conv groups", g, 1, chip.CONV_GEOM_MAX)
        self.groups = g = int(g)
        if not isinstance(self.pool, (bool, np.bool_)):
            raise ValueError(f"{where}: conv pool = {self.pool!r} must be true or false")
        self.pool = bool(self.pool)
        if len(kernel_shape) != 4:
            raise ValueError(f"{where}: conv weights must be 4-D (C_out, kh, kw, C_in/groups), "
                             f"got shape {kernel_shape}")
        c_out, kh, kw, cg = kernel_shape
        H, W, C = self.in_shape
        if C % g:
            raise ValueError(f"{where}: conv groups = {g} does not divide the {C} input channels")
        if c_out % g or c_out == 0:
            raise ValueError(f"{where}: conv groups = {g} does not divide the {c_out} output channels")
        if cg != C // g:
            raise ValueError(f"{where}: conv weights have {cg} input channels per group, expected "
                             f"C_in / groups = {C // g} (weights (C_out, kh, kw, C_in/groups))")
        for name, k in (("kernel height", kh), ("kernel width", kw)):
            chip.check_range(where, f"conv {name}", k, 1, chip.CONV_GEOM_MAX)
        for axis, size, k, s, p, d in (("height", H, kh, *(x[0] for x in (self.stride, self.padding, self.dilation))),
                                       ("width", W, kw, *(x[1] for x in (self.stride, self.padding, self.dilation)))):
            if chip.conv_out_size(size, k, s, p, d) < 1:
                raise ValueError(f"{where}: conv output {axis} = {chip.conv_out_size(size, k, s, p, d)} < 1 "
                                 f"(input {size}, kernel {k}, stride {s}, padding {p}, dilation {d})")
        if self.pool:
            if not (g == C == c_out):
                raise ValueError(f"{where}: sum-pool needs groups = C_in = C_out, got groups {g}, "
                                 f"C_in {C}, C_out {c_out}")
            if self.stride != (kh, kw) or self.dilation != (1, 1):
                raise ValueError(f"{where}: sum-pool needs stride = kernel ({kh}, {kw}) and dilation 1, "
                                 f"got stride {self.stride}, dilation {self.dilation}")

    def out_shape(self, kernel_shape: tuple) -> tuple[int, int, int]:
        """(H', W', C_out) for weights of shape (C_out, kh, kw, C_in/groups)."""
        c_out, kh, kw = kernel_shape[:3]
        s, p, d = (_pair("conv", n, v, 0) for n, v in (("stride", self.stride), ("padding", self.padding),
                                                       ("dilation", self.dilation)))
        return (chip.conv_out_size(self.in_shape[0], kh, s[0], p[0], d[0]),
                chip.conv_out_size(self.in_shape[1], kw, s[1], p[1], d[1]), int(c_out))


@dataclass
class IntLayer:
    """One layer on the chip: an input projection -> LIF population of n_out neurons.

    The input projection is a Dense (weights (n_out, n_in)); a DelayDense when `delays`
    (n_out, n_in, 0..63) is given; a Conv2d when `conv` is given (weights then
    (C_out, kh, kw, C_in/groups), see Conv2d; weight_exp must be 0, Lava's Conv ignores it).
    du, dv, vth are per layer (Lava's LIF takes scalars); bias_mant, bias_exp per neuron.
    rec_weights (n_out, n_out), if given, is a recurrent Dense from the layer to itself,
    a recurrent DelayDense with rec_delays."""

    weights: np.ndarray
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray | None = None
    bias_exp: np.ndarray | None = None
    weight_exp: int = 0
    num_weight_bits: int = chip.MAX_WEIGHT_BITS
    rec_weights: np.ndarray | None = None
    rec_weight_exp: int = 0
    rec_num_weight_bits: int = chip.MAX_WEIGHT_BITS
    noise: Noise = field(default_factory=Noise)
    conv: Conv2d | None = None
    delays: np.ndarray | None = None
    rec_delays: np.ndarray | None = None

    @property
    def kind(self) -> str:
        """'dense', 'delay', 'conv' or 'pool': the input projection's kind."""
        if self.conv is not None:
            return "pool" if self.conv.pool else "conv"
        return "delay" if self.delays is not None else "dense"

    @property
    def shape(self) -> tuple[int, ...]:
        """The population's shape: (H', W', C') for a conv layer, (n_out,) otherwise."""
        if self.conv is not None:
            return self.conv.out_shape(np.shape(self.weights))
        return (int(np.shape(self.weights)[0]),)

    @property
    def n_out(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n_in(self) -> int:
        if self.conv is not None:
            return int(np.prod(self.conv.in_shape))
        return int(np.shape(self.weights)[1])

    @property
    def recurrent(self) -> bool:
        return self.rec_weights is not None

    @property
    def max_delay(self) -> int:
        """The largest delay of the input projection (0 without delays)."""
        return int(self.delays.max()) if self.delays is not None and self.delays.size else 0

    @property
    def rec_max_delay(self) -> int:
        return int(self.rec_delays.max()) if self.rec_delays is not None and self.rec_delays.size else 0

    @property
    def bias(self) -> np.ndarray:
        """Effective bias per neuron, bias_mant shifted by bias_exp (int64)."""
        return chip.effective_bias(self.bias_mant, self.bias_exp)

    def validate(self, where: str, n_in: int, in_shape: tuple | None = None, message_bits: int = 0) -> None:
        """Check and normalize in place. in_shape: the previous layer's (H, W, C) if it is a
        conv layer (a following conv must read that map); message_bits: graded input width."""
        if self.conv is not None and not isinstance(self.conv, Conv2d):
            raise ValueError(f"{where}: conv must be a neurohw.network.Conv2d, got {type(self.conv).__name__}")
        if self.conv is None and np.ndim(self.weights) != 2:
            raise ValueError(f"{where}: weights must be a 2-D (n_out, n_in) array, got shape {np.shape(self.weights)}")
        for name, rng in (("num_weight_bits", chip.NUM_WEIGHT_BITS_RANGE), ("weight_exp", chip.WEIGHT_EXP_RANGE),
                          ("rec_num_weight_bits", chip.NUM_WEIGHT_BITS_RANGE),
                          ("rec_weight_exp", chip.WEIGHT_EXP_RANGE),
                          ("du", chip.DU_RANGE), ("dv", chip.DV_RANGE), ("vth", chip.VTH_RANGE)):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                raise ValueError(f"{where}: {name} must be an integer, got {val!r}")
            chip.check_range(where, name, val, *rng)
            setattr(self, name, int(val))
        if self.conv is not None:
            self._validate_conv(where, n_in, in_shape, message_bits)
        else:
            self.weights = _weights(where, "weights", self.weights, (self.n_out, n_in), self.num_weight_bits)
        n = self.n_out
        if self.delays is not None:
            self.delays = _delays(where, "delays", self.delays, (n, n_in))
        if self.rec_weights is not None:
            self.rec_weights = _weights(where, "rec_weights", self.rec_weights, (n, n), self.rec_num_weight_bits)
        if self.rec_delays is not None:
            if self.rec_weights is None:
                raise ValueError(f"{where}: rec_delays given without rec_weights")
            self.rec_delays = _delays(where, "rec_delays", self.rec_delays, (n, n))
        for name, rng, dtype in (("bias_mant", chip.BIAS_MANT_RANGE, np.int16),
                                 ("bias_exp", chip.BIAS_EXP_RANGE, np.int8)):
            val = getattr(self, name)
            val = np.zeros(n, dtype) if val is None else chip.check_int(where, name, val)
            if val.ndim == 0:
                val = np.full(n, val)
            if val.shape != (n,):
                raise ValueError(f"{where}: {name} has shape {val.shape}, expected ({n},)")
            chip.check_range(where, name, val, *rng)
            setattr(self, name, val.astype(dtype))
        if not isinstance(self.noise, Noise):
            raise ValueError(f"{where}: noise must be a neurohw.Noise, got {type(self.noise).__name__}")
        self.noise.validate(where)

    def _validate_conv(self, where: str, n_in: int, in_shape, message_bits: int) -> None:
        if self.delays is not None:
            raise ValueError(f"{where}: delays apply to Dense projections only (Lava has no delayed Conv)")
        if self.weight_exp != 0:
            raise ValueError(f"{where}: weight_exp = {self.weight_exp} on a conv layer; allowed [0, 0] "
                             f"(Lava's fixed-point Conv ignores weight_exp)")
        w = chip.check_int(where, "weights", self.weights)
        self.conv.validate(where, w.shape)
        shape = self.conv.in_shape
        if in_shape is not None and tuple(in_shape) != shape:
            raise ValueError(f"{where}: conv in_shape = {shape} but the previous conv layer's output is "
                             f"{tuple(in_shape)}")
        if int(np.prod(shape)) != n_in:
            raise ValueError(f"{where}: conv in_shape = {shape} holds {int(np.prod(shape))} values, "
                             f"but the layer receives {n_in}")
        self.weights = _weights(where, "weights", w, w.shape, self.num_weight_bits)
        if self.conv.pool and np.any(self.weights != self.weights.flat[0]):
            raise ValueError(f"{where}: sum-pool weights must all be equal (w * ones), got values "
                             f"{sorted(set(int(x) for x in np.unique(self.weights)))[:4]}")
        # Lava sums in float64 and casts to int32: a sum beyond int32 would be undefined
        c_out, kh, kw, cg = self.weights.shape
        payload = 1 if message_bits == 0 else (1 << message_bits) - 1
        bound = int(np.abs(self.weights.astype(np.int64)).max(initial=0)) * payload * kh * kw * cg
        if bound > (1 << 31) - 1:
            raise ValueError(f"{where}: conv sum can reach {bound} (max |weight| x payload x fan-in "
                             f"{kh * kw * cg}), beyond int32, where Lava's float->int32 cast is undefined")


def sum_pool(in_shape, kernel, weight: int, padding=0, **lif) -> IntLayer:
    """A sum-pool layer as the chip runs it: a Conv with weights weight * ones, one group per
    channel, stride = kernel. lif: du, dv, vth and any other IntLayer field."""
    kh, kw = (kernel, kernel) if np.ndim(kernel) == 0 else tuple(kernel)
    C = int(in_shape[2])
    return IntLayer(weights=np.full((C, kh, kw, 1), weight, np.int16),
                    conv=Conv2d(in_shape=tuple(in_shape), stride=(kh, kw), padding=padding, groups=C, pool=True),
                    **lif)


@dataclass
class IntNetwork:
    """A layered integer network: n_in inputs, then layers in order.

    input_message_bits = 0: input rasters are binary spikes (any non-zero entry is a spike);
    > 0: the first Dense receives graded payloads (the raster's integer values)."""

    n_in: int
    layers: list[IntLayer]
    input_message_bits: int = 0
    name: str = ""

    def __post_init__(self):
        if isinstance(self.n_in, bool) or not isinstance(self.n_in, (int, np.integer)) or self.n_in < 1:
            raise ValueError(f"network: n_in = {self.n_in!r} must be a positive integer")
        self.n_in = int(self.n_in)
        if not self.layers:
            raise ValueError("network: layers is empty; at least one layer is needed")
        chip.check_range("network", "input_message_bits", self.input_message_bits, *chip.INPUT_MESSAGE_BITS_RANGE)
        self.layers = list(self.layers)
        n, shape = self.n_in, None
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, IntLayer):
                raise ValueError(f"layer {i}: expected an IntLayer, got {type(layer).__name__}")
            layer.validate(f"layer {i}", n, shape, self.input_message_bits if i == 0 else 0)
            n, shape = layer.n_out, (layer.shape if layer.conv is not None else None)

    @property
    def sizes(self) -> list[int]:
        return [self.n_in] + [layer.n_out for layer in self.layers]

    @property
    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]

    @property
    def max_delay(self) -> int:
        """The largest delay any synapse adds beyond Dense's one step (0 without delays)."""
        return max(max(layer.max_delay, layer.rec_max_delay) for layer in self.layers)

    # ---- bundle I/O ---------------------------------------------------------------------
    def save(self, path, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Write the network as a bundle directory, atomically (built aside, then renamed).

        extra: further named arrays stored and checksummed with the network (e.g. the
        expected output rasters of a reference deployment)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for i, layer in enumerate(self.layers):
            arrays[f"layer{i}.weights"] = layer.weights
            arrays[f"layer{i}.bias_mant"] = layer.bias_mant
            arrays[f"layer{i}.bias_exp"] = layer.bias_exp
            if layer.recurrent:
                arrays[f"layer{i}.rec_weights"] = layer.rec_weights
            for name in ("delays", "rec_delays"):
                if getattr(layer, name) is not None:
                    arrays[f"layer{i}.{name}"] = getattr(layer, name)
            nz = layer.noise
            lm = dict(
                n_out=layer.n_out, kind=layer.kind, du=layer.du, dv=layer.dv, vth=layer.vth,
                weight_exp=layer.weight_exp, num_weight_bits=layer.num_weight_bits,
                recurrent=layer.recurrent, rec_weight_exp=layer.rec_weight_exp,
                rec_num_weight_bits=layer.rec_num_weight_bits,
                noise=dict(inject=nz.inject, dist=nz.dist, mant=nz.mant, exp=nz.exp, seed=nz.seed))
            if layer.conv is not None:
                c = layer.conv
                lm["conv"] = dict(in_shape=list(c.in_shape), stride=list(c.stride), padding=list(c.padding),
                                  dilation=list(c.dilation), groups=c.groups, pool=c.pool)
            lm["rec_delays"] = layer.rec_delays is not None
            layers.append(lm)
        for key, arr in (extra or {}).items():
            if key.startswith("layer"):
                raise ValueError(f"bundle: extra array name {key!r} must not start with 'layer'")
            arrays[key] = np.ascontiguousarray(arr)
        manifest = dict(
            format=BUNDLE_FORMAT, format_version=BUNDLE_VERSION, name=self.name, n_in=self.n_in,
            input_message_bits=self.input_message_bits, layers=layers,
            arrays={k: dict(shape=list(a.shape), dtype=str(a.dtype), sha256=_sha256(a)) for k, a in arrays.items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            np.savez_compressed(tmp / ARRAYS, **arrays)
            (tmp / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))
            _replace_dir(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _replace_dir(src: Path, dst: Path) -> None:
    """Move a finished directory into place; an existing one is swapped out, then removed."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_bundle(path, with_extra: bool = False):
    """Load and verify a bundle: format, version, every array's shape, dtype and sha256.

    Returns the IntNetwork, or (network, extra arrays) with with_extra=True."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"bundle {path}: no {MANIFEST} (not a neurohw bundle, or incomplete)")
    try:
        m = yaml.safe_load(mpath.read_text())
    except yaml.YAMLError as e:
        raise BundleError(f"bundle {path}: {MANIFEST} is not valid YAML ({e})") from None
    if not isinstance(m, dict) or m.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"bundle {path}: {MANIFEST} has format {m.get('format') if isinstance(m, dict) else m!r}, "
                          f"expected {BUNDLE_FORMAT!r}")
    version = m.get("format_version")
    if version not in (1, 2, 3):
        raise BundleError(f"bundle {path}: format_version = {version!r} is not supported; allowed 1..{BUNDLE_VERSION}")
    try:
        with np.load(path / ARRAYS, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise BundleError(f"bundle {path}: {ARRAYS} is missing") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise BundleError(f"bundle {path}: {ARRAYS} is truncated or corrupt ({e})") from None
    declared = m.get("arrays") or {}
    for key, meta in declared.items():
        if key not in arrays:
            raise BundleError(f"bundle {path}: array {key!r} is listed in the manifest but missing from {ARRAYS}")
        a = arrays[key]
        if list(a.shape) != list(meta["shape"]) or str(a.dtype) != meta["dtype"]:
            raise BundleError(f"bundle {path}: array {key!r} has shape {list(a.shape)} dtype {a.dtype}, "
                              f"manifest says shape {meta['shape']} dtype {meta['dtype']}")
        if _sha256(a) != meta["sha256"]:
            raise BundleError(f"bundle {path}: array {key!r} fails its sha256 check (tampered or corrupt)")
    for key in arrays:
        if key not in declared:
            raise BundleError(f"bundle {path}: array {key!r} in {ARRAYS} is not listed in the manifest")
    layers = []
    try:
        for i, lm in enumerate(m["layers"]):
            nz = lm.get("noise") if version >= 2 else None
            kind = lm.get("kind", "dense") if version >= 3 else "dense"
            if kind not in ("dense", "delay", "conv", "pool"):
                raise BundleError(f"bundle {path}: layer {i} kind = {kind!r}; allowed dense, delay, conv, pool")
            cm = lm.get("conv") if kind in ("conv", "pool") else None
            if kind in ("conv", "pool") and not isinstance(cm, dict):
                raise BundleError(f"bundle {path}: layer {i} is a {kind} layer without its conv geometry")
            layers.append(IntLayer(
                weights=arrays[f"layer{i}.weights"], du=lm["du"], dv=lm["dv"], vth=lm["vth"],
                bias_mant=arrays[f"layer{i}.bias_mant"], bias_exp=arrays[f"layer{i}.bias_exp"],
                weight_exp=lm["weight_exp"], num_weight_bits=lm["num_weight_bits"],
                rec_weights=arrays[f"layer{i}.rec_weights"] if lm.get("recurrent") else None,
                rec_weight_exp=lm.get("rec_weight_exp", 0),
                rec_num_weight_bits=lm.get("rec_num_weight_bits", chip.MAX_WEIGHT_BITS),
                noise=Noise(**nz) if nz else Noise(),
                conv=Conv2d(in_shape=tuple(cm["in_shape"]), stride=tuple(cm["stride"]),
                            padding=tuple(cm["padding"]), dilation=tuple(cm["dilation"]),
                            groups=cm["groups"], pool=bool(cm.get("pool", False))) if cm else None,
                delays=arrays[f"layer{i}.delays"] if kind == "delay" else None,
                rec_delays=arrays[f"layer{i}.rec_delays"] if lm.get("rec_delays") else None))
        net = IntNetwork(n_in=m["n_in"], layers=layers, input_message_bits=m.get("input_message_bits", 0),
                         name=m.get("name") or "")
        for i, (layer, lm) in enumerate(zip(layers, m["layers"])):
            if layer.n_out != lm["n_out"]:
                raise BundleError(f"bundle {path}: layer {i} n_out = {lm['n_out']} in the manifest, "
                                  f"but its weights make {layer.n_out} neurons")
    except KeyError as e:
        raise BundleError(f"bundle {path}: manifest or arrays lack {e}") from None
    except BundleError:
        raise
    except (ValueError, TypeError) as e:
        raise BundleError(f"bundle {path}: {e}") from None
    if with_extra:
        return net, {k: a for k, a in arrays.items() if not k.startswith("layer")}
    return net


@dataclass
class RunResult:
    """What a backend returns: per layer a [batch, steps, n] array.

    spikes are uint8 (0/1); u and v (int32) only when probes were requested; wraps, sats
    (per-layer counts of u wraps and v saturations) and plans (emu projection plans) only
    from emu.run(flags=True)."""

    spikes: list[np.ndarray]
    u: list[np.ndarray] | None = None
    v: list[np.ndarray] | None = None
    wraps: list[int] | None = None
    sats: list[int] | None = None
    plans: list | None = None

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Named arrays <prefix>spikes_<layer> (and u_, v_) for .npz files and bundle extras."""
        out = {f"{prefix}spikes_{i}": s for i, s in enumerate(self.spikes)}
        for name in ("u", "v"):
            if getattr(self, name) is not None:
                out.update({f"{prefix}{name}_{i}": a for i, a in enumerate(getattr(self, name))})
        return out

    @classmethod
    def from_arrays(cls, z, n_layers: int, prefix: str = "") -> "RunResult":
        """The inverse of to_arrays (u and v only where stored)."""
        get = lambda name: ([z[f"{prefix}{name}_{i}"] for i in range(n_layers)]  # noqa: E731
                            if f"{prefix}{name}_0" in z else None)
        return cls(spikes=get("spikes"), u=get("u"), v=get("v"))
