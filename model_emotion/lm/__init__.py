"""The frozen language model: architectures (``architectures``), loading (``loading``), FFN neurons and
their hooks (``neurons``), device memory (``memory``), dynamic padding (``batching``), inference
(``inference``)."""
