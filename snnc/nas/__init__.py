"""snnc.nas: architecture search for spiking networks.

Two methods (methods.md §3 and §7):

* **SpikeDHS** (Che et al., NeurIPS 2022), differentiable and hierarchical:
  :mod:`.mixed` (mixed edges over the candidate ops, mixing at membrane or at
  spike), :mod:`.cells` (searchable cells), :mod:`.arch` (architecture
  parameters alpha/beta, the layer trellis and its normalisation),
  :mod:`.supernet` (classification and stereo supernets, explicit-state
  :class:`~snnc.models.base.SpikingNet` subclasses), :mod:`.bilevel`
  (first-order bi-level optimisation on two data halves), :mod:`.decode`
  (genotype and Viterbi path decoding), :mod:`.tasks` (digits and MVSEC
  stereo search data with their losses and metrics), :mod:`.spikedhs_search`
  (the resumable search driver with logs and plots).
* **SNASNet** (Kim et al., ECCV 2022), training-free:
  :mod:`.snasnet_search` (random cells with forward and backward connections,
  sparsity-aware Hamming kernel, log-determinant score, best of N).

The command line front end is :mod:`snnc.commands.search` (``snnc search``).
"""
