"""In-process recording of spikes, u and v for the Lava run (instead of Lava's Monitor).

Why: a Monitor is one more OS process per probed Var that reads it through a RefPort every
step, and its buffer (like a RingBuffer sink's) comes back through Var.get, which Lava 0.10
sends one element per message. Together that tripled the pipeline's Lava stage. Here each LIF
model keeps its own [steps, n] buffers and writes them once, as one .npz, after its last step.

Lava's LIF arithmetic is untouched: RecLIFResetModel is Lava's own fixed-point LIFReset model
(PyLifResetModelBitAcc) with a hook that copies the state after each step; the run config maps
LIFReset to it. ChipLIF's model calls the same hook. Both record only when the process's
proc_params hold "record_path" (and "record_steps")."""
from __future__ import annotations

import os

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifResetModelBitAcc
from lava.proc.lif.process import LIFReset


class Recorder:
    """Mixin for a Lava process model with u, v: call _record(spikes) once per step, after the update."""

    def _record(self, s) -> None:
        path = self.proc_params.get("record_path")
        if path is None:
            return
        steps = int(self.proc_params["record_steps"])
        if getattr(self, "_rec", None) is None:
            n = self.u.size                # a map-shaped process (netx's conv blocks) records C-order flat
            self._rec = dict(spikes=np.zeros((steps, n), np.uint8), u=np.zeros((steps, n), np.int32),
                             v=np.zeros((steps, n), np.int32))
        t = self.time_step - 1
        if 0 <= t < steps:
            self._rec["spikes"][t] = np.asarray(s).reshape(-1) != 0
            self._rec["u"][t] = self.u.reshape(-1)
            self._rec["v"][t] = self.v.reshape(-1)
        if t == steps - 1:             # the last step: one file, written atomically
            tmp = f"{path}.tmp.npz"
            np.savez(tmp, **self._rec)
            os.replace(tmp, path)


@implements(proc=LIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class RecLIFResetModel(Recorder, PyLifResetModelBitAcc):
    """Lava's own fixed-point LIFReset model, recording after each step."""
    implements_process = None      # @implements sets it; the parent class already names LIFReset

    def reset_voltage(self, spike_vector):
        super().reset_voltage(spike_vector)
        self._spk = spike_vector

    def run_spk(self):
        super().run_spk()
        self._record(self._spk)
