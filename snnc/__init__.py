"""snnc: a neuromorphic deployment toolchain.

From spiking architecture search (SpikeDHS, DGS, TPS, HNS, SNASNet) through
retraining and BatchNorm folding to export (NIR, ONNX, lava-dl netx) and
streaming event-stereo inference on MVSEC recordings with per-frame energy.
"""

__version__ = "0.2.0"
