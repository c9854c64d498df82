#!/usr/bin/python3
"""PyTorch DistributedDataParallel over gloo, the reference of `npm run bench -- --suite network`.

One rank per process, each in a worker namespace of the testbed (bench/netns.ts), 1 thread per
rank; the model is the `cnn` or `mlp` preset's PyTorch twin (bench/torch_presets.py, the same
layers and Adam lr 1e-3); the global batch (128) is split evenly across the ranks. Each rank
trains on one fixed RANDOM batch of the right shape and dtype (pixels in [0, 1] as float32
[B, 1, 28, 28], labels int64 in 0..9), not Fashion-MNIST: data loading is not what is measured.
World size 1 is the single-process baseline (no process group, no communication).

    /usr/bin/python3 bench/ddp_gloo.py --model cnn --rank 0 --world 2 --init tcp://10.77.0.2:29500 \\
      --warmup 3 --steps 20 --iface eth0

Rank 0 prints one JSON line: per-step ms (each step = zero_grad, forward, cross-entropy,
backward with DDP's bucketed all-reduce, Adam step), median ms, samples/s over the timed steps
(global batch x steps / elapsed), and the bytes rank 0's interface received and sent per timed
step (/sys/class/net/IFACE/statistics: Ethernet frames, the all-reduce's traffic). Run it with
OMP_NUM_THREADS=1, LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp and no
OPENBLAS_CORETYPE, as the bench does; GLOO_SOCKET_IFNAME picks the interface gloo uses.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_presets import PRESETS, build  # noqa: E402  (the same models as --suite models)


def iface_bytes(iface):
    """(rx, tx) byte counters of iface in this namespace, or (None, None)."""
    if not iface:
        return None, None
    try:
        base = f"/sys/class/net/{iface}/statistics"
        with open(f"{base}/rx_bytes") as rx, open(f"{base}/tx_bytes") as tx:
            return int(rx.read()), int(tx.read())
    except OSError:
        return None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=["cnn", "mlp"])
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world", type=int, default=1)
    parser.add_argument("--init", default=None, help="rendezvous, tcp://HOST:PORT (world > 1)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--global-batch", type=int, default=128)
    parser.add_argument("--iface", default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.global_batch % args.world != 0:
        parser.error(f"--global-batch {args.global_batch} does not split evenly across {args.world} ranks")

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP broadcasts rank 0's anyway)
    model = build(args.model, 10, 0)
    model.train()
    if args.world > 1:
        if not args.init:
            parser.error("--init is needed when --world > 1")
        dist.init_process_group("gloo", init_method=args.init, rank=args.rank, world_size=args.world)
        model = torch.nn.parallel.DistributedDataParallel(model)
    _, _, lr, _, _ = PRESETS[args.model]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    batch = args.global_batch // args.world
    gen = torch.Generator().manual_seed(args.seed + args.rank)
    x = torch.rand(batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (batch,), dtype=torch.int64, generator=gen)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    losses = [step() for _ in range(args.warmup)]
    if args.world > 1:
        dist.barrier()
    rx0, tx0 = iface_bytes(args.iface)
    started = time.perf_counter()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        losses.append(step())
        times.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - started
    rx1, tx1 = iface_bytes(args.iface)
    if args.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if args.rank == 0:
        per_step = lambda a, b: (b - a) / args.steps if a is not None and b is not None and args.steps > 0 else None  # noqa: E731
        print(json.dumps({
            "model": args.model,
            "world": args.world,
            "globalBatch": args.global_batch,
            "threadsPerRank": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.parameters()),
            "warmupSteps": args.warmup,
            "timedSteps": len(times),
            "stepMs": times,
            "medianMs": statistics.median(times) if times else None,
            "samplesPerSecond": args.global_batch * len(times) / elapsed if elapsed > 0 else None,
            "rxBytesPerStep": per_step(rx0, rx1),
            "txBytesPerStep": per_step(tx0, tx1),
            "firstLoss": losses[0] if losses else None,
            "lastLoss": losses[-1] if losses else None,
            "torch": torch.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
