"""snnc.export: folded spiking networks to NIR, ONNX and Lava (lava-dl netx). See docs/EXPORT.md.

Pipeline: :func:`snnc.models.loading.open_model` -> ``fold_bn`` ->

* :func:`snnc.export.lower.lower` walks the network's structure into an export
  graph (:mod:`snnc.export.graph`), run by :class:`snnc.export.runtime.GraphModule`;
* :mod:`snnc.export.nir_writer` / :mod:`snnc.export.nir_reader`: NIR files and back;
* :mod:`snnc.export.partition`: NIR front + ONNX rest + JSON manifest;
* :mod:`snnc.export.onnx_writer`: one-step streaming / fixed-window ONNX of the network;
* :mod:`snnc.export.lava_writer` / :mod:`snnc.export.lava_run`: netx HDF5 of sequential
  nets, and running it (Lava, bit-exact fixed-point model, float reference).
"""
