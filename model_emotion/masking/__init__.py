"""Masks of top-k neurons and their baselines (``masks``), masked evaluation (``evaluate``) and the
eval result records (``records``)."""
