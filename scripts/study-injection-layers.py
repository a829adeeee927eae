#!/usr/bin/env python3
"""A study, nothing shipped: does the injection head generalise better over other layers of MiniLM
than over the last one, which Sluice shares with the semantic cache?

usage: study-injection-layers.py MODEL_DIR TRAIN.jsonl MEASURE.jsonl [--cache DIR]

For every window (cut as Sluice cuts them) it keeps the mean-pooled state after each of the six
layers. Each feature set is fitted exactly as scripts/train-injection-head.py fits the shipped
head (multiple-instance logistic regression; a text scores as its highest window) and judged the
same way: every TRAIN source scored by a head trained on the other sources, the threshold where
2% of those held-out benign texts are flagged, then a head trained on all of TRAIN measured on
MEASURE at that threshold. MEASURE is only reported, never used to choose anything. The
regularisation of each set is fixed in advance (a larger set gets more), not searched.
"""
import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from minilm_numpy import MiniLM  # noqa: E402

spec = importlib.util.spec_from_file_location("train_injection_head", here / "train-injection-head.py")
head = importlib.util.module_from_spec(spec)
spec.loader.exec_module(head)

# name, layers (0-based), L2
FEATURES = [
    ("last layer (shipped)", [5], 1e-3),
    ("layer 3", [2], 1e-2),
    ("layer 4", [3], 1e-2),
    ("layer 5", [4], 1e-2),
    ("layers 3-6", [2, 3, 4, 5], 3e-2),
    ("all six", [0, 1, 2, 3, 4, 5], 3e-2),
]

parser = argparse.ArgumentParser()
parser.add_argument("model_dir")
parser.add_argument("train")
parser.add_argument("measure")
parser.add_argument("--cache", help="keep the per-layer window features here (they take minutes to compute)")
args = parser.parse_args()
model = MiniLM(Path(args.model_dir))


def load(path):
    """Per window, each layer's mean state; the text each window belongs to; labels; sources."""
    cache = Path(args.cache) / (Path(path).stem + "-layers.npz") if args.cache else None
    rows, labels, sources = head.read_rows(path)
    if cache and cache.exists():
        saved = np.load(cache)
        return saved["means"], saved["owner"], labels, sources
    ids, owner = [], []
    for i, row in enumerate(rows):
        for w in head.windows(row["text"]):
            ids.append(model.tokenizer.encode(w).ids)
            owner.append(i)
    means = np.zeros((len(ids), 6, 384), dtype=np.float32)
    order = np.argsort([len(s) for s in ids])
    for start in range(0, len(order), 32):
        batch = order[start:start + 32]
        means[batch] = model.layer_means([ids[j] for j in batch])
        if start % 3200 == 0:
            print(f"  {path}: {start} of {len(ids)} windows", file=sys.stderr, flush=True)
    owner = np.array(owner)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, means=means, owner=owner)
    return means, owner, labels, sources


def features(means, layers, scale_from):
    """The last layer L2-normalised as Sluice uses it; other sets standardised on TRAIN."""
    X = means[:, layers, :].reshape(len(means), -1).astype(np.float64)
    if layers == [5]:
        return X / np.linalg.norm(X, axis=1, keepdims=True)
    ref = scale_from[:, layers, :].reshape(len(scale_from), -1).astype(np.float64)
    return (X - ref.mean(0)) / (ref.std(0) + 1e-6) / np.sqrt(len(layers))


Mt, ot, lt, st = load(args.train)
Mm, om, lm, sm = load(args.measure)
print(f"{'features':22s} | {'TRAIN, each source held out':34s} | MEASURE (never trained or tuned on)")
for name, layers, l2 in FEATURES:
    Xt, Xm = features(Mt, layers, Mt), features(Mm, layers, Mt)
    held = head.held_out_scores(Xt, ot, lt, st, l2)
    threshold = head.threshold_at(held[lt == 0])
    w, b = head.fit(Xt, ot, lt, np.ones(len(lt), dtype=bool), l2)
    scores = head.text_scores(w, b, Xm, om, len(lm))
    caught = held >= threshold
    flagged = scores >= threshold
    print(f"{name:22s} | AUC {head.auc(held, lt):.3f}, recall {caught[lt == 1].mean():.3f} at 2% | "
          f"AUC {head.auc(scores, lm):.3f}, recall {flagged[lm == 1].mean():.3f} at {flagged[lm == 0].mean():.1%} false positives")
