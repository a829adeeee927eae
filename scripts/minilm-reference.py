#!/usr/bin/env python3
"""Reference token ids for the Swift WordPiece tokenizer, from Hugging Face `tokenizers`.

usage: minilm-reference.py MODEL_DIR OUT.json

Sentences: a few hundred from the paraphrase development set, plus hand-made edge cases
(accents, CJK, emoji, control characters, empty, very long). Truncation at 256 tokens, as
sentence-transformers runs all-MiniLM-L6-v2.
"""
import json
import sys
from pathlib import Path

from tokenizers import Tokenizer

model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
tokenizer.no_padding()
tokenizer.enable_truncation(max_length=256)

sentences = [
    "", " ", "Hello, world!", "HELLO WORLD", "Café déjà vu — naïve résumé", "Ελληνικά ΣΟΦΙΑ σοφός", "İstanbul",
    "東京は日本の首都です。", "我爱北京天安门", "한국어 문장입니다", "emoji 😀👍🏽 and ZWJ 👨‍👩‍👧", "tab\tnew\nline\rcarriage",
    "control\u0001char\u200bzero-width\ufeffbom", "don't stop-believing... (really)?!", "$100.00 & 50% off #deal @home",
    "supercalifragilisticexpialidocious antidisestablishmentarianism", "x" * 150, "word " * 400,
    "ﬁnancial ﬂow", "Ⅻ ① ½", "Straße groß", "C++ and C# and F#", "https://example.com/a?b=c&d=e",
]
root = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "paraphrase" / "dev.jsonl"
if root.exists():
    with open(root) as f:
        for i, line in enumerate(f):
            if i >= 150:
                break
            row = json.loads(line)
            sentences += [row["a"], row["b"]]
cases = [{"text": s, "ids": tokenizer.encode(s).ids} for s in sentences]
out.write_text(json.dumps(cases, ensure_ascii=False))
print(f"{len(cases)} reference tokenizations -> {out}")
