"""Column-sparse conv/linear weights: the grouped storage format, row reordering, TIR kernels.

A conv weight ``[out, in, kh, kw]`` is seen as the GEMM matrix ``[rows = out, cols = in*kh*kw]``.
Column pruning zeroes, per output row, a set of columns; rows that keep the same columns are
stored together:

- ``format``: the grouped format (and its ``.npz`` file); ``sizes``: dense/CSR/BSR bytes;
- ``reorder``: finding the row groups; ``fold``: folding the row permutation into the next
  layer in PyTorch (or one gather);
- ``kernel``: the TIR kernel (gather a group's kept input columns once, then a dense
  micro-kernel over its rows), scheduled by ``compiler.schedules.cpu.sparse_conv``;
- ``lower``: a fused dense conv's epilogue and parameters, for its sparse replacement;
  ``select``: the compiler's measured sparse-or-dense choice per conv (``compile --sparse``);
- ``synthetic``: random column-sparse weights for tests and benchmarks.
"""
