#!/usr/bin/env python3
"""Trains the prompt-injection classifier: a logistic regression over the MiniLM sentence
embedding (all-MiniLM-L6-v2, mean pooled, L2-normalised, as Sluice computes it) of each window of
a text, and writes its weights and threshold as Swift source
(Sources/SluiceGuardrails/Injection/InjectionHead+Weights.swift).

usage: train-injection-head.py MODEL_DIR TRAIN.jsonl [TRAIN.jsonl ...] [--measure HELD_OUT.jsonl] [--cache DIR]

Each file has {"text", "label": 1 attack / 0 benign, "source"} per line. A text is cut into
windows exactly as Sluice cuts it (InjectionClassifier.windows) and scores as its highest window.
An attack's label belongs to the text, not to each window (an instruction inserted in a long
e-mail sits in one window), so training is multiple-instance: the first fit labels every window
of an attack 1, later fits only the window each attack scores highest on.

Nothing is tuned on the rows it reports. Before the final fit the script scores every training
text with a head trained on the other sources only (leave one source out) and picks the
threshold where at most 2% of those benign texts are flagged — the point the issue asks for,
chosen on sources the scoring head never saw. It then reports, at that threshold, recall and
false positives per source of those held-out scores, and on --measure (a file of other sources,
never used for training or for the threshold).
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm_numpy import MiniLM  # noqa: E402

L2 = 1e-3
EPOCHS = 300
RATE = 1.0
ROUNDS = 3  # multiple-instance relabelling rounds
TARGET_FPR = 0.02
MAX_CHARS = 480  # InjectionClassifier.windowChars
MAX_WINDOWS = 8  # InjectionClassifierConfig.maxWindows default

def windows(text):
    """InjectionClassifier.windows: words packed into windows of at most MAX_CHARS code points."""
    pieces = []
    for word in text.split():
        while len(word) > MAX_CHARS:
            pieces.append(word[:MAX_CHARS])
            word = word[MAX_CHARS:]
        pieces.append(word)
    out, current, length = [], [], 0
    for piece in pieces:
        if current and length + 1 + len(piece) > MAX_CHARS:
            out.append(" ".join(current))
            current, length = [], 0
        length += (1 if current else 0) + len(piece)
        current.append(piece)
    if current:
        out.append(" ".join(current))
    if not out:
        out = [""]
    if len(out) > MAX_WINDOWS:
        half = MAX_WINDOWS // 2
        out = out[:half] + out[-(MAX_WINDOWS - half):]
    return out


def read_rows(path):
    """A labelled file's rows, with each text's label and source."""
    rows = [json.loads(line) for line in open(path)]
    labels = np.array([float(r["label"]) for r in rows])
    sources = np.array([r.get("source") or Path(path).stem for r in rows])
    return rows, labels, sources


def load(path, embed, cache_dir=None):
    """Every window's embedding, the text each belongs to, and each text's label and source."""
    rows, labels, sources = read_rows(path)
    cache = Path(cache_dir) / (Path(path).stem + ".npz") if cache_dir else None
    if cache and cache.exists():
        saved = np.load(cache)
        return saved["vectors"], saved["owner"], labels, sources
    vectors, owner = [], []
    for i, row in enumerate(rows):
        for w in windows(row["text"]):
            vectors.append(embed(w))
            owner.append(i)
        if i % 500 == 0:
            print(f"  {path}: embedded {i} of {len(rows)} texts", file=sys.stderr, flush=True)
    vectors, owner = np.array(vectors, dtype=np.float32), np.array(owner)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, vectors=vectors, owner=owner)
    return vectors, owner, labels, sources


def text_scores(w, b, X, owner, n):
    """Each text's score: its highest window's probability."""
    z = X @ w + b
    best = np.full(n, -np.inf)
    np.maximum.at(best, owner, z)
    return 1 / (1 + np.exp(-best))


def fit_windows(X, y, weight, l2=L2):
    w = np.zeros(X.shape[1])
    b = 0.0
    for _ in range(EPOCHS):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        g = (p - y) * weight
        w -= RATE * (X.T @ g / weight.sum() + l2 * w)
        b -= RATE * g.sum() / weight.sum()
    return w, b


def fit(X, owner, labels, texts, l2=L2):
    """Multiple-instance fit on the windows of `texts` (a boolean mask over texts)."""
    keep = texts[owner]
    Xk, ok = X[keep], owner[keep]
    y = labels[ok]
    chosen = np.ones(len(ok), dtype=bool)
    for round in range(ROUNDS):
        if round > 0:
            # An attack keeps only its highest-scoring window as a positive; benign texts keep all.
            z = Xk @ w + b
            chosen = y == 0
            best = {}
            for j in np.flatnonzero(y == 1):
                if ok[j] not in best or z[j] > z[best[ok[j]]]:
                    best[ok[j]] = j
            chosen[list(best.values())] = True
        # Every text weighs the same whatever its window count, and the classes weigh equally.
        per_text = np.bincount(ok[chosen], minlength=len(labels))
        weight = 1.0 / per_text[ok[chosen]]
        yc = y[chosen]
        share = labels[texts].mean()
        weight = weight * np.where(yc == 1, 0.5 / share, 0.5 / (1 - share))
        w, b = fit_windows(Xk[chosen], yc, weight, l2)
    return w, b


def auc(scores, labels):
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # Ties share their mean rank.
    for value in np.unique(scores):
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    pos = labels == 1
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def report(name, scores, labels, sources, threshold):
    flagged = scores >= threshold
    attack, benign = labels == 1, labels == 0
    print(f"{name}: AUC {auc(scores, labels):.3f}; at {threshold:.3f} recall {flagged[attack].mean():.3f} "
          f"({flagged[attack].sum()}/{attack.sum()}), false positives {flagged[benign].mean():.3f} ({flagged[benign].sum()}/{benign.sum()})")
    for source in sorted(set(sources)):
        s = sources == source
        parts = []
        if (s & attack).any():
            parts.append(f"attacks caught {flagged[s & attack].sum()}/{(s & attack).sum()}")
        if (s & benign).any():
            parts.append(f"benign flagged {flagged[s & benign].sum()}/{(s & benign).sum()}")
        print(f"    {source:28s} {', '.join(parts)}")


def held_out_scores(X, owner, labels, sources, l2=L2):
    """Each text's score from a head trained on the other sources only."""
    n = len(labels)
    scores = np.zeros(n)
    for source in sorted(set(sources)):
        held = sources == source
        w, b = fit(X, owner, labels, ~held, l2)
        scores[held] = text_scores(w, b, X, owner, n)[held]
    return scores


def threshold_at(benign_scores, fpr=TARGET_FPR):
    """The lowest threshold that flags at most `fpr` of these benign texts."""
    benign_scores = np.sort(benign_scores)
    k = int(math.floor(fpr * len(benign_scores)))
    threshold = float(benign_scores[len(benign_scores) - k - 1]) + 1e-6 if k < len(benign_scores) else 0.5
    return round(threshold, 4)


SWIFT = """// Generated by scripts/train-injection-head.py from {train}; do not edit.
// Logistic regression over the all-MiniLM-L6-v2 embedding of a window of text: an injection when
// the highest window's probability reaches the threshold (≤ {fpr} of held-out-source benign texts).

extension InjectionHead {{
    static let trainedBias: Float = {b}
    static let trainedThreshold: Double = {threshold}
    static let trainedWeights: [Float] = [
{values},
    ]
}}
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("train", nargs="+", help="training files; their sources are pooled")
    parser.add_argument("--measure")
    parser.add_argument("--cache", help="keep window embeddings here (they take minutes to compute)")
    args = parser.parse_args()
    embed = MiniLM(Path(args.model_dir)).embed

    parts = [load(path, embed, args.cache) for path in args.train]
    X = np.concatenate([p[0] for p in parts])
    offsets = np.cumsum([0] + [len(p[2]) for p in parts])
    owner = np.concatenate([p[1] + offsets[i] for i, p in enumerate(parts)])
    labels = np.concatenate([p[2] for p in parts])
    sources = np.concatenate([p[3] for p in parts])
    n = len(labels)
    print(f"{n} texts ({int(labels.sum())} attacks), {len(X)} windows, {len(set(sources))} sources")
    held_out = held_out_scores(X, owner, labels, sources)
    threshold = threshold_at(held_out[labels == 0])
    report("Training sources, each scored by a head that never saw it", held_out, labels, sources, threshold)

    w, b = fit(X, owner, labels, np.ones(n, dtype=bool))
    if args.measure:
        Xm, om, lm, sm = load(args.measure, embed, args.cache)
        report(f"{Path(args.measure).name} (sources never trained on), the final head", text_scores(w, b, Xm, om, len(lm)), lm, sm, threshold)

    out = Path(__file__).resolve().parent.parent / "Sources" / "SluiceGuardrails" / "Injection" / "InjectionHead+Weights.swift"
    values = ",\n".join("        " + ", ".join(f"{v:.6f}" for v in w[i:i + 8]) for i in range(0, len(w), 8))
    out.write_text(SWIFT.format(train=" and ".join(Path(t).name for t in args.train), fpr=f"{TARGET_FPR:.0%}", b=f"{b:.6f}", threshold=threshold, values=values))
    print(f"weights -> {out}")


if __name__ == "__main__":
    main()
