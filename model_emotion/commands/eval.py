"""Step 5: accuracy of one learned prompt with masked FFN neurons.

Loads the model and the prompt once, evaluates the unmasked prompt, then every mask of the PKL by
scaling the neurons through a hook. Results are saved after every mask, so an interrupted run
resumes where it stopped.

Example (the original README's flags):
    python eval_mask_neuron.py --sentiment anger --random_seed 1 \
        --maskPath masks/RSA_14property_top_500_6000.pkl \
        --resultPath eval_mask_neuron_result/RSA_14property_top_500_6000
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_emotion import cli
from model_emotion.errors import ToolkitError

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sentiment",
        "--emotion",
        type=str,
        default="anger",
        help="emotion of the prompt (default %(default)s, the original eval_mask_neuron.py's)",
    )
    parser.add_argument(
        "--random_seed",
        "--seed",
        type=cli.seed_int,
        default=1,
        help="seed of the prompt (and of its balanced eval set)",
    )
    cli.add_jobs_arg(parser)
    parser.add_argument(
        "--maskPath",
        "--mask_path",
        type=Path,
        default=Path("masks/RSA_14property_top_500_6000.pkl"),
        help="masks PKL from gen_mask.py (default %(default)s)",
    )
    parser.add_argument(
        "--resultPath",
        "--result_path",
        type=Path,
        default=Path("eval_mask_neuron_result/RSA_14property_top_500_6000"),
        help="folder of {sentiment}-{seed}.json results (default %(default)s)",
    )
    cli.add_model_args(parser)
    cli.add_data_args(parser)
    cli.add_checkpoint_args(parser)
    cli.add_device_args(parser)
    parser.add_argument(
        "--split", type=str, default="dev", choices=["dev", "test"], help="evaluation split (default dev)"
    )
    parser.add_argument(
        "--max_eval_samples", type=cli.positive_int, default=None, help="cap on evaluation examples, balanced"
    )
    parser.add_argument(
        "--eval_batch_size", type=cli.positive_int, default=64, help="evaluation batch size (default %(default)s)"
    )
    parser.add_argument(
        "--masks_per_forward",
        type=cli.positive_int_or_auto,
        default="auto",
        help="masks stacked along the batch of one forward, or auto (default): 1 off CUDA (one mask "
        "per forward, its silenced neurons removed), on CUDA as many as fit the device's free "
        "memory and pay off (masked_eval.auto_masks_per_forward)",
    )
    parser.add_argument(
        "--state", type=str, default="best", choices=["best", "final"], help="which prompt of the checkpoint"
    )
    cli.add_protocol_args(parser, evaluation=True)
    parser.add_argument("--overwrite", action="store_true", help="re-evaluate even if the result exists")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import hashlib
    import json

    from model_emotion.checkpoint import checkpoint_path, load_checkpoint, prompt_model_from_checkpoint
    from model_emotion.data import binary_task, check_emotions, load_goemotions
    from model_emotion.inference import mean_accuracy, predict
    from model_emotion.io import file_digest, job_lock, read_json, save_run_args, write_json
    from model_emotion.loading import load_backbone
    from model_emotion.masked_eval import check_mask_shapes, evaluate_masks
    from model_emotion.masks import load_masks
    from model_emotion.results import accuracies_of, correct_of, encode_correct, is_accuracy

    cli.check_protocol_flags(args)
    per_batch = args.eval_batch_size if args.accuracy_mean == "per_batch" else None
    cli.check_output_dir(args.resultPath, "--resultPath")  # before any work
    cli.setup_logging()
    jobs = cli.parse_jobs(args.jobs, args.sentiment, args.random_seed)
    masks = load_masks(args.maskPath)
    masks_sha = file_digest(args.maskPath)

    known: dict[tuple[str, int], dict] = {}

    def settings(emotion: str, seed: int) -> dict:
        """Everything a result depends on that is known before the model is loaded (the checkpoint hashed once)."""
        if (emotion, seed) not in known:
            known[(emotion, seed)] = _settings(emotion, seed)
        return known[(emotion, seed)]

    def _settings(emotion: str, seed: int) -> dict:
        ckpt = checkpoint_path(args.checkpoint_dir, emotion, seed)
        return {
            "masks_sha256": masks_sha,
            "checkpoint_sha256": file_digest(ckpt) if ckpt.is_file() else None,
            "model": args.model,
            "split": args.split,
            "max_eval_samples": args.max_eval_samples,
            "state": args.state,
            "protocol": args.protocol,
            "negative_sampling": args.negative_sampling,
            "accuracy_mean": args.accuracy_mean,
            "per_batch": per_batch,
        }

    def up_to_date(emotion: str, seed: int) -> bool:
        path = args.resultPath / f"{emotion}-{seed}.json"
        if args.overwrite or not path.exists():
            return False
        try:
            previous = read_json(path, dict)
        except ToolkitError as exc:
            logger.warning("%s; evaluating again", exc)
            return False
        try:  # a result that the report would refuse is not up to date
            values = accuracies_of(previous, str(path))
            correct_of(previous, str(path))
        except ToolkitError as exc:
            logger.warning("%s; evaluating again", exc)
            return False
        invalid = [k for k, v in values.items() if not is_accuracy(v)]
        missing = [name for name in ["unmasked", *masks] if name not in values]
        if invalid or missing:
            logger.warning(
                "%s holds %s; evaluating again",
                path,
                f"invalid accuracies ({', '.join(invalid[:3])})" if invalid else f"no accuracy of {missing[0]}",
            )
            return False
        recorded = previous.get("provenance")
        if recorded is None:
            logger.info("%s exists (no provenance recorded: written by an older version); skipping", path)
            return True
        current = settings(emotion, seed)
        if not isinstance(recorded, dict) or recorded.get("settings") != current:
            if not isinstance(recorded, dict) or not isinstance(recorded.get("settings"), dict):
                logger.info("%s has a malformed provenance record; evaluating again", path)
                return False
            changed = [k for k, v in current.items() if (recorded.get("settings") or {}).get(k) != v]
            logger.info("%s is stale (%s changed since); evaluating again", path, ", ".join(changed))
            return False
        logger.info("%s exists and is up to date; skipping (pass --overwrite to re-evaluate)", path)
        return True

    pending = [(e, s) for e, s in jobs if not up_to_date(e, s)]
    if not pending:
        return 0
    first = load_checkpoint(checkpoint_path(args.checkpoint_dir, *pending[0]), args.model)
    records = {pending[0]: first}
    device = cli.resolve_device(args.device)
    backbone, tokenizer, _ = load_backbone(
        args.model, first["config"].get("head", "mlm"), args.dtype
    )  # once for all jobs
    data = load_goemotions(args.data_dir, splits=(args.split,))
    check_emotions(sorted({e for e, _ in pending}), data.emotions)

    def valid_partial(previous: dict, key: dict, run_name: str, n: int) -> tuple[dict[str, float], dict]:
        """Accuracies and per-example correctness of an interrupted run with the same key; anything
        else starts over, saying why."""
        if previous.get("provenance") != key:
            logger.info(
                "%s: the partial result was made with other inputs (masks, checkpoint, examples or "
                "settings); starting over",
                run_name,
            )
            return {}, {}
        values = {k: v for k, v in accuracies_of(previous, run_name).items() if k in masks or k == "unmasked"}
        bad = [
            k for k, v in values.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1
        ]
        if bad or "unmasked" not in values:
            logger.warning(
                "%s: the partial result holds invalid values (%s); starting over",
                run_name,
                ", ".join(bad[:3]) or "no unmasked accuracy",
            )
            return {}, {}
        try:
            hits = correct_of(previous, run_name, n, per_batch)
        except ToolkitError as exc:
            logger.warning("%s; starting over", exc)
            return {}, {}
        if set(hits) != set(values):
            logger.warning("%s: the partial result lacks per-example results; starting over", run_name)
            return {}, {}
        return {k: float(v) for k, v in values.items()}, hits

    def evaluate_one(emotion: str, seed: int) -> None:
        result_path = args.resultPath / f"{emotion}-{seed}.json"
        with job_lock(result_path):  # one process per result file
            evaluate_locked(emotion, seed, result_path)

    def evaluate_locked(emotion: str, seed: int, result_path) -> None:
        run_name = f"{emotion}-{seed}"
        partial_path = args.resultPath / f"{run_name}.partial.json"
        ckpt_path = checkpoint_path(args.checkpoint_dir, emotion, seed)
        record = records.get((emotion, seed)) or load_checkpoint(ckpt_path, args.model)
        model = prompt_model_from_checkpoint(record, backbone, tokenizer, args.state, ckpt_path, args.protocol).to(
            device
        )
        check_mask_shapes(model, masks, str(args.maskPath))
        negatives = args.negative_sampling or record["config"].get("extra", {}).get("negative_sampling", "exclusive")
        if negatives == "paper" and model.config.protocol != "paper":
            raise ToolkitError(
                "the checkpoint was trained with the original code's negatives; evaluate it with --protocol paper"
            )
        task = binary_task(data.split(args.split), emotion, seed, args.split, args.max_eval_samples, negatives)
        encoded = model.encode_task(task.texts, task.labels)
        examples = hashlib.sha256(json.dumps([task.texts, task.labels.tolist()]).encode()).hexdigest()
        key = {
            "settings": settings(emotion, seed),
            "examples_sha256": examples,
            "resolved": {"protocol": model.config.protocol, "negative_sampling": negatives},
        }

        result = {
            "sentiment": emotion,
            "seed": seed,
            "best": record.get("best_acc"),
            "split": args.split,
            "n_examples": len(encoded),
        }
        done: dict[str, float] = {}
        correct: dict = {}  # mask name -> per-example correctness, row order
        if partial_path.exists() and not args.overwrite:
            try:
                done, correct = valid_partial(read_json(partial_path, dict), key, run_name, len(encoded))
            except ToolkitError as exc:
                logger.warning("%s; starting over", exc)
            if done:
                result["unmasked"] = done.pop("unmasked")
                logger.info("resuming %s: %d of %d masks done", run_name, len(done), len(masks))
        if result.get("unmasked") is None:
            correct["unmasked"] = predict(model, encoded, args.eval_batch_size, device) == encoded.labels
            result["unmasked"] = mean_accuracy(correct["unmasked"], per_batch)
        logger.info(
            "%s: %d %s examples, unmasked accuracy %.4f (checkpoint best %.4f)",
            run_name,
            len(encoded),
            args.split,
            result["unmasked"],
            result["best"] or float("nan"),
        )

        def hits_json() -> dict:
            return {name: encode_correct(value) for name, value in correct.items()}

        def save_progress(name: str, value: float) -> None:
            done[name] = value
            write_json(
                partial_path,
                {
                    **result,
                    "accuracies": {"unmasked": result["unmasked"], **done},
                    "correct": hits_json(),
                    "provenance": key,
                },
            )

        accuracies = evaluate_masks(
            model,
            encoded,
            masks,
            args.eval_batch_size,
            device,
            done,
            save_progress,
            per_batch=per_batch,
            masks_per_forward=args.masks_per_forward,
            correct=correct,
        )
        # One key holds every accuracy (the unmasked one first); readers accept the older flat layout too.
        # "correct" holds each one's per-example results (a 0/1 string in row order) for the report's intervals.
        result["accuracies"] = {"unmasked": result.pop("unmasked"), **{name: accuracies[name] for name in masks}}
        result["correct"] = {name: encode_correct(correct[name]) for name in ["unmasked", *masks]}
        result["provenance"] = key
        write_json(result_path, result)
        if partial_path.exists():
            partial_path.unlink()
        logger.info("wrote %s (%d masks)", result_path, len(masks))

    status = cli.run_jobs(pending, evaluate_one)
    save_run_args(args.resultPath, args, "eval_mask_neuron")
    return status


if __name__ == "__main__":
    sys.exit(cli.run(main))
