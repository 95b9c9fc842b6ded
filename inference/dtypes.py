"""Which floating-point type a model computes in, from the device and the CPU's instructions.

Serving (engine_runtime.py), evaluation and the benchmarks all choose through `choose_dtype`, so
"auto" means the same thing everywhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU flags list avx512_bf16 or AMX-BF16 (bf16 matmuls in hardware)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break  # every core lists the same flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def choose_dtype(device: str, dtype: str | None = None, cpuinfo: str = "/proc/cpuinfo") -> str:
    """The explicit dtype, else bfloat16 on CUDA or a bf16-capable CPU, else float32."""
    if dtype and dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be float32, bfloat16, float16 or auto, not {dtype!r}")
        return dtype
    if device.startswith("cuda") or cpu_has_bf16(cpuinfo):
        return "bfloat16"
    return "float32"  # emulated bf16 is slower than fp32 on CPUs without the instructions
