"""`neurohw sweep SWEEP.yaml`: many pipeline runs, on Dask distributed.

A sweep file names a base config, fixed overrides (`set`) and axes over any config key (`grid`:
every combination; `random`: n samples, crossed with the grid; `seed` is an axis like any other).
Every trial's config is built and validated before the engine starts, so a bad value stops the
sweep in its first second with one line. Each trial is an ordinary `run_pipeline` in its own
directory, named by its overrides: a finished trial is skipped without reaching the engine, an
interrupted one resumes through the run's manifest hashes and training checkpoints.

Why Dask (docs/sweep.md has the numbers): a small install that leaves numpy and torch alone, a
local cluster that starts in seconds and closes without leftovers, and the same code for a real
cluster (`--address tcp://host:8786`). The engine schedules; neurohw only says what a trial is.

    name: lr-grid
    base: configs/yinyang.yaml           # relative to the sweep file, then the working directory
    out_dir: runs/sweeps/lr-grid         # default runs/sweeps/<name>
    set: {train.epochs: 10}              # fixed overrides of every trial
    grid: {seed: [0, 1, 2], train.lr: [0.005, 0.002]}
    random: {n: 4, seed: 0, axes: {quant.qat_lr: {log_uniform: [1.0e-5, 1.0e-3]},
                                   model.layers.0.n: {int: [60, 200]}}}
    engine: {address: null, workers: null, threads: 1}   # null address: a local cluster, one
                                                         # worker per core
    stages: [data, train, quantize, emulate, lava, parity, report]
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_path, write_json, write_text
from .config import (DATA_KEYS, DEPLOY_KEYS, LAYER_KEYS, NEURON_KEYS, PARITY_KEYS, QUANT_KEYS, READOUT_KEYS,
                     TRAIN_KEYS, Config, ConfigError, _Map, _read_yaml, load_config, parse_config)

SWEEP_KEYS = ("name", "base", "out_dir", "set", "grid", "random", "engine", "stages")
RANDOM_KEYS = ("n", "seed", "axes")
ENGINE_KEYS = ("address", "workers", "threads")
DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int")
STAGE_NAMES = ("data", "train", "quantize", "emulate", "lava", "parity", "report")
SECTION_KEYS = {"data": DATA_KEYS, "neuron": NEURON_KEYS, "train": TRAIN_KEYS, "quant": QUANT_KEYS,
                "deploy": DEPLOY_KEYS, "parity": PARITY_KEYS}
SCORES = ("float", "qat", "emulator", "lava", "emulator_on_lava_samples")


@dataclass(frozen=True)
class EngineConfig:
    address: str | None = None      # an existing Dask scheduler; None: a local cluster
    workers: int | None = None      # local workers (default: this machine's cores)
    threads: int = 1                # torch / numba threads per trial


@dataclass(frozen=True)
class Trial:
    id: str                         # directory name: readable overrides + a short hash of them
    overrides: dict                 # axis key -> value
    cfg: Config
    dir: Path


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str
    out_dir: Path
    axes: tuple[str, ...]           # grid keys, then random keys
    trials: tuple[Trial, ...]
    engine: EngineConfig
    stages: tuple[str, ...]
    base: str = ""
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The sweep file

def _check_key(m: _Map, where: str, key: Any, base: dict) -> list:
    """A dotted config key -> its path in Config.to_dict() (list indices as ints)."""
    def bad(problem, allowed):
        return ConfigError(f"{m.src}: {where} = {key!r} {problem}; allowed {allowed}")
    if not isinstance(key, str) or not key:
        raise bad("is not a config key", "a dotted config key such as train.lr or model.layers.0.n")
    parts = key.split(".")
    sec = parts[0]
    if parts == ["seed"]:
        return parts
    if sec in SECTION_KEYS:
        if len(parts) != 2 or parts[1] not in SECTION_KEYS[sec]:
            raise bad("is not a known config key", ", ".join(f"{sec}.{k}" for k in SECTION_KEYS[sec]))
        return parts
    if sec == "model":
        n = len(base["model"]["layers"])
        if len(parts) == 4 and parts[1] == "layers" and parts[2].isdigit() and parts[3] in LAYER_KEYS:
            if int(parts[2]) >= n:
                raise bad(f"names a layer the base config lacks (it has {n})", f"model.layers.0..{n - 1}.<key>")
            return ["model", "layers", int(parts[2]), parts[3]]
        if len(parts) == 3 and parts[1] == "readout" and parts[2] in READOUT_KEYS and base["model"]["readout"]:
            return parts
        raise bad("is not a known config key", "model.layers.<i>.{" + ",".join(LAYER_KEYS) + "}, model.readout.{"
                  + ",".join(READOUT_KEYS) + "} (with a readout)")
    raise bad("is not a known config key", "seed or <section>.<key> for sections "
              + ", ".join(list(SECTION_KEYS) + ["model"]))


def _set(d: dict, path: list, value: Any) -> None:
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value


def _values_list(m: _Map, where: str, v: Any) -> list:
    if not isinstance(v, list):
        raise ConfigError(f"{m.src}: {where} = {v!r} has type {type(v).__name__}, expected a list; "
                          "allowed a non-empty list of values")
    if not v:
        raise ConfigError(f"{m.src}: {where} = [] is empty; allowed a non-empty list of values")
    return v


def _number(m: _Map, where: str, v: Any, kind: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise ConfigError(f"{m.src}: {where} = {v!r} is not a finite number; allowed [low, high] numbers")
    if kind == "int" and not isinstance(v, int):
        raise ConfigError(f"{m.src}: {where} = {v!r} has type {type(v).__name__}, expected int; allowed [low, high] ints")
    return v


def _sampler(m: _Map, key: str, spec: Any):
    """One random axis: {choice: [...]}, {uniform|log_uniform: [lo, hi]} or {int: [lo, hi]}."""
    where = f"random.axes.{key}"
    allowed = "a mapping with one of " + ", ".join(f"{d}: [...]" for d in DISTRIBUTIONS)
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(f"{m.src}: {where} = {spec!r} is not a distribution; allowed {allowed}")
    kind, v = next(iter(spec.items()))
    v = _values_list(m, f"{where}.{kind}", v)
    if kind == "choice":
        return lambda rng: v[int(rng.integers(len(v)))]
    if len(v) != 2:
        raise ConfigError(f"{m.src}: {where}.{kind} = {v!r} has {len(v)} values; allowed [low, high]")
    lo, hi = (_number(m, f"{where}.{kind}", x, kind) for x in v)
    if not lo <= hi or (kind == "log_uniform" and lo <= 0):
        raise ConfigError(f"{m.src}: {where}.{kind} = {v!r} is not an interval; allowed low <= high"
                          + (", low > 0" if kind == "log_uniform" else ""))
    if kind == "int":
        return lambda rng: int(rng.integers(lo, hi + 1))
    if kind == "uniform":
        return lambda rng: float(f"{rng.uniform(lo, hi):.6g}")
    return lambda rng: float(f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.6g}")


def _slug(overrides: dict) -> str:
    text = json.dumps(overrides, sort_keys=True, default=str)
    short = "-".join(f"{k.split('.')[-1]}{v}" for k, v in overrides.items())
    short = re.sub(r"[^A-Za-z0-9_.=-]+", "_", short)[:60] or "base"
    return f"{short}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def _find(path: str, base_dir: Path) -> Path:
    p = Path(path)
    for c in ([p] if p.is_absolute() else [base_dir / p, Path.cwd() / p]):
        if c.is_file():
            return c
    return p


def parse_sweep(raw: dict, source: str = "<dict>", base_dir: Path | None = None, out_dir: str | None = None,
                address: str | None = None, workers: int | None = None, threads: int | None = None) -> Sweep:
    """Validate a sweep mapping and build (and validate) every trial's config. Command-line
    values (out_dir, address, workers, threads) replace the file's."""
    base_dir = Path(base_dir or ".")
    top = _Map(source, "", raw, SWEEP_KEYS)
    name = top.str_("name", None, pattern=re.compile(r"[A-Za-z0-9_-]+"))
    base_path = top.str_("base", None)
    if base_path is None:
        raise ConfigError(f"{source}: base is missing (required); allowed a path to a config YAML")
    base_file = _find(base_path, base_dir)
    try:
        base_cfg = load_config(base_file)
    except ConfigError as e:
        raise ConfigError(f"{source}: base = {base_path!r}: {e}") from None
    name = name or base_cfg.name + "-sweep"
    base = base_cfg.to_dict()
    out = Path(out_dir or top.str_("out_dir", f"runs/sweeps/{name}")).absolute()

    fixed_raw = top.raw.get("set") or {}
    if not isinstance(fixed_raw, dict):
        raise ConfigError(f"{source}: set = {fixed_raw!r} is not a mapping; allowed {{config key: value}}")
    sets = [(_check_key(top, f"set.{k}", k, base), v) for k, v in fixed_raw.items()]
    for path, v in sets:
        _set(base, path, v)

    grid_raw = raw.get("grid") or {}
    if not isinstance(grid_raw, dict):
        raise ConfigError(f"{source}: grid = {grid_raw!r} is not a mapping; allowed {{config key: [values]}}")
    grid = [(k, _check_key(top, f"grid.{k}", k, base), _values_list(top, f"grid.{k}", v)) for k, v in grid_raw.items()]

    samples: list[dict] = [{}]
    rkeys: list[str] = []
    if raw.get("random") is not None:
        rm = top.sub("random", RANDOM_KEYS)
        n = rm.int_("n", None, 1, 100000)
        if n is None:
            raise ConfigError(f"{source}: random.n is missing (required); allowed int 1..100000")
        rseed = rm.int_("seed", 0, 0)
        axes = rm.raw.get("axes")
        if not isinstance(axes, dict) or not axes:
            raise ConfigError(f"{source}: random.axes = {axes!r} is empty or not a mapping; allowed "
                              "{config key: {choice|uniform|log_uniform|int: [...]}}")
        samplers = []
        for k, spec in axes.items():
            path = _check_key(top, f"random.axes.{k}", k, base)
            if k in grid_raw:
                raise ConfigError(f"{source}: random.axes.{k} is also a grid axis; allowed each key on one axis")
            samplers.append((k, path, _sampler(top, k, spec)))
        rng = np.random.default_rng(rseed)
        samples = [{k: f(rng) for k, _, f in samplers} for _ in range(n)]
        rkeys = [k for k, _, _ in samplers]
        paths = {k: p for k, p, _ in samplers}
    else:
        paths = {}
    paths.update({k: p for k, p, _ in grid})

    em = top.sub("engine", ENGINE_KEYS)
    engine = EngineConfig(address=address or em.str_("address", None),
                          workers=workers or em.int_("workers", None, 1, 4096, nullable=True),
                          threads=threads or em.int_("threads", 1, 1, 256))
    stages_raw = raw.get("stages", list(STAGE_NAMES))
    if (not isinstance(stages_raw, list) or not stages_raw
            or any(s not in STAGE_NAMES for s in stages_raw)):
        raise ConfigError(f"{source}: stages = {stages_raw!r} is not valid; allowed a non-empty list of "
                          + ", ".join(STAGE_NAMES))
    stages = tuple(s for s in STAGE_NAMES if s in stages_raw)

    trials, seen = [], set()
    for combo in itertools.product(*[vals for _, _, vals in grid]):
        for sample in samples:
            ov = {k: v for (k, _, _), v in zip(grid, combo)}
            ov.update(sample)
            tid = _slug(ov)
            if tid in seen:                                  # a random draw repeated a trial
                continue
            seen.add(tid)
            d = copy.deepcopy(base)
            for k, v in ov.items():
                _set(d, paths[k], v)
            d["out_dir"] = str(out / "trials" / tid)
            where = ", ".join(f"{k}={v!r}" for k, v in ov.items()) or "base"
            try:
                cfg = parse_config(d, source=f"{source} (trial {where})")
            except ConfigError as e:
                raise ConfigError(str(e)) from None
            trials.append(Trial(id=tid, overrides=ov, cfg=cfg, dir=out / "trials" / tid))
    return Sweep(name=name, source=source, out_dir=out, axes=tuple(k for k, _, _ in grid) + tuple(rkeys),
                 trials=tuple(trials), engine=engine, stages=stages, base=str(base_file))


def load_sweep(path: str | Path, **cli) -> Sweep:
    p = Path(path)
    raw = _read_yaml(p, f"{path}:", "a YAML mapping with keys " + ", ".join(SWEEP_KEYS))
    return parse_sweep(raw, source=str(path), base_dir=p.parent, **cli)


# ---------------------------------------------------------------------------------------------
# One trial (runs on a worker)

def run_trial(cfg_dict: dict, run_dir: str, threads: int, stages: tuple[str, ...], post=None) -> dict:
    """An ordinary pipeline run with `threads` torch/numba threads; returns its table row, plus
    what `post(run_dir) -> dict` adds (e.g. a benchmark's extra evaluations, on the same worker)."""
    set_threads(threads)
    import multiprocessing as mp
    cfg = parse_config(cfg_dict, source=f"{run_dir}/config.json")
    if "lava" in stages and cfg.deploy.lava and mp.current_process().daemon:
        raise RuntimeError("deploy.lava = true needs a worker that may start processes (Lava does); start "
                           "workers with DASK_DISTRIBUTED__WORKER__DAEMON=False, or set deploy.lava: false")
    if mp.get_start_method(allow_none=True) != "fork":
        # Lava's runtime needs 'fork' (it sets it on import); a Dask worker process was spawned
        mp.set_start_method("fork", force=True)
    from .pipeline import run_pipeline
    run_pipeline(cfg, run_dir, progress=False, stages=stages)
    row = trial_row(Path(run_dir)) | {"worker": f"{socket.gethostname()}:{os.getpid()}"}
    return row | (post(run_dir) if post is not None else {})


def set_threads(threads: int) -> None:
    """`threads` torch and numba threads in this process (a trial's worker).

    numba reads NUMBA_NUM_THREADS once, when it is imported, and again only when it compiles. A
    local worker is spawned: it imports the parent's main module (`neurohw`'s script, or a
    benchmark: both import numba) before its Nanny puts `env` (NUMBA_NUM_THREADS = threads) into
    os.environ, so numba.config still holds the core count. numba.set_num_threads would then
    launch a pool of that many threads, and the trial's first compilation would re-read the
    environment and fail ("Cannot set NUMBA_NUM_THREADS to a different value once the threads
    have been launched"). So the environment is read again before the pool starts; if a pool
    is already running, the environment is made to agree with it instead."""
    import torch
    torch.set_num_threads(threads)
    try:
        import numba
        from numba.np.ufunc import parallel
    except ImportError:
        return
    if not getattr(parallel, "_is_initialized", False):
        numba.config.reload_config()
    elif "NUMBA_NUM_THREADS" in os.environ:
        os.environ["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def trial_row(run_dir: Path) -> dict:
    """Scores, parity and stage seconds of a run directory, from its report and manifest."""
    row: dict[str, Any] = {}
    rep_path = run_dir / "report.json"
    if rep_path.exists():
        rep = json.loads(rep_path.read_text())
        row.update({k: rep["scores"].get(k) for k in SCORES})
        row["metric"] = rep.get("metric")
        row["parity"] = bool(rep["parity"]["ok"])
    qr = run_dir / "quant_report.json"
    if qr.exists():
        q = json.loads(qr.read_text())
        for k, v in (q.get("validation") or {}).items():
            if isinstance(v, (int, float, str)):
                row[f"val_{k}"] = v
    man = run_dir / "manifest.json"
    if man.exists():
        for stage, e in json.loads(man.read_text())["stages"].items():
            row[f"{stage}_s"] = e["seconds"]
    return row


def finished(t: Trial, stages: tuple[str, ...]) -> bool:
    from .rundir import Run
    run = Run(t.cfg, t.dir, progress=False)
    return (all(run.done(s) for s in stages if s != "report")
            and ("report" not in stages or (t.dir / "report.json").exists()))


# ---------------------------------------------------------------------------------------------
# The engine

@contextmanager
def engine(cfg: EngineConfig):
    """A Dask client: on an existing scheduler, or on a local cluster of single-threaded worker
    processes that is closed (workers and nannies ended) when the block ends, however it ends."""
    logging.getLogger("distributed").setLevel(logging.ERROR)
    from dask.distributed import Client, LocalCluster
    if cfg.address:
        try:
            client = Client(cfg.address, timeout="20s")
        except OSError as e:
            raise ConnectionError(f"engine.address = {cfg.address!r}: no Dask scheduler answered ({e})") from None
        with client:
            yield client, f"Dask cluster at {cfg.address} ({len(client.scheduler_info()['workers'])} workers)"
        return
    n = cfg.workers or os.cpu_count() or 1
    env = {k: str(cfg.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    import dask
    # non-daemonic workers: Lava's runtime starts processes of its own
    with dask.config.set({"distributed.worker.daemon": False}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                         memory_limit=0, env=env, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client, f"local Dask cluster, {n} worker processes x 1 thread"


def run_sweep(sw: Sweep, progress: bool = True, post=None) -> list[dict]:
    """Run every unfinished trial on the engine; write results.csv/json, plots and report.md."""
    return run_sweeps([sw], progress, post)[0]


def run_sweeps(sweeps: list[Sweep], progress: bool = True, post=None) -> list[list[dict]]:
    """Several sweeps on one engine (the first one's engine settings), all trials in flight at
    once; a finished trial is read back, not run (nor given to `post`) again."""
    from dask.distributed import as_completed
    from tqdm import tqdm
    rows: list[dict[str, dict]] = [{} for _ in sweeps]
    todo = []
    for j, sw in enumerate(sweeps):
        sw.out_dir.mkdir(parents=True, exist_ok=True)
        for t in sw.trials:
            if finished(t, sw.stages) and (post is None or (t.dir / "post.json").exists()):
                extra = json.loads((t.dir / "post.json").read_text()) if post is not None else {}
                rows[j][t.id] = dict(trial=t.id, status="skipped", **t.overrides, **(trial_row(t.dir) | extra))
            else:
                todo.append((j, t))
    where = "no engine needed"
    if todo:
        with engine(sweeps[0].engine) as (client, where):
            futures = {client.submit(run_trial, t.cfg.to_dict(), str(t.dir), sweeps[j].engine.threads,
                                     sweeps[j].stages, _Post(post) if post else None,
                                     key=f"trial-{sweeps[j].name}-{t.id}", pure=False): (j, t) for j, t in todo}
            bar = tqdm(total=len(todo), desc="sweep", disable=not (progress and sys.stderr.isatty()))
            for fut in as_completed(futures):
                j, t = futures[fut]
                if fut.status == "finished":
                    rows[j][t.id] = dict(trial=t.id, status="ok", **t.overrides, **fut.result())
                else:
                    err = " ".join(str(fut.exception()).split())[:300]
                    rows[j][t.id] = dict(trial=t.id, status="failed", error=err, **t.overrides, **trial_row(t.dir))
                bar.update()
                sw = sweeps[j]
                write_results(sw, [rows[j][x.id] for x in sw.trials if x.id in rows[j]], where)
            bar.close()
    tables = []
    for j, sw in enumerate(sweeps):
        table = [rows[j][t.id] for t in sw.trials]
        write_results(sw, table, where, final=True)
        tables.append(table)
    return tables


@dataclass(frozen=True)
class _Post:
    """`post` run on the worker, its result kept in the trial's post.json (so a resumed sweep
    reads it back instead of computing it again)."""
    fn: Any

    def __call__(self, run_dir: str) -> dict:
        out = self.fn(run_dir)
        write_json(Path(run_dir) / "post.json", out)
        return out


# ---------------------------------------------------------------------------------------------
# Results: table, plots, report

def _columns(sw: Sweep, table: list[dict]) -> list[str]:
    first = ["trial", "status", *sw.axes, *SCORES, "parity"]
    rest = sorted({k for r in table for k in r} - set(first))
    timing = [k for k in rest if k.endswith("_s")]
    return first + [k for k in rest if k not in timing] + timing


def write_results(sw: Sweep, table: list[dict], where: str, final: bool = False) -> None:
    cols = _columns(sw, table)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in table:
        w.writerow({k: r.get(k) for k in cols})
    write_text(sw.out_dir / "results.csv", buf.getvalue())
    write_json(sw.out_dir / "results.json", dict(name=sw.name, source=sw.source, base=sw.base, engine=where,
                                                  axes=list(sw.axes), trials=table))
    if final:
        plots = write_plots(sw, table)
        write_text(sw.out_dir / "report.md", _markdown(sw, table, where, plots))


def _mean_std(v) -> str:
    v = [x for x in v if x is not None]
    return f"{np.mean(v):.4g} ± {np.std(v):.2g}" if v else "–"


def _scale(table) -> float:
    return 1.0 if any(r.get("metric") == "van_rossum" for r in table) else 100.0


def write_plots(sw: Sweep, table: list[dict]) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in table if r.get("float") is not None]
    if not done:
        return []
    sc = _scale(done)
    files = []

    def save(fig, name):
        with atomic_path(sw.out_dir / name) as tmp:
            fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
        plt.close(fig)
        files.append(name)

    for ax_key in sw.axes:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        numeric = all(isinstance(r[ax_key], (int, float)) and not isinstance(r[ax_key], bool) for r in done)
        xs = [r[ax_key] if numeric else str(r[ax_key]) for r in done]
        for k, mk in (("float", "o"), ("emulator", "x")):
            ax.scatter(xs, [sc * r[k] if r.get(k) is not None else np.nan for r in done], marker=mk, label=k)
        if numeric and ax_key != "seed" and len({*xs}) > 2 and min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(ax_key)
        ax.set_ylabel("accuracy (%)" if sc == 100 else "van Rossum distance")
        ax.legend()
        ax.set_title(f"{sw.name}: score vs {ax_key}")
        save(fig, f"score_vs_{re.sub(r'[^A-Za-z0-9_]+', '_', ax_key)}.png")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    f = np.array([sc * r["float"] for r in done])
    e = np.array([sc * (r.get("emulator") if r.get("emulator") is not None else np.nan) for r in done])
    seeds = [r.get("seed", r.get("trial")) for r in done]
    ax.scatter(f, e, c=range(len(done)), cmap="viridis")
    for x, y, s in zip(f, e, seeds):
        ax.annotate(f"s{s}" if "seed" in sw.axes else "", (x, y), fontsize=7)
    lo, hi = np.nanmin([f.min(), np.nanmin(e)]), np.nanmax([f.max(), np.nanmax(e)])
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("float")
    ax.set_ylabel("chip (emulator)")
    ax.set_title(f"{sw.name}: float vs chip per trial (seed labels)")
    save(fig, "float_vs_chip.png")
    return files


def _markdown(sw: Sweep, table: list[dict], where: str, plots: list[str]) -> str:
    sc = _scale(table)
    status = {s: sum(r["status"] == s for r in table) for s in ("ok", "skipped", "failed")}
    lines = [f"# Sweep {sw.name}", "", f"- sweep file: `{sw.source}`; base config: `{sw.base}`",
             f"- engine: {where}; {sw.engine.threads} torch/numba thread(s) per trial",
             f"- trials: {len(table)} ({status['ok']} run, {status['skipped']} already finished, "
             f"{status['failed']} failed); stages: {', '.join(sw.stages)}",
             f"- scores: {'accuracy in %' if sc == 100 else 'van Rossum distance'} on the test set "
             "(for reading, not for choosing: choose on validation)", "",
             "| trial | " + " | ".join(sw.axes) + " | float | after QAT | emulator | Lava | parity | seconds |",
             "|---" * (len(sw.axes) + 7) + "|"]
    fmt = lambda v: "–" if v is None else f"{sc * v:.2f}"  # noqa: E731
    for r in table:
        secs = sum(v for k, v in r.items() if k.endswith("_s") and isinstance(v, (int, float)))
        lines.append(f"| {r['trial']} | " + " | ".join(str(r.get(a)) for a in sw.axes) +
                     f" | {fmt(r.get('float'))} | {fmt(r.get('qat'))} | {fmt(r.get('emulator'))} | "
                     f"{fmt(r.get('lava'))} | {r.get('parity', '–')} | {secs:.0f} |")
    failed = [r for r in table if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed trials", ""] + [f"- {r['trial']}: {r.get('error')}" for r in failed]
    for a in sw.axes:
        vals = sorted({json.dumps(r.get(a)) for r in table})
        if len(vals) < 2:
            continue
        lines += ["", f"## By {a} (mean ± std over the other axes)", "", f"| {a} | float | emulator | emulator - float |",
                  "|---|---|---|---|"]
        for v in vals:
            rs = [r for r in table if json.dumps(r.get(a)) == v and r.get("float") is not None]
            diff = [sc * (r["emulator"] - r["float"]) for r in rs if r.get("emulator") is not None]
            lines.append(f"| {v} | {_mean_std([sc * r['float'] for r in rs])} | "
                         f"{_mean_std([sc * r['emulator'] for r in rs if r.get('emulator') is not None])} | "
                         f"{_mean_std(diff)} |")
    lines += ["", "Full table: results.csv, results.json.", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
