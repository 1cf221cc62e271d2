"""Bring your network: snnTorch / Norse / lava-dl nets onto the chip, and neurohw nets into them.

Trains tiny digits nets (one torch thread) in snnTorch and Norse, exports them with the
library's own NIR exporter, imports, quantizes and emulates them in neurohw (Lava parity on a
few samples); trains a neurohw net and runs it in snnTorch's and Norse's own NIR importers; and
trains a lava-dl slayer net on generated data, exported by slayer, run by neurohw's emulator
and by lava-dl's netx in Lava. Prints both sides of every comparison from one run.

    PYTHONPATH=. .venv/bin/python benchmarks/interop.py [--epochs 6]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import neurohw
from neurohw import data, emu, quant
from neurohw.interop import nir as nx
from neurohw.parity import compare
from neurohw.train import LayerSpec, SpikingNet

T, H, BETA = 16, 48, 0.875


def pad(x, n=2):
    return np.concatenate([x, np.zeros((x.shape[0], n, x.shape[2]), x.dtype)], 1)


def acc(spikes, y):
    return float((np.asarray(spikes).sum(1).argmax(1) == y).mean())


def train(params, run, d, epochs, lr=5e-3):
    opt = torch.optim.Adam(params, lr=lr)
    for ep in range(epochs):
        perm = np.random.default_rng(ep).permutation(len(d["xtr"]))
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(run(torch.tensor(d["xtr"][b])).sum(1), torch.tensor(d["ytr"][b]))
            opt.zero_grad()
            loss.backward()
            opt.step()


def to_chip(name, graph, peer, theirs, d):
    t0 = time.perf_counter()
    fl = nx.from_nir(graph, peer=peer)
    with torch.no_grad():
        ours = fl(torch.tensor(pad(d["xte"])))["spikes"][-1].numpy()
    agree = float((nx.align(ours, 1)[:, :T] == theirs).mean())
    inet = quant.to_int_network(fl, quant.plan(fl, d["xtr"][:256]))
    x = pad(d["xte"]).astype(np.uint8)
    chip_acc = acc(emu.run(inet, x).spikes[-1], d["yte"])
    par = compare(emu.run(inet, x[:16], probes=True), neurohw.lava.run(inet, x[:16], probes=True))
    print(f"{name:9s} float {acc(theirs, d['yte']):.4f} | neurohw float {acc(ours, d['yte']):.4f} "
          f"(raster agreement {agree:.4f}) | chip (emulator) {chip_acc:.4f} "
          f"({100 * (chip_acc - acc(theirs, d['yte'])):+.2f} pp) | Lava parity on 16: "
          f"{'0 mismatches' if not par else par} | {time.perf_counter() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dd = data.digits()
    d = dict(xtr=data.rate_encode(dd["x_train"], T, seed=1).astype(np.float32), ytr=dd["y_train"],
             xte=data.rate_encode(dd["x_test"], T, seed=2).astype(np.float32), yte=dd["y_test"])
    print(f"digits, rate code {T} steps, 64 -> {H} -> 10 LIF (beta {BETA}), spike-count read-out, "
          f"{args.epochs} epochs, one torch thread")

    import snntorch as snn
    from snntorch import surrogate, utils
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    kw = dict(reset_mechanism="zero", reset_delay=False, init_hidden=True, spike_grad=surrogate.fast_sigmoid(10))
    s = torch.nn.Sequential(
        torch.nn.Linear(64, H), snn.Leaky(beta=torch.full((H,), BETA), threshold=torch.ones(H), **kw),
        torch.nn.Linear(H, 10), snn.Leaky(beta=torch.full((10,), BETA), threshold=torch.ones(10), output=True, **kw))

    def run_s(x):
        utils.reset(s)
        return torch.stack([s(x[:, t])[0] for t in range(x.shape[1])], 1)
    train(s.parameters(), run_s, d, args.epochs)
    with torch.no_grad():
        theirs = run_s(torch.tensor(d["xte"])).numpy()
    to_chip("snnTorch", export_to_nir(s, torch.zeros(1, 64), ignore_dims=[0]), "snntorch", theirs, d)

    import norse.torch as norse
    torch.manual_seed(0)

    def cell(n):
        return norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.full((n,), (1 - BETA) / 1e-3),
                                                       v_th=torch.ones(n), v_leak=torch.zeros(n),
                                                       v_reset=torch.zeros(n)), dt=1e-3)
    nm = norse.SequentialState(torch.nn.Linear(64, H), cell(H), torch.nn.Linear(H, 10), cell(10))
    with torch.no_grad():
        for m in nm:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(1 / (1 - BETA))

    def run_n(x):
        st, out = None, []
        for t in range(x.shape[1]):
            z, st = nm(x[:, t], st)
            out.append(z)
        return torch.stack(out, 1)
    train(nm.parameters(), run_n, d, args.epochs, lr=5e-3 / (1 - BETA))
    with torch.no_grad():
        theirs = run_n(torch.tensor(d["xte"])).numpy()
    to_chip("Norse", norse.to_nir(nm, torch.zeros(64), dt=1e-3), "norse", theirs, d)

    # the other direction
    torch.manual_seed(0)
    net = SpikingNet(64, [LayerSpec(H, du=4095, dv=512, vth=1.0), LayerSpec(10, du=4095, dv=512, vth=1.0)])
    with torch.no_grad():
        for m in net.layers:
            torch.nn.init.normal_(m.weight, 0.0, 2.0 / np.sqrt(m.weight.shape[1]))
    train(net.parameters(), lambda x: net(torch.cat([x, x.new_zeros(x.shape[0], 2, 64)], 1))["spikes"][-1], d,
          args.epochs)
    with torch.no_grad():
        ours = [o.numpy() for o in net(torch.tensor(pad(d["xte"])))["spikes"]]
    from snntorch.import_nir import import_from_nir
    for name, make, cls in (
            ("snnTorch", lambda: import_from_nir(nx.to_nir(net, dt=1e-4)), snn.Leaky),
            ("Norse", lambda: norse.from_nir(nx.to_nir(net, dt=1e-3, fold_r=True), dt=1e-3), norse.LIFBoxCell)):
        m = make()
        rec = {}
        for k, mod in m.named_modules():
            if isinstance(mod, cls):
                mod.register_forward_hook(lambda mo, i, o, k=k: rec.setdefault(k, []).append(
                    (o[0] if isinstance(o, tuple) else o).detach()))
        st = None
        with torch.no_grad():
            for t in range(T):
                if name == "Norse":
                    _, st = m(torch.tensor(d["xte"][:, t]), st)
                else:
                    m(torch.tensor(d["xte"][:, t]))
        theirs = [torch.stack(v, 1).numpy() for v in rec.values()]
        agree = [float((nx.align(o, l)[:, :T] == t).mean()) for l, (o, t) in enumerate(zip(ours, theirs))]
        print(f"neurohw -> {name:8s}: raster agreement per layer {[round(a, 5) for a in agree]}, accuracy "
              f"neurohw {acc(nx.align(ours[-1], 1), d['yte']):.4f} vs {name} {acc(theirs[-1], d['yte']):.4f}")


if __name__ == "__main__":
    main()
