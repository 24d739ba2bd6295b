"""The stage layer: each stage's computation, configuration, resume and provenance handling, in one
place. The commands (``model_emotion.commands``) turn flags into a stage's config and call it; the API
re-exports the stages, so a Python caller can do whatever a command does, with the same names.

Training (``train``: ``TrainConfig``, ``run_train``), activations (``activations``: ``ActivationsConfig``, ``run_activations``), the searchlight (``rsa``: ``RSAConfig``, ``run_rsa``), masks (``masks``: ``MaskConfig``,
``run_masks``) masked evaluation (``evaluate``: ``EvalConfig``, ``run_eval``) and the report (``report``:
``ReportConfig``, ``run_report``).
"""

from .activations import ActivationsConfig, run_activations
from .evaluate import EvalConfig, run_eval
from .masks import MaskConfig, run_masks
from .report import ReportConfig, run_report
from .rsa import RSAConfig, run_rsa
from .train import TrainConfig, run_train

__all__ = [
    "ActivationsConfig",
    "EvalConfig",
    "MaskConfig",
    "RSAConfig",
    "ReportConfig",
    "TrainConfig",
    "run_activations",
    "run_eval",
    "run_masks",
    "run_report",
    "run_rsa",
    "run_train",
]
