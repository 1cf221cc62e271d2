"""The hardware parity suite: every reference deployment under deploy/ runs through the
emulator, Lava and the hardware-exact trainer, spike for spike and state for state, and
matches its committed expected outputs."""
from pathlib import Path

import pytest

from neurohw import load_bundle
from neurohw.deploy import check_bundle

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
BUNDLES = sorted(p.parent.name for p in DEPLOY.glob("*/manifest.yaml"))


def test_reference_deployments_exist():
    assert {"yinyang", "yinyang_stochastic", "digits", "spike_train", "recurrent"} <= set(BUNDLES)


@pytest.mark.parity
@pytest.mark.parametrize("name", BUNDLES)
def test_reference_deployment_parity(name):
    table, ok = check_bundle(DEPLOY / name)
    assert ok, table
    net, extra = load_bundle(DEPLOY / name, with_extra=True)
    assert extra["input"].shape[0] >= (16 if "labels" in extra else 1)   # spike_train has one input
    assert sum(int(extra[f"expected_spikes_{i}"].sum()) for i in range(len(net.layers))) > 0
