"""all-MiniLM-L6-v2 in NumPy, computed as Sluice computes it (mean pooled, L2-normalised, at most
256 tokens), for the offline training scripts: no PyTorch needed, only the files
`scripts/minilm-model.sh` installs.

    from minilm_numpy import MiniLM
    embed = MiniLM(model_dir).embed   # text -> 384 floats
    states = MiniLM(model_dir).states # token ids -> one 384-float row per token (for token classifiers)
    means = MiniLM(model_dir).layer_means  # id sequences -> each layer's mean-pooled state
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
        # As one float32 2-D product (a 3-D or float64 operand makes NumPy far slower).
        w = self.W[prefix + ".weight"]
        y = x.reshape(-1, x.shape[-1]).astype(np.float32, copy=False) @ w.T + self.W[prefix + ".bias"]
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    def embed(self, text):
        v = self.states(self.tokenizer.encode(text).ids).mean(0)
        return v / max(np.linalg.norm(v), 1e-12)

    def states(self, ids):
        """The last layer's state of each token of one sequence of ids ([CLS] … [SEP])."""
        W = self.W
        ids = np.array(ids)
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
        return x

    def states_batch(self, sequences):
        """`states` for many sequences at once (padded, with an attention mask): a list of arrays."""
        for x, _ in self.layers_batch(sequences):
            pass
        return [x[i, : len(s)] for i, s in enumerate(sequences)]

    def layer_means(self, sequences):
        """Each sequence's mean-pooled state after each of the six layers: (len(sequences), 6, 384)."""
        means = []
        for x, mask in self.layers_batch(sequences):
            means.append((x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True))
        return np.stack(means, 1)

    def layers_batch(self, sequences):
        """Yields the padded states of every sequence after each layer, with the padding mask."""
        W = self.W
        n = max(len(s) for s in sequences)
        ids = np.zeros((len(sequences), n), dtype=np.int64)
        mask = np.zeros((len(sequences), n), dtype=np.float32)
        for i, s in enumerate(sequences):
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
        x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:n][None]
        x = self.layer_norm((x + W["embeddings.token_type_embeddings.weight"][0]).astype(np.float32), "embeddings.LayerNorm")
        bias = ((1 - mask) * -1e9)[:, None, None, :]
        b = len(sequences)
        for i in range(6):
            p = f"encoder.layer.{i}."
            q, k, v = (self.dense(x, p + f"attention.self.{m}").reshape(b, n, 12, 32).transpose(0, 2, 1, 3) for m in ("query", "key", "value"))
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            context = ((s / s.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(b, n, 384)
            x = self.layer_norm(x + self.dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = self.dense(x, p + "intermediate.dense")
            g = (0.5 * h * (1 + erf(h / np.float32(np.sqrt(2))))).astype(np.float32)
            x = self.layer_norm(x + self.dense(g, p + "output.dense"), p + "output.LayerNorm").astype(np.float32)
            yield x, mask
