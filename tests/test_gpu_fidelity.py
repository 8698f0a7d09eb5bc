"""scripts/gpu_fidelity.py runs end to end where it can: on CPU backends with the stand-in clock."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "results"


def test_fidelity_table_on_a_cpu_backend(tmp_path, capsys):
    script = load_script("gpu_fidelity")
    out = tmp_path / "fidelity.csv"
    args = ["--backends", "scipy-correlate2d", "cupy-gpu", "--sizes", "256", "--kernels", "3"]
    assert script.main([*args, "--reference", "wall", "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert table.backend.tolist() == ["scipy-correlate2d"]  # cupy-gpu: no device, skipped
    row = table.iloc[0]
    assert row.timer_s > 0 and row.reference_s > 0
    assert row.timer_vs_ref == row.timer_s / row.reference_s
    assert "largest difference" in capsys.readouterr().out


def test_asv_times_take_float32_conv_times(tmp_path):
    script = load_script("gpu_fidelity")
    found = script.asv_times(FIXTURE, "fixture-gpu")
    conv = found["torch-cuda", 1024, 7]
    stored = script.load_results(FIXTURE).query(
        "machine == 'fixture-gpu' and suite == 'Conv' and metric == 'time_op' and "
        "backend == 'torch-cuda' and size == 1024 and kernel == 7"
    )
    # The float32 number, never the float16 one of the same case.
    assert conv == stored[stored.dtype == "float32"].value.item()
    assert conv != stored[stored.dtype == "float16"].value.item()
    assert script.asv_times(tmp_path / "absent", None) == {}


def test_event_blocks_time_the_stream_they_are_recorded_on(monkeypatch):
    """CUDA events stand in as host clock reads: a block's time, per call, is what passed between
    the start event and the end event on the stream given, whose end the script waits for."""
    import torch

    script = load_script("gpu_fidelity")
    recorded = []

    class Event:
        def __init__(self, enable_timing):
            assert enable_timing
            self.at = None

        def record(self, stream):
            recorded.append(stream)
            self.at = time.perf_counter()

        def synchronize(self):
            assert self.at is not None

        def elapsed_time(self, end):  # milliseconds, as CUDA's
            return (end.at - self.at) * 1e3

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "ExternalStream", lambda ptr: ("stream", ptr))
    per_call = script.event_block_seconds(lambda: time.sleep(0.002), number=10, stream_ptr=42)
    assert 0.002 <= per_call < 0.02  # per call, in seconds: not the block of 10, not milliseconds
    assert recorded == [("stream", 42)] * 10  # start and end of 5 blocks, all on the op's stream
