"""Exchange with other tools: lava-dl netx HDF5 (netx.py) and NIR (nir.py).

Heavy peers (h5py, lava-dl, nir, snnTorch, Norse) are imported only inside the functions."""
