"""The integer network: what runs on the chip, validated on construction, saved as a bundle.

A layer is a Dense projection (plus an optional recurrent Dense) into a population of
current-based LIF neurons. All parameters are integers in the chip's ranges (neurohw.chip),
and every weight must be *representable*: left unchanged by Lava's clip + truncate for its
sign mode, so that what you build is exactly what runs.
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
BUNDLE_VERSION = 2          # 2: per-layer noise; 1 (no noise) still loads
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
        i, j = (int(x) for x in bad[0])
        mode = chip.sign_mode(w)
        lo, hi, step = chip.weight_limits(mode, num_weight_bits)
        raise ValueError(
            f"{where}: {name}[{i}, {j}] = {int(w[i, j])} is not representable: Lava's "
            f"{chip.SIGN_MODE_NAMES[mode]} {num_weight_bits}-bit Dense would make it {int(got[i, j])}; "
            f"allowed multiples of {step} in [{lo}, {hi}] ({bad.shape[0]} weights affected)")
    return w.astype(np.int16)


@dataclass
class IntLayer:
    """One layer on the chip: Dense (n_out, n_in) -> LIF population of n_out neurons.

    du, dv, vth are per layer (Lava's LIF takes scalars); bias_mant, bias_exp per neuron.
    rec_weights (n_out, n_out), if given, is a recurrent Dense from the layer to itself."""

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

    @property
    def n_out(self) -> int:
        return int(np.shape(self.weights)[0])

    @property
    def n_in(self) -> int:
        return int(np.shape(self.weights)[1])

    @property
    def recurrent(self) -> bool:
        return self.rec_weights is not None

    @property
    def bias(self) -> np.ndarray:
        """Effective bias per neuron, bias_mant shifted by bias_exp (int64)."""
        return chip.effective_bias(self.bias_mant, self.bias_exp)

    def validate(self, where: str, n_in: int) -> None:
        if np.ndim(self.weights) != 2:
            raise ValueError(f"{where}: weights must be a 2-D (n_out, n_in) array, got shape {np.shape(self.weights)}")
        n = self.n_out
        for name, rng in (("num_weight_bits", chip.NUM_WEIGHT_BITS_RANGE), ("weight_exp", chip.WEIGHT_EXP_RANGE),
                          ("rec_num_weight_bits", chip.NUM_WEIGHT_BITS_RANGE),
                          ("rec_weight_exp", chip.WEIGHT_EXP_RANGE),
                          ("du", chip.DU_RANGE), ("dv", chip.DV_RANGE), ("vth", chip.VTH_RANGE)):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                raise ValueError(f"{where}: {name} must be an integer, got {val!r}")
            chip.check_range(where, name, val, *rng)
            setattr(self, name, int(val))
        self.weights = _weights(where, "weights", self.weights, (n, n_in), self.num_weight_bits)
        if self.rec_weights is not None:
            self.rec_weights = _weights(where, "rec_weights", self.rec_weights, (n, n), self.rec_num_weight_bits)
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
        n = self.n_in
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, IntLayer):
                raise ValueError(f"layer {i}: expected an IntLayer, got {type(layer).__name__}")
            layer.validate(f"layer {i}", n)
            n = layer.n_out

    @property
    def sizes(self) -> list[int]:
        return [self.n_in] + [layer.n_out for layer in self.layers]

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
            nz = layer.noise
            layers.append(dict(
                n_out=layer.n_out, du=layer.du, dv=layer.dv, vth=layer.vth,
                weight_exp=layer.weight_exp, num_weight_bits=layer.num_weight_bits,
                recurrent=layer.recurrent, rec_weight_exp=layer.rec_weight_exp,
                rec_num_weight_bits=layer.rec_num_weight_bits,
                noise=dict(inject=nz.inject, dist=nz.dist, mant=nz.mant, exp=nz.exp, seed=nz.seed)))
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
    if version not in (1, 2):
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
            layers.append(IntLayer(
                weights=arrays[f"layer{i}.weights"], du=lm["du"], dv=lm["dv"], vth=lm["vth"],
                bias_mant=arrays[f"layer{i}.bias_mant"], bias_exp=arrays[f"layer{i}.bias_exp"],
                weight_exp=lm["weight_exp"], num_weight_bits=lm["num_weight_bits"],
                rec_weights=arrays[f"layer{i}.rec_weights"] if lm.get("recurrent") else None,
                rec_weight_exp=lm.get("rec_weight_exp", 0),
                rec_num_weight_bits=lm.get("rec_num_weight_bits", chip.MAX_WEIGHT_BITS),
                noise=Noise(**nz) if nz else Noise()))
            if layers[-1].n_out != lm["n_out"]:
                raise BundleError(f"bundle {path}: layer {i} n_out = {lm['n_out']} in the manifest, "
                                  f"but its weights have {layers[-1].n_out} rows")
        net = IntNetwork(n_in=m["n_in"], layers=layers, input_message_bits=m.get("input_message_bits", 0),
                         name=m.get("name") or "")
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
