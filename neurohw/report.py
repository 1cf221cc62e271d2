"""The run report: report.json (every number), report.md (the story) and PNG plots.

Chip resources: the network's mapping on Loihi 1 (neurohw.fit) with a per-core utilization
plot, and energy and latency from SANA-FE driven by the emulator's spikes on the whole test set
(neurohw.energy).
"""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ._io import atomic_path, write_json, write_text  # noqa: E402
from .network import RunResult, load_bundle  # noqa: E402
from .rundir import load_data, load_float, load_plans  # noqa: E402

def chip_resources(inet, x: np.ndarray, spikes: list[np.ndarray], chip: str = "loihi1") -> dict:
    """The fit on a chip profile and SANA-FE's energy and latency for these inputs and spikes
    (neurohw.fit, neurohw.energy). A network that does not fit gets the one-line reason."""
    from .energy import simulate
    from .fit import FitError, partition
    try:
        fit = partition(inet, chip)
    except FitError as e:
        return dict(chip=chip, fits=False, error=str(e))
    out = dict(chip=chip, fits=True, fit=fit.to_dict(), table=fit.table(), utilization=fit.utilization(),
               core_layer=fit.core_layer.tolist())
    try:
        out["energy"] = simulate(inet, fit, x, spikes)
    except (ImportError, ValueError) as e:
        out["energy"] = dict(error=f"SANA-FE did not run: {e}")
    return out


def plot_utilization(res: dict, ax) -> None:
    """Per-core use of each limit, as a fraction of the chip profile's."""
    u = res["utilization"]
    cores = np.arange(len(u["neurons"]))
    w = 0.2
    for k, (name, v) in enumerate(u.items()):
        ax.bar(cores + (k - 1.5) * w, 100 * v, w, label=name.replace("_", " "))
    ax.axhline(100, color="r", lw=1)
    ax.set(xlabel="core (layer)", ylabel="% of the limit", title=f"per-core use, {res['chip']}")
    if cores.size <= 40:
        ax.set_xticks(cores, [f"{c}\n({l})" for c, l in zip(cores, res["core_layer"])])
    ax.legend(fontsize=7)


def fit_markdown(res: dict) -> list[str]:
    """The report's chip-resources lines: the fit table and SANA-FE's energy and latency."""
    if not res["fits"]:
        return [f"Does not fit on {res['chip']}: {res['error']}.", ""]
    f = res["fit"]
    lines = [f"Mapped on **{f['chip']}**: {f['cores']} cores, {f['chips']} chip(s) (`neurohw fit`).", "",
             "```", res["table"], "```", ""]
    e = res.get("energy", {})
    if "error" in e:
        return lines + [e["error"], ""]
    b, c, t = e["breakdown_per_inference_J"], e["counts_per_inference"], e["time_per_step_s"]
    lines += [f"SANA-FE energy per inference: **{1e9 * e['energy_per_inference_J']:.1f} nJ**, time per step "
              f"**{1e6 * t['mean']:.2f} µs** (max {1e6 * t['max']:.2f} µs), {1e6 * e['time_per_inference_s']:.1f} µs "
              f"per inference; {e['samples']} samples x {e['steps_per_sample']} steps.", "",
              "| per inference | synaptic events | neuron updates | spikes | network (messages, hops) |",
              "|---|---|---|---|---|",
              f"| count | {c['synaptic_events']:.1f} | {c['neuron_updates']:.0f} | {c['spikes']:.1f} | "
              f"{c['messages']:.1f}, {c['hops']:.1f} |",
              f"| energy (nJ) | {1e9 * b['synaptic_events']:.2f} | {1e9 * b['neuron_updates']:.2f} | "
              f"{1e9 * b['spikes']:.2f} | {1e9 * b['network']:.2f} |",
              "| busy time per step (µs, all cores) | " + " | ".join(
                  f"{1e6 * e['busy_time_per_step_s'][k]:.3f}" for k in ("synaptic_events", "neuron_updates", "spikes",
                                                                         "network")) + " |",
              "", f"Source: {e['source']}.", ""]
    return lines


def _save(fig, run, name: str, files: list) -> None:
    with atomic_path(run.dir / name) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    files.append(name)


def write_report(run) -> list[str]:
    cfg, d = run.cfg, load_data(run)
    inet = load_bundle(run.dir / "bundle")
    L = len(inet.layers)
    tm = json.loads((run.dir / "train_metrics.json").read_text())
    qr = json.loads((run.dir / "quant_report.json").read_text())
    ez = np.load(run.dir / "emulate.npz")
    lz = np.load(run.dir / "lava.npz")
    par = json.loads((run.dir / "parity.json").read_text())
    plans = load_plans(run)
    emu_res = RunResult.from_arrays(ez, L)
    lava_ran = bool(lz["ran"])
    metric = ("accuracy" if cfg.n_classes else "signature-kernel MMD² to the data (lower is better)"
              if cfg.data.task == "generative" else "van Rossum distance (lower is better)")
    key = "test_acc" if cfg.n_classes else "test_score"
    scores = {"float": tm[key][-1] if tm[key] else None, "qat": qr["qat_score"], "emulator": float(ez["score"])}
    if lava_ran:
        n = int(lz["samples"])
        scores["lava"] = float(lz["score"])
        scores["emulator_on_lava_samples"] = (float((ez["pred"][:n] == d.y_test[:n]).mean()) if "pred" in ez
                                              else scores["emulator"])
        if cfg.data.task == "generative":           # the score's set differs from the Lava samples
            from .tasks import score_int
            scores["emulator_on_lava_samples"] = score_int(cfg, RunResult([s[:n] for s in emu_res.spikes]),
                                                           d.y_test[:n])
        scores["lava_samples"] = n
    files: list[str] = []

    # training curves
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(tm["loss"], label="float")
    if qr["qat"]:
        ax[0].plot(range(len(tm["loss"]), len(tm["loss"]) + len(qr["qat"]["loss"])), qr["qat"]["loss"], label="QAT")
    ax[0].set(xlabel="epoch", ylabel="training loss")
    ax[0].legend()
    ax[1].plot(tm[key], label="float")
    if qr["qat"]:
        ax[1].plot(range(len(tm[key]), len(tm[key]) + len(qr["qat"][key])), qr["qat"][key], label="QAT")
    ax[1].set(xlabel="epoch", ylabel=f"test {metric.split(' (')[0]}")
    ax[1].legend()
    _save(fig, run, "training.png", files)

    # one sample: float vs emulator vs Lava rasters and membranes
    float_net = load_float(run)
    with torch.no_grad():
        fo = float_net(torch.as_tensor(d.x_test[:1], dtype=torch.float32), generator=torch.Generator().manual_seed(0),
                       record=True)
    spiking = [l for l in range(L) if not plans[l].readout]
    views = [("float", [s[0].numpy() for s in fo["spikes"]]), ("emulator", [s[0] for s in emu_res.spikes])]
    if lava_ran:
        views.append(("Lava", [lz[f"spikes_{i}"][0] for i in range(L)]))
    fig, ax = plt.subplots(len(spiking), len(views), figsize=(3.4 * len(views), 2.6 * len(spiking)), squeeze=False)
    for r, l in enumerate(spiking):
        for c, (name, sp) in enumerate(views):
            t, i = np.nonzero(sp[l])
            ax[r, c].scatter(t, i, s=2, c="k")
            ax[r, c].set(title=f"{name}, layer {l}", xlabel="step", ylabel="neuron", xlim=(0, d.x_test.shape[1]))
    _save(fig, run, "rasters.png", files)

    last = L - 1
    fig, ax = plt.subplots(figsize=(6, 3.2))
    fv = fo["v"][last][0].numpy()
    for k in range(min(3, fv.shape[1])):
        ax.plot(fv[:, k], color=f"C{k}", label=f"float n{k}")
        ax.plot(ez[f"v_{last}"][0, :, k] / plans[last].scale, "--", color=f"C{k}", label=f"emulator n{k}")
        if lava_ran:
            ax.plot(lz[f"v_{last}"][0, :, k] / plans[last].scale, ":", color=f"C{k}", lw=2, label=f"Lava n{k}")
    ax.set(xlabel="step", ylabel="v (float units)", title=f"membrane, layer {last}, sample 0")
    ax.legend(fontsize=6, ncol=3)
    _save(fig, run, "membrane.png", files)

    # weights before / after quantization
    fig, ax = plt.subplots(1, L, figsize=(3.4 * L, 2.8), squeeze=False)
    for l, (m0, layer, lq) in enumerate(zip(float_net.modules_in_order, inet.layers, plans)):
        ax[0, l].hist(m0.weight.detach().numpy().ravel(), bins=60, alpha=0.6, label="float")
        ax[0, l].hist(layer.weights.ravel() * lq.q(), bins=60, alpha=0.6, label="chip (float units)")
        ax[0, l].set(title=f"layer {l} weights", xlabel="weight")
        ax[0, l].legend(fontsize=7)
    _save(fig, run, "weights.png", files)

    # range use and firing rates
    rows = qr["layers"]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3))
    xs = np.arange(L)
    ax[0].bar(xs - 0.2, [r["peak_u"] for r in rows], 0.4, label="peak |u|")
    ax[0].bar(xs + 0.2, [r["peak_v"] for r in rows], 0.4, label="peak |v|")
    ax[0].axhline(1.0, color="r", lw=1)
    ax[0].set(xticks=xs, xlabel="layer", ylabel="fraction of 2**23", title="24-bit range use")
    ax[0].legend(fontsize=7)
    T = d.x_test.shape[1]
    rates_emu = [float(emu_res.spikes[l].mean()) for l in range(L)]
    rates_float = tm["rates"][-1] if tm.get("rates") else [float("nan")] * len(spiking)
    ax[1].bar(xs[spiking] - 0.2, rates_float[:len(spiking)], 0.4, label="float")
    ax[1].bar(xs + 0.2, rates_emu, 0.4, label="emulator")
    ax[1].set(xticks=xs, xlabel="layer", ylabel="spikes / neuron / step", title="firing rates")
    ax[1].legend(fontsize=7)
    _save(fig, run, "activity.png", files)

    gen = None
    if cfg.data.task == "generative":
        gen = json.loads((run.dir / "generative.json").read_text())
        fl = np.load(run.dir / "generative.npz")["float_spikes"]
        fig = generative_rasters(d.y_test, fl, emu_res.spikes[-1])
        _save(fig, run, "generative_rasters.png", files)

    en = chip_resources(inet, d.x_test, emu_res.spikes)
    if en["fits"]:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(en["utilization"]["neurons"]) + 2), 3))
        plot_utilization(en, ax)
        _save(fig, run, "chip_utilization.png", files)
    en = {k: v for k, v in en.items() if k not in ("utilization", "core_layer")}
    manifest = run.manifest()
    rep = dict(name=cfg.name, task=cfg.data.task, metric=metric, scores=scores, parity=par,
               float_emulator_raster_agreement=[float(a) for a in ez["agreement"]],
               quantization=rows, firing_rates=dict(float=rates_float, emulator=rates_emu), fano=tm.get("fano"),
               chip_resources=en, seconds={k: v["seconds"] for k, v in manifest["stages"].items()},
               emulator_seconds=float(ez["seconds"]), lava_seconds=float(lz["seconds"]) if lava_ran else None,
               steps=T, sizes=inet.sizes, config=cfg.to_dict(), generative=gen)
    write_json(run.dir / "report.json", rep)
    files.append("report.json")
    md = _markdown(rep, files)
    if (run.dir / "gradcheck.md").exists():        # written by `neurohw gradcheck RUN` (neurohw.grad)
        md += "\n## Gradient audit\n\n" + (run.dir / "gradcheck.md").read_text()
    write_text(run.dir / "report.md", md)
    files.append("report.md")
    return files


def generative_rasters(y: np.ndarray, float_spikes: np.ndarray, chip_spikes: np.ndarray, trials: int = 25):
    """Rows: classes; columns: data, float samples, chip samples; in each panel neuron n's
    trials are stacked in the n-th band."""
    from .generative import K_CLASSES, classes_of
    cls = classes_of(y)
    views = [("data", y[..., K_CLASSES:]), ("float samples", float_spikes), ("chip samples (emulator)", chip_spikes)]
    fig, ax = plt.subplots(K_CLASSES, 3, figsize=(10, 2.2 * K_CLASSES), sharex=True, squeeze=False)
    for k in range(K_CLASSES):
        idx = np.nonzero(cls == k)[0][:trials]
        for c, (name, r) in enumerate(views):
            sub = np.asarray(r)[idx]                                   # [trials, T, N]
            tr, t, n = np.nonzero(sub)
            ax[k, c].scatter(t, n * (trials + 3) + tr, s=1.5, c=[f"C{j}" for j in n])
            ax[k, c].set(title=f"class {k}: {name}", yticks=[(j + 0.5) * (trials + 3) for j in range(sub.shape[2])],
                         yticklabels=[f"n{j}" for j in range(sub.shape[2])], xlim=(0, sub.shape[1]))
    for c in range(3):
        ax[-1, c].set(xlabel="step")
    fig.tight_layout()
    return fig


def generative_markdown(g: dict) -> list[str]:
    """The generative test's table: each sample set against the data and against each other."""
    lines = ["## Generative test (signature-kernel MMD², permutation test, 95 % band)", "",
             f"Per class, {g['classes'][0]['n']} test samples of each; {g['permutations']} permutations per test. "
             "A statistic inside the band (below the permutation null's 95th percentile, p ≥ 0.05) is "
             "indistinguishable at 5 %.", "",
             "| class | MMD²(float, data) | band | p | MMD²(chip, data) | band | p | MMD²(chip, float) | band | p |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in g["classes"]:
        cells = []
        for key in ("float_vs_data", "chip_vs_data", "chip_vs_float"):
            t = r[key]
            cells += [f"{t['mmd2']:.2e}", f"{t['band']:.2e}", f"{t['p_value']:.3f}"]
        lines.append(f"| {r['class']} | " + " | ".join(cells) + " |")
    lines += ["", "![data and samples](generative_rasters.png)", ""]
    return lines


def _fmt(x) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f} %" if isinstance(x, float) and x <= 1.0 else f"{x:.4g}"


def _markdown(rep: dict, files: list[str]) -> str:
    s, cls = rep["scores"], rep["metric"] == "accuracy"
    f = _fmt if cls else (lambda x: "–" if x is None else f"{x:.4g}")
    lines = [f"# neurohw report: {rep['name']}", "",
             f"Task **{rep['task']}**, network {' → '.join(map(str, rep['sizes']))}, {rep['steps']} steps.", "",
             f"## Results ({rep['metric']}, test set)", "",
             "| float | after QAT (fake-quantized) | emulator (all test) | emulator (Lava samples) | Lava |",
             "|---|---|---|---|---|",
             f"| {f(s['float'])} | {f(s['qat'])} | {f(s['emulator'])} | {f(s.get('emulator_on_lava_samples'))} "
             f"| {f(s.get('lava'))} |", ""]
    if "lava_samples" in s:
        lines += [f"Lava ran {s['lava_samples']} test samples in one run "
                  f"({rep['lava_seconds']:.1f} s; the emulator ran the whole test set in {rep['emulator_seconds']:.3f} s).", ""]
    if rep.get("generative"):
        lines += generative_markdown(rep["generative"])
    lines += ["## Parity", ""]
    for k, t in rep["parity"].items():
        if isinstance(t, dict):
            lines.append(f"- **{k}**: {t['samples']} samples, {t['mismatches']} mismatched entries "
                         f"(spikes, u and v of every layer and step)")
    agree = ", ".join(f"{100 * a:.2f} %" for a in rep["float_emulator_raster_agreement"])
    lines += ["", f"Parity {'PASSED' if rep['parity']['ok'] else 'FAILED'}.", "",
              f"Float trainer (fake-quantized forward) vs emulator on the whole test set: {agree} of "
              "(sample, step, neuron) spike entries agree per spiking layer (float rounding differs "
              "from the chip's; stochastic layers draw different noise).", "",
              "## Quantization", "",
              "| layer | scale | weight_exp | vth | du | dv | noise | weight rel. RMSE | moved > 1 step | peak |u| | "
              "peak |v| | u wraps | v saturations |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep["quantization"]:
        nz = r["noise"]
        noise = "none" if nz["inject"] == "none" else f"{nz['inject']} {nz['dist']} exp {nz['exp']}"
        lines.append(f"| {r['layer']}{' (readout)' if r['readout'] else ''} | {r['scale']:.4g} | {r['weight_exp']} | "
                     f"{r['vth']} | {r['du']} | {r['dv']} | {noise} | {100 * r['weight_rel_rmse']:.2f} % | "
                     f"{100 * r['moved_over_one_step']:.2f} % | {r['peak_u']:.3f} | {r['peak_v']:.3f} | "
                     f"{r['u_wraps']} | {r['v_saturations']} |")
    lines += ["", "Peaks are fractions of 2**23 (the 24-bit state's limit), from a hardware-exact pass over "
              "training data.", "", "## Activity", "",
              f"Firing rates (spikes per neuron per step), float: "
              f"{', '.join(f'{x:.3f}' for x in rep['firing_rates']['float'])}; emulator: "
              f"{', '.join(f'{x:.3f}' for x in rep['firing_rates']['emulator'])}.", ""]
    if rep.get("fano"):
        lines += [f"Fano factor per spiking layer (float, 8 trials): {', '.join(f'{x:.2f}' for x in rep['fano'])}.", ""]
    lines += ["## Chip resources", ""] + fit_markdown(rep["chip_resources"])
    if rep["chip_resources"]["fits"]:
        lines += ["![per-core utilization](chip_utilization.png)", ""]
    lines += ["## Plots", ""]
    lines += [f"![{p[:-4]}]({p})" for p in files if p.endswith(".png")
              and p not in ("chip_utilization.png", "generative_rasters.png")]   # shown in their sections
    lines += ["", "## Stage times (s)", "", ", ".join(f"{k} {v:.1f}" for k, v in rep["seconds"].items()), ""]
    return "\n".join(lines)
