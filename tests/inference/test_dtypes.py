"""choose_dtype: the floating-point type serving, evaluation and the benchmarks compute in."""

from __future__ import annotations

import pytest

from inference.dtypes import choose_dtype, cpu_has_bf16


def test_it_picks_bf16_only_where_the_cpu_has_it(tmp_path):
    with_bf16 = tmp_path / "with"
    with_bf16.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    without = tmp_path / "without"
    without.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert cpu_has_bf16(str(with_bf16)) and not cpu_has_bf16(str(without))
    assert choose_dtype("cpu", None, str(with_bf16)) == "bfloat16"
    assert choose_dtype("cpu", "auto", str(without)) == "float32"
    assert choose_dtype("cuda", None, str(without)) == "bfloat16"
    assert choose_dtype("cpu", "float32", str(with_bf16)) == "float32"
    with pytest.raises(ValueError):
        choose_dtype("cpu", "int8")
