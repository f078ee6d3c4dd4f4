"""Scores from a reference classifier of the dataset's classes (mnist-lenet on MNIST).

``class_entropy``: entropy (nats) of the histogram of predicted labels of the generated samples;
log(10) = 2.303 is perfect class balance, lower means dropped or over-represented classes.
``classifier_accuracy_score``: Classifier Accuracy Score (Ravuri & Vinyals 2019): train a fresh
classifier of the same architecture on the generated images labelled by the reference classifier,
and report its accuracy on the real test set.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gmbench.metrics.lenet import train_lenet


def class_entropy(logits: Tensor) -> float:
    """Entropy (natural log) of the predicted-label histogram of logits [N,K]."""
    counts = torch.bincount(logits.argmax(1), minlength=logits.shape[1]).double()  # [K]
    p = counts / counts.sum()
    return -(p[p > 0] * p[p > 0].log()).sum().item()


def classifier_accuracy_score(samples: Tensor, logits: Tensor, test_images: Tensor, test_labels: Tensor, *,
                              epochs: int = 5, seed: int = 0, device: str | torch.device = "cpu") -> float:
    """Accuracy on real test images of a LeNet trained on uint8 samples [N,1,28,28] labelled argmax(logits [N,K])."""
    labels = logits.argmax(1)  # [N]
    return train_lenet(samples, labels, test_images, test_labels, epochs=epochs, seed=seed, device=device,
                       batch_size=min(128, len(samples))).test_accuracy
