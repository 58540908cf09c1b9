#!/usr/bin/env python3
"""Generates the tokenizer and chat-template fixtures under tests/fixtures/tokenizer/.

Oracles are the Hugging Face `tokenizers` library (token ids) and `transformers`'
apply_chat_template (chat strings). Outputs:
  strings.json            test strings (valid UTF-8) and invalid-UTF-8 byte strings (hex)
  smollm2_ids.json        ids for SmolLM2-135M-Instruct (tokenizer rebuilt from the GGUF's vocab and
                          merges with SmolLM2's tokenizer.json configuration; the vocab is not committed)
  llama3_tokenizer.json   a small byte-level BPE trained here with the Llama-3 pre-tokenizer and
  llama3_tokenizer_config.json  special tokens (HF format) ...
  llama3_tokenizer.gguf   ... and the same tokenizer in GGUF metadata (pre "llama-bpe")
  llama3_ids.json         ids for that tokenizer
  bad_model.gguf, bad_pre.gguf  GGUFs whose tokenizer must be rejected
  chat_golden.json        rendered chats for the SmolLM2 (ChatML) and Llama-3 templates

Usage: /work/venv/bin/python tools/make_tokenizer_fixtures.py [--gguf models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse
import json
import os
import random
import sys
import sysconfig
import unicodedata

import gguf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from tokenizers import AddedToken

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eot_id|>"]
# Meta-Llama-3-8B-Instruct's tokenizer_config.json chat_template, verbatim.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

MULTILINGUAL = [
    "Le cœur a ses raisons que la raison ne connaît point. Ça va très bien, merci !",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein. Straße, Größe, Äpfel.",
    "El niño comió paella en la playa; ¿dónde está la biblioteca? ¡Olé!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
    "我能吞下玻璃而不伤身体。今天天气很好，我们去公园散步吧。",
    "私はガラスを食べられます。それは私を傷つけません。東京は日本の首都です。",
    "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요. 안녕하세요!",
    "أنا قادر على أكل الزجاج و هذا لا يؤلمني. مرحبا بالعالم",
    "אני יכול לאכול זכוכית וזה לא מזיק לי. שלום עולם",
    "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती. नमस्ते दुनिया",
    "ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ สวัสดีชาวโลก",
    "Tôi có thể ăn thủy tinh mà không hại gì. Xin chào thế giới!",
    "Emoji: 😀 😃 😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 🇯🇵 ❤️ 🚀✨🔥 🤖",
]


def test_strings():
    """Returns (valid strings, invalid byte strings); covers the cases named in the brief."""
    s = [
        "", " ", "  ", "a", "A", "Hello", "Hello world", " Hello world", "Hello world ",
        "hello, world!", "The quick brown fox jumps over the lazy dog.",
        "It's a beautiful day; isn't it? I'm sure you'll agree we'd've done it.",
        "THEY'RE HERE. WE'LL SEE. YOU'VE GOT MAIL. I'M OK. HE'D GO. IT'S 'S.",
        "'s 'll 'RE 'Ve 'M 'D 'T", "don't", "Don'T", "o'clock", "rock 'n' roll",
        "it\u2019s curly", "'\u017f long s", "'K vs '\u212a kelvin", "''''", "'", "' s",
        # numbers and digit runs
        "0", "7", "12", "123", "1234", "12345", "1234567890", "3.14159265358979",
        "1,000,000.00", "-42", "+1 (555) 123-4567", "2024-05-17T12:34:56Z", "v1.2.3-rc4",
        "x2 2x 3D 4K 1080p", "0xDEADBEEF", "1e-9", "99 bottles", "  123  456  ",
        "3141592653589793238462643383279502884197169399375105820974944592307816406286",
        "000000000000000000000000000000", "١٢٣٤٥ ٦٧٨٩", "²³ ½ ⅓ Ⅻ ⑩", "१२३४ ๑๒๓",
        # whitespace
        "a b", "a  b", "a   b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a \n b",
        "\n", "\n\n\n", "\t", "\t\t\t", "   ", "          ", " \n \n ", "\r\n\r\n",
        "trailing   ", "   leading", "  both  ", "a\n  \n  b", "x \t \n y", "end\n",
        "line1\nline2\n\nline4\n   indented\n\tTabbed", "a\u00a0b", "a\u00a0 b",
        "a\u2003\u2003b", "a\u3000b", "a\u0085b", "a\u180eb", "a\u200bb", "a\u2028b",
        "a\u202f\u205fb", "\x1c\x1d\x1e\x1f", "a\x0bb\x0cc", "\x00 nul \x00",
        # code
        "def f(x):\n    return x ** 2\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
        "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size(); }",
        '{"key": "value", "list": [1, 2, 3], "nested": {"a": null, "b": true}}',
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
        "x = [i*i for i in range(10) if i % 2 == 0]  # squares",
        "if (a && b || !c) { return -1; } else if (x != y) {}",
        "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
        "$ ls -la /usr/local/bin | grep -v '^d' > out.txt 2>&1",
        "fn main() -> Result<(), Box<dyn Error>> { println!(\"{:?}\", x); Ok(()) }",
        "    indented four\n        indented eight\n", "a=>b->c<=d!=e===f",
        "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#frag",
        "user@example.com", "C:\\Windows\\System32\\drivers", "@@@ ### $$$ %%% ^^^ &&&",
        "...", "?!?!", "---", "***bold***", "__init__", "snake_case_name camelCaseName",
        # unicode
        *MULTILINGUAL,
        "café", unicodedata.normalize("NFD", "café"), "naïve résumé", "Ångström",
        unicodedata.normalize("NFD", "Ångström naïve"), "e\u0301\u0301\u0301", "Z\u0351\u0352a",
        "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🤖🤖🤖", "a😀b", " 😀 ", "🏳️‍🌈",
        "中文", " 中文", "日本語のテキスト", "한국어", "مرحبا", "שלום", "Привет", "Ελληνικά",
        "\U0001d400\U0001d401", "\U00020000\U0002a6d6", "\ufeffBOM", "\ufffd", "\u1c89\u1c8a new letters",
        "\U00016d40\U00016d70 kirat", "ÿ þ ß ð", "Ĳ ĳ ŉ", "İstanbul ıi", "ǅ ǈ ǋ", "ﬁ ﬂ",
        # special tokens inline (SmolLM2 and Llama-3 names; each is plain text for the other)
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi there<|im_end|>\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
        "text<|endoftext|>more", "<|endoftext|><|endoftext|>", " <|im_end|> ", "<|im_sta",
        "<|im_start|", "<|<|im_start|>|>", "<repo_name>x<file_sep>y<filename>",
        "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
        "<|begin_of_text|><|begin_of_text|>", "a<|eot_id|>b", "<|end_of_text|> ", "<|eot_id",
        "< |eot_id|>", "<|EOT_ID|>", "<jupyter_code>print(1)<jupyter_output>1",
    ]
    rnd = random.Random(1234)
    pool = ["the", " the", "The", " cat", "'s", "'ll", "'RE", "123", "4567", " 89", "  ", "   ",
            "\n", "\n\n", "\t", " \t", "é", "e\u0301", "中", "日本", "😀", "👍🏽", "ا", "ب", ".", ",",
            "!", "?", "(", ")", "{", "}", "::", "->", "==", "_", "-", "<|im_end|>", "<|eot_id|>",
            "<|endoftext|>", "<|begin_of_text|>", "x", "Y", "0", "\u00a0", "\u3000", "$", "#", "'",
            "\"", "\\", "/", "@", "ß", "ñ", "Ω", "∑", "≥", "→", "🇫🇷"]
    for _ in range(80):
        s.append("".join(rnd.choice(pool) for _ in range(rnd.randint(1, 25))))
    s.append(" ".join(MULTILINGUAL) * 3)  # one long mixed string
    invalid = [b"\xff", b"\xfe\xff", b"abc\x80def", b"\xe2\x82", b"\xe2\x82 euro", b"\xc0\xaf",
               b"\xed\xa0\x80 surrogate", b"\xf4\x90\x80\x80 too big", b"\xf0\x9f\x98 cut emoji",
               b"ok \xe4\xb8\xad\xe6 partial cjk", b"\x80\x80\x80", b"<|im_end|>\xff<|eot_id|>",
               b"  \xc3\n\n", b"123\xff456", b"caf\xc3", b"\xc3\xa9\xa9", b"it\xe2\x80s",
               b"\xf8\x88\x80\x80\x80", b"a\xfeb\xffc", "x😀y".encode()[:3] + b"y"]
    assert len(set(s)) > 200, len(set(s))
    return s, invalid


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


def smollm2_tokenizer(gguf_path):
    """SmolLM2's tokenizer.json setup (Digits then ByteLevel) over the GGUF's vocab and merges."""
    r = gguf.GGUFReader(gguf_path)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    return tok, r.fields["tokenizer.chat_template"].contents()


def training_corpus():
    stdlib = sysconfig.get_paths()["stdlib"]
    files = ["argparse.py", "textwrap.py", "difflib.py", "typing.py", "inspect.py", "pathlib.py",
             "subprocess.py", "json/decoder.py", "email/message.py", "http/client.py",
             "unittest/case.py", "calendar.py", "statistics.py", "fractions.py", "locale.py"]
    for f in files:
        with open(os.path.join(stdlib, f), encoding="utf-8") as fh:
            yield fh.read()
    rnd = random.Random(7)
    for _ in range(300):
        yield " ".join(rnd.choice(MULTILINGUAL) for _ in range(5))
        yield " ".join(str(rnd.randint(0, 10**rnd.randint(1, 9))) for _ in range(20))


def llama3_tokenizer():
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                  special_tokens=LLAMA3_SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    # Training drops ignore_merges; restore it through the JSON (Llama-3's tokenizer.json sets it).
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(j))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return tok


def write_llama3_gguf(tok, path, model="gpt2", pre="llama-bpe", n_tokens=None):
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    special = {a["content"] for a in j["added_tokens"] if a["special"]}
    types = [3 if t in special else 1 for t in tokens]
    merges = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    if n_tokens is not None:  # a truncated vocab for the files that only have to be rejected
        tokens, types, merges = tokens[:n_tokens], types[:n_tokens], merges[:0]
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model(model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|begin_of_text|>"])
    w.add_eos_token_id(vocab["<|eot_id|>"])
    w.add_add_bos_token(True)
    w.add_chat_template(LLAMA3_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def encode_all(tok, strings, special_strings):
    ids = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    lossy = [s for s, i in zip(strings, ids) if tok.decode(i, skip_special_tokens=False) != s]
    # A byte with no token of its own (SmolLM2 lacks 21 of the 256) is dropped, as HF does.
    print(f"{len(lossy)} strings do not round-trip through HF: {[x[:20] for x in lossy]}")
    # parse_special = false: special tokens are plain text (HF's encode_special_tokens).
    tok.encode_special_tokens = True
    plain = {s: tok.encode(s, add_special_tokens=False).ids for s in special_strings}
    tok.encode_special_tokens = False
    return {"ids": ids, "ids_no_special": plain}


def llama3_variant(llama):
    """Added-token options HF supports (lstrip/rstrip, non-special, normalized priority).

    Stored as the added_tokens list to put into llama3_tokenizer.json plus strings and ids."""
    tok = Tokenizer.from_str(llama.to_str())
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False),
                            AddedToken("<|pad|>", rstrip=True, normalized=False),
                            AddedToken("cd_ef", normalized=False)])
    tok.add_tokens([AddedToken("foo_bar", normalized=True), AddedToken("ab_cd", normalized=True)])
    strings = ["a <mask> b", "a   <mask>", "<mask>   x", "\u3000\t<mask>\n", "x<mask>", "<mask>",
               "<|pad|>  y", "y <|pad|>\n\nz", "<|pad|>\u00a0\u2003end", "foo_bar", "xfoo_barx",
               "foo_bar<mask>", " <mask>foo_bar ", "ab_cd_ef", "ab_cd ab_cd_e cd_ef",
               "  <mask>  <|pad|>  ", "<mask><mask>", "a <|eot_id|> <mask>"]
    added = json.loads(tok.to_str())["added_tokens"]
    return {"added_tokens": added, "strings": strings, **encode_all(tok, strings, strings)}


CONVERSATIONS = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "  padded content \n\n"}, {"role": "assistant", "content": "\tok "}],
    [{"role": "system", "content": "Only a system prompt."}],
    [{"role": "user", "content": "Line one\nLine two\n\n中文 😀 <|im_end|> <|eot_id|>"}],
    [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}],
    [{"role": "user", "content": "\u3000unicode space\u00a0"}, {"role": "tool", "content": "{\"x\": 1}"}],
    [{"role": "user", "content": ""}, {"role": "assistant", "content": " "}],
]


def chat_goldens(smol_tok, smol_template, llama_tok):
    from transformers import PreTrainedTokenizerFast
    out = []
    templates = {"smollm2": smol_template, "llama3": LLAMA3_TEMPLATE}
    for name, tok, tmpl, bos, eos in [
            ("smollm2", smol_tok, smol_template, "<|im_start|>", "<|im_end|>"),
            ("llama3", llama_tok, LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>")]:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos)
        fast.chat_template = tmpl
        for conv in CONVERSATIONS:
            for gen in (False, True):
                text = fast.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
                out.append({"template": name, "messages": conv, "add_generation_prompt": gen,
                            "text": text})
    return {"templates": templates, "cases": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    strings, invalid = test_strings()
    special_strings = [x for x in strings if "<|" in x or "<repo" in x or "<jupyter" in x]
    write_json("strings.json", {"strings": strings, "invalid_utf8_hex": [b.hex() for b in invalid]})

    smol, smol_template = smollm2_tokenizer(args.gguf)
    write_json("smollm2_ids.json", encode_all(smol, strings, special_strings))
    cross_check_gguf(args.gguf, smol, strings)

    llama = llama3_tokenizer()
    with open(os.path.join(OUT, "llama3_tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(llama.to_str())  # compact: the fixture budget is 500 KB in all
    write_json("llama3_tokenizer_config.json", {
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE,
        "model_max_length": 8192, "tokenizer_class": "PreTrainedTokenizerFast"})
    write_llama3_gguf(llama, os.path.join(OUT, "llama3_tokenizer.gguf"))
    write_json("llama3_ids.json", encode_all(llama, strings, special_strings))
    write_json("llama3_variant.json", llama3_variant(llama))
    with_merges = json.loads(llama.to_str())
    with_merges["model"]["ignore_merges"] = False
    differ = sum(a != b for a, b in zip(
        [t.ids for t in Tokenizer.from_str(json.dumps(with_merges)).encode_batch(strings)],
        [t.ids for t in llama.encode_batch(strings)]))
    print(f"llama3: ignore_merges changes the ids of {differ} strings")

    # Tokenizers our loader must reject, each a tiny GGUF.
    write_llama3_gguf(llama, os.path.join(OUT, "bad_model.gguf"), model="llama", n_tokens=300)
    write_llama3_gguf(llama, os.path.join(OUT, "bad_pre.gguf"), pre="no-such-pre", n_tokens=300)
    write_json("chat_golden.json", chat_goldens(smol, smol_template, llama))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(strings)} strings, {len(invalid)} invalid; fixtures total {total / 1024:.0f} KiB")


def cross_check_gguf(gguf_path, smol, strings):
    """transformers' own GGUF tokenizer loader should agree with the rebuilt tokenizer."""
    try:
        from transformers import AutoTokenizer
        hf = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path),
                                           gguf_file=os.path.basename(gguf_path))
    except Exception as e:  # report, do not fail: the oracle above is the reference
        print(f"cross-check skipped: {e!r}", file=sys.stderr)
        return
    bad = [s for s in strings
           if hf.encode(s, add_special_tokens=False) != smol.encode(s, add_special_tokens=False).ids]
    print(f"cross-check vs transformers GGUF loader: {len(bad)} of {len(strings)} strings differ")
    for s in bad[:8]:
        print("  differs:", repr(s[:60]))


if __name__ == "__main__":
    main()
