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
