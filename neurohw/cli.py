"""The `neurohw` command: validate | run | train | quantize | emulate | lava-run | parity | report | fit |
export | import | gradcheck | sweep.

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
    from .rundir import ORDER
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
    from .rundir import ORDER
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
    from .rundir import STAGES
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


def cmd_fit(args) -> int:
    """Map a bundle (or a run's bundle) onto a chip profile: per-layer table and totals; exit 1
    with one line naming the layer, the limit and the value when it does not fit. --energy adds
    SANA-FE's energy and latency on the bundle's stored inputs (a run: its whole test set)."""
    import json
    import time

    from ._io import write_json
    from .chip_profiles import load_profile
    from .fit import partition
    from .network import load_bundle
    p = Path(args.target)
    run = (p / "config.json").exists()
    net, extra = load_bundle(p / "bundle" if run else p, with_extra=True)
    prof = load_profile(args.chip)
    t0 = time.perf_counter()
    res = partition(net, prof, chips=args.chips)     # FitError -> one line, exit 1
    secs = time.perf_counter() - t0
    print(f"{p}: {' -> '.join(map(str, net.sizes))} on {prof.name}" + (f" ({prof.description})" if prof.description else ""))
    print(res.table())
    print(f"fits: {res.cores:,} cores on {res.chips} chip(s)"
          + (f" of the {args.chips} allowed" if args.chips else "") + f"; mapped in {secs:.2f} s")
    out = dict(fit=res.to_dict(), seconds=secs)
    if args.energy:
        from . import emu
        from .energy import simulate
        if run:
            x = np.load(p / "data.npz")["x_test"]
            z = np.load(p / "emulate.npz")
            spikes = [z[f"spikes_{i}"] for i in range(len(net.layers))]
        elif "input" in extra:
            x = extra["input"]
            spikes = emu.run(net, x).spikes
        else:
            raise ValueError(f"{p}: --energy needs inputs: a reference bundle (with 'input') or a run directory")
        e = simulate(net, res, x, spikes)
        b, t = e["breakdown_per_inference_J"], e["time_per_step_s"]
        print(f"SANA-FE ({e['samples']} samples x {e['steps_per_sample']} steps, {e['wall_seconds']:.2f} s): "
              f"{1e9 * e['energy_per_inference_J']:.1f} nJ per inference (synaptic events "
              f"{1e9 * b['synaptic_events']:.1f}, neuron updates {1e9 * b['neuron_updates']:.1f}, spikes "
              f"{1e9 * b['spikes']:.1f}, network {1e9 * b['network']:.1f}); {1e6 * t['mean']:.2f} us per step "
              f"(max {1e6 * t['max']:.2f})")
        out["energy"] = e
    if args.json:
        write_json(Path(args.json), json.loads(json.dumps(out, default=float)))
    return 0


def cmd_export(args) -> int:
    """A bundle or a run directory to netx HDF5 (the IntNetwork) or NIR (a run's float model,
    a bundle's exact float equivalent)."""
    from .network import load_bundle
    src = Path(args.source)
    run_dir = (src / "config.json").exists()
    if args.format == "netx":
        from .interop import netx
        net, extra = load_bundle(src / "bundle" if run_dir else src, with_extra=True)
        if args.requantize:
            if "input" not in extra:
                raise ValueError(f"{src}: --requantize calibrates on the bundle's stored inputs, and it has none "
                                 f"(deploy/ bundles do); for a run, train it with quant.target: netx")
            net = netx.requantize(net, extra["input"])
        _, remapped = netx.netx_form(net)
        netx.export(net, args.out)
        print(f"netx: wrote {args.out} ({len(net.layers)} layers{', requantized for netx' if args.requantize else ''}"
              f"{f', memoryless layers {remapped} remapped for identical spikes' if remapped else ''}); load it with "
              f"netx.hdf5.Network({args.out!r}, input_message_bits={net.input_message_bits})")
        return 0
    from .interop import nir as nx
    if run_dir:
        from .rundir import Run, load_float
        cfg, _ = _config(str(src), None)
        g = nx.to_nir(load_float(Run(cfg, src, progress=False)), dt=args.dt, fold_r=args.fold_r)
    else:
        g = nx.int_to_nir(load_bundle(src), dt=args.dt, fold_r=args.fold_r)
    nx.write(g, args.out)
    print(f"nir: wrote {args.out} ({len(g.nodes)} nodes) at dt = {args.dt:g} s")
    return 0


def cmd_import(args) -> int:
    """A netx HDF5 file or a NIR graph to a bundle (netx; NIR written by neurohw.int_to_nir), or
    to a float model (other NIR graphs: quantize it through a `model: {nir: FILE}` config)."""
    src = Path(args.file)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: file not found")
    if args.format == "netx" or (args.format is None and src.suffix in (".h5", ".hdf5")):
        from .interop import netx
        net = netx.load(src)
        net.save(args.out)
        print(f"bundle: {args.out} ({' -> '.join(map(str, net.sizes))})")
        return 0
    from ._io import save_torch
    from .interop import nir as nx
    try:
        net = nx.int_from_nir(src, dt=args.dt)
        net.save(args.out)
        print(f"bundle: {args.out} ({' -> '.join(map(str, net.sizes))}), exact (neurohw metadata)")
        return 0
    except nx.NirError as e:
        if "no neurohw metadata" not in str(e):
            raise
    fl = nx.from_nir(src, dt=args.dt, peer=args.peer)
    save_torch(Path(args.out), fl.state_dict())
    sizes = " -> ".join(map(str, [fl.n_in] + [m.spec.n_out for m in fl.modules_in_order]))
    print(f"float model: {args.out} (state dict, {sizes}); "
          f"deploy it with a config whose model is {{nir: {src}, peer: {args.peer}}}")
    return 0


def cmd_gradcheck(args) -> int:
    """The gradient audit (neurohw.grad): every estimator against finite differences, per layer."""
    from .gradcheck import markdown, run_gradcheck, settings_from_args
    cfg, out = _config(args.target, args.out)
    settings = settings_from_args(args)
    res = run_gradcheck(cfg, Path(out), settings, hw=args.hw, progress=None if args.quiet else print)
    print(markdown(res))
    print(f"wrote {Path(out) / 'gradcheck.json'}, gradcheck.md, gradcheck.png")
    return 0


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
    p = sub.add_parser("export", help="a bundle or run to lava-dl netx HDF5 or NIR")
    p.add_argument("source", help="a bundle directory or a run directory")
    p.add_argument("--format", required=True, choices=("netx", "nir"))
    p.add_argument("out", help="output file (.h5 for netx, .nir for NIR)")
    p.add_argument("--dt", type=float, default=1e-4, help="NIR time step in seconds (default 1e-4)")
    p.add_argument("--fold-r", action="store_true", help="NIR: r = 1, scale in the weights (for Norse)")
    p.add_argument("--requantize", action="store_true",
                   help="netx: quantize the bundle again onto netx's grids first (calibrated on its stored inputs)")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("import", help="a netx HDF5 or NIR file to a bundle (or a float model)")
    p.add_argument("file")
    p.add_argument("out", help="bundle directory (netx, neurohw NIR) or float model .pt (other NIR)")
    p.add_argument("--format", choices=("netx", "nir"), help="default: from the suffix (.h5/.hdf5 = netx)")
    p.add_argument("--dt", type=float, default=None, help="NIR time step in seconds (default: the peer's)")
    p.add_argument("--peer", default="neurohw", choices=("neurohw", "snntorch", "norse"),
                   help="who wrote the NIR file (its dt default and known faults)")
    p.set_defaults(fn=cmd_import)

    p = sub.add_parser("fit", help="will it fit: map a bundle onto a chip's cores (exit 1 if it cannot)")
    p.add_argument("target", help="a bundle or a run directory")
    p.add_argument("--chip", default="loihi1", help="loihi1, loihi2 or a chip profile YAML (default loihi1)")
    p.add_argument("--chips", type=int, default=None, help="chips available (default: as many as needed)")
    p.add_argument("--energy", action="store_true", help="also SANA-FE energy and latency on the stored inputs")
    p.add_argument("--json", help="write the numbers to this JSON file")
    p.set_defaults(fn=cmd_fit)

    p = sub.add_parser("gradcheck", help="audit the gradient estimators (surrogate, score, mixed) against "
                       "finite differences of the expected loss, per layer")
    p.add_argument("target", help="config YAML (initialized network) or a run directory (trained network)")
    p.add_argument("--out", help="directory for gradcheck.json/.md/.png (default: the run directory)")
    p.add_argument("--quick", action="store_true", help="small settings (about a tenth of the time)")
    for k, typ, h in (("batch", int, "input samples"), ("paths", int, "paths per estimate"),
                      ("reps", int, "estimates per estimator"), ("directions", int, "FD directions per layer"),
                      ("fd-reps", int, "FD repetitions"), ("fd-paths", int, "paths per FD evaluation"),
                      ("h", float, "FD step, fraction of the layer's parameter norm"), ("seed", int, "seed")):
        p.add_argument(f"--{k}", type=typ, help=h)
    p.add_argument("--hw", action="store_true", help="also time the estimators on the hardware-exact net")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(fn=cmd_gradcheck)

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
