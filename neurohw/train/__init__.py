"""The trainer: float stochastic spiking networks with the chip's structure and timing."""
from .escape import Escape, Spiking, spike, spike_as
from .model import LayerSpec, LIFLayer, SpikingNet, lif_step

__all__ = ["Escape", "Spiking", "spike", "spike_as", "LayerSpec", "LIFLayer", "SpikingNet", "lif_step"]
