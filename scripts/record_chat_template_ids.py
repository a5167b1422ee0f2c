#!/usr/bin/env python3
"""Records what Hugging Face gives for chat-templated preference examples, so that
duet's built-in chat templates (src/data/) can be checked against it.

  scripts/record_chat_template_ids.py --assets ASSETS [--out tests/data/chat_template_expected.json]

ASSETS is the folder scripts/fetch_test_assets.sh fills (tokenizers/<family>/ with
tokenizer.json and tokenizer_config.json). Run it where transformers is installed
(the GPU test machine: Python 3.12, transformers 5.x); commit the output file.

For every case (a tokenizer, a chat template, a prompt and k ranked responses) it
does what TRL's DPO preprocessing does:
  prompt   = apply_chat_template(prompt, add_generation_prompt=True)
  full_r   = apply_chat_template(prompt + response_r)
  prompt   = longest common prefix of prompt and every full_r
  response = full_r[len(prompt):]
and tokenizes each part separately with add_special_tokens=False. Plain-text
cases (no template) record tokenizer(prompt) (add_special_tokens=True) and
tokenizer(response, add_special_tokens=False) + [eos_token_id].

The templates are the official ones of each family (written out below; the tool
branches of Llama 3.1 are left out, which changes nothing without tools), except
qwen3, which is the tokenizer_config.json's own. The Llama 3 file in the assets
carries a variant that adds the assistant header even without
add_generation_prompt, so the official Llama 3 template is used instead (see
docs/data.md). Tokenizers are loaded with AutoTokenizer; the ids of
tokenizers.Tokenizer.from_file(tokenizer.json) are compared too and any
difference is recorded per case ("tokenizers_agree"): transformers 5 builds
LlamaTokenizer from its own class definition (Metaspace, no Prepend normalizer), so
for Llama 2 / Mistral a text that starts with a space differs from what the
tokenizer.json itself gives (which is what duet implements). Both sets of ids are
written: prompt_ids/response_ids (AutoTokenizer, what TRL would use) and
tokenizers_prompt_ids/tokenizers_response_ids (tokenizers.Tokenizer.from_file).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

LLAMA31 = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# (tokenizer family, duet template name, template source or None = the file's own)
TEMPLATES = [
    ("llama3", "llama3", LLAMA3),
    ("llama3", "llama3.1", LLAMA31),
    ("llama2", "llama2", LLAMA2),
    ("mistral", "mistral", MISTRAL),
    ("qwen3", "qwen2", QWEN2),
    ("qwen3", "qwen2.5", QWEN25),
    ("qwen3", "qwen3", None),
]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


SYSTEM = system("You are a concise assistant.")
CAPITAL = [user("What is the capital of France?")]
CAPITAL_ANSWERS = [[assistant("The capital of France is Paris.")], [assistant("I think it is Lyon.")]]
JOKE = [user("Hi!"), assistant("Hello! How can I help?"), user("Tell me a joke about cats.")]
JOKE_ANSWERS = [[assistant("Why did the cat sit on the computer? To keep an eye on the mouse.")], [assistant("No.")]]

CONVERSATIONS = [
    ("single_turn", CAPITAL, CAPITAL_ANSWERS),
    ("system", [SYSTEM] + CAPITAL, CAPITAL_ANSWERS),
    ("multi_turn", JOKE, JOKE_ANSWERS),
    ("multi_turn_system", [SYSTEM] + JOKE, JOKE_ANSWERS),
    ("whitespace", [user("  Spaces around the question?  \n")],
     [[assistant("\n  An answer with spaces around it.  \n")], [assistant("A plain answer.")]]),
    ("unicode", [user("¿Qué significa «naïve»? 日本語で説明してください。")],
     [[assistant("«Naïve» means innocent or unworldly 🙂")], [assistant("Je ne sais pas… 🤷")]]),
    ("think", [user("What is 6*7?"), assistant("<think>\nSimple.\n</think>\n\n42."), user("And 6*8?")],
     [[assistant("<think>\nSix times eight.\n</think>\n\nIt is 48.")], [assistant("It is 49.")]]),
    ("ranked", CAPITAL,
     [[assistant("Paris.")], [assistant("Paris, I believe.")], [assistant("Lyon.")]]),
]

PLAIN = [
    ("plain", "Translate to French: good morning", [" Bonjour", " Bonsoir"]),
    ("plain_unicode", "Résumé:\n  naïve café 日本語\n", ["Un résumé 🙂\n", "Rien."]),
    ("plain_ranked", "Name a prime number.", ["7", "9 is prime", "10"]),
]


def common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def ids(tok, text, add_special):
    return list(tok(text, add_special_tokens=add_special)["input_ids"])


def record_chat(tok, raw, family, name, template, conv_name, prompt, responses):
    kwargs = {"chat_template": template} if template is not None else {}
    try:
        prompt_text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True, **kwargs)
        fulls = [tok.apply_chat_template(prompt + r, tokenize=False, **kwargs) for r in responses]
    except Exception as e:  # the template rejects this conversation (e.g. mistral + system)
        print(f"  {family}/{name}/{conv_name}: skipped ({type(e).__name__}: {e})")
        return None
    for f in fulls:
        prompt_text = common_prefix(prompt_text, f)
    texts = [f[len(prompt_text):] for f in fulls]
    expected = {
        "prompt_text": prompt_text,
        "response_texts": texts,
        "prompt_ids": ids(tok, prompt_text, False),
        "response_ids": [ids(tok, t, False) for t in texts],
    }
    expected["tokenizers_prompt_ids"] = raw.encode(prompt_text, add_special_tokens=False).ids
    expected["tokenizers_response_ids"] = [raw.encode(t, add_special_tokens=False).ids for t in texts]
    agree = (expected["tokenizers_prompt_ids"] == expected["prompt_ids"]
             and expected["tokenizers_response_ids"] == expected["response_ids"])
    return {
        "name": f"{family}/{name}/{conv_name}",
        "tokenizer": family,
        "template_name": name,
        "chat_template": template if template is not None else tok.chat_template,
        "prompt": prompt,
        "responses": responses,
        "expected": expected,
        "tokenizers_agree": agree,
    }


def record_plain(tok, raw, family, case_name, prompt, responses):
    eos = tok.eos_token_id
    expected = {
        "prompt_text": prompt,
        "response_texts": responses,
        "prompt_ids": ids(tok, prompt, True),
        "response_ids": [ids(tok, r, False) + ([eos] if eos is not None else []) for r in responses],
    }
    expected["tokenizers_prompt_ids"] = raw.encode(prompt, add_special_tokens=True).ids
    expected["tokenizers_response_ids"] = [raw.encode(r, add_special_tokens=False).ids + ([eos] if eos is not None else [])
                                           for r in responses]
    agree = (expected["tokenizers_prompt_ids"] == expected["prompt_ids"]
             and expected["tokenizers_response_ids"] == expected["response_ids"])
    return {
        "name": f"{family}/none/{case_name}",
        "tokenizer": family,
        "template_name": None,
        "chat_template": None,
        "prompt": prompt,
        "responses": responses,
        "expected": expected,
        "tokenizers_agree": agree,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assets", required=True, help="the folder fetch_test_assets.sh filled")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                  "chat_template_expected.json"))
    args = ap.parse_args()

    import tokenizers
    import transformers
    from transformers import AutoTokenizer

    cases = []
    loaded = {}
    for family in sorted({f for f, _, _ in TEMPLATES}):
        folder = os.path.join(args.assets, "tokenizers", family)
        loaded[family] = (AutoTokenizer.from_pretrained(folder),
                          tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json")))
    for family, name, template in TEMPLATES:
        tok, raw = loaded[family]
        for conv_name, prompt, responses in CONVERSATIONS:
            case = record_chat(tok, raw, family, name, template, conv_name, prompt, responses)
            if case:
                cases.append(case)
    for family in sorted(loaded):
        tok, raw = loaded[family]
        for case_name, prompt, responses in PLAIN:
            cases.append(record_plain(tok, raw, family, case_name, prompt, responses))

    disagree = [c["name"] for c in cases if not c["tokenizers_agree"]]
    out = {
        "generator": "scripts/record_chat_template_ids.py",
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "cases": cases,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {args.out}")
    if disagree:
        print(f"note: AutoTokenizer and tokenizers.Tokenizer disagree on {len(disagree)} case(s): {disagree}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
