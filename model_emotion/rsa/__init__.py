"""The searchlight: per-neuron RDMs against attribute RDMs (``searchlight``), Kendall kernels
(``kendall``), the permutation test and max-T (``permutation``), FDR (``fdr``), seed diagnostics
(``seeds``), rank-table files (``tables``) and the rsatoolbox export (``export``)."""
