"""Lava's own fixed-point LIFReset model, recording spikes, u and v for netx runs.

netx builds its neurons as Lava LIFReset processes of any shape (a conv block's are (x, y, c));
this model is PyLifResetModelBitAcc unchanged, plus a copy of the flattened state after each
step, written once as one .npz after the last step (as neurohw.lava.record does for flat
layers). It records only when the process's proc_params hold "record_path" and "record_steps".
Imported by neurohw.interop.netx.run_many only (it imports Lava)."""
from __future__ import annotations

import os

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifResetModelBitAcc
from lava.proc.lif.process import LIFReset


@implements(proc=LIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class NetxRecLIF(PyLifResetModelBitAcc):
    """PyLifResetModelBitAcc, recording [steps, n] spikes, u and v in the process's C order."""
    implements_process = None      # @implements sets it; the parent class already names LIFReset

    def reset_voltage(self, spike_vector):
        super().reset_voltage(spike_vector)
        self._spk = spike_vector

    def run_spk(self):
        super().run_spk()
        path = self.proc_params.get("record_path")
        if path is None:
            return
        steps = int(self.proc_params["record_steps"])
        if getattr(self, "_rec", None) is None:
            self._rec = {k: np.zeros((steps, self.u.size), np.int32) for k in ("spikes", "u", "v")}
        t = self.time_step - 1
        if 0 <= t < steps:
            self._rec["spikes"][t] = np.asarray(self._spk).reshape(-1) != 0
            self._rec["u"][t] = self.u.reshape(-1)
            self._rec["v"][t] = self.v.reshape(-1)
        if t == steps - 1:             # the last step: one file, written atomically
            tmp = f"{path}.tmp.npz"
            np.savez(tmp, **self._rec)
            os.replace(tmp, path)
