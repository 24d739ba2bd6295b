"""The stage layer: each stage's computation, configuration, resume and provenance handling, in one
place. The commands (``model_emotion.commands``) turn flags into a stage's config and call it; the API
re-exports the stages, so a Python caller can do whatever a command does, with the same names.

So far: masked evaluation (``evaluate``: ``EvalConfig``, ``run_eval``). The other stages still keep
their run logic in ``commands``.
"""

from .evaluate import EvalConfig, run_eval

__all__ = ["EvalConfig", "run_eval"]
