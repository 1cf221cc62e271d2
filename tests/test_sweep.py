"""neurohw sweep: validation up front, the local Dask engine, Ctrl-C, resume, failures and a
two-node cluster on 127.0.0.1, with no engine process left behind by any of them."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from neurohw.config import ConfigError
from neurohw.sweep import load_sweep, parse_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "tiny.yaml")
# configs/tiny.yaml made shorter still: the tests are about the engine, not about accuracy
FAST = {"train.epochs": 1, "data.n_train": 100, "data.n_val": 30, "data.n_test": 40, "quant.qat_epochs": 1,
        "deploy.lava": False, "parity.samples": 4}


def sweep_file(tmp: Path, name: str = "grid", **extra) -> Path:
    raw = {"name": name, "base": TINY, "out_dir": str(tmp / name), "set": FAST,
           "grid": {"seed": [0, 1], "train.lr": [0.01, 0.005]}, **extra}
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def engine_processes(pid: int | None = None) -> list[psutil.Process]:
    """Live descendants, less Python's own multiprocessing resource tracker (it lives as long
    as the interpreter that started it, engine or not)."""
    out = []
    for p in psutil.Process(pid or os.getpid()).children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def gone(procs: list[psutil.Process], timeout: float = 20.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


# ---------------------------------------------------------------------------------------------

BAD = [
    ({"grid": {"train.lrr": [0.1]}}, "grid.train.lrr = 'train.lrr' is not a known config key"),
    ({"grid": {"train.lr": []}}, "grid.train.lr = [] is empty"),
    ({"grid": {"train.lr": 0.1}}, "grid.train.lr = 0.1 has type float, expected a list"),
    ({"grid": {"train.lr": [0.1, -1.0]}}, "train.lr = -1.0 must be > 0"),
    ({"grid": {"train.epochs": ["3"]}}, "train.epochs = '3' has type str, expected int"),
    ({"grid": {"model.layers.3.n": [8]}}, "names a layer the base config lacks"),
    ({"random": {"n": 2, "axes": {"train.lr": {"normal": [0, 1]}}}}, "is not a distribution"),
    ({"random": {"n": 0, "axes": {"train.lr": {"uniform": [0.1, 0.2]}}}}, "random.n = 0 must be >= 1"),
    ({"random": {"n": 3, "axes": {"train.lr": {"log_uniform": [0.0, 0.1]}}}}, "is not an interval"),
    ({"engine": {"threads": "one"}}, "engine.threads = 'one' has type str"),
    ({"stages": ["train", "deploy"]}, "stages = ['train', 'deploy'] is not valid"),
    ({"grids": {}}, "grids = {} is not a known key"),
    ({"base": "nope.yaml"}, "base = 'nope.yaml'"),
]


@pytest.mark.parametrize("extra,msg", BAD, ids=[m[:24] for _, m in BAD])
def test_bad_sweep_files_get_one_line_errors_before_anything_starts(tmp_path, extra, msg):
    raw = {"name": "bad", "base": TINY, "out_dir": str(tmp_path / "out"), "grid": {"seed": [0]}}
    raw.update(extra)
    with pytest.raises(ConfigError) as e:
        parse_sweep(raw, source="bad.yaml", base_dir=tmp_path)
    text = str(e.value)
    assert msg in text and "\n" not in text and text.startswith("bad.yaml")
    assert not (tmp_path / "out").exists()


def test_cli_bad_sweep_is_one_line_exit_1(tmp_path, capsys):
    from neurohw.cli import main
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"base": TINY, "grid": {"neuron.beta": [0]}, "out_dir": str(tmp_path / "o")}))
    assert main(["sweep", str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "neuron.beta = 0 must be > 0" in err
    assert not (tmp_path / "o").exists()


def test_grid_and_random_trials_are_validated_and_named_stably(tmp_path):
    p = sweep_file(tmp_path, random={"n": 3, "seed": 4, "axes": {"quant.qat_lr": {"log_uniform": [1.0e-5, 1.0e-3]},
                                                                 "model.layers.0.n": {"int": [8, 16]}}})
    a, b = load_sweep(p), load_sweep(p)
    assert len(a.trials) == 12 and [t.id for t in a.trials] == [t.id for t in b.trials]
    assert a.axes[:2] == ("seed", "train.lr") and set(a.axes[2:]) == {"quant.qat_lr", "model.layers.0.n"}
    for t in a.trials:
        assert t.cfg.seed == t.overrides["seed"] and t.cfg.train.lr == t.overrides["train.lr"]
        assert 8 <= t.cfg.model.layers[0].n <= 16 and 1e-5 <= t.cfg.quant.qat_lr <= 1e-3
        assert t.cfg.train.epochs == 1 and t.cfg.deploy.lava is False       # `set` reaches every trial
        assert t.cfg.out_dir == str(t.dir)


def test_n_val_is_carved_from_training_and_default_keeps_hashes(tmp_path):
    from neurohw.config import load_config, parse_config
    from neurohw import tasks
    base = load_config(TINY)
    d = base.to_dict()
    assert "n_val" not in d["data"]                       # old configs keep their stage hashes
    d["data"]["n_val"] = 50
    cfg = parse_config(d)
    assert cfg.section_hash("data") != base.section_hash("data")
    full, held = tasks.build_data(base), tasks.build_data(cfg)
    assert len(held.x_train) == 350 and (held.x_val == full.x_train[350:]).all()
    assert (held.x_train == full.x_train[:350]).all() and (held.y_val == full.y_train[350:]).all()
    for bad, msg in ((400, "data.n_val = 400 must be < data.n_train = 400"), (-1, "data.n_val = -1 must be >= 0")):
        d["data"]["n_val"] = bad
        with pytest.raises(ConfigError, match=msg):
            parse_config(d)


def test_plan_select_chooses_the_clip_level_by_score():
    import torch
    from neurohw import quant
    from neurohw.config import load_config
    from neurohw import tasks
    cfg = load_config(TINY)
    torch.manual_seed(0)
    net = tasks.build_model(cfg)
    x = tasks.build_data(cfg).x_train[:64]
    plain = quant.plan(net, x)
    target = quant.core.plan_layer(net.layers[0], *quant.core.calibrate(net, x)[0], readout=False,
                                   clip=float(quant.core.CLIP_FRACTIONS[::2][3]))
    seen = []
    chosen = quant.plan(net, x, select=lambda p: seen.append(1) or -abs(p[0].scale - target.scale))
    assert chosen[0].scale == target.scale != plain[0].scale
    assert chosen[1] == plain[1] or chosen[1].scale != plain[1].scale   # the readout is searched too
    assert len(seen) == 2 * (1 + len(quant.core.CLIP_FRACTIONS[::2]))


def test_failed_trial_is_reported_and_leaves_no_processes(tmp_path):
    # passes validation (n_train null) but the data stage finds too few training samples
    p = sweep_file(tmp_path, "fail", grid={"data.n_val": [5000]}, engine={"workers": 1})
    raw = yaml.safe_load(p.read_text())
    raw["set"] = {**FAST, "data.n_train": None, "data.n_val": 0}
    p.write_text(yaml.safe_dump(raw))
    table = run_sweep(load_sweep(p), progress=False)
    assert [r["status"] for r in table] == ["failed"] and "data.n_val = 5000" in table[0]["error"]
    assert "failed" in (tmp_path / "fail" / "report.md").read_text()
    assert engine_processes() == []


def test_local_sweep_ctrl_c_then_resume_without_rerunning_finished_trials(tmp_path):
    p = sweep_file(tmp_path, engine={"workers": 2})
    trials = tmp_path / "grid" / "trials"
    proc = subprocess.Popen([sys.executable, "-m", "neurohw.cli", "sweep", str(p), "--quiet"], env=env(),
                            cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even under nohup
    t0, seen = time.time(), set()
    try:
        while not list(trials.glob("*/report.json")):        # Ctrl-C once a trial has finished
            assert proc.poll() is None and time.time() - t0 < 240, proc.communicate()
            seen.update(engine_processes(proc.pid))
            time.sleep(0.2)
        seen.update(engine_processes(proc.pid))
        os.killpg(proc.pid, signal.SIGINT)                    # what a terminal's Ctrl-C does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert len(seen) >= 2 and gone(list(seen)) == []         # nannies and workers all ended
    done_before = {d.parent.name: (d.parent / "manifest.json").stat().st_mtime_ns
                   for d in trials.glob("*/report.json")}
    assert 1 <= len(done_before) < 4 or len(done_before) == 4

    sw = load_sweep(p)
    table = run_sweep(sw, progress=False)
    assert engine_processes() == []
    assert {r["trial"] for r in table if r["status"] == "skipped"} == set(done_before)
    assert all(r["status"] in ("ok", "skipped") and r["parity"] is True for r in table)
    for tid, mtime in done_before.items():                    # not run again
        assert (trials / tid / "manifest.json").stat().st_mtime_ns == mtime
    out = tmp_path / "grid"
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("trial,status,seed,train.lr,float,qat,emulator")
    js = json.loads((out / "results.json").read_text())
    assert [(r["seed"], r["train.lr"]) for r in js["trials"]] == [(0, 0.01), (0, 0.005), (1, 0.01), (1, 0.005)]
    assert all(0 <= r["emulator"] <= 1 and r["train_s"] >= 0 for r in js["trials"])
    for f in ("report.md", "float_vs_chip.png", "score_vs_seed.png", "score_vs_train_lr.png"):
        assert (out / f).stat().st_size > 0

    again = run_sweep(load_sweep(p), progress=False)          # all finished: no engine at all
    assert [r["status"] for r in again] == ["skipped"] * 4
    check_deployed_epoch(sw.trials[0])


def check_deployed_epoch(t):
    """The quantize stage deploys the QAT epoch (0 = post-training) best on validation."""
    import numpy as np
    from neurohw import quant, tasks
    from neurohw.rundir import Run, load_data, load_quantized
    v = json.loads((t.dir / "quant_report.json").read_text())["validation"]
    accs = [v["ptq"], *v["qat_epochs"]]
    assert len(accs) == 2 and v["chosen_epoch"] == int(np.argmax(accs)) and v["deployed"] == max(accs)
    run = Run(t.cfg, t.dir, progress=False)
    d = load_data(run)
    assert len(d.x_train) == 70 and len(d.x_val) == 30
    net, plans = load_quantized(run)
    quant.attach(net, plans)
    assert tasks.score_float(t.cfg, net, d.x_val, d.y_val) == v["deployed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_node_cluster_on_localhost_runs_the_same_sweep_through_address(tmp_path):
    from dask.distributed import Client
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    common = dict(env=env(), cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    head = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                             "--no-dashboard"], **common)
    node = subprocess.Popen([sys.executable, "-m", "dask", "worker", addr, "--host", "127.0.0.1", "--nthreads", "1",
                             "--nworkers", "1", "--no-dashboard", "--name", "node-1"], **common)
    procs = []
    try:
        with Client(addr, timeout="60s") as c:
            c.wait_for_workers(1, timeout=90)
        procs = [psutil.Process(head.pid), psutil.Process(node.pid), *engine_processes(node.pid)]
        p = sweep_file(tmp_path)
        table = run_sweep(load_sweep(p, address=addr, out_dir=str(tmp_path / "on-cluster")), progress=False)
        assert [r["status"] for r in table] == ["ok"] * 4 and all(r["parity"] for r in table)
        workers = {r["worker"] for r in table}
        assert len(workers) == 1 and not workers & {f"{socket.gethostname()}:{os.getpid()}"}
        assert "cluster at " + addr in json.loads((tmp_path / "on-cluster" / "results.json").read_text())["engine"]
    finally:
        for pr in (node, head):
            if pr.poll() is None:
                os.killpg(pr.pid, signal.SIGTERM)
        for pr in (node, head):
            try:
                pr.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(pr.pid, signal.SIGKILL)
    assert gone(procs) == []


NUMBA_FIRST = '''
import numba  # the main module imports numba, as `neurohw` and the benchmarks do (through neurohw)
from neurohw.sweep import EngineConfig, engine, set_threads


def trial():
    import os
    set_threads(1)                          # what run_trial does first

    @numba.njit(cache=False)                # then a compilation, which re-reads the environment
    def f(x):
        return x + 1
    return f(1), numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS, os.environ["NUMBA_NUM_THREADS"]


if __name__ == "__main__":
    with engine(EngineConfig(workers=1)) as (client, _):
        print("RESULT", client.submit(trial, pure=False).result())
'''


def test_local_worker_compiles_after_numba_was_imported_before_its_env(tmp_path):
    """A spawned local worker imports the main module (and numba) before its Nanny sets
    NUMBA_NUM_THREADS = 1; starting numba's pool from the stale core count made the trial's first
    compilation fail ("Cannot set NUMBA_NUM_THREADS to a different value once the threads have
    been launched"), which happened on a 2-core machine whenever a trial compiled."""
    script = tmp_path / "numba_first.py"
    script.write_text(NUMBA_FIRST)
    e = {k: v for k, v in env().items() if k != "NUMBA_NUM_THREADS"}
    out = subprocess.run([sys.executable, str(script)], env=e, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESULT (2, 1, 1, '1')" in out.stdout, out.stdout + out.stderr[-2000:]
