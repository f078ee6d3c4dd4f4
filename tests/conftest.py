"""Test-session settings.

Tiny tensors gain nothing from intra-op threads, and on a shared 2-core machine OpenMP threads
that wait on each other made the model tests 10-50x slower (measured: a tiny U-Net step took
0.4-2.3 s with 2 threads under load, 0.05 s with 1). So the tests run single-threaded.
"""
import torch

torch.set_num_threads(1)
