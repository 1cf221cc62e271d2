"""Chip profiles: the per-core and per-chip resource limits that `neurohw fit` maps onto.

The limits live in YAML files beside this module (loihi1.yaml, loihi2.yaml) so that a user with
other numbers can copy one and pass its path. Each entry is ``{value, source}``, plus
``assumption: true`` where the figure is not public: the source says where it came from, and
the fit report repeats which limits are assumptions. A bad file is a one-line error naming the
file, the key, the value and what is allowed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).parent
BUILTIN = ("loihi1", "loihi2")

# key: (type, minimum); lists are of positive ints
_INT_KEYS = {"cores_per_chip": 1, "neurons_per_core": 1, "input_axons_per_core": 1, "output_axons_per_core": 1,
             "synapse_bits_per_core": 1, "synapses_per_block": 1, "block_header_bits": 0, "word_bits": 1,
             "max_delay_bits": 0}
_LIST_KEYS = ("weight_bits", "index_bits")
_BOOL_KEYS = ("graded_spikes",)


class ProfileError(ValueError):
    """A chip profile that cannot be used as it is."""


@dataclass(frozen=True)
class ChipProfile:
    """Resource limits of one chip. Sizes in neurons, axons and bits; all per core except cores_per_chip."""

    name: str
    cores_per_chip: int
    neurons_per_core: int
    input_axons_per_core: int
    output_axons_per_core: int
    synapse_bits_per_core: int
    weight_bits: tuple[int, ...]      # stored weight widths the synapse memory offers
    index_bits: tuple[int, ...]       # index widths of the sparse format
    synapses_per_block: int           # synapses sharing one block header
    block_header_bits: int
    word_bits: int                    # memory word: every synapse block rounds up to it
    max_delay_bits: int               # 0: no synaptic delays
    graded_spikes: bool
    description: str = ""
    sources: dict = field(default_factory=dict, compare=False)
    assumptions: tuple[str, ...] = ()  # keys whose value is not public

    def stored_weight_bits(self, bits: int) -> int:
        """The narrowest width the memory offers that holds `bits`-bit weights."""
        for w in sorted(self.weight_bits):
            if w >= bits:
                return w
        raise ProfileError(f"chip {self.name}: weights of {bits} bits exceed the widest stored width "
                           f"{max(self.weight_bits)}")

    def stored_index_bits(self, n_targets: int) -> int:
        """Index width of the sparse format for a core of n_targets neurons."""
        need = max(int(n_targets - 1).bit_length(), 1)
        for w in sorted(self.index_bits):
            if w >= need:
                return w
        return need  # wider than the table: the per-core neuron limit binds first


def load_profile(spec: str | Path) -> ChipProfile:
    """A built-in name (loihi1, loihi2) or a path to a YAML profile."""
    spec = str(spec)
    path = HERE / f"{spec}.yaml" if spec in BUILTIN else Path(spec)
    if not path.is_file():
        raise ProfileError(f"--chip {spec}: no such profile; allowed {', '.join(BUILTIN)} or a YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "parse error"
        raise ProfileError(f"chip profile {path}: not valid YAML ({first})") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"chip profile {path}: expected a mapping of keys, got {type(raw).__name__}")
    return parse_profile(raw, str(path))


def parse_profile(raw: dict, where: str = "chip profile") -> ChipProfile:
    known = set(_INT_KEYS) | set(_LIST_KEYS) | set(_BOOL_KEYS) | {"name", "description"}
    for k in raw:
        if k not in known:
            raise ProfileError(f"{where}: unknown key {k!r}; allowed {', '.join(sorted(known))}")
    vals, sources, assumed = {}, {}, []
    for k in list(_INT_KEYS) + list(_LIST_KEYS) + list(_BOOL_KEYS):
        if k not in raw:
            raise ProfileError(f"{where}: missing key {k!r}")
        entry = raw[k]
        if isinstance(entry, dict):
            extra = set(entry) - {"value", "source", "assumption"}
            if extra or "value" not in entry:
                raise ProfileError(f"{where}: {k} must be a value or {{value, source, assumption}}, got keys "
                                   f"{sorted(entry)}")
            v = entry["value"]
            sources[k] = str(entry.get("source", ""))
            if entry.get("assumption", False) is True:
                assumed.append(k)
        else:
            v = entry
        if k in _INT_KEYS:
            if isinstance(v, bool) or not isinstance(v, int) or v < _INT_KEYS[k]:
                raise ProfileError(f"{where}: {k} = {v!r} must be an integer >= {_INT_KEYS[k]}")
        elif k in _LIST_KEYS:
            if (not isinstance(v, list) or not v or
                    any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 32 for x in v)):
                raise ProfileError(f"{where}: {k} = {v!r} must be a non-empty list of integers in [1, 32]")
            v = tuple(sorted(set(v)))
        elif not isinstance(v, bool):
            raise ProfileError(f"{where}: {k} = {v!r} must be true or false")
        vals[k] = v
    name = raw.get("name", Path(where).stem)
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{where}: name = {name!r} must be a non-empty string")
    return ChipProfile(name=name, description=str(raw.get("description", "")), sources=sources,
                       assumptions=tuple(assumed), **vals)
