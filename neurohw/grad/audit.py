"""The gradient audit: every estimator against a reference, per layer (`neurohw gradcheck`,
`make bench-gradients`, docs/gradients.md).

Reference: central finite differences of the expected loss with common random numbers along
`directions` random unit directions inside each layer's parameters (weights, bias, recurrent
weights), with standard errors from independent repetitions. Each estimator is run `reps` times
with `paths` paths per sample; its mean projected on the same directions is compared with the
reference: z = |est - fd| / sqrt(se_est^2 + se_fd^2) per direction (agreement: every z <= Z_AGREE),
cosine and relative error of the D projections (a random sketch of the layer's gradient). The
variance of each estimator (summed over the layer's parameters) is measured against the number
of paths, and the wall time per sampled path.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .estimators import ALL_ESTIMATORS, _params, gradient
from .reference import fd_directional

Z_AGREE = 3.0


@dataclass
class AuditSettings:
    batch: int = 32                 # input samples (the expected loss averages over them)
    paths: int = 16                 # paths per sample for each estimate
    reps: int = 12                  # independent estimates per estimator
    directions: int = 6             # random finite-difference directions per layer
    fd_reps: int = 24               # independent repetitions of each finite difference
    fd_paths: int = 8               # paths per sample in each finite-difference evaluation
    h: float = 0.02                 # step, as a fraction of the layer's parameter norm
    path_grid: tuple = (2, 4, 8, 16, 32)
    grid_reps: int = 6
    estimators: tuple = ALL_ESTIMATORS
    seed: int = 0


def layer_slices(net) -> list[tuple[str, list[int]]]:
    """(name, indices into the trainable parameter list) per layer in forward order."""
    params = _params(net)
    ids = {id(p): i for i, p in enumerate(params)}
    base = getattr(net, "net", net)
    out = []
    for l, m in enumerate(base.modules_in_order):
        idx = [ids[id(p)] for p in m.parameters() if id(p) in ids]
        name = f"layer {l}" + (" (readout)" if base.readout is not None and m is base.readout else "")
        if idx:
            out.append((name, idx))
    return out


def _flat(grads, idx, params) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(params[i]) if grads[i] is None else grads[i]).detach().flatten().double()
                      for i in idx])


def _estimates(net, x, y, loss_fn, est, paths, reps, seed, ids_base=0):
    """reps gradient estimates [reps, n_params] (flattened) and seconds per call."""
    params = _params(net)
    out, secs = [], []
    B = x.shape[0]
    for r in range(reps):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + r)
        ids = [np.arange(B) + (ids_base + r * paths + k) * B for k in range(paths)]
        t0 = time.perf_counter()
        _, g = gradient(net, x, y, loss_fn, est, paths, generator=gen, ids=ids)
        secs.append(time.perf_counter() - t0)
        out.append(_flat(g, range(len(params)), params))
    return torch.stack(out), float(np.min(secs))


def random_directions(net, layers, n: int, seed: int) -> list[tuple[int, list[torch.Tensor]]]:
    """n unit-norm Gaussian directions inside each layer: (layer index, tensors per parameter)."""
    params = _params(net)
    g = torch.Generator().manual_seed(seed)
    out = []
    for li, (_, idx) in enumerate(layers):
        for _ in range(n):
            d = [torch.zeros_like(p) for p in params]
            for i in idx:
                d[i] = torch.randn(params[i].shape, generator=g, dtype=params[i].dtype)
            norm = math.sqrt(sum(float((d[i] ** 2).sum()) for i in idx))
            out.append((li, [t / norm for t in d]))
    return out


def audit(net, x: torch.Tensor, y: torch.Tensor, loss_fn, s: AuditSettings = AuditSettings(),
          fd_net=None, progress=None) -> dict:
    """The audit of `net` (float or hardware-exact) on one batch; finite differences on `fd_net`
    (default: net; a hardware-exact net's loss is piecewise constant in theta, so pass its float
    net). Returns a JSON-able dict (see docs/gradients.md)."""
    log = progress or (lambda msg: None)
    fd_net = fd_net or net
    params = _params(net)
    layers = layer_slices(net)
    sizes = [sum(params[i].numel() for i in idx) for _, idx in layers]
    offsets = np.cumsum([0] + [p.numel() for p in params])
    coords = [np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx]) for _, idx in layers]

    # reference: finite differences along random directions per layer
    fd_params = _params(fd_net)
    fd_layers = layer_slices(fd_net)
    dirs = random_directions(fd_net, fd_layers, s.directions, s.seed + 17)
    for li, d in dirs:            # h relative to the layer's parameter norm
        norm = math.sqrt(sum(float((fd_params[i].detach() ** 2).sum()) for i in fd_layers[li][1]))
        d[:] = [t * (norm or 1.0) for t in d]
    t0 = time.perf_counter()
    log(f"finite differences: {len(dirs)} directions x {s.fd_reps} repetitions")
    fd_mean, fd_se = fd_directional(fd_net, x, y, loss_fn, [d for _, d in dirs], s.h, s.fd_reps,
                                    seed=s.seed, paths=s.fd_paths)
    fd_seconds = time.perf_counter() - t0
    dmat = torch.stack([torch.cat([t.flatten().double() for t in d]) for _, d in dirs])   # [D, n]
    dlayer = np.array([li for li, _ in dirs])

    res = {"settings": asdict(s), "layers": [n for n, _ in layers], "layer_sizes": sizes,
           "fd": {"mean": fd_mean.tolist(), "se": fd_se.tolist(), "layer": dlayer.tolist(), "seconds": fd_seconds},
           "estimators": {}, "variance_vs_paths": {}}
    samples = {}
    for est in s.estimators:
        log(f"{est}: {s.reps} estimates x {s.paths} paths")
        g, sec = _estimates(net, x, y, loss_fn, est, s.paths, s.reps, s.seed + 1)
        samples[est] = g
        proj = g @ dmat.t()                                   # [reps, D]
        pm, pse = proj.mean(0).numpy(), proj.std(0).numpy() / math.sqrt(s.reps)
        rows = []
        for li, name in enumerate(res["layers"]):
            k = dlayer == li
            a, b = pm[k], fd_mean[k]
            z = np.abs(a - b) / np.sqrt(pse[k] ** 2 + fd_se[k] ** 2 + 1e-30)
            gl = g[:, coords[li]]
            rows.append(dict(layer=name, cosine_fd=float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)),
                             rel_err_fd=float(np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-30)),
                             max_z=float(z.max()), agree=bool(z.max() <= Z_AGREE),
                             projections=a.tolist(), projections_se=pse[k].tolist(),
                             variance=float(gl.var(0).sum()), mean_norm=float(gl.mean(0).norm())))
        res["estimators"][est] = dict(per_layer=rows, seconds_per_call=sec,
                                      seconds_per_path=sec / (s.paths * x.shape[0]))
    # full-dimensional cosine against the mean of the most precise unbiased estimator
    ref = "mixed" if "mixed" in samples else None
    if ref:
        for est, g in samples.items():
            for li, row in enumerate(res["estimators"][est]["per_layer"]):
                a, b = g[:, coords[li]].mean(0), samples[ref][:, coords[li]].mean(0)
                row["cosine_mixed_mean"] = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
    for est in s.estimators:
        log(f"{est}: variance against paths {list(s.path_grid)}")
        curve = []
        for K in s.path_grid:
            if est != "surrogate" and K < 2:
                continue
            g, sec = _estimates(net, x, y, loss_fn, est, K, s.grid_reps, s.seed + 1000 + K)
            curve.append(dict(paths=K, variance=[float(g[:, c].var(0).sum()) for c in coords],
                              seconds_per_path=sec / (K * x.shape[0])))
        res["variance_vs_paths"][est] = curve
    if "score_plain" in samples:
        base = res["estimators"]["score_plain"]["per_layer"]
        res["variance_reduction"] = {est: [b["variance"] / max(r["variance"], 1e-300) for b, r in
                                           zip(base, res["estimators"][est]["per_layer"])]
                                     for est in ("score", "mixed") if est in samples}
    return res


def table(res: dict) -> str:
    """Markdown table: per layer and estimator, agreement with the finite-difference reference."""
    s = res["settings"]
    lines = [f"Reference: central finite differences with common random numbers, {s['directions']} random "
             f"directions per layer, {s['fd_reps']} repetitions x {s['fd_paths']} paths; estimators: mean of "
             f"{s['reps']} estimates x {s['paths']} paths, batch of {s['batch']} samples.", "",
             "| layer | estimator | cos vs FD | rel. err vs FD | max z | agrees (z <= 3) | cos vs mixed mean | "
             "variance | µs per path |", "|---|---|---|---|---|---|---|---|---|"]
    for li, name in enumerate(res["layers"]):
        for est, e in res["estimators"].items():
            r = e["per_layer"][li]
            lines.append(f"| {name} | {est} | {r['cosine_fd']:+.3f} | {r['rel_err_fd']:.3f} | {r['max_z']:.2f} | "
                         f"{'yes' if r['agree'] else 'no'} | {r.get('cosine_mixed_mean', float('nan')):+.3f} | "
                         f"{r['variance']:.3g} | {1e6 * e['seconds_per_path']:.0f} |")
    vr = res.get("variance_reduction")
    if vr:
        lines += ["", "Variance reduction against the plain score function at equal paths: " + "; ".join(
            f"{est}: " + ", ".join(f"{name} {v:.1f}x" for name, v in zip(res["layers"], vals))
            for est, vals in vr.items()) + "."]
    return "\n".join(lines)


def plot(res: dict, path) -> None:
    """Log-log variance against paths per layer and estimator, beside cos vs FD bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._io import atomic_path
    L = len(res["layers"])
    fig, ax = plt.subplots(1, L + 1, figsize=(3.6 * (L + 1), 3.2))
    for li, name in enumerate(res["layers"]):
        for k, (est, curve) in enumerate(res["variance_vs_paths"].items()):
            if curve:
                ax[li].loglog([c["paths"] for c in curve], [c["variance"][li] for c in curve], "o-",
                              color=f"C{k}", label=est)
        grid = sorted({c["paths"] for curve in res["variance_vs_paths"].values() for c in curve})
        ax[li].minorticks_off()
        ax[li].set_xticks(grid)
        ax[li].set_xticklabels([str(k) for k in grid])
        ax[li].set(title=f"{name}: estimator variance", xlabel="paths per sample", ylabel="variance (sum)")
        ax[li].legend(fontsize=7)
    ests = list(res["estimators"])
    w = 0.8 / max(L, 1)
    for li, name in enumerate(res["layers"]):
        ax[L].bar(np.arange(len(ests)) + li * w, [res["estimators"][e]["per_layer"][li]["cosine_fd"] for e in ests],
                  w, label=name)
    ax[L].set(xticks=np.arange(len(ests)) + w * (L - 1) / 2, title="cosine with the FD reference", ylim=(-1, 1))
    ax[L].set_xticklabels(ests, fontsize=7, rotation=20)
    ax[L].axhline(0.95, color="k", lw=0.5, ls="--")
    ax[L].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
