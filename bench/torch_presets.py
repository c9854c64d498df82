#!/usr/bin/python3
"""meshgrad's four speed-comparison presets in PyTorch, for `npm run bench -- --suite models`.

The models are built to match shared/nn/presets.ts layer for layer (sizes, activations, biases,
LayerNorm placement, causal attention, learned positions, no dropout), with the preset's
optimizer and hyper-parameters and, where the preset sets clipNorm, clip_grad_norm_. One step is
what meshgrad's trainer does: zero_grad, forward, cross-entropy (mean over every label), backward,
clipping, optimizer.step; it runs on one fixed random batch of the preset's shape and dtype
(pixels in [0, 1] as float32 [B, 1, 28, 28]; token ids as int64 [B, T], a label per position).

    /usr/bin/python3 bench/torch_presets.py --preset cnn --threads 1 --warmup 3 --steps 20

prints one JSON line: the preset, the threads torch uses, the parameter count (which the bench
checks against meshgrad's model, a guard that the architectures match), the median and mean ms
per step, the first and last loss, torch's version and the BLAS library the process loaded.
Run it as the bench does, with the environment of a fair comparison:
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp, OMP_NUM_THREADS=<threads>, and no
OPENBLAS_CORETYPE.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The Moby-Dick dataset's character vocabulary (its number of classes); the bench passes the
# dataset's own count with --vocab, so this default only serves a run by hand.
MOBY_DICK_VOCAB = 83
CONTEXT = 64

# preset -> (batch size, optimizer, lr, weight decay, clip norm), as in shared/nn/presets.ts.
PRESETS = {
    "mlp": (128, "adam", 1e-3, 0.0, None),
    "cnn": (128, "adam", 1e-3, 0.0, None),
    "char-lstm": (32, "adam", 2e-3, 0.0, 1.0),
    "gpt-tiny": (32, "adamw", 1e-3, 0.01, None),
}


class CharLSTM(nn.Module):
    """Embedding(vocab, 64) -> LSTM(64, 256), one layer, batch-first -> Linear(256, vocab) per position."""

    def __init__(self, vocab):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 64)
        self.lstm = nn.LSTM(64, 256, num_layers=1, batch_first=True)
        self.linear = nn.Linear(256, vocab)

    def forward(self, x):
        h, _ = self.lstm(self.embedding(x))  # zero initial state, as meshgrad's LSTM layer
        return self.linear(h)


class Block(nn.Module):
    """Pre-LayerNorm block: h = x + attn(ln1(x)) (causal); y = h + mlp(ln2(h)), mlp = Linear(d, 4d) -> GELU (erf) -> Linear(4d, d)."""

    def __init__(self, d, heads, ratio, context):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=0.0, bias=True, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ratio * d), nn.GELU(), nn.Linear(ratio * d, d))
        # True = may not attend (key after the query).
        self.register_buffer("mask", torch.triu(torch.ones(context, context, dtype=torch.bool), diagonal=1), persistent=False)

    def forward(self, x):
        t = x.shape[1]
        a = self.ln1(x)
        h = x + self.attn(a, a, a, attn_mask=self.mask[:t, :t], need_weights=False)[0]
        return h + self.mlp(self.ln2(h))


class GptTiny(nn.Module):
    """Embedding(vocab, 128, N(0, 0.02²)) + learned positions [64, 128] -> 2 blocks (4 heads) -> LayerNorm -> Linear(128, vocab)."""

    def __init__(self, vocab, context, d=128, heads=4, ratio=4, layers=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.positions = nn.Parameter(torch.randn(context, d) * 0.02)
        self.blocks = nn.Sequential(*[Block(d, heads, ratio, context) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.linear = nn.Linear(d, vocab)

    def forward(self, x):
        h = self.embedding(x) + self.positions[: x.shape[1]]
        return self.linear(self.ln(self.blocks(h)))


def build(preset, vocab, context):
    if preset == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    if preset == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )
    if preset == "char-lstm":
        return CharLSTM(vocab)
    if preset == "gpt-tiny":
        return GptTiny(vocab, context)
    raise ValueError(preset)


def fixed_batch(preset, batch, vocab, context):
    if preset in ("mlp", "cnn"):
        return torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,), dtype=torch.int64)
    x = torch.randint(0, vocab, (batch, context), dtype=torch.int64)
    return x, torch.randint(0, vocab, (batch, context), dtype=torch.int64)


def blas_libraries():
    """The BLAS / OpenMP shared objects this process mapped (which OpenBLAS build torch really uses)."""
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if ("blas" in line or "omp" in line) and "/" in line})
    except OSError:
        return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (0: build the model and print its parameter count only)")
    parser.add_argument("--vocab", type=int, default=MOBY_DICK_VOCAB, help="vocabulary size of the language models (the dataset's class count)")
    parser.add_argument("--context", type=int, default=CONTEXT)
    parser.add_argument("--batch", type=int, help="batch size (default: the preset's)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    default_batch, opt_name, lr, weight_decay, clip = PRESETS[args.preset]
    batch = args.batch or default_batch
    model = build(args.preset, args.vocab, args.context)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    if opt_name == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    x, y = fixed_batch(args.preset, batch, args.vocab, args.context)
    labels = y.reshape(-1)

    def step():
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(labels.shape[0], -1), labels)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss.item()

    losses = []
    times = []
    if args.steps > 0:
        for _ in range(args.warmup):
            losses.append(step())
        for _ in range(args.steps):
            started = time.perf_counter()
            losses.append(step())
            times.append((time.perf_counter() - started) * 1000)

    print(json.dumps({
        "preset": args.preset,
        "threads": torch.get_num_threads(),
        "batchSize": batch,
        "optimizer": opt_name,
        "clipNorm": clip,
        "params": params,
        "warmupSteps": args.warmup if args.steps > 0 else 0,
        "timedSteps": len(times),
        "medianMs": statistics.median(times) if times else None,
        "meanMs": statistics.fmean(times) if times else None,
        "minMs": min(times) if times else None,
        "maxMs": max(times) if times else None,
        "firstLoss": losses[0] if losses else None,
        "lastLoss": losses[-1] if losses else None,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "blas": blas_libraries(),
    }))


if __name__ == "__main__":
    main()
