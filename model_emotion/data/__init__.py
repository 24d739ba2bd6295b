"""Inputs: GoEmotions and its balanced binary tasks (``goemotions``), human attribute ratings and
their RDMs (``ratings``)."""
