#!/usr/bin/env python3
"""Generates the chat-template fixtures under tests/fixtures/chat/.

The oracle is Python jinja2 as transformers runs it: apply_chat_template for whole chat
templates, and transformers' compiled-template environment (trim_blocks, lstrip_blocks, its
sandbox, tojson, raise_exception, strftime_now, namespace) for single constructs. The clock that
strftime_now reads is fixed (NOW), and the C++ tests fix theirs to the same time.

Outputs:
  templates.json    chat templates (SmolLM2's own, from the GGUF; the built-ins of
                    src/tokenizer/chat_builtin.cpp; templates written here in the shapes of the
                    Llama-3.1, Mistral, Llama-2, Qwen2.5 and DeepSeek-R1-distill ones, and one that
                    uses every supported construct) x conversations x add_generation_prompt, with
                    the rendered text or the error; a conversation with tools and tool calls for
                    the templates that render them
  jinja_cases.json  small templates, one construct each, rendered over one set of variables

Usage: /work/venv/bin/python tools/make_chat_fixtures.py [--gguf models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse
import datetime
import json
import os
import re

import gguf
import transformers.utils.chat_template_utils as ctu
from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "chat")
NOW = datetime.datetime(2024, 7, 26, 13, 5, 9)


class FixedClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


# transformers' strftime_now calls datetime.now() from its module at render time.
ctu.datetime = FixedClock

# ---- templates written for the tests, in the shapes of real ones (not copies of them)

LLAMA31_SHAPE = r"""{#- Llama-3.1 shape: a system header with the knowledge cutoff and today's date,
    tool definitions only when tools are given. -#}
{{- bos_token }}
{%- set ns = namespace(tools_in_user=true, date='26 Jul 2024') %}
{%- if tools_in_user_message is defined %}{% set ns.tools_in_user = tools_in_user_message %}{% endif %}
{%- if date_string is defined %}
    {%- set ns.date = date_string %}
{%- elif strftime_now is defined %}
    {%- set ns.date = strftime_now('%d %b %Y') %}
{%- endif %}
{%- if messages[0].role == 'system' %}
    {%- set system_text = messages[0].content | trim %}
    {%- set turns = messages[1:] %}
{%- else %}
    {%- set system_text = '' %}
    {%- set turns = messages %}
{%- endif %}
{%- macro tool_list() -%}
    {%- for t in tools %}
        {{- t | tojson(indent=4) ~ '\n\n' }}
    {%- endfor %}
{%- endmacro %}
{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}
{%- if tools is not none %}{{ 'Environment: ipython\n' }}{% endif %}
{{- 'Cutting Knowledge Date: December 2023\nToday Date: ' ~ ns.date ~ '\n\n' }}
{%- if tools is not none and not ns.tools_in_user %}
    {{- 'Call a function by answering with JSON {"name": ..., "parameters": {...}}.\n\n' }}
    {{- tool_list() }}
{%- endif %}
{{- system_text ~ '<|eot_id|>' }}
{%- if tools is not none and ns.tools_in_user %}
    {%- if turns | length == 0 %}
        {{- raise_exception('tools go into the first user message, and there is none') }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' }}
    {{- 'These functions are available; answer with a JSON function call.\n\n' }}
    {{- tool_list() }}
    {{- turns[0].content | trim ~ '<|eot_id|>' }}
    {%- set turns = turns[1:] %}
{%- endif %}
{%- for m in turns %}
    {%- if m.tool_calls is defined and m.tool_calls %}
        {%- if m.tool_calls | length != 1 %}
            {{- raise_exception('only one tool call per message is supported') }}
        {%- endif %}
        {%- set call = m.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
        {{- '{"name": "' ~ call.name ~ '", "parameters": ' ~ call.arguments | tojson ~ '}<|eot_id|>' }}
    {%- elif m.role in ['tool', 'ipython'] %}
        {{- '<|start_header_id|>ipython<|end_header_id|>\n\n' }}
        {{- (m.content | tojson if m.content is mapping else m.content) ~ '<|eot_id|>' }}
    {%- else %}
        {{- '<|start_header_id|>' ~ m.role ~ '<|end_header_id|>\n\n' ~ m.content | trim ~ '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""

MISTRAL_SHAPE = r"""{#- Mistral shape: [INST] turns, roles checked with raise_exception, the system
    message put in front of the last user message. -#}
{%- set ns = namespace(expect='user', last_user=-1) %}
{%- set system = messages | selectattr('role', 'equalto', 'system') | list %}
{%- set turns = messages | rejectattr('role', 'equalto', 'system') | list %}
{%- for m in turns %}
    {%- if m.role != ns.expect %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- set ns.expect = 'assistant' if ns.expect == 'user' else 'user' %}
    {%- if m.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}
{%- endfor %}
{{- bos_token }}
{%- for m in turns %}
    {%- if m.role == 'user' %}
        {%- if system and loop.index0 == ns.last_user %}
            {{- '[INST] ' ~ system[0].content ~ '\n\n' ~ m.content ~ '[/INST]' }}
        {%- else %}
            {{- '[INST] ' ~ m.content ~ '[/INST]' }}
        {%- endif %}
    {%- else %}
        {{- ' ' ~ m.content ~ eos_token }}
    {%- endif %}
{%- endfor %}"""

LLAMA2_SHAPE = r"""{#- Llama-2 shape: <<SYS>> folded into the first user turn, BOS and EOS around
    each exchange. -#}
{%- if messages[0]['role'] == 'system' -%}
    {%- set loop_messages = messages[1:] -%}
    {%- set system_message = messages[0]['content'] -%}
{%- else -%}
    {%- set loop_messages = messages -%}
    {%- set system_message = false -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif -%}
    {%- if loop.index0 == 0 and system_message != false -%}
        {%- set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] -%}
    {%- else -%}
        {%- set content = message['content'] -%}
    {%- endif -%}
    {%- if message['role'] == 'user' -%}
        {{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}
    {%- elif message['role'] == 'assistant' -%}
        {{ ' ' + content.strip() + ' ' + eos_token }}
    {%- endif -%}
{%- endfor -%}"""

QWEN25_SHAPE = r"""{#- Qwen2.5 shape: ChatML, a default system prompt, tool blocks. -#}
{%- set default_system = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' %}
{%- set has_system = messages[0]['role'] == 'system' %}
{%- if tools %}
    {{- '<|im_start|>system\n' ~ (messages[0]['content'] if has_system else default_system) }}
    {{- '\n\n# Tools\n\nYou may call one or more functions. Their signatures are in <tools></tools>:\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' ~ tool | tojson }}
    {%- endfor %}
    {{- '\n</tools>\n\nAnswer a call as <tool_call>\n{"name": <name>, "arguments": <args>}\n</tool_call><|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\n' ~ (messages[0]['content'] if has_system else default_system) ~ '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) or (message.role == 'assistant' and not message.tool_calls) %}
        {{- '<|im_start|>' ~ message.role ~ '\n' ~ message.content ~ '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant' }}
        {%- if message.content %}{{ '\n' ~ message.content }}{% endif %}
        {%- for call in message.tool_calls %}
            {%- if call.function is defined %}{% set call = call.function %}{% endif %}
            {{- '\n<tool_call>\n{"name": "' ~ call.name ~ '", "arguments": ' ~ call.arguments | tojson ~ '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{ '<|im_start|>user' }}{% endif %}
        {{- '\n<tool_response>\n' ~ message.content ~ '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{ '<|im_end|>\n' }}{% endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"""

DEEPSEEK_R1_SHAPE = r"""{#- DeepSeek-R1-distill shape: namespace state, reasoning cut out of earlier
    answers with split('</think>')[-1], <think> opened for the answer. -#}
{%- if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}
{%- set ns = namespace(system='', in_tool=false) %}
{%- for m in messages %}
    {%- if m['role'] == 'system' %}{% set ns.system = ns.system ~ m['content'] %}{% endif %}
{%- endfor %}
{{- bos_token ~ ns.system }}
{%- for m in messages %}
    {%- if m['role'] == 'user' %}
        {%- if ns.in_tool %}{{ '<｜tool▁outputs▁end｜>' }}{% set ns.in_tool = false %}{% endif %}
        {{- '<｜User｜>' ~ m['content'] }}
    {%- elif m['role'] == 'assistant' %}
        {%- set content = m['content'] if m['content'] is not none else '' %}
        {%- if '</think>' in content %}
            {%- set content = content.split('</think>')[-1] %}
        {%- endif %}
        {%- if ns.in_tool %}{{ '<｜tool▁outputs▁end｜>' }}{% set ns.in_tool = false %}{% endif %}
        {{- '<｜Assistant｜>' ~ content }}
        {%- for call in m['tool_calls'] | default([]) %}
            {{- '<｜tool▁call▁begin｜>' ~ call['function']['name'] ~ '\n```json\n' ~ call['function']['arguments'] | tojson ~ '\n```<｜tool▁call▁end｜>' }}
        {%- endfor %}
        {{- eos_token }}
    {%- elif m['role'] == 'tool' %}
        {%- if not ns.in_tool %}{{ '<｜tool▁outputs▁begin｜>' }}{% set ns.in_tool = true %}{% endif %}
        {{- '<｜tool▁output▁begin｜>' ~ m['content'] ~ '<｜tool▁output▁end｜>' }}
    {%- endif %}
{%- endfor %}
{%- if ns.in_tool %}{{ '<｜tool▁outputs▁end｜>' }}{% endif %}
{%- if add_generation_prompt and not ns.in_tool %}{{ '<｜Assistant｜><think>\n' }}{% endif %}"""

EVERY_CONSTRUCT = r"""{#- A made-up format that uses every construct the interpreter supports. -#}
{%- macro turn(role, text, index, total=0) -%}
### {{ role | upper }} ({{ index }}/{{ total }})
{{ text | trim }}
{%- endmacro %}
{%- set ns = namespace(users=0, chars=0, last_user=-1) %}
{%- for m in messages %}
    {%- if m.role == 'user' %}{% set ns.users = ns.users + 1 %}{% set ns.last_user = loop.index0 %}{% endif %}
    {%- set ns.chars = ns.chars + m.content | length %}
{%- endfor %}
{%- set roles = messages | map(attribute='role') | unique | list %}
[roles: {{ roles | join(', ') }}; users: {{ ns.users }}; characters: {{ ns.chars }}; last user: {{ ns.last_user }}]
{% for m in messages if m.role != 'system' %}
{{ turn(m.role, m.content, loop.index, total=loop.length) }}
    {%- if loop.first %} (first){% elif loop.last %} (last; {{ loop.revindex0 }} after){% else %} ({{ loop.index0 }}, previous: {{ loop.previtem.role }}){% endif %}
{% else %}
(no turns)
{% endfor %}
{%- set system = messages | selectattr('role', 'equalto', 'system') | first %}
{%- if system is defined %}
system: {{ system.content[:12] ~ ('...' if system.content | length > 12 else '') }} ({{ system.content.split() | length }} words)
{% endif %}
{%- set summary %}{{ messages | length }} message{{ 's' if messages | length != 1 }} by {{ roles | length }} roles{% endset %}
{{ summary | title }};
{%- for key, value in messages[-1].items() %} {{ key }}={{ value | tojson }}{% endfor %}
{%- for i in range(6) %}{% if i == 1 %}{% continue %}{% endif %}{% if i > 3 %}{% break %}{% endif %} {{ i }}{{ ',' if not loop.last }}{% endfor %}
{%- filter upper %} (end of {{ bos_token | default('no bos', true) }}){% endfilter %}
{%- if add_generation_prompt %}
### ASSISTANT
{% endif %}"""

SHAPES = {
    "llama31_shape": (LLAMA31_SHAPE, "<|begin_of_text|>", "<|eot_id|>"),
    "mistral_shape": (MISTRAL_SHAPE, "<s>", "</s>"),
    "llama2_shape": (LLAMA2_SHAPE, "<s>", "</s>"),
    "qwen25_shape": (QWEN25_SHAPE, None, "<|im_end|>"),
    "deepseek_r1_shape": (DEEPSEEK_R1_SHAPE, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "every_construct": (EVERY_CONSTRUCT, "<s>", "</s>"),
}
# bos/eos the built-ins are checked with (their model families' special tokens).
BUILTIN_TOKENS = {"chatml": ("<|im_start|>", "<|im_end|>"), "llama2": ("<s>", "</s>"),
                  "llama3": ("<|begin_of_text|>", "<|eot_id|>"), "mistral": ("<s>", "</s>")}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi!"}],
    [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And 3+3?"}],
    [{"role": "system", "content": "  Be nice.  \n"}, {"role": "user", "content": "  padded question \n\n"},
     {"role": "assistant", "content": "\tanswer "}, {"role": "user", "content": "next"}],
    [{"role": "system", "content": "Think first, then answer briefly."},
     {"role": "user", "content": "Line one\nLine two 中文 😀"},
     {"role": "assistant", "content": "<think>\nreasoning here\n</think>\n\nThe answer."},
     {"role": "user", "content": "Thanks <|im_end|> <|eot_id|>"}],
    [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    [{"role": "system", "content": "Only a system prompt."}],
    [{"role": "user", "content": ""}],
]

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}]
TOOL_CONVERSATION = [
    {"role": "system", "content": "Use tools when they help."},
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
        "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
    {"role": "tool", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
    {"role": "assistant", "content": "<think>easy</think>It is 21 °C and clear."},
    {"role": "user", "content": "Thanks!"},
]
TOOL_TEMPLATES = ["llama31_shape", "qwen25_shape", "deepseek_r1_shape"]

# ---- single constructs, rendered over VARS

VARS = {
    "messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": " hi there \n"},
                 {"role": "assistant", "content": "<think>hmm</think>Hello!"},
                 {"role": "user", "content": "Ünïcödé 😀"}],
    "add_generation_prompt": True, "bos_token": "<s>", "eos_token": "</s>", "tools": None,
    "documents": None,
    # not passed by transformers: values of other JSON types, for the constructs below
    "data": {"z": 1, "a": [True, None, 1.5, "s", {"k": [], "e": {}}]}, "big": 9007199254740993,
}

CONSTRUCTS = r"""
{{ data }}|{{ big + 1 }}|{{ data | tojson }}|{{ data.a[4].k | length }}|{{ data['z'] * -3 }}
====
{% set x = 1 %}{% for i in [1,2] %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}
====
{% for i in [1,2,3] %}{% if loop.first %}{% set y = 5 %}{% endif %}[{{ y }}]{% endfor %}
====
{% macro m() %}[{{ x }}]{% endmacro %}{% set x = 1 %}{{ m() }}{% set x = 2 %}{{ m() }}
====
{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }}{{ greet('b', punct='?') }}{{ greet(name='c') }}{{ greet() }}
====
{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, b=4) }}|{{ m(1) }}|{{ m }}|{{ [m] }}
====
{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}
====
{% for i in [1, 2] %}{% macro show() %}{{ i }}:{{ later }}{% endmacro %}{% set later = i * 10 %}{{ show() }};{% endfor %}

====
{% set k %}{% set y = 1 %}{% macro inner() %}in{% endmacro %}{{ inner() }}{% endset %}[{{ k }}|{{ y }}|{{ inner is defined }}]{% filter upper %}{% set z = 2 %}{% endfilter %}[{{ z }}]{% generation %}{% set w = 3 %}{% endgeneration %}[{{ w }}]{% if true %}{% set v = 4 %}{% endif %}[{{ v }}]
====
{% set x = 1 %}{% set k %}{% set x = x + 1 %}{{ x }}{% endset %}{{ k }}{{ x }}{% with x = x + 5 %}{{ x }}{% endwith %}{{ x }}
====
{% macro fact(n) %}{{ 1 if n <= 1 else n * fact(n - 1)|int }}{% endmacro %}{{ fact(5) }}
====
{% for i in [1,2] %}{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('a','b') }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.depth }}{{ loop.depth0 }}{{ loop.length }}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }};{% endfor %}
====
{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}
====
{% for m in [1,2,3,4] if m != 2 %}{{ loop.index }}/{{ loop.length }}{% endfor %}
====
{% for x in [] %}a{% else %}empty{% endfor %}{% for x in [1] if x > 5 %}a{% else %}filtered{% endfor %}
====
{% for i in range(10) %}{% if i == 3 %}{% continue %}{% endif %}{% if i == 6 %}{% break %}{% endif %}{{ i }}{% endfor %}
====
{% for k in {'a':1,'b':2} %}{{ k }}{% endfor %}{% for k, v in {'a':1,'b':2}.items() %}{{ k }}={{ v }}{% endfor %}{% for k, v in {'b':1,'a':2}|dictsort %}{{ k }}{% endfor %}{% for k, v in {'b':1,'a':2}|items %}{{ k }}{% endfor %}
====
{% for a, b in [(1, 2), (3, 4)] %}{{ a }}{{ b }}{% endfor %}{% for a, (b, c) in [(1, (2, 3))] %}{{ a }}{{ b }}{{ c }}{% endfor %}
====
{% for a, b in [(1, 2, 3)] %}{% endfor %}
====
{% for c in 'héllo' %}{{ c }}.{% endfor %}
====
{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{{ (1,) }}{{ 1, 2 }}{{ () }}
====
{% set s %}  block {{ 1 }}  {% endset %}[{{ s }}]{% set t | trim | upper %}  x  {% endset %}[{{ t }}]
====
{% filter upper %}abc {{ 'd' }}{% endfilter %}
====
{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}
====
{% generation %}generated {{ 1 }}{% endgeneration %}
====
{% set ns = namespace(found=false, count=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.count = ns.count + 1 %}{% endif %}{% endfor %}{{ ns.found }}{{ ns.count }}{{ ns }}
====
{% set ns = namespace() %}{{ ns.missing is defined }}{{ ns.missing }}{% set ns2 = namespace({'a': 1}, b=2) %}{{ ns2.a }}{{ ns2.b }}
====
{% if x %}{% elif messages %}elif{% else %}else{% endif %}{% if false %}a{% elif false %}b{% elif true %}c{% endif %}
====
{{ 'a' if true }}{{ 'b' if false }}|{{ 1 if false else 2 if false else 3 }}
====
{{ none }}{{ true }}{{ True }}{{ false }}{{ None }}{{ 'x' if false }}|{{ undefined_x is none }}
====
{{ 1.0 }}{{ -0.0 }}{{ 1e20 }}{{ 1e16 }}{{ 1e15 }}{{ 0.0001 }}{{ 0.00001 }}{{ 0.1 + 0.2 }}{{ 1/3 }}{{ 2.5e-5 }}{{ 123456789012345678.0 }}{{ 1e300*1e300 }}{{ -(1e300*1e300) }}{{ 1e300*1e300 - 1e300*1e300 }}
====
{{ 0x1F }}{{ 0b101 }}{{ 0o17 }}{{ 1_000 }}{{ 1e3 }}{{ 1.5e-3 }}{{ 1E2 }}{{ 12.50 }}
====
{{ 'x' * 3 }}{{ 3 * '-' }}{{ 7 // -2 }}{{ -7 % 3 }}{{ 7 / 2 }}{{ 2 ** 10 }}{{ 2**0.5 }}{{ 2 ** -1 }}{{ 10 // 3.0 }}{{ -7.5 % 2 }}{{ 'ab' * -1 }}{{ [1] * 2 }}{{ true + 1 }}
====
{{ 5 - 3 - 1 }}{{ 2 * 3 + 4 }}{{ 2 + 3 * 4 }}{{ -2 ** 2 }}{{ 2 ** 3 ** 2 }}{{ 10 / 4 }}{{ 10 // 4 }}{{ -10 // 4 }}{{ 10 % -3 }}{{ 1 - -1 }}{{ +3 }}
====
{{ 'a' ~ 'b' ~ 1 + 2 }}
====
{{ 'x' ~ none ~ true ~ 1.50 ~ [1] ~ undefined_x ~ {'a': 1} }}
====
{{ [1,2] + [3] }}{{ (1, 2) + (3,) }}{{ 'ab' + 'cd' }}
====
{{ 1 + 'a' }}
====
{{ 3 / 0 }}
====
{{ 7 % 0 }}
====
{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 1 != 2 == True }}{{ 'a' not in 'b' }}{{ not 1 in [1] }}{{ 2 >= 2 }}{{ 1 <= 0 }}
====
{{ none == none }}{{ 'abc' < 'abd' }}{{ [1,2] < [1,3] }}{{ 1 == 1.0 }}{{ true == 1 }}{{ 1 in [1.0] }}{{ 'a' in 'cat' }}{{ 'a' in {'a':1} }}{{ [1,2] == (1,2) }}{{ {'a': 1} == {'a': 1.0} }}{{ [1, [2]] == [1, [2]] }}
====
{{ 1 < 'a' }}
====
{{ 0 or 'x' }}{{ 'a' and 'b' }}{{ none or '' }}{{ [] or {} }}{{ 1 and 0 }}{{ not '' }}
====
{{ messages[-1].role }}{{ messages.0.role }}{{ messages.1['content'] }}{{ messages[0]['role'] }}
====
{{ [1,2,3][1:] }}{{ 'abc'[::-1] }}{{ 'héllo'[1] }}{{ 'héllo'[1:3] }}{{ [1,2,3][5:] }}{{ 'abc'[-10:2] }}{{ [1,2,3,4,5][::2] }}{{ [1,2,3,4,5][3:0:-1] }}{{ (1, 2)[0] }}{{ [1,2,3][-1] }}{{ (1,2,3)[1:] }}
====
{{ [1][5] }}|{{ 'ab'[5] }}|{{ {'a':1}['b'] }}|{{ [1]['x'] }}|{{ 'ab'[true] }}|{{ none.x }}|{{ (1).x is defined }}
====
{{ messages[0].nope }}|{{ messages[0].nope is defined }}
====
{{ messages[0].nope.x }}
====
{{ foo.bar }}
====
{{ undefined_x + 'a' }}
====
{{ undefined_x[0] }}
====
{{ undefined_x() }}
====
{{ undefined_x < 1 }}
====
{{ undefined_x|int }}
====
{{ undefined_x|tojson }}
====
{{ 'a' in undefined_x }}{{ undefined_x == 1 }}{{ undefined_x != 1 }}{{ not undefined_x }}{{ undefined_x and 1 }}|{{ undefined_x or 'd' }}{{ undefined_x is iterable }}{{ undefined_x is sequence }}{{ undefined_x is callable }}{{ undefined_x|list }}{{ undefined_x|first }}|{{ undefined_x|join }}|{{ undefined_x|items|list }}{{ undefined_x|string }}{{ undefined_x|length }}{{ undefined_x|upper }}{{ undefined_x|default('d') }}{{ undefined_x|map('upper')|list }}{{ undefined_x|selectattr('a')|list }}{{ undefined_x|last }}{{ undefined_x|sort }}{{ undefined_x|replace('a','b') }}{{ undefined_x|capitalize }}{{ undefined_x|unique|list }}{{ undefined_x|trim }}
====
{% for x in undefined_x %}a{% else %}E{% endfor %}
====
{% for x in none %}{% endfor %}
====
{{ x is not defined }}{{ messages is not none }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 'a' is string }}{{ 1 is number }}{{ 1.0 is float }}{{ 1 is integer }}{{ true is boolean }}{{ true is integer }}{{ true is number }}{{ none is none }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 1 is in [1,2] }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}{{ 1 is ge 1 }}{{ 1 is lt 2 }}{{ 1 is le 0 }}{{ 1 is ne 1 }}{{ 2 is greaterthan 1 }}{{ 1 is lessthan 2 }}{{ 1 is equalto 1 }}{{ true is true }}{{ false is false }}{{ x is undefined }}
====
{{ messages is iterable }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ messages is sequence }}{{ messages[0] is mapping }}{{ namespace() is mapping }}{{ range is callable }}{{ messages is callable }}{{ 1 is iterable }}{{ 'a' is sequence }}{{ {'a': 1}.keys() is sequence }}{{ none is sameas none }}{{ 1 is escaped }}
====
{{ [1, 'a', None, True, 1.5, {'a': "it's"}, (1,), ()] }}{{ {'a':1}.items() }}{{ {'a':1}.keys() }}{{ {'a':1}.values() }}{{ range(3) }}{{ range(1, 7, 2) }}{{ dict(a=1, b=[2]) }}
====
{{ messages[0] }}{{ messages }}
====
{{ "tab\there" }}{{ 'quote"s' }}{{ ['quote"s', "it's", 'bo"th\'s', 'new\nline', '\x00\x1f\x7f\x80\xa0\u200b\u3000é😀\\'] }}
====
{{ "\x41\u00e9\U0001F600\101\q\
x" }}{{ 'a' 'b' }}{{ 'it''s' }}{{ "multi
line" }}
====
{{ "{{" }} {{ '}}' }} {{ {'a': {'b': 1}} }} {{ {'a': 1}['a'] }}
====
{{ '%s' % 1 }}{{ '%s-%d' % ('a', 2) }}{{ '%r' % 'x' }}{{ '100%%' % () }}{{ '%s'|format('x') }}{{ "%s and %s"|format(1, [2]) }}
====
{{ '{} {}'.format(1, 'x') }}{{ '{0}{1}{0}'.format('a', 'b') }}{{ '{name}!'.format(name='n') }}{{ '{{}}'.format() }}{{ '{!r}'.format('q') }}
====
{{ ' a  b '.split() }}{{ 'a,b,,c'.split(',') }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ '1 2 3'.split(' ', 1) }}{{ ''.split() }}{{ ''.split(',') }}{{ 'a  b'.split(' ') }}{{ '  a b  '.rsplit(None, 1) }}{{ '  a b  c  '.split(None, 1) }}{{ 'a\nb\r\nc'.splitlines() }}{{ 'a\nb'.splitlines(true) }}
====
{{ '  x  '.strip() }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ 'xyx'.rstrip('x') }}|{{ 'xxaxx'.strip('x') }}|{{ 'abc'.startswith(('x','a')) }}|{{ 'abc'.endswith('bc') }}|{{ 'abc'.startswith('b') }}
====
{{ 'abc'.find('c') }}{{ 'abc'.find('z') }}{{ 'abcabc'.rfind('b') }}{{ 'aaa'.count('a') }}{{ 'héllo'.index('l') }}{{ '-'.join(['a','b']) }}{{ ''.join('abc') }}{{ '12'.isdigit() }}{{ 'a1'.isdigit() }}{{ ' '.isspace() }}{{ 'ab'.islower() }}{{ 'AB'.isupper() }}{{ 'ab'.removeprefix('a') }}{{ 'ab'.removesuffix('b') }}
====
{{ 'hello world'.title() }}{{ "they're bill's friends"|title }}{{ "they're bill's friends".title() }}{{ 'HeLLo'.capitalize() }}{{ 'abc'.upper() }}{{ 'ABC'|lower }}{{ 'aXbX'.replace('X','y',1) }}{{ 'abc'|replace('','-') }}{{ 'a b-c(d [e <f {g'|title }}{{ 'hello World'|capitalize }}{{ 'éÉ'.upper() }}{{ 'ÉÀ'.lower() }}
====
{{ messages[0]['content'].split('.')[0] }}{{ messages[2].content.split('</think>')[-1] }}{{ messages[2].content.split('</think>')[0].lstrip('<think>') }}{{ messages[1].content.strip() }}
====
{{ "a\u00e9\n"|tojson }}{{ {'a':[1,2]}|tojson(indent=2) }}{{ "a\u2028\x7f\x01\"\\/"|tojson }}{{ "é😀"|tojson(true) }}{{ [1,2]|tojson(indent='ab') }}{{ {'a':1,'b':[]}|tojson(indent=0) }}{{ {1:2, none:4, 1.5: 1, true: 3}|tojson }}
====
{{ {'a': {'b': [1, {'c': 'd'}], 'e': {}}}|tojson(indent=4) }}{{ {'a': 1, 'b': 2}|tojson(separators=(',', ':')) }}{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}{{ [1.5, 1e20, none, true, 'x']|tojson }}{{ messages[3].content|tojson }}{{ messages[3].content|tojson(ensure_ascii=True) }}{{ (1, 2)|tojson }}
====
{{ [1, 'b']|string }}{{ [1,2]|join }}{{ [{'n':'a'},{'n':'b'}]|join(', ', attribute='n') }}{{ ['a', 1, none, true]|join }}{{ []|join('x') }}{{ 'abc'|join('-') }}
====
{{ '3.7'|int }}{{ 'abc'|int }}{{ '  12 '|int }}{{ '1_000'|int }}{{ 3.9|int }}{{ true|int }}{{ '0x1A'|int }}{{ '0x1A'|int(base=16) }}{{ 'z'|int(7) }}{{ none|int }}{{ '-3'|int }}{{ '1e3'|int }}
====
{{ '1e3'|float }}{{ ' 4.5 '|float }}{{ 'x'|float }}{{ 'inf'|float }}{{ '1e400'|float }}{{ 3|float }}{{ '1_0.5'|float }}{{ '.5'|float }}{{ '5.'|float }}{{ 'nan'|float }}{{ 'x'|float(1.5) }}
====
{{ 10|round }}{{ 2.5|round }}{{ 3.5|round }}{{ 3.14159|round(2) }}{{ 2.675|round(2) }}{{ 2.5|round(0,'floor') }}{{ 2.1|round(0,'ceil') }}{{ -2.5|round }}{{ 1234.5|round(-2) }}{{ (-3)|abs }}{{ -3.5|abs }}
====
{{ messages|length }}{{ messages|count }}{{ 'abc'|length }}{{ {'a':1}|length }}{{ 'héllo😀'|length }}{{ messages[3].content|length }}
====
{{ messages|map(attribute='role')|list }}{{ messages|map(attribute='zzz')|list }}{{ messages|map(attribute='zzz', default='d')|list }}{{ ['a','b']|map('upper')|join }}{{ [[1,2]]|map('first')|list }}{{ [-3]|map('abs')|list }}{{ ['a,b']|map('replace', ',', ';')|list }}
====
{{ messages|selectattr('role','equalto','user')|list|length }}{{ [1,2,3]|select('odd')|list }}{{ [0,1,'',2]|select|list }}{{ [0,1,'',2]|reject|list }}{{ messages|rejectattr('role','defined')|list }}{{ messages|selectattr('role', 'in', ['user', 'system'])|map(attribute='content')|join(' | ') }}{{ messages|rejectattr('role', 'equalto', 'system')|list|length }}{{ [1,5,3]|select('>', 2)|list }}
====
{% if messages|selectattr('role','eq','x') %}generator is true{% endif %}{% set g = messages|map(attribute='role') %}{{ g|list }}{{ g|list }}
====
{{ messages|selectattr('role','eq','x')|length }}
====
{{ (messages|first).role }}{{ [3,1,2]|sort }}{{ ['b','A','a']|sort }}{{ ['b','A','a']|sort(case_sensitive=true) }}{{ ['b','A','a']|unique|list }}{{ [3,1]|sort(reverse=true) }}{{ [{'a':3},{'a':1}]|sort(attribute='a') }}{{ [{'a':3},{'a':1}]|map(attribute='a')|max }}{{ {'b':1,'a':2}|dictsort(by='value') }}{{ {'B':1,'a':2}|dictsort }}{{ {'b':1,'a':2}|dictsort(reverse=true) }}
====
{{ [1,2,3]|sum }}{{ []|max }}{{ [1,5]|max }}{{ [4,2]|min }}{{ ['b','A']|max }}{{ [1.5, 2]|sum }}{{ [1,2]|sum(start=10) }}{{ [{'a':1},{'a':2}]|sum(attribute='a') }}{{ 'a'|list }}{{ {'a':1}|list }}{{ (1,2)|list }}
====
{{ 'abc'|first }}{{ 'abc'|last }}{{ [1,2,3]|first }}{{ [1,2,3]|last }}{{ [1,2]|reverse|list }}{{ 'abc'|reverse }}{{ []|first }}|{{ {'a': 1, 'b': 2}|last }}
====
{{ messages[-1]['content'] | default('none', true) }}{{ '' | default('E', true) }}{{ '' | default('E') }}{{ none | default('N') }}{{ undefined_thing | d('U') }}{{ 0|default(5, boolean=true) }}
====
{{ 'x'|indent(2) }}|{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent('> ', blank=true) }}|{{ 'a\n'|indent }}
====
{{ ' x '|trim }}|{{ 'xxyxx'|trim('x') }}|{{ '\u3000x\xa0'|trim }}|{{ 5|trim }}|{{ '<b>'|safe }}{{ 5|string }}{{ messages[0]|attr('role') }}
====
{{ range(5)|list }}{{ range(2, 5)|list }}{{ range(10, 0, -3)|list }}{{ range(0)|list }}{{ range(3)|length }}{{ dict(a=1) }}{{ dict({'x': 1}, y=2) }}{{ dict([('k', 'v')]) }}{{ namespace(a=1).a }}{{ {'a':1}.get('b', 2) }}{{ {'a':1}.get('a') }}{{ {'a':1}.get('b') }}{{ [1, 2, 1].count(1) }}{{ [1, 2].index(2) }}{{ {'a': 1}.copy() }}
====
{{ false | map(attribute='x') | list }}{{ 0 | select | list }}{{ none | selectattr('a') | list }}{{ '' | rejectattr('a') | list }}
====
{{ 'a' % data }}|{{ '%s' % data }}|{{ 'x' % [] }}|{{ '%s|%s' % (1, none) }}|{{ '' % undefined_x }}
====
{% set n = 2 %}{{ (-1) ** n }}|{{ (-2) ** 3 }}|{{ -2 ** n }}|{{ (-1) ** 2 }}
====
{{ messages | unique | list }}
====
{{ [1] | indent }}
====
{{ 1e3 ** 1e3 }}
====
{{ data[1:] }}
====
{{ range(200000)|length }}
====
{% set l = [1] %}{{ l.append(2) }}{{ l }}
====
{{ {'a': 1}.update({'b': 2}) }}
====
{{ bos_token }}{{ eos_token }}{{ tools }}{{ documents }}{{ add_generation_prompt }}{{ pad_token }}|{{ tools is none }}{{ tools is defined }}
====
{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %a %y %p %%') }}
====
{{ raise_exception('bad role: ' ~ 'x') }}
====
{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% endfor %}
====
a
  {% if true %}
  b
  {% endif %}
c
====
  {%- if true -%}
  x
  {%- endif -%}
  
====
{% for i in [1,2] %}
  {{ i }}
{% endfor %}
====
  {# comment #}
x {# inline #} y
    {#- strip -#}   z
====
{%+ if true %}keep{% endif %}
  {%+ if true %}indented{% endif +%}
after
====
   {{ 'var is not lstripped' }}
  {% set x = 1 %}   
tail
====
line1
{%- if true %}
line2
{% endif -%}
line3
====
{% if true %}{% endif %}

two newlines above
====
text with trailing newline

====
x{%- if true -%}
   

   y{%- endif %}
====
	{% if true %}tab-indented{% endif %}
  text  {% if true %}not start of line{% endif %}
====
{{ "unicode space" }}　{%- if true %}X{% endif %}
====
{% macro m(x) -%}
  [{{ x }}]
{%- endmacro %}
{{ m(1) }}
{{ m(2) }}
====
{% raw -%}
   {{ raw }}
{%- endraw %}
after
====
{% raw %}{{ not parsed }}{% endraw %}  {%- raw -%}  a  {%- endraw %}
b
====
{# multi
line
comment #}after
====
{%- for m in messages -%}
  <{{ m.role }}>
  {%- if m.role == 'user' %}
    {{ m.content | trim }}
  {% else %}
{{ m.content }}
  {%- endif %}
{% endfor %}
"""


def write_json(name, obj):
    """Compact, with one line per top-level entry and per case, so diffs stay readable."""
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, (key, value) in enumerate(obj.items()):
            f.write(json.dumps(key) + ": ")
            if key == "cases":
                f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in value) + "\n]")
            elif key == "templates":
                f.write("{\n" + ",\n".join(json.dumps(n) + ": " + json.dumps(t, ensure_ascii=False)
                                            for n, t in value.items()) + "\n}")
            else:
                f.write(json.dumps(value, ensure_ascii=False))
            f.write(",\n" if k + 1 < len(obj) else "\n")
        f.write("}\n")


def builtin_templates():
    src = open(os.path.join(ROOT, "src", "tokenizer", "chat_builtin.cpp"), encoding="utf-8").read()
    found = dict(re.findall(r'\{"([\w.]+)",\s*R"jinja\((.*?)\)jinja"\}', src, re.S))
    assert set(found) == set(BUILTIN_TOKENS), f"built-ins in chat_builtin.cpp: {sorted(found)}"
    return found


def hf_tokenizer(bos, eos):
    return PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(ROOT, "tests", "fixtures", "tokenizer", "llama3_tokenizer.json"),
        bos_token=bos, eos_token=eos)


def render_chat(tok, source, messages, gen, tools=None):
    """apply_chat_template's text, or the error it raises."""
    try:
        text = tok.apply_chat_template(messages, tools=tools, chat_template=source, tokenize=False,
                                       add_generation_prompt=gen)
        return {"expected": text}
    except Exception as e:  # the template's raise_exception is a jinja2 TemplateError
        return {"error": f"{type(e).__name__}: {e}", "raised": type(e).__name__ == "TemplateError"}


def template_fixtures(smol_source):
    templates = {"smollm2": (smol_source, "<|im_start|>", "<|im_end|>")}
    for name, src in builtin_templates().items():
        templates["builtin:" + name] = (src, *BUILTIN_TOKENS[name])
    templates.update(SHAPES)
    cases = []
    rendered = {}
    for name, (src, bos, eos) in templates.items():
        tok = hf_tokenizer(bos, eos)
        for ci, conv in enumerate(CONVERSATIONS):
            for gen in (False, True):
                r = render_chat(tok, src, conv, gen)
                rendered[(name, ci, gen)] = r
                cases.append({"template": name, "conversation": ci, "add_generation_prompt": gen,
                              **r})
        if name in TOOL_TEMPLATES:
            for gen in (False, True):
                r = render_chat(tok, src, TOOL_CONVERSATION, gen, tools=TOOLS)
                cases.append({"template": name, "conversation": "tools", "add_generation_prompt": gen,
                              **r})
    # The built-ins render what the families' templates render.
    for builtin, shape in [("builtin:llama2", "llama2_shape")]:
        for key, r in rendered.items():
            if key[0] == builtin:
                assert r == rendered[(shape,) + key[1:]], (builtin, key)
    meta_llama3 = json.load(open(os.path.join(ROOT, "tests", "fixtures", "tokenizer",
                                              "chat_golden.json")))["templates"]["llama3"]
    tok = hf_tokenizer("<|begin_of_text|>", "<|eot_id|>")
    for ci, conv in enumerate(CONVERSATIONS):
        for gen in (False, True):
            assert render_chat(tok, meta_llama3, conv, gen) == rendered[("builtin:llama3", ci, gen)]
    plain_chatml = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
                    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}"
                    "{{ '<|im_start|>assistant\n' }}{% endif %}")
    tok = hf_tokenizer(*BUILTIN_TOKENS["chatml"])
    for ci, conv in enumerate(CONVERSATIONS):
        for gen in (False, True):
            assert render_chat(tok, plain_chatml, conv, gen) == rendered[("builtin:chatml", ci, gen)]
    return {"now": [NOW.year, NOW.month, NOW.day, NOW.hour, NOW.minute, NOW.second],
            "templates": {n: {"source": s, "bos_token": b or "", "eos_token": e or ""}
                          for n, (s, b, e) in templates.items()},
            "conversations": CONVERSATIONS, "tool_conversation": TOOL_CONVERSATION, "tools": TOOLS,
            "cases": cases}


def construct_fixtures():
    # VARS are what apply_chat_template passes; check that before using them.
    tok = hf_tokenizer(VARS["bos_token"], VARS["eos_token"])
    probe = "{{ messages|tojson }}|{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ documents }}|{{ add_generation_prompt }}"
    compiled = ctu._compile_jinja_template(probe)
    passed = {k: v for k, v in VARS.items() if k not in ("data", "big")}
    assert compiled.render(**passed) == tok.apply_chat_template(
        VARS["messages"], chat_template=probe, tokenize=False, add_generation_prompt=True)
    cases = []
    for src in CONSTRUCTS.strip("\n").split("\n====\n"):
        try:
            cases.append({"template": src, "expected": ctu._compile_jinja_template(src).render(**VARS)})
        except Exception as e:
            cases.append({"template": src, "error": f"{type(e).__name__}: {e}",
                          "raised": type(e).__name__ == "TemplateError"})
    return {"now": [NOW.year, NOW.month, NOW.day, NOW.hour, NOW.minute, NOW.second],
            "vars": VARS, "cases": cases}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    smol = gguf.GGUFReader(args.gguf).fields["tokenizer.chat_template"].contents()
    t = template_fixtures(smol)
    write_json("templates.json", t)
    c = construct_fixtures()
    write_json("jinja_cases.json", c)
    errors = sum("error" in x for x in t["cases"]) + sum("error" in x for x in c["cases"])
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(t['templates'])} templates, {len(t['cases'])} chat cases, {len(c['cases'])} "
          f"construct cases ({errors} errors); fixtures total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
