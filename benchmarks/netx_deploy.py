"""Every deploy/ bundle through lava-dl's netx: exported as it is, or quantized again for netx.

For each bundle in deploy/ (with its configs/<name>.yaml for the data): a noisy bundle is
refused by name; a noiseless one is exported if netx holds it (netx.check), else quantized again
for netx (netx.requantize: weight_exp 0, biases on netx's 64 grid) from its exact float
equivalent, calibrated on 512 samples of the training split. Prints the emulator's score of the
bundle and of its netx form on the whole test split (accuracy, or the van Rossum distance for
spike_train), how often their decisions agree, and the netx parity: the first `--lava` test
samples through lava-dl's netx.hdf5.Network in Lava against the emulator, spikes, u and v.

    PYTHONPATH=. .venv/bin/python benchmarks/netx_deploy.py [--lava 16] [--only NAME]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import neurohw
from neurohw import emu, tasks
from neurohw.config import load_config
from neurohw.interop import netx
from neurohw.parity import compare

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lava", type=int, default=16, help="test samples run through netx in Lava")
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="netx-deploy-"))
    for d in sorted(p for p in (REPO / "deploy").iterdir() if (p / "manifest.yaml").is_file()):
        if args.only and d.name != args.only:
            continue
        net = neurohw.load_bundle(d)
        try:
            netx.check(net)
            form, how = net, "exact"
        except netx.NetxError as e:
            if any(x.noise.on for x in net.layers):
                print(f"{d.name:19s} refused: {e}")
                continue
            why = str(e).split(";")[0]
            t0 = time.perf_counter()
            cfg = load_config(REPO / "configs" / f"{d.name}.yaml")
            data = tasks.build_data(cfg)
            form = netx.requantize(net, data.x_train[:512])
            how = f"requantized ({time.perf_counter() - t0:.1f} s; netx refused it: {why})"
        cfg = load_config(REPO / "configs" / f"{d.name}.yaml")
        data = tasks.build_data(cfg)
        x, y = data.x_test, data.y_test
        a, b = emu.run(net, x, probes=True), emu.run(form, x, probes=True)
        sa, sb = tasks.score_int(cfg, a, y), tasks.score_int(cfg, b, y)
        what = "accuracy" if cfg.n_classes is not None else "van Rossum"
        agree = (float((tasks.predict_int(cfg, a) == tasks.predict_int(cfg, b)).mean())
                 if cfg.n_classes is not None else float((a.spikes[-1] == b.spikes[-1]).mean()))
        n = min(args.lava, len(x))
        t0 = time.perf_counter()
        res = netx.run(netx.export(form, tmp / f"{d.name}.h5"), x[:n], form.input_message_bits)
        mism = compare(emu.run(form, x[:n], probes=True), res)
        print(f"{d.name:19s} {how}")
        print(f"{'':19s} {what} on {len(x)} test samples: bundle {sa:.4f}, netx form {sb:.4f}; "
              f"{'decisions' if cfg.n_classes is not None else 'output spikes'} agree {agree:.4f}; "
              f"netx in Lava on {n}: {len(mism)} mismatched arrays "
              f"(spikes, u, v; {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
