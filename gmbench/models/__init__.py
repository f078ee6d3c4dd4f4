"""Generative models: the contract (``base``) and the built-in families, one file each (``gan``, ``vae``,
``diffusion``, ``reference``), which register themselves when ``registry.ensure_loaded`` imports them.
Importing this package alone registers nothing, so ``models.base`` loads without the families and the
registry can check classes against it."""
from gmbench.models.base import GenerativeModel

__all__ = ["GenerativeModel"]
