"""Model Emotion: find where a language model keeps human emotion knowledge.

A reproduction toolkit for Li, Su et al., "Human Emotion Knowledge Representation Emerges in
Large Language Models and Supports Discrete Emotion Inference" (arXiv 2302.09582). Each module
holds one concept; the stage commands (``model_emotion.commands``, the ``model-emotion`` command
and the repository's top-level scripts) and the Python API below are thin layers over them.

The API, one call per stage on in-memory objects (see ``model_emotion.api``)::

    load_goemotions, load_backbone, load_ratings      inputs
    train_prompt        -> TrainedPrompt              step 1
    collect_activations -> ActivationSet              step 2
    run_searchlight     -> Searchlight                step 3
    make_masks          -> {name: tensor}             step 4
    evaluate_masks      -> {name: accuracy}           step 5
    report_tables       -> {name: DataFrame}          step 6 (figures: model_emotion.report.plots)

The stage layer (``model_emotion.stages``), on files, exactly as the commands run them::

    run_train(TrainConfig(...)) -> exit status        step 1 (train.py)
    run_activations(ActivationsConfig(...))           step 2 (get_active_neuron.py)
    run_rsa(RSAConfig(...)) -> exit status            step 3 (rsa_searchlight.py)
    run_masks(MaskConfig(...)) -> exit status        step 4 (gen_mask.py)
    run_eval(EvalConfig(...)) -> exit status          step 5 (eval_mask_neuron.py), the paper's
                                                      per-batch accuracy included
    run_report(ReportConfig(...)) -> exit status      step 6 (report.py): figures, tables, report.html

Importing the package loads no model and sets no matplotlib backend.
"""

__version__ = "0.4.1"

_API = {
    "train_prompt": "api",
    "TrainedPrompt": "api",
    "collect_activations": "api",
    "run_searchlight": "api",
    "Searchlight": "api",
    "make_masks": "api",
    "evaluate_masks": "api",
    "report_tables": "api",
    "TrainConfig": "stages.train",
    "run_train": "stages.train",
    "ActivationsConfig": "stages.activations",
    "run_activations": "stages.activations",
    "RSAConfig": "stages.rsa",
    "run_rsa": "stages.rsa",
    "MaskConfig": "stages.masks",
    "run_masks": "stages.masks",
    "EvalConfig": "stages.evaluate",
    "run_eval": "stages.evaluate",
    "ReportConfig": "stages.report",
    "run_report": "stages.report",
    "load_goemotions": "data.goemotions",
    "load_backbone": "lm.loading",
    "load_ratings": "data.ratings",
    "load_activations": "io.activations",
    "load_masks": "masking.masks",
    "save_masks": "masking.masks",
    "load_checkpoint": "prompts.checkpoint",
    "prompt_model_from_checkpoint": "prompts.checkpoint",
    "ActivationSet": "io.activations",
    "PromptConfig": "prompts.config",
    "build_prompt_model": "prompts.factory",
    "architecture": "lm.architectures",
    "ToolkitError": "errors",
    "ConfigError": "errors",
    "MissingDependencyError": "errors",
}

# Modules that the notebook and older scripts reach from the package root (``from model_emotion import plots``).
_MODULES = {"human": "report.human", "plots": "report.plots", "run_folder": "io.run_folder"}

__all__ = sorted(_API)


def __getattr__(name: str):
    """Import lazily, so that ``import model_emotion`` stays fast and loads no torch until needed."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    if name in _MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{_MODULES[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
