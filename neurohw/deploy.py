"""Reference deployments: integer bundles with a fixed input set and the expected outputs, and
the parity check that runs them through the emulator, Lava and the hardware-exact trainer."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import emu
from .network import IntNetwork, RunResult, load_bundle
from .parity import compare, reference_run
from .train.hw import run_int_network


def save_reference(net: IntNetwork, x: np.ndarray, path, labels: np.ndarray | None = None) -> Path:
    """Write net as a bundle at path with the input raster and the emulator's spikes, u and v."""
    extra = {"input": np.asarray(x, np.uint8), **emu.run(net, x, probes=True).to_arrays("expected_")}
    if labels is not None:
        extra["labels"] = np.asarray(labels, np.int64)
    return net.save(path, extra=extra)


def check_bundle(path, lava: bool = True) -> tuple[str, bool]:
    """Emulator vs expected, Lava vs emulator, trainer (hardware-exact) vs emulator, on every
    spike, u and v. Returns a per-layer table and whether everything agreed."""
    net, extra = load_bundle(path, with_extra=True)
    if "input" not in extra:
        raise ValueError(f"{path}: bundle has no 'input' raster; reference bundles are written by "
                         "neurohw.deploy.save_reference")
    x = extra["input"]
    L = len(net.layers)
    a = emu.run(net, x, probes=True)
    checks = {"emulator = expected": compare(a, RunResult.from_arrays(extra, L, "expected_")),
              "trainer (hw-exact) = emulator": compare(a, run_int_network(net, x))}
    if any(layer.kind != "dense" for layer in net.layers):      # conv / pool / delay: a fourth view
        checks["NumPy reference = emulator"] = compare(a, reference_run(net, x))
    if lava:
        from . import lava as nlava
        checks["Lava = emulator"] = compare(a, nlava.run(net, x, probes=True))
    names = list(checks)
    head = f"{Path(path).name}: {x.shape[0]} samples x {x.shape[1]} steps, sizes {net.sizes}"
    rows = [head, "layer  neurons  spikes  " + "  ".join(f"{n} (mismatched)" for n in names)]
    for i, layer in enumerate(net.layers):
        counts = [sum(m.count for m in checks[n] if m.layer == i) for n in names]
        rows.append(f"{i:>5}  {layer.n_out:>7}  {int(a.spikes[i].sum()):>6}  " +
                    "  ".join(f"{c:>{len(n) + 13}}" for c, n in zip(counts, names)))
    ok = not any(checks.values())
    rows.append("parity: " + ("all spikes, u and v identical" if ok else "MISMATCH"))
    return "\n".join(rows), ok


def export_run(run_dir, dest, n: int = 16) -> Path:
    """A run's integer network as a reference deployment: the first n test inputs and labels,
    and the emulator's outputs on them as the expected outputs."""
    import json

    from .config import parse_config
    run_dir = Path(run_dir)
    cfg = parse_config(json.loads((run_dir / "config.json").read_text()))
    z = np.load(run_dir / "data.npz")
    net = load_bundle(run_dir / "bundle")
    labels = z["y_test"][:n] if cfg.n_classes else None
    return save_reference(net, z["x_test"][:n], dest, labels=labels)


REFERENCE_CONFIGS = ("yinyang", "yinyang_stochastic", "digits", "spike_train", "recurrent", "events_conv", "delays",
                     "generative")


def fit_report(root="deploy", names=REFERENCE_CONFIGS, chip: str = "loihi1") -> str:
    """Markdown: each reference bundle's fit table and SANA-FE energy and latency on its stored
    inputs and the emulator's spikes (what `neurohw fit deploy/<name> --energy` prints)."""
    from .report import chip_resources, fit_markdown
    lines = ["# Chip resources of the reference deployments", "",
             f"Written by `python -m neurohw.deploy --fit-report` (also at the end of `make deploy`): each bundle "
             f"mapped onto {chip} by `neurohw.fit`, and SANA-FE's energy and latency for its stored inputs "
             f"(`neurohw.energy`). See docs/fit.md.", ""]
    for name in names:
        path = Path(root) / name
        net, extra = load_bundle(path, with_extra=True)
        x = extra["input"]
        res = chip_resources(net, x, emu.run(net, x).spikes, chip)
        lines += [f"## {name}", "", f"{' → '.join(map(str, net.sizes))}, {x.shape[0]} samples x {x.shape[1]} steps.",
                  ""] + fit_markdown(res)
    return "\n".join(lines)


def main(argv=None) -> int:
    """`make deploy`: run every reference config and export it under deploy/<name>."""
    import argparse

    from .config import load_config
    from .pipeline import run_pipeline
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("names", nargs="*", default=list(REFERENCE_CONFIGS))
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--fit-report", action="store_true", help="only rewrite deploy/FIT.md from the bundles")
    args = ap.parse_args(argv)
    from ._io import write_text
    for name in [] if args.fit_report else args.names:
        run = run_pipeline(load_config(Path("configs") / f"{name}.yaml"))
        path = export_run(run.dir, Path("deploy") / name, n=args.samples)
        print(f"deploy/{name}: {path}")
    # every bundle's section, whichever were exported now (a partial run used to drop the others)
    write_text(Path("deploy") / "FIT.md", fit_report())
    print("deploy/FIT.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
