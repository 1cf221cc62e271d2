"""Continuous-time stochastic LIF (SLIF) neurons with exact pathwise spike-time gradients."""
from .model import (Draws, SLIFParams, SLIFResult, feedforward_weights, hazard, network_input,
                    simulate, single_neuron)

__all__ = ["Draws", "SLIFParams", "SLIFResult", "feedforward_weights", "hazard", "network_input",
           "simulate", "single_neuron"]
