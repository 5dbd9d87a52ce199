#!/usr/bin/env python3
"""Writes the text-encoder goldens: a small SentencePiece model, its
transformers tokenizer folder, the token ids transformers produces for a set of
test prompts, a small random UMT5EncoderModel in several weight formats, and
that model's outputs.

    python3 tools/gen_umt5_goldens.py [--out tests/data/text_encoder]

Needs torch, transformers, safetensors, sentencepiece and ftfy (pip install
ftfy). Everything is seeded, so a rerun writes the same ids and weights.

Outputs (tests/data/text_encoder/):
  tokenizer/            spiece.model + transformers T5Tokenizer save_pretrained
                        files (tokenizer.json, tokenizer_config.json), as the
                        diffusers `tokenizer/` folder holds them.
  text_encoder/         config.json + model.safetensors (F32, HF layout), as
                        UMT5EncoderModel.save_pretrained writes them.
  umt5_fp8_scaled.safetensors
                        the same weights in ComfyUI's "scaled fp8" layout:
                        every Linear weight as F8_E4M3 + `<module>.scale_weight`
                        (F32, one element), the embedding and norms in F16, the
                        `scaled_fp8` marker (F8_E4M3 [0]). Comfy's files also
                        embed the SentencePiece model as the U8 tensor
                        `spiece_model`; it is left out here (it would duplicate
                        tokenizer/spiece.model within the 2 MB budget) and the
                        C++ test that reads the embedded model adds it.
  token_ids.safetensors
        prompt.<i>          U8 [n]     the raw prompt bytes (UTF-8)
        cleaned.<i>         U8 [n]     after Wan's cleaning (ftfy.fix_text,
                                       html.unescape x2, whitespace collapse)
        input_ids.<i>       I64 [n]    AutoTokenizer(cleaned, padding=max_length,
                                       max_length=512, truncation=True,
                                       add_special_tokens=True), Wan's call,
                                       without the padding: the script checks
                                       that the rest is id 0 with mask 0 and
                                       that the mask is 1 on these n ids
        spm_ids.<i>         I64 [n]    sentencepiece.encode(cleaned) + [EOS]
                                       with no truncation: what ComfyUI does
                                       with the embedded model
        random.prompts / random.prompt_offsets   U8 / I64 [n+1]  120 random
        random.ids / random.id_offsets           I32 / I64 [n+1] prompts
                                       (random_prompts) and their ids as above,
                                       concatenated
        metadata: count, description.<i>, random_count
  outputs.safetensors
        <case>.input_ids / <case>.attention_mask  I64 [B, L]
        <case>.last_hidden_state                  F32 [B, L, 64]
      cases: len1 (just EOS), len7, len40, len512 (512 real tokens),
             batch2 (two prompts right-padded to a common length, with mask),
             wan512 (one prompt padded to 512 with mask, as Wan runs it;
             last_hidden_state holds only the real rows [1, L_real, 64])
      and for the reduced-precision files, computed by transformers in fp32
      on the weights rounded exactly as the file stores them:
        bf16.<case>.last_hidden_state   weights rounded to bf16 (RNE)
        f16.<case>.last_hidden_state    weights rounded to f16 (RNE)
        fp8.<case>.last_hidden_state    fp8 weight x scale_weight, F16 rest
      for case len40.

The BF16 and F16 weight files are not committed (size budget): the C++ tests
write them from the F32 file with core/dtype.h's round-to-nearest-even casts,
which are the casts torch's `.to(torch.bfloat16/float16)` performs.

ftfy features: ftfy.fix_text with default settings is applied as Wan does. The
C++ cleaner (text_encoder/prompt_clean.cpp) replicates the parts listed there;
the prompts below exercise them and the tests check that the ids still match.
Prompts that need ftfy's mojibake repair are not in the parity set (the C++
side does not repair mojibake).
"""

import argparse
import html
import io
import json
import os
import random
import re
import shutil

import ftfy
import numpy as np
import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, T5Tokenizer, UMT5Config, UMT5EncoderModel

import provenance

LIBS = ("torch", "transformers", "tokenizers", "sentencepiece", "ftfy", "safetensors", "numpy")

TEXT_LEN = 512

# ---------------------------------------------------------------------------
# training corpus for the SentencePiece model
EN_WORDS = """a an the cat dog bird horse fish dragon robot woman man child girl boy old young
red blue green golden silver white black purple orange pink bright dark soft warm cold
runs walks flies swims dances jumps sits sleeps smiles looks turns falls rises glows
over under across through into near beside above behind along around
river forest city street beach mountain desert ocean sky field village castle room kitchen
sunset sunrise night morning rain snow fog storm wind light shadow fire water smoke cloud
camera slowly quickly pans zooms tracks tilts close-up wide shot aerial view handheld
cinematic realistic detailed photorealistic anime watercolor oil painting sketch 3D render
lighting volumetric bokeh depth of field film grain 35mm 4k 8k HDR high quality masterpiece
with and of in on at to from by for is are was while as its their his her""".split()
ZH_PHRASES = ["一只猫在草地上奔跑", "夕阳下的海边，海浪拍打着礁石", "城市夜景，霓虹灯闪烁", "镜头缓慢推进",
              "画面细腻，光影柔和", "一位穿红色裙子的女孩在雨中跳舞", "古老的城堡矗立在山顶", "雪花飘落在安静的村庄",
              "高清，电影质感", "色调艳丽，过曝，静态，细节模糊不清", "字幕，风格，作品，画作，画面，静止",
              "最差质量，低质量，JPEG压缩残留", "丑陋的，残缺的，多余的手指", "一条金色的龙在云中飞翔",
              "小狗在公园里追逐飞盘", "水墨画风格的山水", "未来城市中的机器人", "清晨的森林，阳光透过树叶",
              "日本的樱花和寺庙", "한국의 거리 풍경", "東京の夜景とネオン", "Москва зимой, снег", "القمر فوق الصحراء"]
EMOJI = ["😀", "🎬", "🎥", "🌅", "🐱", "🐶", "🚀", "🌧️", "❤️", "✨", "🔥", "👍🏽", "👨‍👩‍👧", "🇨🇳", "🇺🇸", "🌸"]
PUNCT = [",", ".", "!", "?", ";", ":", "-", "(", ")", "\"", "'", "...", "—", "/", "&", "#", "%", "+"]
FULLWIDTH = ["，", "。", "！", "？", "：", "；", "（", "）", "「", "」", "《", "》", "、", "ＡＢＣ", "１２３", "ｗｉｄｅ"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&copy;", "&eacute;", "&#x4E2D;", "&hellip;"]


SYLLABLES = "ka ri to mu sel van dor fi lex qua zon bre thi ung ope ast mir cal nov tek wy ph ous ish".split()


def pseudo_word(rng):
    # Made-up words widen the set of substrings so the unigram model reaches ~1000 pieces.
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def training_corpus(rng):
    lines = []
    for i in range(600):
        n = rng.randint(4, 24)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.55:
                parts.append(rng.choice(EN_WORDS))
            elif r < 0.70:
                parts.append(pseudo_word(rng))
            elif r < 0.80:
                parts.append(rng.choice(ZH_PHRASES))
            elif r < 0.86:
                parts.append(rng.choice(EMOJI))
            elif r < 0.92:
                parts.append(rng.choice(PUNCT))
            elif r < 0.97:
                parts.append(rng.choice(FULLWIDTH))
            else:
                parts.append(rng.choice(ENTITIES))
        line = " ".join(parts)
        if i % 9 == 0:
            line = line.capitalize()
        if i % 13 == 0:
            line += f" {rng.randint(0, 99999)}"
        lines.append(line)
    return lines


def train_spm(lines, vocab_size):
    # T5 conventions: <pad>=0, </s>=1, <unk>=2, no BOS; nmt_nfkc normalization
    # (what umT5's model uses) and byte fallback for characters outside it.
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf, model_type="unigram", vocab_size=vocab_size,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=True, hard_vocab_limit=False,
        character_coverage=0.9995, normalization_rule_name="nmt_nfkc", num_threads=1, minloglevel=2,
        seed_sentencepiece_size=100000, input_sentence_size=0, shuffle_input_sentence=False)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Wan's prompt cleaning (wan/modules/tokenizers.py: basic_clean + whitespace_clean)
def wan_clean(text):
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    text = text.strip()
    text = re.sub(r"\s+", " ", text)
    return text.strip()


WAN_NEG = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
           "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
           "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")


def n_text_tokens(tok, text):
    return len(tok(text, add_special_tokens=False).input_ids)


def test_prompts(rng, tok):
    p = [
        ("empty", ""),
        ("spaces only", "     "),
        ("unicode whitespace only", "\t\n\u3000\u00a0\u2003 \r\n"),
        ("plain English", "A cat walks across a sunny field, cinematic lighting."),
        ("Wan example", "Two anthropomorphic cats in comfy boxing gear and bright gloves fight intensely "
                        "on a spotlighted stage."),
        ("Wan negative prompt", WAN_NEG),
        ("Chinese", "一只金色的龙在云中飞翔，镜头缓慢推进，电影质感。"),
        ("Chinese + English", "夕阳下的海边 sunset beach, 4k, 海浪拍打着礁石"),
        ("Japanese Korean Russian Arabic", "東京の夜景とネオン 한국의 거리 풍경 Москва зимой القمر فوق الصحراء"),
        ("emoji", "🎬🎥 a rocket 🚀 launches at night ✨🔥"),
        ("emoji ZWJ and modifiers", "family 👨‍👩‍👧 waves 👍🏽 flags 🇨🇳🇺🇸 rain 🌧️ heart ❤️"),
        ("emoji not in vocab", "🦄🦖🧙‍♂️ unicorn and dinosaur"),
        ("full-width ASCII", "ＡＢＣ １２３ ｗｉｄｅ ｓｈｏｔ！？"),
        ("full-width punctuation", "（括号）「引号」《书名》、顿号；分号：冒号"),
        ("ideographic space", "雪花\u3000飘落\u3000在村庄"),
        ("half-width katakana", "ｶﾀｶﾅ ﾃｽﾄ"),
        ("HTML amp", "Tom &amp; Jerry chase each other"),
        ("HTML tags escaped", "&lt;b&gt;bold&lt;/b&gt; text"),
        ("HTML nested escapes", "AT&amp;amp;T &amp;amp;amp;lt;tag&amp;amp;amp;gt;"),
        ("HTML numeric", "&#169; &#x1F600; &#20013;&#25991; &#X41;"),
        ("HTML invalid numeric", "&#0; &#128; &#x9F; &#xD800; &#x110000; &#1; &#65abc"),
        ("HTML named no semicolon", "&copy 2024 &amp more &nbsp;x &notin; &not it"),
        ("HTML with a tag", "<b>bold</b> &amp;amp; &lt;"),
        ("HTML named entities", "caf&eacute; &hellip; &mdash; &ldquo;quoted&rdquo; &euro;5 &times;2 &deg;C"),
        ("curly quotes", "“Double” and ‘single’ quotes ‚low‛ „low double‟ ʼapostrophe"),
        ("ligatures", "ﬁsh ﬂower ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ǆ"),
        ("C0 controls", "a\x00b\x01c\x07d\x0be\x1ff\x7fg"),
        ("C1 controls", "\x93quoted\x94 and \x85next \x80 \x81"),
        ("terminal escapes", "\x1b[31mred\x1b[0m text \x1b[1;32mgreen"),
        ("BOM and zero-width", "\ufeffstart zero\u200bwidth join\u200dthis \u2060word"),
        ("line breaks", "line one\nline two\r\nline three\rline four\u2028five\u2029six"),
        ("whitespace runs", "  lots    of \t\t spaces   between\n\n\nwords   "),
        ("decomposed accents", "cafe\u0301 nai\u0308ve"),
        ("digits and units", "1920x1080 60fps 3.14159 -42 +7 100% $9.99 #1"),
        ("punctuation", "Wait... what?! (yes) [no] {maybe} <a> a/b a\\b a_b a-b 'q' \"qq\" ~`^|@"),
        ("special token text", "a</s>b and <pad> or <unk> here"),
        ("extra id text", "fill <extra_id_0> and <extra_id_2>"),
        ("diaeresis and macron", "spacing ¨ ¯ ´ ¸ marks"),
        ("mixed", "A 机器人 robot 🤖 walks &amp; talks in Ｔｏｋｙｏ “at night”… 東京!"),
        ("math and symbols", "∑ ∫ √ ∞ ≈ ≠ ≤ ≥ → ← ↑ ↓ ★ ☆ © ® ™ ° ± × ÷"),
        ("superscripts and fractions", "x² + y³ = ½ ¼ ① ② ⑴ ㎏ ㎡"),
        ("NBSP and thin spaces", "non\u00a0breaking\u2009thin\u202fnarrow\u205fmath space"),
    ]
    # > 512 tokens: long English and long Chinese
    long_en = " ".join(rng.choice(EN_WORDS) for _ in range(700))
    p.append(("long English (> 512 tokens)", long_en))
    p.append(("long Chinese (> 512 tokens)", "，".join(rng.choice(ZH_PHRASES[:19]) for _ in range(120))))
    # exactly 511 text tokens (+ EOS = 512: nothing dropped) and 512 (one dropped)
    words = [rng.choice(EN_WORDS) for _ in range(2000)]
    for target in (511, 512):
        lo, hi = 1, len(words)
        while lo < hi:  # smallest prefix with >= target tokens
            mid = (lo + hi) // 2
            if n_text_tokens(tok, " ".join(words[:mid])) >= target:
                hi = mid
            else:
                lo = mid + 1
        text = " ".join(words[:lo])
        n = n_text_tokens(tok, text)  # the target, or a little more when the last word adds several pieces
        p.append((f"{n} text tokens", text))
    return p


RANDOM_ATOMS = (EN_WORDS[:60] + ZH_PHRASES[:8] + EMOJI + [
    "</s>", "<pad>", "<unk>", "<extra_id_0>", "<extra_id_2>", "<extra_id_3>", "<", "/s>", "</", "Q", "QQ", "ß", "ø",
    "ǅ", "⑴", "㎏", "ｶﾞ", " ", "  ", "\t", ",", ".", "!", "&amp;", "Ω", "Ⅻ", "\u200b", "\u00ad", "ﬀ", "¼", "١٢", "🦄",
    "🧙‍♂️", "x²", "ℌ", "№", "™", "…", "&#x4E2D;", "&lt;", "\u3000", "“", "’", "ＡＢ"])


def random_prompts(rng, n):
    """Random concatenations of the atoms above, for a differential check of the
    whole tokenizer path. Combining marks (U+0301, and "¨", which NFKC turns into
    space + U+0308) are left out: next to characters that NFKC expands (ℌ, ™, ¼)
    the tokenizers library's normalizer drops the mark and SentencePiece keeps it,
    a known difference (docs/perf_text_encoder.md)."""
    return ["".join(rng.choice(RANDOM_ATOMS) + (" " if rng.random() < 0.5 else "")
                    for _ in range(rng.randint(0, 30))) for _ in range(n)]


# ---------------------------------------------------------------------------
def build_model(vocab_rows, seed):
    cfg = UMT5Config(vocab_size=vocab_rows, d_model=64, d_kv=16, d_ff=96, num_layers=3, num_heads=4,
                     relative_attention_num_buckets=32, relative_attention_max_distance=128,
                     feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, dropout_rate=0.0,
                     is_encoder_decoder=True, tie_word_embeddings=True, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(seed)
    model = UMT5EncoderModel(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                # Norm weights away from 1 so that a missed or misplaced norm weight shows.
                p.copy_(1.0 + 0.25 * torch.randn(p.shape, generator=g))
            elif "relative_attention_bias" in name:
                # Large enough that a wrong bucket or a shared table changes the output clearly.
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif name == "shared.weight":
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                # q/k smaller so that the (unscaled) attention logits stay O(1) and
                # the output is not overly sensitive to rounding.
                fan_in = p.shape[1]
                gain = 0.5 if (".q." in name or ".k." in name) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * (gain / fan_in ** 0.5))
    return model


def run(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state.float().contiguous()


def rounded_model(model, kind):
    """A copy whose weights are what the reduced-precision file stores, as fp32."""
    m = build_model(model.config.vocab_size, 0)
    m.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in m.named_parameters():
            if kind == "bf16":
                p.copy_(p.to(torch.bfloat16).float())
            elif kind == "f16":
                p.copy_(p.to(torch.float16).float())
            elif kind == "fp8":
                w8, scale = fp8_quantize(p) if is_linear(name) else (None, None)
                p.copy_(w8.float() * scale if w8 is not None else p.to(torch.float16).float())
    return m


def is_linear(name):
    return name.endswith(".weight") and any(s in name for s in (".q.", ".k.", ".v.", ".o.", ".wi_0.", ".wi_1.", ".wo."))


def fp8_quantize(w):
    # ComfyUI-style per-tensor scale: the largest magnitude maps to e4m3's max (448).
    scale = (w.abs().max().float() / 448.0).reshape(1)
    w8 = (w.float() / scale).clamp(-448, 448).to(torch.float8_e4m3fn)
    return w8, scale


def pad_ids(seqs):
    L = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), L, dtype=torch.int64)
    mask = torch.zeros(len(seqs), L, dtype=torch.int64)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    return ids, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "text_encoder"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    rng = random.Random(1234)
    os.makedirs(out, exist_ok=True)

    # ---- tokenizer -----------------------------------------------------------
    proto = train_spm(training_corpus(rng), vocab_size=1000)
    tok_dir = os.path.join(out, "tokenizer")
    shutil.rmtree(tok_dir, ignore_errors=True)
    os.makedirs(tok_dir)
    with open(os.path.join(tok_dir, "spiece.model"), "wb") as f:
        f.write(proto)
    # A few sentinel tokens as umT5's tokenizer has (added after the pieces).
    T5Tokenizer.from_pretrained(tok_dir, extra_ids=3).save_pretrained(tok_dir)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    print(f"tokenizer: {type(tok).__name__}, {len(tok)} tokens, {sp.get_piece_size()} pieces")

    prompts = test_prompts(rng, tok)
    ids_tensors = {}
    for i, (desc, prompt) in enumerate(prompts):
        cleaned = wan_clean(prompt)
        enc = tok([cleaned], padding="max_length", max_length=TEXT_LEN, truncation=True,
                  add_special_tokens=True, return_tensors="pt")
        ids_tensors[f"prompt.{i}"] = torch.tensor(list(prompt.encode("utf-8")), dtype=torch.uint8)
        ids_tensors[f"cleaned.{i}"] = torch.tensor(list(cleaned.encode("utf-8")), dtype=torch.uint8)
        n = int(enc.attention_mask.sum())
        # Stored without the padding (size budget); the padding is checked here.
        assert enc.attention_mask[0, :n].eq(1).all() and enc.attention_mask[0, n:].eq(0).all()
        assert enc.input_ids[0, n:].eq(0).all() and enc.input_ids[0, n - 1] == 1
        ids_tensors[f"input_ids.{i}"] = enc.input_ids[0, :n].contiguous()
        ids_tensors[f"spm_ids.{i}"] = torch.tensor(sp.encode(cleaned) + [1], dtype=torch.int64)
        print(f"  {i:2d} {desc:32s} {n:3d} tokens  {cleaned[:50]!r}")
    # Random prompts, stored compactly: bytes and ids concatenated with offsets.
    rnd = random_prompts(random.Random(99), 120)
    blobs = [p.encode("utf-8") for p in rnd]
    rnd_ids = []
    for p in rnd:
        enc = tok([wan_clean(p)], padding="max_length", max_length=TEXT_LEN, truncation=True,
                  add_special_tokens=True)
        rnd_ids.append(enc.input_ids[0][: sum(enc.attention_mask[0])])
    ids_tensors["random.prompts"] = torch.tensor(list(b"".join(blobs)), dtype=torch.uint8)
    ids_tensors["random.prompt_offsets"] = torch.tensor(np.cumsum([0] + [len(b) for b in blobs]), dtype=torch.int64)
    ids_tensors["random.ids"] = torch.tensor([i for ids in rnd_ids for i in ids], dtype=torch.int32)
    ids_tensors["random.id_offsets"] = torch.tensor(np.cumsum([0] + [len(x) for x in rnd_ids]), dtype=torch.int64)
    meta = {"count": str(len(prompts)), "random_count": str(len(rnd)),
            **provenance.metadata(__file__, seed="1234 (corpus, prompts), 99 (random prompts)", libs=LIBS)}
    meta.update({f"description.{i}": d for i, (d, _) in enumerate(prompts)})
    save_file(ids_tensors, os.path.join(out, "token_ids.safetensors"), metadata=meta)

    # ---- model ---------------------------------------------------------------
    vocab_rows = (len(tok) + 63) // 64 * 64
    model = build_model(vocab_rows, seed=20240)
    te_dir = os.path.join(out, "text_encoder")
    shutil.rmtree(te_dir, ignore_errors=True)
    model.save_pretrained(te_dir, safe_serialization=True)
    model_meta = provenance.metadata(__file__, seed=20240, libs=LIBS)
    provenance.stamp_safetensors(os.path.join(te_dir, "model.safetensors"), model_meta)

    # Comfy scaled-fp8 file
    comfy = {}
    for name, p in model.state_dict().items():
        if name == "encoder.embed_tokens.weight":
            continue  # tied to shared.weight; Comfy files carry only shared.weight
        if is_linear(name):
            w8, scale = fp8_quantize(p)
            comfy[name] = w8.contiguous()
            comfy[name[:-len("weight")] + "scale_weight"] = scale.contiguous()
        else:
            comfy[name] = p.to(torch.float16).contiguous()
    comfy["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    save_file(comfy, os.path.join(out, "umt5_fp8_scaled.safetensors"), metadata=model_meta)

    # ---- outputs -------------------------------------------------------------
    def ids_of(i):
        return ids_tensors[f"input_ids.{i}"].tolist()

    by_desc = {d: i for i, (d, _) in enumerate(prompts)}
    long_ids = ids_of(by_desc["long English (> 512 tokens)"])
    assert len(long_ids) == TEXT_LEN
    wan_ids = ids_of(by_desc["Wan example"])
    cases = {
        "len1": pad_ids([ids_of(by_desc["empty"])]),
        "len7": pad_ids([ids_of(by_desc["plain English"])[:6] + [1]]),
        "len40": pad_ids([(long_ids[:39] + [1])]),
        "len512": pad_ids([long_ids]),
        "batch2": pad_ids([ids_of(by_desc["Chinese"]), wan_ids]),
    }
    wan_ids_512 = torch.zeros(1, TEXT_LEN, dtype=torch.int64)
    wan_ids_512[0, :len(wan_ids)] = torch.tensor(wan_ids)
    cases["wan512"] = (wan_ids_512, (wan_ids_512 != 0).to(torch.int64))
    outs = {}
    for name, (ids, mask) in cases.items():
        outs[f"{name}.input_ids"] = ids.contiguous()
        outs[f"{name}.attention_mask"] = mask.contiguous()
        outs[f"{name}.last_hidden_state"] = run(model, ids, mask)
        if name == "wan512":
            # Only the real rows matter to Wan (the DiT gets zeros after them); size budget.
            outs[f"{name}.last_hidden_state"] = outs[f"{name}.last_hidden_state"][:, :len(wan_ids)].contiguous()
        print(f"  case {name}: ids {list(ids.shape)}, real {mask.sum(1).tolist()}")
    for kind in ("bf16", "f16", "fp8"):
        m = rounded_model(model, kind)
        for name in ("len40",):
            ids, mask = cases[name]
            ref = outs[f"{name}.last_hidden_state"]
            o = run(m, ids, mask)
            outs[f"{kind}.{name}.last_hidden_state"] = o
            rel = float((o - ref).norm() / ref.norm())
            print(f"  {kind} {name}: relative difference to fp32 weights {rel:.3e}")
    save_file(outs, os.path.join(out, "outputs.safetensors"), metadata=model_meta)

    total = 0
    for root, _, files in os.walk(out):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print(f"wrote {out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
