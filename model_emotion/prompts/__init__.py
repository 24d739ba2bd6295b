"""Prompt models: the config (``config``), the shared base (``base``), the encoder and decoder models
(``encoder``, ``decoder``), the factory (``factory``), training one prompt or many together
(``training``, ``multi``), checkpoints (``checkpoint``) and a prompt's neuron activations
(``activations``)."""
