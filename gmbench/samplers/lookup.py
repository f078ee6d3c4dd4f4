"""Finding a registered sampler for a model: by name, refused unless it runs the denoiser the model exposes."""
from __future__ import annotations

from gmbench.errors import GmbenchError
from gmbench.registry import SAMPLERS
from gmbench.samplers.base import KINDS, Sampler


def sampler_for(name: str, kind: str) -> Sampler:
    """The registered sampler ``name``, refused with a GmbenchError unless it runs a denoiser of ``kind``."""
    sampler = SAMPLERS.get(name)
    if sampler.kind != kind:
        fitting = [n for n in SAMPLERS.names() if SAMPLERS.get(n).kind == kind]
        raise GmbenchError(f"sampler {name!r} needs {KINDS[sampler.kind]}, but this model exposes {KINDS[kind]}; "
                           f"the samplers that run it: {', '.join(fitting) or '(none)'}.")
    return sampler
