"""Shared test helpers (kept here: lava installs its own top-level `tests` package)."""
import numpy as np
import pytest

import neurohw  # noqa: F401  (installs the lava compatibility hook before any lava import)
from neurohw.parity import compare


def assert_same(a, b, what=""):
    mism = compare(a, b)
    assert not mism, f"{what}: {mism}"


@pytest.fixture
def same():
    return assert_same


def single_neuron(du=4095, dv=4096, vth=131071, bias_mant=0, bias_exp=0, weight=1, weight_exp=0,
                  bits=24, rec=None):
    """One input, one neuron; graded input so a test can choose the exact activation a."""
    from neurohw import IntLayer, IntNetwork
    layer = IntLayer(weights=np.array([[weight]]), du=du, dv=dv, vth=vth, bias_mant=np.array([bias_mant]),
                     bias_exp=np.array([bias_exp]), weight_exp=weight_exp,
                     rec_weights=None if rec is None else np.array([[rec]]))
    return IntNetwork(n_in=1, layers=[layer], input_message_bits=bits)


@pytest.fixture
def neuron():
    return single_neuron
