"""neurohw: train stochastic spiking networks and run them bit-exactly on chip integers."""
from ._lava_compat import install as _install_lava_compat

_install_lava_compat()  # before anything imports lava

from .network import BundleError, Conv2d, IntLayer, IntNetwork, RunResult, load_bundle, sum_pool  # noqa: E402
from .noise import Noise  # noqa: E402
from . import emu, lava  # noqa: E402  (neurohw.lava imports lava itself only when run)

__all__ = ["emu", "lava", "Conv2d", "IntLayer", "IntNetwork", "sum_pool", "Noise", "RunResult", "BundleError", "load_bundle"]
__version__ = "0.1.0"
