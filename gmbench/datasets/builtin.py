"""The built-in datasets: mnist and fashion-mnist (IDX files), cifar10 (python batches), synthetic-rgb32 (made in memory)."""
from gmbench.datasets.cifar10 import Cifar10
from gmbench.datasets.idx import IdxDataset
from gmbench.datasets.synthetic import SyntheticRGB32
from gmbench.registry import register_dataset

register_dataset("mnist", IdxDataset("mnist", "MNIST", "MNIST", (("train", 60000), ("test", 10000))))
register_dataset("fashion-mnist", IdxDataset("fashion-mnist", "FashionMNIST", "FashionMNIST", (("train", 60000), ("test", 10000))))
register_dataset("cifar10", Cifar10())
register_dataset("synthetic-rgb32", SyntheticRGB32())
