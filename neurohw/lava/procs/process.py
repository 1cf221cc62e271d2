"""ChipLIF: the chip's LIF neuron with neurohw's on-chip noise and an exact in-graph reset."""
import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class ChipLIF(AbstractProcess):
    """LIF population computing neurohw.chip.lif_update plus noise, one sample per window.

    Windows of `interval` steps start at step index `start` (= layer + 1); at a window's
    first step u and v are zeroed and the recurrent port's input (spikes of the previous
    sample) is discarded, so each sample runs from rest, as in the emulator.
    a_in takes the feed-forward projection, a_rec the recurrent one. From a window's step
    `quiet` on, the population is held at rest and sends nothing (u = v = 0, input dropped):
    the quiet tail of a window lets delayed spikes drain before the next sample."""

    def __init__(self, *, shape, du, dv, vth, bias_mant, bias_exp, layer, start, interval,
                 sample_ids, noise=(0, 0, 0, 7, 0), quiet=None, name=None):
        super().__init__(shape=shape, name=name, layer=layer, start=start, interval=interval,
                         quiet=interval if quiet is None else quiet)
        self.a_in = InPort(shape=shape)
        self.a_rec = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=(1,), init=du)
        self.dv = Var(shape=(1,), init=dv)
        self.vth = Var(shape=(1,), init=vth)
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=shape, init=bias_exp)
        ids = np.asarray(sample_ids, dtype=np.int64)
        self.sample_ids = Var(shape=ids.shape, init=ids)
        # noise: (inject index, dist index, noise_mant, noise_exp, seed)
        self.noise = Var(shape=(5,), init=np.asarray(noise, dtype=np.int64))
