"""Masked evaluation: the shared path gives the plain path's logits; nothing is left changed."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from model_emotion.lm.architectures import bert_blocks
from model_emotion.lm.batching import batch_order, encode
from model_emotion.lm.inference import predict_logits
from model_emotion.lm.loading import load_backbone
from model_emotion.lm.neurons import count_hooks, find_ffn
from model_emotion.masking import evaluate as masked_eval
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.encoder import SoftPromptModel


@pytest.fixture(scope="module")
def bert3(tiny_bert, tmp_path_factory):
    """A 3-layer BERT (linear head), so that masks can start in a middle layer."""
    folder = tmp_path_factory.mktemp("bert3")
    torch.manual_seed(1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=40,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["bert3", "tiny_roberta"])
def setup(request, shared):
    folder = request.getfixturevalue(request.param)
    backbone, tokenizer, head = load_backbone(str(folder))
    torch.manual_seed(2)
    with torch.no_grad():  # larger weights than the initialisation, so that logits differ between rows and masks
        for module in backbone.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                fan_in = module.weight.shape[1] if isinstance(module, torch.nn.Linear) else 1
                module.weight.normal_(0.0, 1.5 / fan_in**0.5)
    model = SoftPromptModel(
        backbone, tokenizer, PromptConfig(model=str(folder), prompt_len=4, head=head, max_length=40)
    )
    texts = [line.split("\t")[0] for line in (shared / "goemotions" / "dev.tsv").read_text().splitlines()[:21]]
    labels = np.arange(len(texts)) % 2
    task = encode(tokenizer, texts, labels, 40)
    return model.eval(), task


def _masks(layers: int, d_ffn: int) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    binary = lambda p: torch.from_numpy((rng.random((layers, d_ffn)) > p).astype(np.int8))  # noqa: E731
    masks = {
        "ones": torch.ones(layers, d_ffn, dtype=torch.int8),
        "zeros": torch.zeros(layers, d_ffn),
        "binary": binary(0.2),
        "heavy": binary(0.7),
    }
    last = torch.ones(layers, d_ffn, dtype=torch.int8)
    last[-1, ::3] = 0
    masks["last_layer_only"] = last
    middle = torch.ones(layers, d_ffn)
    middle[1:, 1::2] = 0
    masks["from_layer_1"] = middle
    scaled = torch.ones(layers, d_ffn)
    scaled.view(-1)[torch.from_numpy(rng.choice(layers * d_ffn, d_ffn, replace=False))] = torch.rand(d_ffn)
    masks["float"] = scaled
    mixed = binary(0.3).float()
    mixed[-1] = torch.where(mixed[-1] == 0, torch.full_like(mixed[-1], 0.5), mixed[-1])
    masks["mixed_rows"] = mixed
    masks["whole_layer"] = torch.ones(layers, d_ffn)
    masks["whole_layer"][0] = 0
    return masks


@pytest.mark.slow
def test_shared_path_gives_the_plain_logits(setup):
    model, task = setup
    ffn = find_ffn(model)
    masks = _masks(ffn.num_layers, ffn.d_ffn)
    plain = masked_eval.masked_logits(model, task, masks, 8, torch.device("cpu"), shared=False)
    for group_size, stacked in ((1, 1), (3, 1), (32, 1), (32, 3), (5, 8)):  # stacked: masks per forward
        shared = masked_eval.masked_logits(
            model, task, masks, 8, torch.device("cpu"), group_size=group_size, masks_per_forward=stacked
        )
        assert list(shared) == list(masks)
        for name in masks:
            assert torch.allclose(shared[name], plain[name], rtol=1e-4, atol=1e-4), (name, group_size, stacked)
    unmasked = predict_logits(model, task, 8, torch.device("cpu"))
    assert torch.allclose(plain["ones"], unmasked, atol=1e-6)
    spread = float(unmasked.std(0).min())
    assert spread > 0.05  # rows differ, so the comparisons above are not between constants
    for name in masks:
        if name != "ones":
            assert float((plain[name] - unmasked).abs().max()) > 0.05 * spread, name


@pytest.mark.slow
def test_accuracies_match_and_every_chunk_size_works(setup, monkeypatch):
    model, task = setup
    ffn = find_ffn(model)
    masks = _masks(ffn.num_layers, ffn.d_ffn)
    device = torch.device("cpu")
    seen = []
    plain = masked_eval.evaluate_masks(model, task, masks, 5, device, progress=False, shared=False)
    monkeypatch.setattr(masked_eval, "CACHE_BYTES", 1)  # every batch its own chunk
    shared = masked_eval.evaluate_masks(
        model, task, masks, 5, device, progress=False, on_result=lambda name, value: seen.append(name)
    )
    assert shared == plain and sorted(seen) == sorted(masks)
    resumed = masked_eval.evaluate_masks(model, task, masks, 5, device, progress=False, done={"binary": 0.25})
    assert resumed["binary"] == 0.25 and all(resumed[n] == plain[n] for n in masks if n != "binary")


def test_first_changed_layer():
    mask = torch.ones(4, 6)
    assert masked_eval.first_changed_layer(mask) is None
    mask[2, 3] = 0.5
    assert masked_eval.first_changed_layer(mask) == 2
    mask[1, 0] = 0
    assert masked_eval.first_changed_layer(mask) == 1


def test_modules_and_hooks_are_restored_even_after_an_error(setup, monkeypatch):
    model, task = setup
    ffn = find_ffn(model)
    blocks = bert_blocks(model.backbone)
    before = [(b.intermediate.dense, b.output.dense) for b in blocks]
    hooks = count_hooks(model)
    masks = _masks(ffn.num_layers, ffn.d_ffn)
    masked_eval.masked_logits(model, task, masks, 8, torch.device("cpu"))
    assert [(b.intermediate.dense, b.output.dense) for b in blocks] == before and count_hooks(model) == hooks

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "classify", boom)
    with pytest.raises(RuntimeError, match="boom"):
        masked_eval.masked_logits(model, task, {"from_layer_1": masks["from_layer_1"]}, 8, torch.device("cpu"))
    assert [(b.intermediate.dense, b.output.dense) for b in blocks] == before and count_hooks(model) == hooks


def test_slot_only_last_block_gives_the_full_logits_and_gradients(setup):
    model, task = setup
    ids = torch.tensor([task.input_ids[0] + [task.pad_id] * 3, task.input_ids[1][: len(task.input_ids[0]) + 3]])
    mask = (torch.arange(ids.shape[1]) < torch.tensor([len(task.input_ids[0]), ids.shape[1]])[:, None]).long()
    full = model.classify(model.encode(model._inputs(ids, mask, 2), slot_only=False)[0][:, 0])
    grad_full = torch.autograd.grad(full.sum(), model.prompt)[0]
    fast = model(ids, mask)
    grad_fast = torch.autograd.grad(fast.sum(), model.prompt)[0]
    assert torch.allclose(fast, full, rtol=1e-4, atol=1e-5) and torch.allclose(
        grad_fast, grad_full, rtol=1e-4, atol=1e-5
    )
    assert float((fast[0] - fast[1]).detach().abs().max()) > 1e-2


def test_batches_have_little_padding_and_cover_every_row_once():
    class Task:
        input_ids = [[1] * n for n in np.random.default_rng(0).integers(3, 40, 200)]

        def __len__(self):
            return len(self.input_ids)

    for extra in (0, 20, 100):
        order = batch_order(Task(), 16, extra_tokens=extra, max_padding=0.05)
        assert sorted(i for rows in order for i in rows) == list(range(200))
        for rows in order:
            sizes = [len(Task.input_ids[i]) + extra for i in rows]
            assert len(rows) <= 16
            assert len(rows) == 1 or 1 - sum(sizes) / (len(rows) * max(sizes)) <= 0.05
    assert len(batch_order(Task(), 16, extra_tokens=100, max_padding=1.0)) == 13  # no cut but the size


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_slot_query_attention_with_either_mask_form(tiny_bert, implementation):
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(tiny_bert, attn_implementation=implementation)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = SoftPromptModel(
        backbone, tokenizer, PromptConfig(model=str(tiny_bert), prompt_len=3, head="linear", max_length=32)
    ).eval()
    batch = tokenizer(["so angry right now", "ok"], padding=True, return_tensors="pt")
    inputs = model._inputs(batch["input_ids"], batch["attention_mask"], 2)
    with torch.no_grad():
        full = model.encode(inputs, slot_only=False)[0][:, 0]
        fast = model.slot_hidden(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(fast, full, atol=1e-5)
    assert isinstance(bert_blocks(backbone)[-1].attention.self, torch.nn.Module)
    assert type(bert_blocks(backbone)[-1].attention.self).__name__ == "BertSelfAttention"  # restored


def test_auto_masks_per_forward_is_sized_to_memory_and_to_the_payoff(setup, monkeypatch):
    model, task = setup
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert masked_eval.auto_masks_per_forward(model, task, 8, cpu, 100) == 1  # a CPU computes less one at a time
    gib = 2**30
    free = {"bytes": 100 * gib}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 141 * gib))
    width = max(len(ids) for ids in task.input_ids) + model.extra_tokens
    plenty = masked_eval.auto_masks_per_forward(model, task, 8, cuda, 1000, group_size=10**6)
    assert plenty == masked_eval.STACK_TOKENS // (8 * width)  # bounded by the payoff, not the memory
    assert masked_eval.auto_masks_per_forward(model, task, 8, cuda, 1000) == masked_eval.DEFAULT_GROUP_SIZE
    assert masked_eval.auto_masks_per_forward(model, task, 8, cuda, 3) == 3  # no more than there are masks
    free["bytes"] = 4 * 2**20
    tight = masked_eval.auto_masks_per_forward(model, task, 8, cuda, 1000, group_size=10**6)
    assert 1 <= tight < plenty  # little free memory: fewer masks per forward
    free["bytes"] = 0
    assert masked_eval.auto_masks_per_forward(model, task, 8, cuda, 1000) == 1
    ffn = find_ffn(model)
    masks = _masks(ffn.num_layers, ffn.d_ffn)
    one = masked_eval.masked_logits(model, task, masks, 8, cpu, masks_per_forward=1)
    auto = masked_eval.masked_logits(model, task, masks, 8, cpu, masks_per_forward="auto")
    assert all(torch.equal(one[name], auto[name]) for name in masks)
    with pytest.raises(ValueError):
        masked_eval.masked_logits(model, task, masks, 8, cpu, masks_per_forward="many")


def test_masks_per_forward_flag_takes_auto_or_a_positive_count():
    import argparse

    from model_emotion.commands import cli

    assert cli.positive_int_or_auto("auto") == "auto" and cli.positive_int_or_auto("12") == 12
    for bad in ("0", "-3", "many", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.positive_int_or_auto(bad)


def test_ablation_kinds_equal_editing_the_model_by_hand(setup, shared):
    from ablation_checks import check_ablations_equal_hand_edits

    model, task = setup
    texts = [line.split("\t")[0] for line in (shared / "goemotions" / "dev.tsv").read_text().splitlines()[30:36]]
    check_ablations_equal_hand_edits(model, task, texts)


def test_mean_ablation_of_a_constant_neuron_equals_no_mask(setup, shared):
    from ablation_checks import check_mean_of_a_constant_neuron_changes_nothing

    model, task = setup
    ffn = find_ffn(model)
    saved = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in ffn.up]

    def constant(layer, unit):  # BERT's intermediate: GELU(W x + b); a zero row gives GELU(b) everywhere
        with torch.no_grad():
            ffn.up[layer].weight[unit] = 0
            ffn.up[layer].bias[unit] = 1.3
            ffn.down[layer].weight[:, unit] *= 20  # make the neuron matter, so that zeroing it shows

    texts = [line.split("\t")[0] for line in (shared / "goemotions" / "dev.tsv").read_text().splitlines()[30:34]]
    try:
        check_mean_of_a_constant_neuron_changes_nothing(model, task, texts, constant)
    finally:
        with torch.no_grad():
            for m, (w, b) in zip(ffn.up, saved):
                m.weight.copy_(w)
                m.bias.copy_(b)
