"""Built-in generative models, one file per family; importing this package registers them."""
from gmbench.models import gan  # noqa: F401  (registers)
from gmbench.models import diffusion, reference, vae  # noqa: F401  (register)
from gmbench.models.base import GenerativeModel

__all__ = ["GenerativeModel"]
