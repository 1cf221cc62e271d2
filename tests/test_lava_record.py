"""The Lava run's in-process recording (neurohw.lava.record) against Lava's own Monitor and
RingBuffer sinks, and against the emulator: full spike, u and v arrays."""
import numpy as np
import pytest

from neurohw import emu, synth
from neurohw import lava as nlava


def _same(a, b):
    for name in ("spikes", "u", "v"):
        for l, (x, y) in enumerate(zip(getattr(a, name), getattr(b, name))):
            assert x.dtype == y.dtype and x.shape == y.shape, (name, l, x.dtype, y.dtype, x.shape, y.shape)
            np.testing.assert_array_equal(x, y, err_msg=f"{name} layer {l}")


@pytest.mark.parity
def test_process_recording_equals_monitor():
    """Lava's LIFReset (noiseless feed-forward) and ChipLIF (noisy, recurrent) layers, with the
    recorded arrays from a Monitor run; both equal the emulator's."""
    rng = np.random.default_rng(14)
    kinds = set()
    for p_noise, p_rec in ((0.0, 0.0), (1.0, 1.0), (0.5, 0.5)):
        net = synth.random_network(rng, max_layers=3, max_n=24, p_noise=p_noise, p_recurrent=p_rec)
        x = synth.random_raster(rng, net, 3, 12)
        fast = nlava.run(net, x, probes=True)
        mon = nlava.run(net, x, probes=True, record="monitor")
        _same(fast, mon)
        _same(fast, emu.run(net, x, probes=True))
        assert sum(int(s.sum()) for s in fast.spikes) > 0    # seed picked so that every net spikes
        kinds |= {"lif" if not (layer.recurrent or layer.noise.on) else "chip" for layer in net.layers}
    assert kinds == {"lif", "chip"}


def test_record_rejects_unknown_mode():
    net = synth.random_network(np.random.default_rng(0), max_layers=1, max_n=4)
    with pytest.raises(ValueError, match="record"):
        nlava.run(net, np.zeros((1, 2, net.n_in), np.uint8), record="sink")
