"""all-MiniLM-L6-v2 in NumPy, computed as Sluice computes it (mean pooled, L2-normalised, at most
256 tokens), for the offline training scripts: no PyTorch needed, only the files
`scripts/minilm-model.sh` installs.

    from minilm_numpy import MiniLM
    embed = MiniLM(model_dir).embed   # text -> 384 floats
"""
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def erf(x):
    # Abramowitz and Stegun 7.1.26 (error < 1.5e-7), vectorised; math.erf per element is far slower.
    s = np.sign(x)
    a = np.abs(x)
    t = 1 / (1 + 0.3275911 * a)
    y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return s * y


class MiniLM:
    def __init__(self, model_dir):
        model_dir = Path(model_dir)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=256)
        self.W = load_file(str(model_dir / "model.safetensors"))

    def layer_norm(self, x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * self.W[prefix + ".weight"] + self.W[prefix + ".bias"]

    def dense(self, x, prefix):
        return x @ self.W[prefix + ".weight"].T + self.W[prefix + ".bias"]

    def embed(self, text):
        W = self.W
        ids = np.array(self.tokenizer.encode(text).ids)
        x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][: len(ids)]
        x = self.layer_norm((x + W["embeddings.token_type_embeddings.weight"][0]).astype(np.float32), "embeddings.LayerNorm")
        for i in range(6):
            p = f"encoder.layer.{i}."
            q, k, v = (self.dense(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
            heads = []
            for h in range(12):
                sl = slice(h * 32, (h + 1) * 32)
                s = q[:, sl] @ k[:, sl].T / np.sqrt(32)
                s = np.exp(s - s.max(-1, keepdims=True))
                heads.append((s / s.sum(-1, keepdims=True)) @ v[:, sl])
            x = self.layer_norm(x + self.dense(np.concatenate(heads, -1), p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = self.dense(x, p + "intermediate.dense")
            x = self.layer_norm(x + self.dense(0.5 * h * (1 + erf(h / np.sqrt(2))), p + "output.dense"), p + "output.LayerNorm")
        v = x.mean(0)
        return v / max(np.linalg.norm(v), 1e-12)
