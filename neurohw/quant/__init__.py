"""The quantizer: float networks onto the chip's integers, and quantization-aware training."""
from .core import (DEPLOY_NOISE, LayerQuant, agreement, attach, calibrate, from_int_network, pick_best, plan,
                   plan_from_dict, plan_layer, plan_to_dict, report, to_int_network)

__all__ = ["DEPLOY_NOISE", "LayerQuant", "agreement", "attach", "calibrate", "from_int_network", "pick_best", "plan",
           "plan_from_dict", "plan_layer", "plan_to_dict", "report", "to_int_network"]
