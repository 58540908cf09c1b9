#!/usr/bin/env python3
"""Generates the SentencePiece-style tokenizer fixtures (tests/fixtures/tokenizer/sp_*).

Llama 2, Mistral and Mixtral ship a SentencePiece BPE model with byte fallback. No such model can be
downloaded here, so this script trains a small one with the `sentencepiece` package on text it
writes itself, then converts it the way the real files were made:

  sp_tokenizer.json         transformers' LlamaConverter with legacy=True: the Llama-2 / Mistral v0.1
                            layout (normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer,
                            decoder Replace/ByteFallback/Fuse/Strip), plus the "<s> $A" post-processor
                            and <unk> as an added token, as LlamaTokenizerFast adds them.
  sp_tokenizer_config.json  bos/eos/unk and add_bos_token/add_eos_token, as in Llama 2.
  sp_tokenizer.gguf         the same vocab as llama.cpp's convert_hf_to_gguf.py writes a
                            SentencePiece ("llama") vocab: tokens, scores, token types, special ids,
                            add_bos/add_eos (add_space_prefix absent, as for Llama 2: default true).
  sp_ids.json               ids from Hugging Face `tokenizers` (the reference) for every string of
                            strings.json, HF's decode where it differs from the input, ids of the same
                            vocab under the other pre-tokenizer layouts ("variants": the normalizer,
                            pre_tokenizer and decoder to put into sp_tokenizer.json, and the ids that
                            differ from the legacy ones), BOS ids, and HF's decode of random id lists.

Variants: "first" (Metaspace prepend_scheme first: Mistral v0.3, what transformers 5's
LlamaTokenizer builds), "always" (Metaspace always: transformers 5 with legacy=True), "never"
(LlamaConverter with add_prefix_space=False: GGUF add_space_prefix=false) and "split" (Metaspace
always with split=true, as older converters wrote; an edit of "always").

The ids are also checked against `sentencepiece` itself and against transformers' GGUF tokenizer
loader; differences are reported, not fatal (HF `tokenizers` on tokenizer.json is the reference).

Usage: /work/venv/bin/python tools/make_sp_fixtures.py
"""
import io
import json
import os
import random
import sys
import tempfile

import gguf
import sentencepiece as spm
from tokenizers import AddedToken, Tokenizer, processors
from transformers import LlamaTokenizerFast
from transformers.convert_slow_tokenizer import LlamaConverter, SentencePieceExtractor
from transformers.tokenization_utils_base import generate_merges

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tokenizer_fixtures as base  # noqa: E402  (the shared test strings)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

USER_DEFINED = ["[INST]", "[/INST]"]  # matched whole in text, not special (HF special=False)
CONTROL = ["<|im_start|>", "<|im_end|>"]  # special: skipped when special tokens are not parsed
WORDS = (
    "the of and to in is was that for it with as on be at by this had not are but from or have an "
    "they which one you were her all she there would their we him been has when who will more no if "
    "out so said what up its about into than them can only other new some could time these two may "
    "then do first any my now such like our over man me even most made after also did many before "
    "must through back years where much your way well down should because each just those people "
    "how too little state good very make world still own see men work long get here between both "
    "life being under never day same another know while last might us great old year off come since "
    "against go came right used take three token model attention context query block rank memory "
    "cache layer head value key sequence length").split()
# Strings whose encoding depends on special-token parsing, for ids_no_special.
SPECIAL_MARKS = ("<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<|im_start|>", "<|im_end|>")
EXTRA_STRINGS = [  # the added tokens of this vocab in context (strings.json has other families')
    "<s>", "</s>", "<unk>", "<s>Hello", " <s> Hello", "a<s>b", "a <s> b", "Hi</s>", "<s><s>", "<s> ",
    "[INST] What is 2+2? [/INST]", "[INST]x[/INST]", " [INST]", "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>"
    "\n\nHi [/INST]", "<|im_start|>user\nHi<|im_end|>\n", "x<|im_end|>", "<unk>x<unk>", "▁", "▁x",
    " ▁ x", "<0x41>", "a<0x0A>b", "\u2581\u2581a", "[INST]\u2581[/INST]",
]
# build_prompt_ids inputs: (context, query); the context part is context + "\n\n".
PROMPTS = [("The key is 7.", "What is the key?"), ("", "Hello"), ("a\n\nb", " leading space"),
           ("<s>[INST] doc", "q [/INST]")]


def training_text():
    """The corpus strings, generated English-like prose (for real merges) and a little of every
    script; deterministic."""
    strings, _ = base.test_strings()
    rnd = random.Random(20240517)
    out = []
    for s in strings:
        out.extend(x for x in s.split("\n") if x.strip())
    for _ in range(3000):
        w = [rnd.choice(WORDS) for _ in range(rnd.randint(4, 16))]
        w[0] = w[0].capitalize()
        tail = " " + str(rnd.randint(0, 2025)) if rnd.random() < 0.2 else ""
        out.append(" ".join(w) + rnd.choice(".,?!;.") + tail)
    for m in base.MULTILINGUAL:
        out.extend([m, m])
    return out


def train_model():
    """A 1000-piece BPE model; character_coverage 0.99 leaves rare characters to byte fallback."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()), model_writer=buf, model_type="bpe",
        vocab_size=1000, byte_fallback=True, character_coverage=0.99, split_digits=True,
        user_defined_symbols=USER_DEFINED, control_symbols=CONTROL, num_threads=1,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        allow_whitespace_only_pieces=True, minloglevel=2)
    return buf.getvalue()


class ScoreRankedExtractor(SentencePieceExtractor):
    """transformers 5's LlamaConverter still calls extract(vocab_scores) with the 4.x signature,
    which 5.x no longer has; this is the 4.x body: merges from the library's own generate_merges,
    ranked by piece score (the ranking in Llama-2's tokenizer.json)."""

    def extract(self, vocab_scores=None):
        vocab = {p.piece: i for i, p in enumerate(self.proto.pieces)}
        return vocab, generate_merges(vocab, vocab_scores)


class Converter(LlamaConverter):
    SpmExtractor = ScoreRankedExtractor


class SlowTokenizerStandIn:
    """What LlamaConverter reads from a slow LlamaTokenizer (transformers 5 has none)."""

    def __init__(self, model_path, legacy, add_prefix_space):
        self.vocab_file = model_path
        self.legacy = legacy
        self.add_prefix_space = add_prefix_space
        self.sp = spm.SentencePieceProcessor(model_file=model_path)

    def convert_ids_to_tokens(self, i):
        return self.sp.id_to_piece(i)


def llama_tokenizer(model_path, add_prefix_space=True):
    tok = Converter(SlowTokenizerStandIn(model_path, True, add_prefix_space)).converted()
    # LlamaTokenizerFast adds its special tokens (unk among them) and the BOS post-processor.
    tok.add_special_tokens([AddedToken("<unk>", special=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)])
    return tok


def with_layout(tok, layout):
    """tok with the normalizer/pre_tokenizer/decoder of `layout` (a dict of those three keys)."""
    j = json.loads(tok.to_str())
    j.update(layout)
    return Tokenizer.from_str(json.dumps(j))


def layout_of(tok):
    j = json.loads(tok.to_str())
    return {k: j[k] for k in ("normalizer", "pre_tokenizer", "decoder")}


def encode_all(tok, strings):
    ids = [e.ids for e in tok.encode_batch(strings, add_special_tokens=False)]
    tok.encode_special_tokens = True
    plain = {s: tok.encode(s, add_special_tokens=False).ids
             for s in strings if any(m in s for m in SPECIAL_MARKS)}
    tok.encode_special_tokens = False
    decoded = {str(i): tok.decode(x, skip_special_tokens=False) for i, x in enumerate(ids)}
    return {"ids": ids, "ids_no_special": plain,
            "decode_diff": {i: d for i, d in decoded.items() if d != strings[int(i)]}}


def edit(a, b):
    """b as an edit of a: [p, s, middle] means b == a[:p] + middle + a[len(a) - s:]. The layouts
    differ only around the dummy prefix, so this keeps the fixture small."""
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and a[-1 - s] == b[-1 - s]:
        s += 1
    return [p, s, b[p:len(b) - s]]


def apply_edit(a, e):
    return a if e is None else a[:e[0]] + e[2] + a[len(a) - e[1]:]


def diff_from(ref, other):
    """The entries of `other` (an encode_all result) that differ from `ref`, as edits."""
    assert all(apply_edit(a, edit(a, b)) == b for a, b in zip(ref["ids"], other["ids"]))
    return {
        "ids_diff": {str(i): edit(a, b) for i, (a, b) in enumerate(zip(ref["ids"], other["ids"]))
                     if a != b},
        "ids_no_special_diff": {s: edit(ref["ids_no_special"][s], v)
                                for s, v in other["ids_no_special"].items()
                                if ref["ids_no_special"][s] != v},
        "decode_diff": other["decode_diff"],
    }


def random_decodes(tok, n=120):
    """HF's decode of random id lists: byte tokens that spell whole UTF-8 characters, pieces with
    and without ▁, added tokens. (A run of byte tokens that is not valid UTF-8 becomes one U+FFFD
    per byte in HF; the C++ decoder keeps the bytes, so such lists are left out.)"""
    rnd = random.Random(99)
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])  # get_vocab's order varies
    byte_id = {int(t[3:5], 16): i for t, i in vocab if len(t) == 6 and t.startswith("<0x")}
    pieces = [i for t, i in vocab if not t.startswith("<0x")]
    chars = ["\n", "\t", " ", "é", "中", "😀", "ß", "\u2581", "a"]
    out = []
    while len(out) < n:
        ids = []
        for _ in range(rnd.randint(1, 12)):
            if rnd.random() < 0.3:
                ids += [byte_id[b] for b in rnd.choice(chars).encode()]
            else:
                ids.append(rnd.choice(pieces))
        out.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False)})
    return out


def check_sentencepiece(model_path, strings, legacy_ids):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    differ = [s for s, ids in zip(strings, legacy_ids) if sp.encode(s) != ids]
    no_special = [s for s in differ if not any(m in s for m in SPECIAL_MARKS)]
    print(f"sentencepiece vs HF: {len(differ)} of {len(strings)} strings differ, "
          f"{len(no_special)} of them without added-token text")
    for s in no_special[:6]:
        print("  differs:", repr(s[:50]))


# ---- GGUF, as llama.cpp's convert_hf_to_gguf.py writes a SentencePiece vocab --------------------

def does_token_look_special(t):
    return (t in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (t.startswith("<|") and t.endswith("|>"))
            or (t.startswith("<｜") and t.endswith("｜>")) or (t.startswith("<unused") and t.endswith(">")))


def write_gguf(hf_dir, path):
    """_create_vocab_sentencepiece + _set_vocab_sentencepiece + gguf.SpecialVocab, as the converter
    runs them for a Llama model directory."""
    sp = spm.SentencePieceProcessor(model_file=os.path.join(hf_dir, "tokenizer.model"))
    T = gguf.TokenType
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        t = T.NORMAL
        if sp.IsUnknown(i):
            t = T.UNKNOWN
        elif sp.IsControl(i):
            t = T.CONTROL
        elif sp.IsUnused(i):
            t = T.UNUSED
        elif sp.IsByte(i):
            t = T.BYTE
        tokens.append(sp.IdToPiece(i).encode())
        scores.append(sp.GetScore(i))
        types.append(t)
    with open(os.path.join(hf_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    for tid, data in config.get("added_tokens_decoder", {}).items():
        tid, text = int(tid), data["content"]
        if data.get("special") or does_token_look_special(text):
            types[tid] = T.CONTROL
        else:
            text = text.replace("\u2581", " ")  # the converter pre-normalizes user-defined spaces
            types[tid] = T.USER_DEFINED
        scores[tid] = -1000.0
        tokens[tid] = text.encode()
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    gguf.SpecialVocab(hf_dir, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)
    if "add_prefix_space" in config:
        w.add_add_space_prefix(config["add_prefix_space"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tokenizer_config(tok):
    """tokenizer_config.json as transformers writes it for Llama 2 (added_tokens_decoder included,
    which is where convert_hf_to_gguf.py takes CONTROL / USER_DEFINED from)."""
    added = json.loads(tok.to_str())["added_tokens"]
    return {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "legacy": True, "model_max_length": 4096,
        "tokenizer_class": "LlamaTokenizer", "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {str(a["id"]): {k: a[k] for k in (
            "content", "lstrip", "normalized", "rstrip", "single_word", "special")} for a in added},
    }


def cross_check_transformers_gguf(gguf_path, strings, variants):
    """transformers' GGUF loader builds a LlamaTokenizer (Metaspace "first"); report which fixture
    layout it reproduces. Informational: llama.cpp's own rule is the legacy layout."""
    try:
        from transformers import AutoTokenizer
        hf = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path),
                                           gguf_file=os.path.basename(gguf_path))
    except Exception as e:  # report, do not fail: tokenizers on tokenizer.json is the reference
        print(f"transformers GGUF cross-check skipped: {e!r}", file=sys.stderr)
        return
    got = [hf.encode(s, add_special_tokens=False) for s in strings]
    for name, ids in variants.items():
        bad = sum(a != b for a, b in zip(got, ids))
        print(f"transformers GGUF loader vs {name}: {bad} of {len(strings)} strings differ")


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


def main():
    strings, _ = base.test_strings()
    strings = strings + EXTRA_STRINGS
    model = train_model()
    assert model == train_model(), "sentencepiece training is not deterministic here"
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "tokenizer.model")
        with open(model_path, "wb") as f:
            f.write(model)
        legacy = llama_tokenizer(model_path)
        ref = encode_all(legacy, strings)
        check_sentencepiece(model_path, strings, ref["ids"])

        # The other layouts, each as a converter builds it, then moved onto the legacy file's model
        # (same vocab; merge order and unk_token may differ): the ids must not change.
        metaspace = {}
        for name, is_legacy in (("first", False), ("always", True)):
            t = LlamaTokenizerFast.from_pretrained(tmp, legacy=is_legacy).backend_tokenizer
            metaspace[name] = t
        never = llama_tokenizer(model_path, add_prefix_space=False)
        split = json.loads(metaspace["always"].to_str())
        split["pre_tokenizer"]["split"] = True
        layouts = {name: layout_of(t) for name, t in metaspace.items()}
        layouts["never"] = layout_of(never)
        layouts["split"] = {k: split[k] for k in ("normalizer", "pre_tokenizer", "decoder")}
        variants = {}
        for name, layout in layouts.items():
            moved = encode_all(with_layout(legacy, layout), strings)
            if name in metaspace or name == "never":
                own = metaspace[name] if name in metaspace else never
                own_ids = [e.ids for e in own.encode_batch(strings, add_special_tokens=False)]
                bad = sum(a != b for a, b in zip(own_ids, moved["ids"]))
                print(f"variant {name}: converter's own file and moved layout differ on {bad} strings")
                assert bad == 0
            variants[name] = {**layout, **diff_from(ref, moved)}
            print(f"variant {name}: {len(variants[name]['ids_diff'])} strings differ from legacy")

        with_bos = {s: legacy.encode(s).ids for s in strings[:12]}
        # build_prompt_ids puts BOS before these (unless they start with it), as with_bos shows HF does.
        prompts = [{"context": c, "query": q,
                    "context_ids": legacy.encode(c + "\n\n" if c else "", add_special_tokens=False).ids,
                    "query_ids": legacy.encode(q, add_special_tokens=False).ids} for c, q in PROMPTS]

        with open(os.path.join(OUT, "sp_tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(legacy.to_str())
        config = tokenizer_config(legacy)
        write_json("sp_tokenizer_config.json", config)
        hf_dir = os.path.join(tmp, "hf")
        os.makedirs(hf_dir)
        with open(os.path.join(hf_dir, "tokenizer.model"), "wb") as f:
            f.write(model)
        with open(os.path.join(hf_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(legacy.to_str())
        with open(os.path.join(hf_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f)
        with open(os.path.join(hf_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump({"bos_token_id": 1, "eos_token_id": 2, "architectures": ["LlamaForCausalLM"]}, f)
        gguf_path = os.path.join(OUT, "sp_tokenizer.gguf")
        write_gguf(hf_dir, gguf_path)
        cross_check_transformers_gguf(gguf_path, strings, {
            "legacy": ref["ids"],
            "first": [apply_edit(x, variants["first"]["ids_diff"].get(str(i)))
                      for i, x in enumerate(ref["ids"])]})

    write_json("sp_ids.json", {
        "extra_strings": EXTRA_STRINGS, **ref, "with_bos": with_bos, "prompts": prompts,
        "variants": variants, "random_decode": random_decodes(legacy)})
    names = [f for f in os.listdir(OUT) if f.startswith("sp_")]
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in names)
    print(f"{len(strings)} strings; {len(names)} sp_ fixtures, {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
