"""Default values that the library, the command-line flags and the shell runners share (no torch import)."""

# Decoders, instruction mode: the question asked per emotion, with {emotion}.
DEFAULT_TEMPLATE = "Does this text express {emotion}? Answer yes or no."
# Decoders: the fixed text after the text; its last token is the read slot.
DEFAULT_ANSWER_CUE = "\nAnswer:"
