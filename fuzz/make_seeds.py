#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/TARGET/): small valid
inputs of each format, so that libFuzzer starts from accepted files and mutates
them. Run from anywhere: python3 fuzz/make_seeds.py"""
import json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def bytes_to_unicode():  # GPT-2's byte -> printable character map
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b), cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


# tokenizer.json: a byte-level BPE (GPT-2 / Llama 3 / Qwen style) and a
# sentencepiece-style BPE with byte fallback (Llama 2 / Mistral style).
chars = sorted(bytes_to_unicode().values())
vocab = {c: i for i, c in enumerate(chars)}
for m in ["Ġt", "he", "Ġthe", "in", "Ġa"]:
    vocab[m] = len(vocab)
byte_level = {
    "version": "1.0",
    "added_tokens": [{"id": len(vocab), "content": "<|end|>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": ["Ġ t", "h e", "Ġt he", "i n", "Ġ a"]},
}
put("tokenizer_json", "byte_level.json", json.dumps(byte_level))
sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256):
    sp_vocab[f"<0x{b:02X}>"] = len(sp_vocab)
for p in ["▁", "t", "h", "e", "▁t", "he", "▁the", "a", "▁a"]:
    sp_vocab[p] = len(sp_vocab)
sentencepiece = {
    "version": "1.0",
    "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True} for t, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2)]],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                       {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": None,
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
              "vocab": sp_vocab, "merges": [["▁", "t"], ["h", "e"], ["▁t", "he"], ["▁", "a"]]},
}
put("tokenizer_json", "sentencepiece.json", json.dumps(sentencepiece))

# One JSONL line of each TRL format the example parser accepts.
lines = {
    "standard": {"prompt": "What is 2+2?", "chosen": " 4", "rejected": " 5"},
    "conversational": {"prompt": [{"role": "user", "content": "Hi"}],
                       "chosen": [{"role": "assistant", "content": "Hello!"}],
                       "rejected": [{"role": "assistant", "content": "Go away."}]},
    "implicit_prompt": {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No"}]},
    "ranked": {"prompt": "Pick", "responses": ["a", "b", "c"]},
    "pretokenized": {"prompt_input_ids": [1, 2, 3], "chosen_input_ids": [4, 5], "rejected_input_ids": [6]},
}
for name, obj in lines.items():
    put("example_line", name + ".json", json.dumps(obj))

# config.json of each family.
base = {"vocab_size": 128, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 256, "torch_dtype": "bfloat16", "hidden_act": "silu"}
put("config_json", "llama3.json", json.dumps({**base, "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}))
put("config_json", "qwen2.json", json.dumps({**base, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "tie_word_embeddings": True, "rope_theta": 1000000.0}))
put("config_json", "mistral.json", json.dumps({**base, "architectures": ["MistralForCausalLM"], "model_type": "mistral",
    "sliding_window": 64, "head_dim": 8}))


# safetensors: header length, JSON header, data.
def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    for name, dtype, shape, size in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + size]}
        blob += bytes((i * 37) % 256 for i in range(size))
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


put("safetensors", "bf16.safetensors", safetensors([("a.weight", "BF16", [2, 3], 12), ("b", "F32", [4], 16)],
                                                    {"format": "pt"}))
put("safetensors", "f16_scalar.safetensors", safetensors([("s", "F16", [], 2), ("e", "F32", [0, 5], 0)]))
put("safetensors", "empty.safetensors", safetensors([]))

# trainer_state.json as duet train writes it into a checkpoint (indented): one
# process, data-parallel shards, and a seventh-session checkpoint with
# product_algorithms inside.
options = {"model": "models/llama-1b", "data": "data/prefs.jsonl", "out": "out/dpo", "tokenizer": "",
           "ref_model": "", "ref_cache": "", "eval_data": "", "eval_fraction": 0.0, "layout": "shared",
           "pack_tokens": 4096, "max_length": 1024, "max_prompt_length": 512, "chat_template": "auto",
           "on_error": "fail", "batch_size": 8, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
           "max_steps": -1, "num_train_epochs": 1.0, "learning_rate": 5e-7, "lr_scheduler_type": "linear",
           "warmup_ratio": 0.1, "warmup_steps": 0, "weight_decay": 0.0, "adam_beta1": 0.9, "adam_beta2": 0.999,
           "adam_epsilon": 1e-8, "max_grad_norm": 1.0, "seed": 42, "logging_steps": 10, "save_steps": 500,
           "save_total_limit": 2, "eval_steps": 0, "device": "cpu", "precision": "fp32",
           "precompute_ref_log_probs": False, "report_to": "none", "threads": 0, "gradient_checkpointing": False,
           "use_peft": False, "lora_r": 16, "lora_alpha": 32.0, "lora_dropout": 0.05,
           "lora_target_modules": ["q_proj", "v_proj"], "use_rslora": False, "adapter": "", "merge_adapter": False,
           "zero_stage": 0, "nccl_timeout": 600, "loss_type": ["sigmoid"], "beta": 0.1, "label_smoothing": 0.0}
fingerprints = {"model_xxh3": "3f2a9c0e5b1d7a46", "data_xxh3": "b07c11e2d94f3a58"}
state = {"global_step": 500, "epoch": 0, "step_in_epoch": 500,
         "loss_state": {"bco_reward_mean": 0.0, "bco_steps": 0}, "options": options,
         "fingerprints": fingerprints, "adam_steps": 500}
put("trainer_state", "one_process.json", json.dumps(state, indent=2) + "\n")
put("trainer_state", "sharded.json", json.dumps({**state, "global_step": 1200, "epoch": 2, "step_in_epoch": 13,
    "loss_state": {"bco_reward_mean": 0.4375, "bco_steps": 1200},
    "options": {**options, "loss_type": ["bco_pair"], "zero_stage": 1},
    "fingerprints": {**fingerprints, "adapter_xxh3": "0c1d2e3f40516273"},
    "adam_steps": 1200, "optimizer_shards": 4}, indent=2) + "\n")
put("trainer_state", "product_algorithms.json", json.dumps({**state, "product_algorithms":
    "gemm 2048x2048x4096 bf16 algo=21 tile=18 stages=12 splitk=1\ngemm 4096x2048x2048 bf16 algo=6 tile=20\n"},
    indent=2) + "\n")

# adapter_config.json: as peft's save_pretrained writes it (module names; full
# module paths after resolving "all-linear" on a small model), "all-linear",
# and as duet writes it.
peft = {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "meta-llama/Llama-3.2-1B",
        "bias": "none", "corda_config": None, "eva_config": None, "exclude_modules": None,
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": 32,
        "lora_bias": False, "lora_dropout": 0.05, "megatron_config": None, "megatron_core": "megatron.core",
        "modules_to_save": None, "peft_type": "LORA", "r": 16, "rank_pattern": {}, "revision": None,
        "target_modules": ["v_proj", "q_proj", "o_proj", "k_proj"], "task_type": "CAUSAL_LM",
        "trainable_token_indices": None, "use_dora": False, "use_rslora": False}
put("adapter_config", "peft.json", json.dumps(peft, indent=2))
put("adapter_config", "peft_full_paths.json", json.dumps({**peft, "r": 8, "lora_alpha": 16, "target_modules":
    [f"model.layers.{l}.{m}" for l in range(2) for m in ["mlp.down_proj", "self_attn.q_proj", "mlp.up_proj"]]},
    indent=2))
put("adapter_config", "all_linear.json", json.dumps({**peft, "target_modules": "all-linear", "use_rslora": True},
                                                    indent=2))
put("adapter_config", "duet.json", json.dumps({"alpha_pattern": {}, "auto_mapping": None,
    "base_model_name_or_path": "models/qwen2-0.5b", "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
    "init_lora_weights": True, "layers_pattern": None, "layers_to_transform": None, "lora_alpha": 12.5,
    "lora_dropout": 0.0, "modules_to_save": None, "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": None,
    "target_modules": ["q_proj", "v_proj", "down_proj"], "task_type": "CAUSAL_LM", "use_dora": False,
    "use_rslora": False}, indent=2) + "\n")

# The reference cache (duet ref): a header line, then one line per example.
ref_lines = [{"format": "duet-ref-cache/1", "weights_xxh3": "9e3779b97f4a7c15", "examples": 3},
             {"index": 0, "tokens_xxh3": "0123456789abcdef", "logps": [-12.53125, -17.0]},
             {"index": 1, "tokens_xxh3": "fedcba9876543210", "logps": [-3.25, -4.75]},
             {"index": 2, "tokens_xxh3": "00000000deadbeef", "logps": [-40.1, -38.9, -52.0]}]
put("ref_cache", "three_examples.jsonl", "".join(json.dumps(l, separators=(",", ":")) + "\n" for l in ref_lines))
put("ref_cache", "header_only.jsonl", json.dumps(ref_lines[0], separators=(",", ":")) + "\n")
