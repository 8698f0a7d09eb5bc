"""convbench: how fast is 2-D convolution in each library, and does it compute the same numbers?"""

from __future__ import annotations

import numpy as np

from convbench.agreement import Agreement, agreement, tolerance
from convbench.backends.base import Backend, BackendUnavailable, Prepared
from convbench.explain import Explanation, explain
from convbench.reference import reference
from convbench.registry import (
    BackendStatus,
    available_backends,
    get_backend,
    list_backends,
)
from convbench.spec import ConvSpec

__version__ = "0.1.0"

__all__ = [
    "Agreement",
    "Backend",
    "BackendStatus",
    "BackendUnavailable",
    "ConvSpec",
    "Explanation",
    "Prepared",
    "agreement",
    "available_backends",
    "explain",
    "get_backend",
    "list_backends",
    "reference",
    "run",
    "tolerance",
]


def run(
    name: str, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec | None = None
) -> np.ndarray:
    """Compute ``spec`` with backend ``name``; a host array in the image's dtype."""
    return get_backend(name).prepare(image, kernel, spec).result()
