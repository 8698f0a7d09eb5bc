"""asv: how long ``convbench.explain`` takes on a 512x512 result (it should stay well under 1 s)."""

from __future__ import annotations

import numpy as np
import scipy.signal

import convbench


class Explain:
    """The seed's mismatch (correlate2d vs convolve2d with kernel.T, float32, 'same'), and an
    unrelated pair, which must search every candidate before giving up."""

    params = ([3, 4, 7], ["seed", "unrelated"])
    param_names = ("kernel", "case")

    def setup(self, kernel: int, case: str) -> None:
        self.image = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
        self.kernel = np.random.default_rng(1).standard_normal((kernel, kernel), dtype=np.float32)
        self.actual = scipy.signal.correlate2d(self.image, self.kernel, mode="same")
        if case == "seed":
            self.expected = scipy.signal.convolve2d(self.image, self.kernel.T, mode="same")
        else:
            self.expected = np.random.default_rng(2).standard_normal((512, 512), dtype=np.float32)

    def time_explain(self, kernel: int, case: str) -> None:
        convbench.explain(self.actual, self.expected, self.image, self.kernel)
