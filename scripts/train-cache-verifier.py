#!/usr/bin/env python3
"""Trains the semantic cache's pair verifier: all-MiniLM-L6-v2 read as a cross-encoder (both
questions in one sequence, `[CLS] a [SEP] b [SEP]`, the second with token type 1), with low-rank
adapters on every dense layer of the encoder and a logistic head on the mean-pooled last layer.
The encoder's own weights stay frozen; only the adapters (rank 8), the type-1 embedding and the
head are trained, so what Sluice embeds is ~0.7 MB (float16) beside the model it already has.

usage: train-cache-verifier.py MODEL_DIR PARAPHRASE_DIR [--hold-out SOURCE] [--out FILE [--swift FILE]]
       [--epochs N] [--limit N] [--load FILE] [--scores FILE]

Rows are split by a hash of the pair, per source, into train (70%), tune (15%) and report
(15%). The verifier's threshold is chosen on the tune rows only (the highest recall at which
no source's false hits exceed 1%), and figures are printed on the report rows, never on the
rows that chose anything. With --hold-out SOURCE the training and the threshold use the other
sources only and the figures on every row of SOURCE are the held-out-source result.

A cache hit needs the MiniLM cosine >= the cache's threshold and the verifier's probability >=
its threshold; the script prints hits and false hits at several cosine thresholds.

Needs PyTorch (CPU), which Sluice itself does not: `bash scripts/train-env.sh` makes .venv-train with
it. The shipped verifier: `.venv-train/bin/python scripts/train-cache-verifier.py MODEL_DIR PARAPHRASE_DIR
--out verifier.safetensors --swift Sources/SluiceEmbeddings/MiniLMPairClassifier+Paraphrase.swift`
(~10 minutes on two cores).
"""
import argparse
import base64
import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

RANK = 8
ALPHA = 16
MAX_TOKENS = 128
DENSE = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "intermediate.dense", "output.dense")
FALSE_HIT_BUDGET = 0.01
COSINES = (0.80, 0.85, 0.90, 0.95)
# The cosine at which a cache entry becomes a candidate for the verifier (the cache's threshold
# when the model check is on and no threshold is set).
CANDIDATE_COSINE = 0.80


class Encoder(torch.nn.Module):
    """BERT as Sluice's MiniLMEncoder computes it, plus adapters: W + (alpha/rank)·B·A."""

    def __init__(self, weights):
        super().__init__()
        self.w = {k: torch.tensor(v) for k, v in weights.items()}
        self.down = torch.nn.ParameterDict()
        self.up = torch.nn.ParameterDict()
        for i in range(6):
            for name in DENSE:
                key = f"encoder.layer.{i}.{name}"
                out_dim, in_dim = self.w[key + ".weight"].shape
                tag = key.replace(".", "_")
                self.down[tag] = torch.nn.Parameter(torch.randn(RANK, in_dim) / math.sqrt(in_dim))
                self.up[tag] = torch.nn.Parameter(torch.zeros(out_dim, RANK))
        self.type1 = torch.nn.Parameter(self.w["embeddings.token_type_embeddings.weight"][1].clone())
        self.head = torch.nn.Linear(384, 1)
        self.adapted = True

    def dense(self, x, key):
        y = x @ self.w[key + ".weight"].T + self.w[key + ".bias"]
        if self.adapted:
            tag = key.replace(".", "_")
            y = y + (x @ self.down[tag].T @ self.up[tag].T) * (ALPHA / RANK)
        return y

    def norm(self, x, key):
        return torch.nn.functional.layer_norm(x, (384,), self.w[key + ".weight"], self.w[key + ".bias"], eps=1e-12)

    def forward(self, ids, types, mask):
        w = self.w
        n = ids.shape[1]
        type_rows = torch.stack([w["embeddings.token_type_embeddings.weight"][0], self.type1 if self.adapted else
                                 w["embeddings.token_type_embeddings.weight"][1]])
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None] + type_rows[types]
        x = self.norm(x, "embeddings.LayerNorm")
        bias = ((1 - mask) * -1e9)[:, None, None, :]
        b = ids.shape[0]
        for i in range(6):
            p = f"encoder.layer.{i}."
            q, k, v = (self.dense(x, p + f"attention.self.{m}").reshape(b, n, 12, 32).transpose(1, 2) for m in ("query", "key", "value"))
            s = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(32) + bias, -1)
            context = (s @ v).transpose(1, 2).reshape(b, n, 384)
            x = self.norm(x + self.dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = torch.nn.functional.gelu(self.dense(x, p + "intermediate.dense"))
            x = self.norm(x + self.dense(h, p + "output.dense"), p + "output.LayerNorm")
        return x

    def logit(self, ids, types, mask):
        x = self.forward(ids, types, mask)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        return self.head(pooled).squeeze(-1)


def split_of(row):
    h = int(hashlib.sha256((row["a"] + "\u0000" + row["b"]).encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 70 else "tune" if h < 85 else "report"


def read_rows(paraphrase_dir):
    rows = []
    for name in ("dev.jsonl", "paws_dev.jsonl"):
        for line in open(Path(paraphrase_dir) / name):
            if line.strip():
                r = json.loads(line)
                r["split"] = split_of(r)
                rows.append(r)
    return rows


class Pairs:
    def __init__(self, tokenizer):
        self.tok = tokenizer

    def encode(self, a, b):
        """Token ids and types of `[CLS] a [SEP] b [SEP]`, each side cut to half the budget."""
        ia = self.tok.encode(a, add_special_tokens=False).ids
        ib = self.tok.encode(b, add_special_tokens=False).ids
        while len(ia) + len(ib) > MAX_TOKENS - 3:
            if len(ia) >= len(ib):
                ia = ia[:-1]
            else:
                ib = ib[:-1]
        cls, sep = self.tok.token_to_id("[CLS]"), self.tok.token_to_id("[SEP]")
        ids = [cls] + ia + [sep] + ib + [sep]
        types = [0] * (len(ia) + 2) + [1] * (len(ib) + 1)
        return ids, types

    def single(self, a):
        ids = self.tok.encode(a).ids[:256]
        return ids, [0] * len(ids)


def batch(encoded):
    n = max(len(ids) for ids, _ in encoded)
    ids = torch.zeros(len(encoded), n, dtype=torch.long)
    types = torch.zeros(len(encoded), n, dtype=torch.long)
    mask = torch.zeros(len(encoded), n)
    for i, (s, t) in enumerate(encoded):
        ids[i, : len(s)] = torch.tensor(s)
        types[i, : len(t)] = torch.tensor(t)
        mask[i, : len(s)] = 1
    return ids, types, mask


def by_length(items, key, size):
    order = sorted(range(len(items)), key=lambda i: key(items[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


@torch.no_grad()
def cosines(model, pairs, rows):
    model.adapted = False
    texts = sorted({r["a"] for r in rows} | {r["b"] for r in rows})
    enc = [pairs.single(t) for t in texts]
    vec = {}
    for group in by_length(enc, len, 64):
        ids, types, mask = batch([enc[i] for i in group])
        x = model.forward(ids, types, mask)
        m = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        m = torch.nn.functional.normalize(m, dim=-1)
        for j, i in enumerate(group):
            vec[texts[i]] = m[j]
    model.adapted = True
    return np.array([float(vec[r["a"]] @ vec[r["b"]]) for r in rows])


@torch.no_grad()
def probabilities(model, pairs, rows):
    model.eval()
    enc = [pairs.encode(r["a"], r["b"]) for r in rows]
    out = np.zeros(len(rows))
    for group in by_length(enc, lambda e: len(e[0]), 64):
        ids, types, mask = batch([enc[i] for i in group])
        out[group] = torch.sigmoid(model.logit(ids, types, mask)).numpy()
    return out


def train(model, pairs, rows, epochs, seed=1):
    random.seed(seed)
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    batches_per_epoch = math.ceil(len(rows) / 32)
    total = epochs * batches_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / (0.06 * total)) * max(0.0, (total - s) / total))
    # Sources are weighted equally whatever their size, and within each by class.
    weight = {}
    for r in rows:
        weight[(r["source"], r["label"])] = weight.get((r["source"], r["label"]), 0) + 1
    sources = {s for s, _ in weight}
    weight = {k: len(rows) / (len(sources) * sum(v for (s, _), v in weight.items() if s == k[0])) for k in weight}
    model.train()
    step = 0
    for epoch in range(epochs):
        # Either order of the two questions, so that the verifier does not depend on which was cached.
        enc = [pairs.encode(r["a"], r["b"]) if random.random() < 0.5 else pairs.encode(r["b"], r["a"]) for r in rows]
        groups = by_length(enc, lambda e: len(e[0]) + random.random() * 8, 32)
        random.shuffle(groups)
        start, seen, loss_sum = time.time(), 0, 0.0
        for group in groups:
            ids, types, mask = batch([enc[i] for i in group])
            y = torch.tensor([float(rows[i]["label"]) for i in group])
            wt = torch.tensor([weight[(rows[i]["source"], rows[i]["label"])] for i in group])
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(model.logit(ids, types, mask), y, reduction="none") * wt).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            seen += len(group)
            loss_sum += float(loss.detach()) * len(group)
        print(f"  epoch {epoch + 1}: loss {loss_sum / seen:.4f}, {time.time() - start:.0f} s", file=sys.stderr)
    model.eval()


def threshold_for(prob, cos, rows, cosine):
    """The lowest verifier threshold at which no source's false hits (cosine >= `cosine` too)
    exceed the budget."""
    best = 0.0
    for source in sorted({r["source"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["source"] == source and r["label"] == 0]
        if not idx:
            continue
        scores = sorted((prob[i] for i in idx if cos[i] >= cosine), reverse=True)
        allowed = int(FALSE_HIT_BUDGET * len(idx))
        if len(scores) > allowed:
            best = max(best, scores[allowed] + 1e-6)
    return best


def report(title, prob, cos, rows, thresholds):
    print(title)
    for source in sorted({r["source"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["source"] == source]
        pos = [i for i in idx if rows[i]["label"] == 1]
        neg = [i for i in idx if rows[i]["label"] == 0]
        cells = []
        for c in COSINES:
            t = thresholds[c]
            hit = sum(cos[i] >= c and prob[i] >= t for i in pos) / max(len(pos), 1)
            false = sum(cos[i] >= c and prob[i] >= t for i in neg) / len(neg) if neg else float("nan")
            alone = sum(cos[i] >= c for i in pos) / max(len(pos), 1)
            alone_false = sum(cos[i] >= c for i in neg) / len(neg) if neg else float("nan")
            cells.append(f"cos {c:.2f} (p>={t:.3f}): hits {hit:6.1%} false {false:5.1%}  [cosine alone {alone:5.1%} / {alone_false:5.1%}]")
        print(f"  {source:9s} {len(pos):5d}/{len(neg):5d}")
        for cell in cells:
            print("      " + cell)


def write_verifier(model, threshold, path):
    tensors = {}
    for tag, p in model.down.items():
        tensors["adapter." + tag.replace("_", ".") + ".down"] = p.detach().numpy()
    for tag, p in model.up.items():
        tensors["adapter." + tag.replace("_", ".") + ".up"] = (p.detach() * (ALPHA / RANK)).numpy()
    tensors["type1"] = model.type1.detach().numpy()
    tensors["head.weight"] = model.head.weight.detach().numpy().reshape(-1)
    tensors["head.bias"] = model.head.bias.detach().numpy().reshape(-1)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float16) for k, v in tensors.items()}
    meta = {"threshold": f"{threshold:.6f}", "max_tokens": str(MAX_TOKENS), "candidate_cosine": f"{CANDIDATE_COSINE:.2f}"}
    save_file(tensors, path, metadata=meta)


def write_swift(weights_path, swift_path, sample, prob, trained_on):
    encoded = base64.b64encode(Path(weights_path).read_bytes()).decode()
    Path(swift_path).write_text(
        "// Written by scripts/train-cache-verifier.py; do not edit.\n"
        f"// Low-rank adapters over all-MiniLM-L6-v2, trained on {trained_on} pairs (QQP, PAWS, GPTCache).\n\n"
        "/// The paraphrase verifier's safetensors file (float16), base64.\n"
        "enum ParaphraseVerifierWeights {\n"
        f'    static let encoded = "{encoded}"\n'
        "}\n")
    test = Path(__file__).resolve().parent.parent / "Tests" / "SluiceEmbeddingsTests" / "ParaphraseVerifierReference.swift"
    lines = ",\n".join(f"        ({json.dumps(r['a'])}, {json.dumps(r['b'])}, {p:.5f})" for r, p in zip(sample, prob))
    test.write_text(
        "// Written by scripts/train-cache-verifier.py; do not edit.\n"
        "// Pairs the training neither fitted nor chose a threshold on, and PyTorch's probability for each.\n\n"
        "enum ParaphraseVerifierReference {\n"
        "    static let pairs: [(String, String, Double)] = [\n" + lines + ",\n    ]\n}\n")


def load_verifier(model, path):
    t = load_file(path)
    with torch.no_grad():
        for tag in model.down:
            key = "adapter." + tag.replace("_", ".")
            model.down[tag].copy_(torch.tensor(t[key + ".down"].astype(np.float32)))
            model.up[tag].copy_(torch.tensor(t[key + ".up"].astype(np.float32)) / (ALPHA / RANK))
        model.type1.copy_(torch.tensor(t["type1"].astype(np.float32)))
        model.head.weight.copy_(torch.tensor(t["head.weight"].astype(np.float32)).reshape(1, -1))
        model.head.bias.copy_(torch.tensor(t["head.bias"].astype(np.float32)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("paraphrase_dir")
    ap.add_argument("--hold-out")
    ap.add_argument("--out")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="train on at most N rows per source (a quick look)")
    ap.add_argument("--swift", help="with --out: also write the Swift file Sluice embeds the verifier from, and the test's reference")
    ap.add_argument("--load", help="score with a verifier written earlier instead of training one")
    ap.add_argument("--scores", help="write every scored row (split, source, label, cosine, probability) as JSON lines")
    args = ap.parse_args()
    if args.swift and not args.out:
        ap.error("--swift needs --out (the Swift file embeds the weights file written there)")
    torch.set_num_threads(2)
    model_dir = Path(args.model_dir)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    pairs = Pairs(tok)
    model = Encoder(load_file(str(model_dir / "model.safetensors")))
    rows = read_rows(args.paraphrase_dir)
    held = args.hold_out
    train_rows = [r for r in rows if r["split"] == "train" and r["source"] != held]
    if args.limit:
        per = {}
        keep = []
        for r in train_rows:
            per[r["source"]] = per.get(r["source"], 0) + 1
            if per[r["source"]] <= args.limit:
                keep.append(r)
        train_rows = keep
    tune_rows = [r for r in rows if r["split"] == "tune" and r["source"] != held]
    report_rows = [r for r in rows if (r["split"] == "report" and r["source"] != held) or r["source"] == held]
    print(f"training on {len(train_rows)} pairs ({'all sources' if not held else 'without ' + held}), "
          f"threshold on {len(tune_rows)}, figures on {len(report_rows)}", file=sys.stderr)
    if args.load:
        load_verifier(model, args.load)
    else:
        train(model, pairs, train_rows, args.epochs)
    tune_cos, tune_prob = cosines(model, pairs, tune_rows), probabilities(model, pairs, tune_rows)
    thresholds = {c: threshold_for(tune_prob, tune_cos, tune_rows, c) for c in COSINES}
    rep_cos, rep_prob = cosines(model, pairs, report_rows), probabilities(model, pairs, report_rows)
    report("tune rows (chose the thresholds; not a result):", tune_prob, tune_cos, tune_rows, thresholds)
    report(f"report rows{' and every row of ' + held + ' (held out)' if held else ''}:", rep_prob, rep_cos, report_rows, thresholds)
    if args.scores:
        with open(args.scores, "w") as f:
            for rs, cs, ps in ((tune_rows, tune_cos, tune_prob), (report_rows, rep_cos, rep_prob)):
                for r, c, p in zip(rs, cs, ps):
                    f.write(json.dumps(dict(a=r["a"], b=r["b"], source=r["source"], label=r["label"], split=r["split"], cosine=float(c), p=float(p))) + "\n")
    if args.out:
        write_verifier(model, thresholds[CANDIDATE_COSINE], args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.swift:
        # The reference is what PyTorch computes with the weights as shipped (float16).
        load_verifier(model, args.out)
        sample = [r for r in report_rows if r["source"] != "gptcache"][:10] + [r for r in report_rows if r["source"] == "gptcache"][:2]
        prob = probabilities(model, pairs, sample)
        write_swift(args.out, args.swift, sample, prob, len(train_rows))

if __name__ == "__main__":
    main()
