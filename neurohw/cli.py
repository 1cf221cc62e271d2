"""The `neurohw` command: validate | run | train | quantize | emulate | lava-run | parity | report | sweep.

Failures print one line and exit 1 (2 for usage errors, 130 when interrupted); --debug shows
the traceback instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _config(target: str, out: str | None):
    """A config file, or a run directory holding config.json: (Config, run dir)."""
    from .config import load_config, parse_config
    p = Path(target)
    if p.is_dir():
        import json
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"{p}: not a run directory (no config.json)")
        return parse_config(json.loads((p / "config.json").read_text()), source=str(p / "config.json")), out or str(p)
    cfg = load_config(p)
    return cfg, out or cfg.out_dir


def _stages(args, stages):
    from .pipeline import run_pipeline
    cfg, out = _config(args.target, getattr(args, "out", None))
    run = run_pipeline(cfg, out, progress=not args.quiet, stages=stages, force=getattr(args, "force", False))
    return run


def cmd_validate(args) -> int:
    from .config import load_config
    cfg = load_config(args.config)
    layers = " -> ".join([str(cfg.n_in)] + [str(x.n) for x in cfg.model.layers] +
                         ([f"{cfg.model.readout.n} (readout)"] if cfg.model.readout else []))
    print(f"{args.config}: valid; task {cfg.data.task}, network {layers}, "
          f"{'stochastic' if cfg.neuron.stochastic else 'deterministic'}, out_dir {cfg.out_dir}")
    return 0


def cmd_run(args) -> int:
    from .pipeline import ORDER
    run = _stages(args, ORDER)
    import json
    rep = json.loads((run.dir / "report.json").read_text())
    s = rep["scores"]
    print(f"report: {run.dir / 'report.md'}")
    print("scores: " + ", ".join(f"{k} {v:.4g}" for k, v in s.items() if isinstance(v, float)))
    print(f"parity: {'ok' if rep['parity']['ok'] else 'MISMATCH'}")
    return 0 if rep["parity"]["ok"] else 1


def cmd_train(args) -> int:
    run = _stages(args, ("data", "train"))
    print(f"float model: {run.dir / 'float_model.pt'}")
    return 0


def cmd_quantize(args) -> int:
    run = _stages(args, ("data", "train", "quantize"))
    print(f"bundle: {run.dir / 'bundle'}")
    return 0


def cmd_report(args) -> int:
    from .pipeline import ORDER
    run = _stages(args, ORDER)
    print(f"report: {run.dir / 'report.md'}")
    return 0


def _load_raster(path: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"--input {p}: file not found")
    if p.suffix == ".npz":
        z = np.load(p)
        keys = list(z.keys())
        if "raster" in keys:
            return z["raster"]
        if len(keys) != 1:
            raise ValueError(f"--input {p}: an .npz needs an array named 'raster' (or exactly one array); has {keys}")
        return z[keys[0]]
    if p.suffix == ".npy":
        return np.load(p)
    raise ValueError(f"--input {p}: suffix {p.suffix!r} not allowed; allowed .npy, .npz")


def _simulate(args, backend: str) -> int:
    from . import emu
    from .network import load_bundle
    from ._io import write_npz
    net = load_bundle(args.bundle)
    x = _load_raster(args.input)
    if backend == "emulator":
        res = emu.run(net, x, probes=args.probes)
    else:
        from . import lava as nlava
        res = nlava.run(net, x, probes=args.probes)
    write_npz(Path(args.output), **res.to_arrays())
    print(f"{backend}: {x.shape[0]} samples x {x.shape[1]} steps; "
          f"spikes per layer {[int(s.sum()) for s in res.spikes]}; wrote {args.output}")
    return 0


def cmd_parity(args) -> int:
    """A reference bundle: all three backends and the expected outputs. A run directory: its
    parity stage (emulator vs Lava, hardware-exact trainer vs emulator), brought up to date."""
    import json

    from .deploy import check_bundle
    from .pipeline import STAGES
    p = Path(args.target)
    if (p / "config.json").exists():
        run = _stages(argparse.Namespace(target=str(p), out=None, quiet=True), tuple(STAGES))
        par = json.loads((run.dir / "parity.json").read_text())
        for name, t in par.items():
            if isinstance(t, dict):
                print(f"{name}: {t['samples']} samples")
                for row in t["per_layer"]:
                    print(f"  layer {row['layer']}: {row['spikes']} spikes, {row['mismatched']} of "
                          f"{row['entries']} entries mismatched")
        print("parity: " + ("all spikes, u and v identical" if par["ok"] else "MISMATCH"))
        return 0 if par["ok"] else 1
    table, ok = check_bundle(p, lava=not args.no_lava)
    print(table)
    return 0 if ok else 1


def cmd_sweep(args) -> int:
    """Validate the whole sweep first (one line on a mistake), then run it on Dask."""
    from .sweep import load_sweep, run_sweep
    sw = load_sweep(args.sweep, out_dir=args.out, address=args.address, workers=args.workers, threads=args.threads)
    if not args.quiet:
        print(f"sweep {sw.name}: {len(sw.trials)} trials over {', '.join(sw.axes) or 'the base config'}; "
              f"results in {sw.out_dir}", flush=True)
    table = run_sweep(sw, progress=not args.quiet)
    bad = [r for r in table if r["status"] == "failed" or r.get("parity") is False]
    print(f"sweep {sw.name}: {sum(r['status'] == 'ok' for r in table)} run, "
          f"{sum(r['status'] == 'skipped' for r in table)} already finished, "
          f"{sum(r['status'] == 'failed' for r in table)} failed; report: {sw.out_dir / 'report.md'}")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="neurohw", description="Train spiking networks, deploy them to the chip's "
                                 "integer model and to Lava, and check that they agree.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("validate", help="check a config file")
    p.add_argument("config")
    p.set_defaults(fn=cmd_validate)
    for name, fn, helptext in (("run", cmd_run, "all stages: data, train, quantize, emulate, lava, parity, report"),
                               ("train", cmd_train, "the data and float training stages"),
                               ("quantize", cmd_quantize, "up to quantization (+QAT): writes the bundle"),
                               ("report", cmd_report, "bring a run up to date and write its report")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("target", help="config YAML, or a run directory (holding config.json)")
        p.add_argument("--out", help="run directory (default: the config's out_dir)")
        p.add_argument("--quiet", action="store_true", help="no progress output")
        if name == "run":
            p.add_argument("--force", action="store_true", help="re-run every stage")
        p.set_defaults(fn=fn)
    for name, backend in (("emulate", "emulator"), ("lava-run", "lava")):
        p = sub.add_parser(name, help=f"run a bundle on an input raster in the {backend}")
        p.add_argument("bundle")
        p.add_argument("--input", required=True, help=".npy or .npz raster [batch, steps, n_in]")
        p.add_argument("--output", required=True, help=".npz of output rasters (spikes_<layer>)")
        p.add_argument("--probes", action="store_true", help="also write u_<layer> and v_<layer>")
        p.set_defaults(fn=lambda a, b=backend: _simulate(a, b))
    p = sub.add_parser("parity", help="emulator vs Lava vs hardware-exact trainer vs expected outputs")
    p.add_argument("target", help="a deploy bundle (with expected outputs) or a run directory")
    p.add_argument("--no-lava", action="store_true", help="skip Lava (emulator and trainer only)")
    p.set_defaults(fn=cmd_parity)
    p = sub.add_parser("sweep", help="many runs over config axes (grid / random), on Dask distributed")
    p.add_argument("sweep", help="sweep YAML: base config, set, grid, random, engine, stages")
    p.add_argument("--address", help="an existing Dask scheduler, e.g. tcp://10.0.0.1:8786 (default: local cluster)")
    p.add_argument("--workers", type=int, help="local worker processes (default: this machine's cores)")
    p.add_argument("--threads", type=int, help="torch/numba threads per trial (default 1)")
    p.add_argument("--out", help="sweep directory (default: the sweep's out_dir)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(fn=cmd_sweep)

    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("neurohw: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for users, traceback with --debug
        if args.debug:
            raise
        print(f"neurohw: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
