"""Fixed-point model of ChipLIF: the step arithmetic is neurohw.chip's, shared with the emulator."""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from numba import njit

from neurohw.chip import VTH_SHIFT, effective_bias, lif_update, wrap32
from neurohw.lava.procs.process import ChipLIF
from neurohw.noise import NOISE_TABLES, noise_terms


@njit(cache=True)
def _step(u, v, a, du, dv, vth_eff, bias, noise, tables, layer, step, sample):
    s = np.zeros(u.shape[0], np.int32)
    for k in range(u.shape[0]):
        n_u, n_v, n_th = noise_terms(noise[0], noise[1], noise[2], noise[3], noise[4], tables,
                                     layer, k, step, sample)
        uu, vv, sp, _ = lif_update(np.int64(u[k]), np.int64(v[k]), np.int64(a[k]), du, dv, vth_eff,
                                np.int64(bias[k]), n_u, n_v, n_th)
        u[k] = uu
        v[k] = vv
        s[k] = sp
    return s


@implements(proc=ChipLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyChipLIFModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    a_rec: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=17)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=4)
    sample_ids: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    noise: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self):
        a = self.a_in.recv().astype(np.int64)
        a_rec = self.a_rec.recv().astype(np.int64)
        layer, start, interval, quiet = (self.proc_params[k] for k in ("layer", "start", "interval", "quiet"))
        window, j = divmod(self.time_step - 1 - start, interval)
        if j == 0 or j >= quiet:         # a new sample, or the quiet tail: at rest, nothing carried
            self.u[:] = 0
            self.v[:] = 0
            a_rec[:] = 0
        if j >= quiet:
            self.s_out.send(np.zeros(self.u.shape[0], np.int32))
            return
        ids = self.sample_ids
        sample = ids[window] if 0 <= window < ids.shape[0] else window
        a = wrap32.py_func(a + a_rec)    # two Dense into one port: an int32 sum
        vth_eff = int(self.vth[0]) << VTH_SHIFT
        bias = effective_bias(self.bias_mant, self.bias_exp)
        s = _step(self.u, self.v, a, int(self.du[0]), int(self.dv[0]), vth_eff, bias, self.noise,
                  NOISE_TABLES, layer, start + j, sample)
        self.s_out.send(s)
