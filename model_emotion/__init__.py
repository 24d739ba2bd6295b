"""Model Emotion: find where a language model keeps human emotion knowledge.

A reproduction toolkit for Li, Su et al., "Human Emotion Knowledge Representation Emerges in
Large Language Models and Supports Discrete Emotion Inference" (arXiv 2302.09582). Each module
holds one concept; the top-level scripts of the repository are thin wrappers around them.
"""

__version__ = "0.1.0"
