#!/usr/bin/env python3
"""Reference token ids and embeddings for the Swift MiniLM: ids from Hugging Face `tokenizers`,
vectors from a plain numpy BERT forward pass over `model.safetensors` (mean pooling, L2 norm).

usage: minilm-reference.py MODEL_DIR OUT.json

Sentences: a few hundred from the paraphrase development set, plus hand-made edge cases
(accents, CJK, emoji, control characters, empty, very long). Truncation at 256 tokens, as
sentence-transformers runs all-MiniLM-L6-v2.
"""
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
tokenizer.no_padding()
tokenizer.enable_truncation(max_length=256)
whole = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
whole.no_padding()
whole.no_truncation()

sentences = [
    "", " ", "Hello, world!", "HELLO WORLD", "Café déjà vu — naïve résumé", "Ελληνικά ΣΟΦΙΑ σοφός", "İstanbul",
    "東京は日本の首都です。", "我爱北京天安门", "한국어 문장입니다", "emoji 😀👍🏽 and ZWJ 👨‍👩‍👧", "tab\tnew\nline\rcarriage",
    "control\u0001char\u200bzero-width\ufeffbom", "don't stop-believing... (really)?!", "$100.00 & 50% off #deal @home",
    "supercalifragilisticexpialidocious antidisestablishmentarianism", "x" * 150, "word " * 400,
    "ﬁnancial ﬂow", "Ⅻ ① ½", "Straße groß", "C++ and C# and F#", "https://example.com/a?b=c&d=e",
]
# Generated sentences (seeded, so every run checks the same ones): a mixed vocabulary of plain
# words, capitals, accents, numbers, punctuation, CJK and emoji, 1 to 40 words each.
import random

rng = random.Random(20261124)
pool = (
    "the a quick brown fox jumps over lazy dog How What why can I learn to play guitar best way weather today "
    "Stock market fell sharply Paris London São Paulo Zürich naïve café coöperate résumé jalapeño Ångström "
    "C++ e-mail don't it's U.S.A. 3.14 1,000,000 $5 50% #tag @user (parenthesis) [bracket] {brace} \"quote\" "
    "東京 北京 日本語 한국 😀 🚀 👍🏽 — – … ¿qué? ¡hola! Привет мир Ελλάδα ﬁ ß İ ı unbelievably antidisestablishmentarianism"
).split()
for _ in range(300):
    words = [rng.choice(pool) for _ in range(rng.randint(1, 40))]
    text = " ".join(w.upper() if rng.random() < 0.1 else w for w in words)
    sentences.append(text + rng.choice(["", ".", "?", "!", "..."]))

root = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "paraphrase" / "dev.jsonl"
if root.exists():
    with open(root) as f:
        for i, line in enumerate(f):
            if i >= 50:
                break
            row = json.loads(line)
            sentences += [row["a"], row["b"]]
W = load_file(str(model_dir / "model.safetensors"))


def layer_norm(x, prefix):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * W[prefix + ".weight"] + W[prefix + ".bias"]


def dense(x, prefix):
    return x @ W[prefix + ".weight"].T + W[prefix + ".bias"]


def erf(x):
    # numpy has no erf: Abramowitz-Stegun 7.1.26 is too coarse, so use math.erf elementwise.
    import math
    return np.vectorize(math.erf)(x)


def embed(ids):
    ids = np.array(ids)
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][: len(ids)]
    x = x + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x.astype(np.float64), "embeddings.LayerNorm")
    for i in range(6):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
        heads = []
        for h in range(12):
            sl = slice(h * 32, (h + 1) * 32)
            s = q[:, sl] @ k[:, sl].T / np.sqrt(32)
            s = np.exp(s - s.max(-1, keepdims=True))
            s = s / s.sum(-1, keepdims=True)
            heads.append(s @ v[:, sl])
        x = layer_norm(x + dense(np.concatenate(heads, -1), p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        x = layer_norm(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
    v = x.mean(0)
    return (v / max(np.linalg.norm(v), 1e-12)).tolist()


def words(s):
    """Each word's code-point range and pieces, untruncated (WordPieceTokenizer.wordPieces)."""
    enc = whole.encode(s, add_special_tokens=False)
    out = []
    for k, w in enumerate(enc.word_ids):
        if w == len(out):
            out.append({"start": enc.offsets[k][0], "end": enc.offsets[k][1], "pieces": [enc.ids[k]]})
        else:
            out[w]["end"] = enc.offsets[k][1]
            out[w]["pieces"].append(enc.ids[k])
    return out


cases = []
for s in sentences:
    ids = tokenizer.encode(s).ids
    cases.append({"text": s, "ids": ids, "embedding": embed(ids), "words": words(s)})
out.write_text(json.dumps(cases, ensure_ascii=False))
print(f"{len(cases)} reference tokenizations and embeddings -> {out}")
