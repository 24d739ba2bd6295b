"""--multi_prompt: all jobs in one batched model give the prompts of training them one after another."""

import pytest
import torch

from model_emotion.api import train_prompts
from model_emotion.commands import train
from model_emotion.data.goemotions import load_goemotions
from model_emotion.lm.loading import load_backbone

JOBS = [("joy", 1), ("anger", 2), ("grief", 1)]  # grief has few positives: a shorter epoch than the others


@pytest.fixture(scope="module")
def data(small_goemotions):
    return load_goemotions(small_goemotions)


@pytest.fixture(scope="module")
def tiny_llama(tiny_roberta, tmp_path_factory):
    from transformers import AutoTokenizer, GPT2TokenizerFast, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("multi_llama")
    AutoTokenizer.from_pretrained(tiny_roberta).save_pretrained(folder)
    tokenizer = GPT2TokenizerFast.from_pretrained(
        folder, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=40,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
        )
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny_bert", "tiny_roberta", "tiny_llama"])
def test_multi_prompt_equals_one_after_another(which, request, data):
    folder = request.getfixturevalue(which)
    backbone, tokenizer, head = load_backbone(str(folder))
    settings = dict(
        head=head,
        prompt_len=3,
        epochs=3,
        lr=0.05,
        train_batch_size=4,
        eval_batch_size=8,
        max_length=32,
        max_train_samples=24,
        max_eval_samples=16,
        device="cpu",
        verbalizer=("negative", "positive"),
    )
    alone = train_prompts(backbone, tokenizer, data, JOBS, **settings)
    together = train_prompts(backbone, tokenizer, data, JOBS, multi_prompt=True, **settings)
    sizes = {alone[key].sizes["train"] for key in JOBS}
    assert len(sizes) > 1  # jobs of different lengths: some steps have fewer jobs
    for key in JOBS:
        a, b = alone[key], together[key]
        assert a.best_acc == b.best_acc and a.best_epoch == b.best_epoch and a.test_acc == b.test_acc, key
        for name, value in a.final_state.items():
            other = b.final_state[name]
            assert torch.linalg.norm(value - other) <= 1e-3 * torch.linalg.norm(value), (key, name)
        assert [h["dev_acc"] for h in a.history] == [h["dev_acc"] for h in b.history]
        assert not torch.equal(a.final_state["prompt"], a.model.prompt.detach()) or a.best_epoch == 2


def test_multi_prompt_through_train_py(tiny_bert, small_goemotions, tmp_path):
    argv = [
        "--jobs",
        "joy-1",
        "anger-1",
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(small_goemotions),
        "--checkpoint_dir",
        str(tmp_path / "ckpt"),
        "--log_dir",
        str(tmp_path / "log"),
        "--epochs",
        "1",
        "--prompt_len",
        "2",
        "--max_length",
        "32",
        "--max_train_samples",
        "8",
        "--max_eval_samples",
        "8",
        "--device",
        "cpu",
    ]
    assert train.main(argv + ["--multi_prompt"]) == 0
    together = {e: torch.load(tmp_path / "ckpt" / f"{e}-1.pt", weights_only=True) for e in ("joy", "anger")}
    assert list((tmp_path / "log").glob("multi_prompt-*.log"))
    assert train.main(argv + ["--multi_prompt"]) == 0  # every checkpoint exists: skipped
    sequential = [str(tmp_path / "seq") if value == str(tmp_path / "ckpt") else value for value in argv]
    assert train.main(sequential) == 0
    for e in ("joy", "anger"):
        alone = torch.load(tmp_path / "seq" / f"{e}-1.pt", weights_only=True)
        assert torch.allclose(alone["best_prompt"], together[e]["best_prompt"], rtol=1e-3, atol=1e-6)
        assert alone["best_acc"] == together[e]["best_acc"]
    from model_emotion.commands import cli

    assert cli.run(train.main, argv + ["--multi_prompt", "--protocol", "paper", "--overwrite"]) == 2


@pytest.mark.parametrize("which", ["tiny_roberta", "tiny_llama"])
@pytest.mark.parametrize("max_padding", [0.0, 0.05, 1.0])
def test_stacked_rows_equal_each_job_alone(which, max_padding, request, data):
    """Any grouping of the jobs' rows (one group per length, the CPU default, one group for all) gives each
    job's own logits, and the stacked evaluation gives each job's own predictions."""
    from model_emotion.data.goemotions import binary_task
    from model_emotion.lm.batching import pad_rows
    from model_emotion.lm.inference import predict
    from model_emotion.prompts.config import PromptConfig
    from model_emotion.prompts.factory import build_prompt_model
    from model_emotion.prompts.multi import stacked_logits, stacked_predictions

    folder = str(request.getfixturevalue(which))
    backbone, tokenizer, head = load_backbone(folder)
    models, tasks = [], []
    for emotion, seed in JOBS:
        torch.manual_seed(seed)
        model = build_prompt_model(
            backbone,
            tokenizer,
            PromptConfig(
                model=folder,
                prompt_len=3,
                head=head,
                seed=seed,
                sentiment=emotion,
                max_length=32,
                verbalizer=("negative", "positive"),
            ),
        ).eval()
        task = binary_task(data.split("dev"), emotion, seed, "dev", 12)
        models.append(model)
        tasks.append(model.encode_task(task.texts, task.labels))
    batches = [pad_rows(task, list(range(len(task))))[:2] for task in tasks]
    with torch.no_grad():
        together = stacked_logits(models, batches, max_padding=max_padding)
        for model, (ids, mask), logits in zip(models, batches, together):
            torch.testing.assert_close(logits, model(ids, mask), rtol=1e-5, atol=1e-5)
    stacked = stacked_predictions(models, tasks, 5, torch.device("cpu"))
    for model, task, preds in zip(models, tasks, stacked):
        assert (preds == predict(model, task, 5, torch.device("cpu"))).all()


def _prompt_models(folder, data, split="train", rows=24):
    from model_emotion.data.goemotions import binary_task
    from model_emotion.prompts.config import PromptConfig
    from model_emotion.prompts.factory import build_prompt_model

    backbone, tokenizer, head = load_backbone(str(folder))
    models, tasks = [], []
    for emotion, seed in JOBS:
        model = build_prompt_model(
            backbone,
            tokenizer,
            PromptConfig(model=str(folder), prompt_len=3, head=head, seed=seed, sentiment=emotion, max_length=32),
        )
        task = binary_task(data.split(split), emotion, seed, split, rows)
        models.append(model)
        tasks.append(model.encode_task(task.texts, task.labels))
    return models, tasks


def test_waves_cut_the_jobs_by_tokens_and_by_free_device_memory(tiny_bert, data, monkeypatch):
    from model_emotion.prompts import multi as multi_prompt

    models, tasks = _prompt_models(tiny_bert, data)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    steps = [4 * sum(len(ids) + m.extra_tokens for ids in t.input_ids) / len(t) for m, t in zip(models, tasks)]
    assert multi_prompt.waves(models, tasks, 4, cpu) == [[0, 1, 2]]  # far under the default budget
    monkeypatch.setattr(multi_prompt, "WAVE_TOKENS", steps[0] + steps[1])
    assert multi_prompt.waves(models, tasks, 4, cpu) == [[0, 1], [2]]
    monkeypatch.setattr(multi_prompt, "WAVE_TOKENS", 1)
    assert multi_prompt.waves(models, tasks, 4, cpu) == [[0], [1], [2]]  # never an empty wave
    monkeypatch.setattr(multi_prompt, "WAVE_TOKENS", 2**16)
    free = {"bytes": 2**40}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 2**41))
    assert multi_prompt.waves(models, tasks, 4, cuda) == [[0, 1, 2]]
    free["bytes"] = 0  # no room: one job at a time
    assert multi_prompt.waves(models, tasks, 4, cuda) == [[0], [1], [2]]


@pytest.mark.slow
def test_prompts_trained_in_waves_equal_one_after_another(tiny_bert, data, monkeypatch):
    from model_emotion.prompts import multi as multi_prompt

    backbone, tokenizer, head = load_backbone(str(tiny_bert))
    settings = dict(
        head=head,
        prompt_len=3,
        epochs=2,
        lr=0.05,
        train_batch_size=4,
        eval_batch_size=8,
        max_length=32,
        max_train_samples=24,
        max_eval_samples=16,
        device="cpu",
    )
    alone = train_prompts(backbone, tokenizer, data, JOBS, **settings)
    models, tasks = _prompt_models(tiny_bert, data)
    steps = [4 * sum(len(ids) + m.extra_tokens for ids in t.input_ids) / len(t) for m, t in zip(models, tasks)]
    monkeypatch.setattr(multi_prompt, "WAVE_TOKENS", steps[0] + steps[1])  # waves [joy, anger], [grief]
    cut, real = [], multi_prompt.waves
    monkeypatch.setattr(multi_prompt, "waves", lambda *args: cut.append(real(*args)) or cut[-1])
    together = train_prompts(backbone, tokenizer, data, JOBS, multi_prompt=True, **settings)
    assert cut[0] == [[0, 1], [2]]  # the training's waves
    for key in JOBS:
        a, b = alone[key], together[key]
        assert a.best_acc == b.best_acc and a.best_epoch == b.best_epoch and a.test_acc == b.test_acc, key
        assert torch.linalg.norm(a.final_state["prompt"] - b.final_state["prompt"]) <= 1e-3 * torch.linalg.norm(
            a.final_state["prompt"]
        ), key


def test_multi_prompt_nan_loss_names_the_job_and_keeps_no_checkpoint(tiny_bert, small_goemotions, tmp_path, capsys):
    from model_emotion.commands import cli

    argv = [
        "--jobs",
        "joy-1",
        "anger-1",
        "--model",
        str(tiny_bert),
        "--data_dir",
        str(small_goemotions),
        "--checkpoint_dir",
        str(tmp_path / "ckpt"),
        "--log_dir",
        str(tmp_path / "log"),
        "--epochs",
        "1",
        "--prompt_len",
        "2",
        "--max_length",
        "32",
        "--max_train_samples",
        "8",
        "--max_eval_samples",
        "8",
        "--device",
        "cpu",
        "--multi_prompt",
        "--lr",
        "1e30",
        "--train_batch_size",
        "2",
    ]
    assert cli.run(train.main, argv) != 0
    err = capsys.readouterr().err
    assert "the training loss of job 1 became" in err and "Traceback" not in err
    assert not list((tmp_path / "ckpt").glob("*.pt"))
