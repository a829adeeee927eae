#!/usr/bin/env python3
"""A study, not a model Sluice ships: can a learned check on a semantic-cache candidate beat the
rule-based question check (QuestionMatch) on held-out sources? Written down in
docs/routing-and-cache.md; kept so that the figures there can be reproduced.

usage: study-cache-verifier.py MODEL_DIR PARAPHRASE_DIR   (all-MiniLM-L6-v2; ../shared/data/paraphrase)

For every pair of dev.jsonl and paws_dev.jsonl: the MiniLM sentence cosine (as Sluice computes
it), a BERTScore-like alignment of the two questions' token states (each token's best match on
the other side: min and mean, both ways), the agreements the rule compares (numbers, negation,
question word, names, content-word order; a Python reading of QuestionMatch), content-word
overlap and the length ratio. A logistic regression over them is scored two ways: trained on
the other sources only (held out by source, the figure that counts) and trained on the other
half of the same source's rows (an optimistic ceiling). A hit needs cosine >= T and the check.
"""
import bisect
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm_numpy import MiniLM  # noqa: E402

NEG = {"not", "no", "never", "nor", "without", "nothing", "none", "neither"}
QW = {"how": "how", "why": "why", "where": "where", "who": "who", "whom": "who", "when": "when", "what": "what", "which": "what"}
FW = set("""a an the of to in on for at by with from about as into over under and or but if then so than that this these those is
are was were be been being am do does did doing have has had having i me my we our you your he him his she her it its they them
their what which who whom whose how why when where can could should would will shall may might must there here just also very
more most some any s t get""".split())


def words(text):
    t = text.replace("``", " ").replace("''", " ").lower().replace("\u2019", "'")
    t = re.sub(r"n't\b", " not ", t)
    out = []
    for w in re.findall(r"\d+(?:[.,]\d+)*|[^\W\d_]+", t):
        out += ["can", "not"] if w == "cannot" else [w]
    return out


def names(text):
    out, start = set(), True
    for m in re.finditer(r"\w[\w+#'.\-]*|[?!.]", text.replace("``", " ").replace("''", " ")):
        w = m.group(0)
        if w in "?!.":
            start = True
            continue
        ended = w.endswith(".")
        w2 = w.rstrip(".'-,")
        w2 = w2[:-2] if w2.endswith("'s") else w2
        acronym = len(w2) > 1 and w2.upper() == w2 and any(c.isalpha() for c in w2)
        if w2 and (any(c.isdigit() for c in w2) or acronym or (w2[0].isupper() and not start and len(w2) > 1)):
            out.add(w2.lower())
        start = ended
    return out


def question(text):
    ws = words(text)
    nm = names(text)
    return dict(nums=sorted(w for w in ws if w[0].isdigit()), neg=any(w in NEG for w in ws),
                qw=next((QW[w] for w in ws if w in QW), None),
                content=[w for w in ws if not w[0].isdigit() and w not in NEG and w not in FW], names=nm, vocab=set(ws) | nm)


def out_of_order(a, b):
    def uses(ws):
        seen, r = {}, []
        for w in ws:
            seen[w] = seen.get(w, 0) + 1
            r.append((w, seen[w]))
        return r
    pb = {u: i for i, u in enumerate(uses(b))}
    pos = [pb[u] for u in uses(a) if u in pb]
    tails = []
    for p in pos:
        i = bisect.bisect_left(tails, p)
        tails[i:i + 1] = [p]
    return len(pos) - len(tails), len(pos)


def rule_features(a, b):
    x, y = question(a), question(b)
    o, shared = out_of_order(x["content"], y["content"])
    ca, cb = set(x["content"]), set(y["content"])
    agree = [x["nums"] == y["nums"], x["neg"] == y["neg"], x["qw"] == y["qw"], x["names"] <= y["vocab"] and y["names"] <= x["vocab"]]
    return [float(v) for v in agree] + [min(o, 3), o / max(1, shared), len(ca & cb) / max(1, len(ca | cb)), float(all(agree) and o == 0)]


def main():
    model = MiniLM(sys.argv[1])
    rows = [json.loads(line) for f in ("dev.jsonl", "paws_dev.jsonl") for line in open(Path(sys.argv[2]) / f)]
    texts = sorted({r[k] for r in rows for k in ("a", "b")})
    ids = [model.tokenizer.encode(t).ids for t in texts]
    states = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    for s in range(0, len(order), 64):
        batch = order[s:s + 64]
        for i, st in zip(batch, model.states_batch([ids[i] for i in batch])):
            states[i] = st
    index = {t: i for i, t in enumerate(texts)}

    def sentence(i):
        v = states[i].mean(0)
        return v / np.linalg.norm(v)

    def tokens(i):
        t = states[i][1:-1] if len(states[i]) > 2 else states[i]
        return t / np.linalg.norm(t, axis=1, keepdims=True)

    X, y, src, cos = [], [], [], []
    for r in rows:
        i, j = index[r["a"]], index[r["b"]]
        c = float(sentence(i) @ sentence(j))
        m = tokens(i) @ tokens(j).T
        ra, rb = m.max(1), m.max(0)
        lengths = (len(ra), len(rb))
        X.append([c, ra.min(), rb.min(), ra.mean(), rb.mean(), min(ra.min(), rb.min()), np.sort(np.concatenate([ra, rb]))[:3].mean()]
                 + rule_features(r["a"], r["b"]) + [abs(lengths[0] - lengths[1]) / max(lengths)])
        y.append(r["label"])
        src.append(r["source"])
        cos.append(c)
    X, y, src, cos = np.array(X), np.array(y), np.array(src), np.array(cos)

    def fit(mask):
        mask = mask & (cos >= 0.8)  # only candidates near the threshold matter
        mu, sd = X[mask].mean(0), X[mask].std(0) + 1e-6
        Z = np.hstack([(X[mask] - mu) / sd, np.ones((mask.sum(), 1))])
        w = np.zeros(Z.shape[1])
        for _ in range(2000):
            p = 1 / (1 + np.exp(-Z @ w))
            w -= 0.5 * (Z.T @ (p - y[mask]) / len(Z) + 1e-2 * np.r_[w[:-1], 0])
        return lambda R: 1 / (1 + np.exp(-(np.hstack([(R - mu) / sd, np.ones((len(R), 1))]) @ w)))

    held_out = np.zeros(len(y))
    for s in ("qqp", "paws", "gptcache"):
        held_out[src == s] = fit(src != s)(X[src == s])
    halves = np.random.default_rng(0).integers(0, 2, len(y))
    same_source = np.zeros(len(y))
    for k in (0, 1):
        same_source[halves == k] = fit(halves != k)(X[halves == k])

    def rates(hit, s):
        pos, neg = (src == s) & (y == 1), (src == s) & (y == 0)
        return "%s %.1f%% / %s" % (s, 100 * hit[pos].mean(), "%.1f%%" % (100 * hit[neg].mean()) if neg.any() else "-")

    print("hits / false hits per source")
    for t in (0.95, 0.92, 0.90, 0.88, 0.85):
        print(f"T {t}: similarity only", ", ".join(rates(cos >= t, s) for s in ("qqp", "paws", "gptcache")),
              "| rule check", ", ".join(rates((cos >= t) & (X[:, 14] == 1), s) for s in ("qqp", "paws", "gptcache")))
        for name, p in (("held out by source", held_out), ("same source, other half", same_source)):
            for th in (0.5, 0.8, 0.9, 0.95):
                print(f"   {name}, p >= {th}:", ", ".join(rates((cos >= t) & (p >= th), s) for s in ("qqp", "paws", "gptcache")))


if __name__ == "__main__":
    main()
