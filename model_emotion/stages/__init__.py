"""The stage layer: each stage's computation, configuration, resume and provenance handling, in one
place. The commands (``model_emotion.commands``) turn flags into a stage's config and call it; the API
re-exports the stages, so a Python caller can do whatever a command does, with the same names.

Training (``train``: ``TrainConfig``, ``run_train``), activations (``activations``: ``ActivationsConfig``, ``run_activations``), the searchlight (``rsa``: ``RSAConfig``, ``run_rsa``), masks (``masks``: ``MaskConfig``,
``run_masks``) masked evaluation (``evaluate``: ``EvalConfig``, ``run_eval``) and the report (``report``:
``ReportConfig``, ``run_report``).
"""
