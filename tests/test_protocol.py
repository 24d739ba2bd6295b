"""--protocol paper: the original code's input, re-implemented here independently of the toolkit.

The reference below follows thunlp/Model_Emotion ``framework/roberta.py`` (RobertaEmbeddingsWarp):
the word embeddings of ``<mask>`` + the tokenised text get the token-type embedding, the prompt
vectors do not; the prompt goes after the slot; position ids are 0..L-1 over the whole sequence;
then LayerNorm and the encoder blocks; the class logits are the MLM head's at the label ids,
read at position 0. Activations are the blocks' ``intermediate`` outputs at position 0 when the
text is the single token ``<s>``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, RobertaForMaskedLM

from model_emotion.data.goemotions import binary_task
from model_emotion.lm.inference import mean_accuracy
from model_emotion.lm.neurons import capture_neurons
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.encoder import SoftPromptModel
from model_emotion.prompts.training import LegacyAdamW


def original_forward(
    mlm: RobertaForMaskedLM, prompt: torch.Tensor, text_ids: list[int], mask_id: int, label_ids: list[int]
):
    """Logits [2] at the slot and the FFN activations [layers * d_ffn] at the slot, as the original computes them."""
    emb = mlm.roberta.embeddings
    ids = torch.tensor([mask_id] + text_ids)  # [1 + T]
    tokens = emb.word_embeddings(ids) + emb.token_type_embeddings(torch.zeros_like(ids))  # [1 + T, hidden]
    x = torch.cat([tokens[:1], prompt, tokens[1:]])  # [1 + P + T, hidden]
    x = x + emb.position_embeddings(torch.arange(len(x)))
    hidden = emb.LayerNorm(x)[None]  # [1, L, hidden]
    activations = []
    for block in mlm.roberta.encoder.layer:
        attention = block.attention(hidden, None)[0]
        inner = block.intermediate(attention)  # [1, L, d_ffn]
        activations.append(inner[0, 0])
        hidden = block.output(inner, attention)
    logits = mlm.lm_head(hidden[:, 0])[0]  # [vocab]
    return logits[label_ids], torch.cat(activations)


@pytest.fixture(scope="module")
def setup(tiny_roberta):
    tokenizer = AutoTokenizer.from_pretrained(tiny_roberta)
    mlm = RobertaForMaskedLM.from_pretrained(tiny_roberta).eval()
    torch.manual_seed(3)
    prompt = torch.randn(5, mlm.config.hidden_size)
    # A token-type row and position rows far from zero, so that any layout difference shows.
    with torch.no_grad():
        mlm.roberta.embeddings.token_type_embeddings.weight.normal_(0, 1)
        mlm.roberta.embeddings.position_embeddings.weight.normal_(0, 1)
    models = {}
    for protocol in ("paper", "toolkit"):
        config = PromptConfig(model=str(tiny_roberta), prompt_len=5, head="mlm", max_length=40, protocol=protocol)
        model = SoftPromptModel(mlm, tokenizer, config).eval()
        model.load_trainable_state(prompt)
        models[protocol] = model
    return mlm, tokenizer, prompt, models


def _label_ids(model):
    return model.label_ids[:, 0].tolist()


def test_paper_protocol_equals_the_original_forward(setup):
    mlm, tokenizer, prompt, models = setup
    model = models["paper"]
    texts = ["i am so angry right now", "thanks, that was lovely", "ok"]
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text)["input_ids"]
            want_logits, _ = original_forward(mlm, prompt, ids, tokenizer.mask_token_id, _label_ids(model))
            got = model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))[0]
            assert torch.allclose(got, want_logits, atol=1e-6, rtol=0), (got, want_logits)
        # Batched with padding: each row still equals its own original forward.
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        got = model(batch["input_ids"], batch["attention_mask"])
        for row, text in enumerate(texts):
            want, _ = original_forward(
                mlm, prompt, tokenizer(text)["input_ids"], tokenizer.mask_token_id, _label_ids(model)
            )
            assert torch.allclose(got[row], want, atol=1e-5, rtol=0)
        _, want_acts = original_forward(
            mlm, prompt, [tokenizer.cls_token_id], tokenizer.mask_token_id, _label_ids(model)
        )
        with capture_neurons(model, "before_relu", position=0) as captured:
            model.slot_hidden(None)
        got_acts = torch.cat([layer[0] for layer in captured])
    assert torch.allclose(got_acts, want_acts, atol=1e-6, rtol=0)


def test_toolkit_protocol_differs_from_the_original(setup):
    mlm, tokenizer, prompt, models = setup
    model = models["toolkit"]
    ids = tokenizer("i am so angry right now")["input_ids"]
    with torch.no_grad():
        want_logits, want_acts = original_forward(mlm, prompt, ids, tokenizer.mask_token_id, _label_ids(model))
        got = model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))[0]
        _, want_acts = original_forward(
            mlm, prompt, [tokenizer.cls_token_id], tokenizer.mask_token_id, _label_ids(model)
        )
        with capture_neurons(model, "before_relu", position=0) as captured:
            model.slot_hidden(None)
    got_acts = torch.cat([layer[0] for layer in captured])
    assert (got - want_logits).abs().max() > 1e-3
    assert (got_acts - want_acts).abs().max() > 1e-2
    corr = np.corrcoef(got_acts.numpy(), want_acts.numpy())[0, 1]
    assert corr < 0.999


def test_paper_protocol_trains_with_dropout_and_evaluates_without(setup):
    _, tokenizer, _, models = setup
    model = models["paper"]
    ids = torch.tensor([tokenizer("so angry")["input_ids"]])
    ones = torch.ones_like(ids)
    model.train()
    assert model.backbone.training
    torch.manual_seed(0)
    a = model(ids, ones)
    b = model(ids, ones)
    assert not torch.allclose(a, b)  # dropout active, as in the original's model.train()
    model.eval()
    assert not model.backbone.training
    assert torch.equal(model(ids, ones), model(ids, ones))
    model.train()
    models["toolkit"].train()
    assert not models["toolkit"].backbone.training  # the toolkit keeps the frozen backbone in eval mode
    model.eval()
    models["toolkit"].eval()


def test_legacy_adamw_has_no_bias_correction():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = LegacyAdamW([p], lr=0.1, weight_decay=0.01)
    p.grad = torch.tensor([0.5, 0.5])
    opt.step()
    # m = 0.05, v = 0.00025 -> step 0.1 * 0.05 / (sqrt(0.00025) + 1e-6); then p -= 0.1 * 0.01 * p
    step = 0.1 * 0.05 / (0.00025**0.5 + 1e-6)
    want = torch.tensor([1.0 - step, -2.0 - step])
    want = want - 0.1 * 0.01 * want
    assert torch.allclose(p.detach(), want, atol=1e-7)


def test_paper_negative_sampling_is_the_original_draw():
    frame = pd.DataFrame(
        {"text": [f"t{i}" for i in range(50)], "labels": [("anger",) if i % 7 == 0 else ("joy",) for i in range(50)]}
    )
    task = binary_task(frame, "anger", 5, "dev", negatives="paper")
    pos = [i for i in range(50) if i % 7 == 0]
    np.random.seed(5)
    neg = np.random.choice(frame.index, len(pos))  # the original's two lines
    assert task.texts == [f"t{i}" for i in list(pos) + list(neg)]
    assert task.labels.tolist() == [1] * len(pos) + [int(i % 7 == 0) for i in neg]


def test_per_batch_mean_is_the_original_evaluation():
    correct = np.array([1, 1, 0, 1, 0])
    assert mean_accuracy(correct) == pytest.approx(0.6)
    assert mean_accuracy(correct, per_batch=2) == pytest.approx((1 + 0.5 + 0) / 3)
    assert mean_accuracy(correct, per_batch=100) == pytest.approx(0.6)


def test_paper_protocol_through_the_stage_commands(tiny_roberta, small_goemotions, tmp_path):
    """train -> activations -> masked evaluation under --protocol paper with the original's sampler and means."""
    import json

    from model_emotion.commands import activations, train
    from model_emotion.commands import eval as evaluate
    from model_emotion.masking.masks import save_masks

    common = ["--model", str(tiny_roberta), "--data_dir", str(small_goemotions), "--device", "cpu"]
    ckpt = tmp_path / "ckpt"
    assert (
        train.main(
            [
                "--sentiment",
                "joy",
                "--random_seed",
                "1",
                *common,
                "--checkpoint_dir",
                str(ckpt),
                "--log_dir",
                str(tmp_path / "log"),
                "--epochs",
                "1",
                "--prompt_len",
                "3",
                "--max_length",
                "40",
                "--max_train_samples",
                "16",
                "--max_eval_samples",
                "12",
                "--protocol",
                "paper",
                "--negative_sampling",
                "paper",
            ]
        )
        == 0
    )
    record = torch.load(ckpt / "joy-1.pt", weights_only=True)
    assert record["config"]["protocol"] == "paper" and record["config"]["prompt_init"] == "normal"
    assert (
        activations.main(
            [
                "--model",
                str(tiny_roberta),
                "--checkpoint_dir",
                str(ckpt),
                "--output_dir",
                str(tmp_path / "acts"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "acts" / "joy-1_meta.json").read_text())["made_from"]
    assert record["settings"]["protocol"] == "paper"  # the checkpoint's protocol by default
    masks = tmp_path / "m.pkl"
    save_masks(masks, {"valence_top8": torch.ones(2, 64, dtype=torch.int8)})
    argv = [
        "--sentiment",
        "joy",
        "--random_seed",
        "1",
        "--maskPath",
        str(masks),
        "--resultPath",
        str(tmp_path / "eval"),
        *common,
        "--checkpoint_dir",
        str(ckpt),
        "--max_eval_samples",
        "12",
        "--accuracy_mean",
        "per_batch",
        "--eval_batch_size",
        "5",
        "--protocol",
        "paper",
    ]
    assert evaluate.main(argv) == 0
    result = json.loads((tmp_path / "eval" / "joy-1.json").read_text())
    assert result["accuracies"]["valence_top8"] == result["accuracies"]["unmasked"]  # an all-ones mask changes nothing
    assert result["made_from"]["resolved"] == {"protocol": "paper", "negative_sampling": "paper"}


def test_paper_prompt_starts_from_the_initializer_normal_as_the_pinned_transformers_left_it(tiny_roberta):
    """The original builds <mask> x P in the constructor, but transformers 4.28.1's from_pretrained then
    re-initialises every weight missing from the checkpoint (the prompt) with _init_weights:
    N(0, initializer_range^2). --protocol paper starts there; <mask> x P stays available."""
    from model_emotion.lm.loading import load_backbone
    from model_emotion.prompts.config import PromptConfig
    from model_emotion.prompts.factory import build_prompt_model

    backbone, tokenizer, _ = load_backbone(str(tiny_roberta), "auto")
    model = build_prompt_model(
        backbone,
        tokenizer,
        PromptConfig(
            model=str(tiny_roberta), prompt_len=48, max_length=32, protocol="paper", prompt_init="normal", seed=3
        ),
    )
    prompt = model.prompt.detach()
    std = backbone.config.initializer_range
    assert abs(prompt.mean().item()) < 0.2 * std and abs(prompt.std().item() / std - 1) < 0.1
    assert not torch.allclose(prompt[0], prompt[1])  # i.i.d. rows, not one token repeated
    again = build_prompt_model(
        backbone,
        tokenizer,
        PromptConfig(
            model=str(tiny_roberta), prompt_len=48, max_length=32, protocol="paper", prompt_init="normal", seed=3
        ),
    )
    assert torch.equal(again.prompt.detach(), prompt)  # seeded


def test_paper_protocol_runs_float32_on_cuda():
    """The original ran float32; bf16 autocast on CUDA is the toolkit protocol's only (decided without a GPU)."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from model_emotion.lm.inference import autocast

    cuda = torch.device("cuda")
    assert isinstance(autocast(cuda, SimpleNamespace(paper=True)), nullcontext)
    assert isinstance(autocast(torch.device("cpu"), SimpleNamespace(paper=False)), nullcontext)
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else nullcontext():
        assert isinstance(autocast(cuda, SimpleNamespace(paper=False)), torch.autocast)


def original_forward_padded(
    mlm: RobertaForMaskedLM,
    prompt: torch.Tensor,
    text_ids: list[int],
    mask_id: int,
    pad_id: int,
    max_length: int,
    neuron_mask: torch.Tensor | None = None,
):
    """The original's forward as its trainer ran it: the text padded to ``max_length`` (padding='max_length')
    with the attention mask extended by ones over <mask> and the prompt; position ids 0..L-1 over the
    padded sequence; ``neuron_mask`` [layers, d_ffn] multiplies each block's ``intermediate`` output as the
    original's eval hook does. Returns the vocabulary logits at the slot [vocab]."""
    emb = mlm.roberta.embeddings
    padded = text_ids + [pad_id] * (max_length - len(text_ids))
    keep = torch.tensor([1.0] * (1 + len(prompt)) + [1.0] * len(text_ids) + [0.0] * (max_length - len(text_ids)))
    ids = torch.tensor([mask_id] + padded)
    tokens = emb.word_embeddings(ids) + emb.token_type_embeddings(torch.zeros_like(ids))
    x = torch.cat([tokens[:1], prompt, tokens[1:]])
    x = x + emb.position_embeddings(torch.arange(len(x)))
    hidden = emb.LayerNorm(x)[None]
    additive = ((1.0 - keep) * torch.finfo(torch.float32).min)[None, None, None, :]  # [1, 1, 1, L]
    for layer, block in enumerate(mlm.roberta.encoder.layer):
        attention = block.attention(hidden, additive)[0]
        inner = block.intermediate(attention)
        if neuron_mask is not None:
            inner = inner * neuron_mask[layer]
        hidden = block.output(inner, attention)
    return mlm.lm_head(hidden[:, 0])[0]


def test_reference_forward_with_max_length_padding_equals_the_toolkit(setup):
    """The original padded every text to max_length; the toolkit pads per batch. Same logits."""
    mlm, tokenizer, prompt, models = setup
    model = models["paper"]
    texts = ["i am so angry right now", "ok", "thanks, that was lovely and kind of you"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        got = model(batch["input_ids"], batch["attention_mask"])
        for row, text in enumerate(texts):
            vocab = original_forward_padded(
                mlm, prompt, tokenizer(text)["input_ids"], tokenizer.mask_token_id, tokenizer.pad_token_id, 40
            )
            assert torch.allclose(got[row], vocab[_label_ids(model)], atol=1e-5, rtol=0)


def test_paper_label_ids_on_a_vocabulary_that_holds_them():
    """A tiny RoBERTa with roberta-base's vocabulary size (50265): the paper protocol reads the logits at the
    original's hard-coded ids 33407 (negative) and 22173 (positive); the toolkit protocol at the label words."""
    from transformers import RobertaConfig, RobertaTokenizerFast

    from model_emotion.prompts.config import PAPER_LABEL_IDS, PAPER_VOCAB_SIZE

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    byte_chars = sorted({chr(i) for i in range(33, 127)} | {"Ġ"})
    vocab = {t: i for i, t in enumerate(specials + byte_chars)}
    for i in range(len(vocab), PAPER_VOCAB_SIZE - 1):
        vocab[f"filler{i}"] = i
    vocab["<mask>"] = PAPER_VOCAB_SIZE - 1  # 50264, the original's mask_id
    tokenizer = RobertaTokenizerFast(vocab=vocab, merges=[])
    assert len(tokenizer) == PAPER_VOCAB_SIZE and tokenizer.mask_token_id == 50264
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=PAPER_VOCAB_SIZE,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=80,
        pad_token_id=1,
    )
    mlm = RobertaForMaskedLM(config).eval()
    prompt = torch.randn(3, 16)
    paper = SoftPromptModel(
        mlm, tokenizer, PromptConfig(model="tiny", prompt_len=3, max_length=20, protocol="paper")
    ).eval()
    toolkit = SoftPromptModel(mlm, tokenizer, PromptConfig(model="tiny", prompt_len=3, max_length=20)).eval()
    for model in (paper, toolkit):
        model.load_trainable_state(prompt)
    assert paper.label_ids.tolist() == [[i] for i in PAPER_LABEL_IDS]
    assert not set(toolkit.label_ids.flatten().tolist()) & set(PAPER_LABEL_IDS)  # the label words' own tokens
    ids = tokenizer("so angry")["input_ids"]
    with torch.no_grad():
        logits, _ = original_forward(mlm, prompt, ids, tokenizer.mask_token_id, list(PAPER_LABEL_IDS))
        got = paper(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))[0]
    assert torch.allclose(got, logits, atol=1e-6, rtol=0)


def test_paper_masked_evaluation_with_real_masks_equals_the_original_hook(setup, small_goemotions):
    """Masked evaluation under the paper protocol with masks that silence and scale neurons: every
    example's prediction equals the original's (padded forward, hook multiplying ``intermediate``), and
    the accuracy is its per-batch mean."""
    from model_emotion.data.goemotions import load_goemotions
    from model_emotion.masking.evaluate import evaluate_masks, masked_logits

    mlm, tokenizer, prompt, models = setup
    model = models["paper"]
    data = load_goemotions(small_goemotions, splits=("dev",))
    task = binary_task(data.split("dev"), "joy", 3, "dev", 16, negatives="paper")
    encoded = model.encode_task(task.texts, task.labels)
    gen = torch.Generator().manual_seed(4)
    masks = {
        "valence_top20": (torch.rand(2, 64, generator=gen) > 0.3).to(torch.int8),
        "arousal_top20": torch.rand(2, 64, generator=gen),
    }  # a float scale mask
    correct: dict = {}
    accuracies = evaluate_masks(
        model, encoded, masks, 5, torch.device("cpu"), progress=False, per_batch=5, correct=correct
    )
    logits = masked_logits(model, encoded, masks, 5, torch.device("cpu"))
    with torch.no_grad():
        for name, mask in masks.items():
            rows, plain = [], []
            for text in task.texts:
                ids = tokenizer(text, truncation=True, max_length=40)["input_ids"]
                args = (mlm, prompt, ids, tokenizer.mask_token_id, tokenizer.pad_token_id, 40)
                rows.append(original_forward_padded(*args, mask.float())[_label_ids(model)])
                plain.append(original_forward_padded(*args)[_label_ids(model)])
            rows = torch.stack(rows)
            assert (
                rows - torch.stack(plain)
            ).abs().max() > 1e-4  # the mask changes the original logits (a small random model)
            assert torch.allclose(logits[name], rows, atol=2e-6, rtol=0), name
            want = rows.argmax(-1).numpy() == task.labels
            assert correct[name].tolist() == want.tolist(), name
            assert accuracies[name] == pytest.approx(mean_accuracy(want, per_batch=5))


def test_legacy_adamw_over_several_steps_equals_the_transformers4_update():
    """transformers 4's AdamW(correct_bias=False) written out: m, v without bias correction, the step
    lr * m / (sqrt(v) + eps), then decoupled weight decay lr * wd * p; five steps, changing gradients,
    with a linear schedule changing lr between steps as the original's scheduler does."""
    torch.manual_seed(0)
    start = torch.randn(4)
    p = torch.nn.Parameter(start.clone())
    opt = LegacyAdamW([p], lr=0.1, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-6)
    ref, m, v = start.clone().double(), torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    for step in range(5):
        grad = torch.randn(4)
        lr = 0.1 * (1 - step / 5)
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = grad.clone()
        opt.step()
        g = grad.double()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - lr * m / (v.sqrt() + 1e-6)
        ref = ref - lr * 0.01 * ref
        assert torch.allclose(p.detach().double(), ref, atol=1e-6), step


GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class PythonByteLevelBPE:
    """Byte-level BPE as the original's slow tokenizer (transformers 4 ``RobertaTokenizer``, use_fast=False)
    computes it, written out: split by the GPT-2 pattern, map bytes to printable characters, then merge
    the lowest-ranked adjacent pair until none is in the merge table."""

    def __init__(self, vocab: dict, merges: list[tuple[str, str]]):
        import regex

        printable = (
            list(range(ord("!"), ord("~") + 1))
            + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1))
        )
        codes = printable[:]
        extra = 0
        for b in range(256):
            if b not in printable:
                printable.append(b)
                codes.append(256 + extra)
                extra += 1
        self.byte_char = {b: chr(c) for b, c in zip(printable, codes)}
        self.vocab, self.ranks = vocab, {pair: i for i, pair in enumerate(merges)}
        self.pattern = regex.compile(GPT2_SPLIT)
        self.cache: dict[str, list[str]] = {}

    def bpe(self, word: str) -> list[str]:
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            first, second = next((parts[i], parts[i + 1]) for r, i in pairs if r == rank)
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self.cache[word] = parts
        return parts

    def __call__(self, text: str, bos: int, eos: int, unk: int) -> list[int]:
        ids = [bos]
        for piece in self.pattern.findall(text):
            for token in self.bpe("".join(self.byte_char[b] for b in piece.encode("utf-8"))):
                ids.append(self.vocab.get(token, unk))
        return ids + [eos]


@pytest.mark.slow
def test_slow_tokenizer_gives_the_same_ids_on_goemotions(tiny_roberta, shared):
    """The original loaded its tokenizer with use_fast=False; transformers 5 has only the fast one. On every
    GoEmotions dev and test text, the slow algorithm written out gives the toolkit tokenizer's ids (a BPE
    vocabulary trained on GoEmotions here; roberta-base's own vocabulary is not available offline)."""
    import json

    from model_emotion.data.goemotions import load_goemotions

    tokenizer = AutoTokenizer.from_pretrained(tiny_roberta)
    vocab = json.loads((tiny_roberta / "vocab.json").read_text())
    merges = [
        tuple(line.split())
        for line in (tiny_roberta / "merges.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    slow = PythonByteLevelBPE(vocab, merges)
    data = load_goemotions(shared / "goemotions", splits=("dev", "test"))
    texts = [t for split in ("dev", "test") for t in data.split(split)["text"]]
    assert len(texts) > 10000
    fast = tokenizer(texts)["input_ids"]
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    differ = [t for t, f in zip(texts, fast) if slow(t, *ids) != f]
    assert not differ, (len(differ), differ[:3])
