"""Sharded evaluation: 2 gloo ranks on the CPU extract the serial run's features bit for bit."""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gmbench.data import load_dataset
from gmbench.metrics import build_extractor
from gmbench.metrics.features import extract
from tests.conftest import requires_mnist

# 1,234 images in batches of 100: 13 batches, 7 on rank 0 (the last one partial) and 6 on rank 1;
# 50 images: one unpadded batch, and rank 1 has none.
SIZES, BATCH = (1234, 50), 100
pytestmark = requires_mnist


def _extract_on_rank(rank: int, world: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        net = build_extractor("mnist-lenet")
        images = load_dataset("mnist", "train")[0]
        torch.save([extract(net, images[:n], BATCH, group=dist.group.WORLD) for n in SIZES], f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_sharded_extraction_equals_serial_extraction(tmp_path):
    mp.spawn(_extract_on_rank, args=(2, str(tmp_path / "store"), str(tmp_path / "features")), nprocs=2)
    net = build_extractor("mnist-lenet")
    images = load_dataset("mnist", "train")[0]
    for rank in range(2):
        for n, (features, logits) in zip(SIZES, torch.load(tmp_path / f"features.{rank}", weights_only=True)):
            serial_features, serial_logits = extract(net, images[:n], BATCH)  # [n,128], [n,10]
            assert torch.equal(features, serial_features) and torch.equal(logits, serial_logits), (rank, n)

