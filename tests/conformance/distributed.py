"""Two-process run of every conformance case over torch.distributed (gloo on loopback)."""

from __future__ import annotations

import os
import socket
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD_SIZE = 2


def split_for_rank(batches: list, rank: int) -> list:
    """Give rank 0 about two thirds of the batches and rank 1 the rest (uneven on purpose)."""
    cut = max(1, min(len(batches) - 1, (2 * len(batches) + 2) // 3))
    return batches[:cut] if rank == 0 else batches[cut:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, port: int, names: list[str], out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        from conformance.registry import load_cases

        cases = load_cases()
        results = {}
        for name in names:
            case = cases[name]
            try:
                metric = case.make_metric()
                for batch in split_for_rank(case.batches(), rank):
                    metric.update(*batch)
                results[name] = ("ok", metric.compute())
            except Exception:  # noqa: BLE001 - reported back to the parent test per case
                results[name] = ("error", traceback.format_exc())
            dist.barrier()
        if rank == 0:
            torch.save(results, Path(out_dir) / "results.pt")
    finally:
        dist.destroy_process_group()


def run_distributed(names: list[str], out_dir: Path) -> dict:
    """Run the named cases on two processes and return ``{name: ("ok", value) | ("error", tb)}``."""
    mp.spawn(_worker, args=(_free_port(), names, str(out_dir)), nprocs=WORLD_SIZE, join=True)
    return torch.load(Path(out_dir) / "results.pt", weights_only=False)
