#!/usr/bin/env python3
"""A study, not a model Sluice ships: does fine-tuning MiniLM itself (low-rank adapters on every
dense layer, as the cache's paraphrase verifier is trained) detect prompt injection on unseen
sources better than the shipped head over the frozen sentence embedding? Written down in
docs/guardrails.md.

usage: study-injection-adapters.py MODEL_DIR TRAIN.jsonl DEV.jsonl [--epochs N]

Trains on every window of TRAIN (windows cut as Sluice cuts them; at most 4 per text, each
labelled with its text's label) and scores DEV's texts (never trained on; other sources) as
their highest window. Prints DEV's AUC per source mix and its recall at the threshold where 2%
and 5% of TRAIN's benign texts score above it (TRAIN-chosen, so optimistic for TRAIN's own
sources), and, for comparison only, recall at DEV's own 5% false-positive point (an oracle).
Needs PyTorch (`bash scripts/train-env.sh`).
"""
import argparse
import importlib.util
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from tokenizers import Tokenizer

here = Path(__file__).resolve().parent


def module(name, file):
    spec = importlib.util.spec_from_file_location(name, here / file)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


verifier = module("verifier", "train-cache-verifier.py")
head = module("head", "train-injection-head.py")
MAX_TOKENS = 128


def encode(tok, text):
    ids = tok.encode(text).ids
    return (ids[: MAX_TOKENS - 1] + [ids[-1]]) if len(ids) > MAX_TOKENS else ids


def window_rows(rows, tok, cap=4):
    out = []
    for i, r in enumerate(rows):
        for w in head.windows(r["text"])[:cap]:
            ids = encode(tok, w)
            out.append((i, ids, [0] * len(ids)))
    return out


@torch.no_grad()
def text_scores(model, windows, n):
    model.eval()
    scores = np.full(n, -1e9)
    for group in verifier.by_length(windows, lambda w: len(w[1]), 64):
        ids, types, mask = verifier.batch([(windows[i][1], windows[i][2]) for i in group])
        logits = model.logit(ids, types, mask).numpy()
        for j, i in enumerate(group):
            scores[windows[i][0]] = max(scores[windows[i][0]], logits[j])
    return scores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("train")
    ap.add_argument("dev")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    tok = Tokenizer.from_file(str(Path(args.model_dir) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    train_rows, dev_rows = head.read_rows(args.train)[0], head.read_rows(args.dev)[0]
    for r in train_rows + dev_rows:
        r["source"] = r.get("source") or "unknown"
    model = verifier.Encoder(load_file(str(Path(args.model_dir) / "model.safetensors")))
    tw = window_rows(train_rows, tok)
    rows = [dict(label=train_rows[i]["label"], source=train_rows[i]["source"]) for i, _, _ in tw]
    print(f"{len(train_rows)} training texts, {len(tw)} windows", file=sys.stderr)

    # train() encodes pairs; give it the windows, already encoded, through a stand-in.
    encoded = [(ids, types) for _, ids, types in tw]

    class Encoded:
        def encode(self, a, b):
            return encoded[a]
    for k, r in enumerate(rows):
        r["a"] = r["b"] = k
    start = time.time()
    verifier.train(model, Encoded(), rows, args.epochs)
    print(f"trained in {time.time() - start:.0f} s", file=sys.stderr)
    train_scores = text_scores(model, tw, len(train_rows))
    dev_scores = text_scores(model, window_rows(dev_rows, tok), len(dev_rows))
    labels = np.array([r["label"] for r in dev_rows])
    benign_train = train_scores[np.array([r["label"] for r in train_rows]) == 0]
    print(f"dev AUC {head.auc(dev_scores, labels):.3f}")
    for fpr in (0.02, 0.05):
        t = np.sort(benign_train)[::-1][int(fpr * len(benign_train))]
        print(f"  threshold at {fpr:.0%} of TRAIN's benign: dev recall {np.mean(dev_scores[labels == 1] >= t):.3f}, "
              f"dev false positives {np.mean(dev_scores[labels == 0] >= t):.3f}")
        for s in sorted({r["source"] for r in dev_rows}):
            for label, what in ((1, "attacks caught"), (0, "benign flagged")):
                m = np.array([r["source"] == s and r["label"] == label for r in dev_rows])
                if m.any():
                    print(f"    {s}: {what} {np.mean(dev_scores[m] >= t):.3f} of {m.sum()}")
    t = np.sort(dev_scores[labels == 0])[::-1][int(0.05 * (labels == 0).sum())]
    print(f"  oracle, DEV's own 5% point: recall {np.mean(dev_scores[labels == 1] >= t):.3f}")


if __name__ == "__main__":
    main()
