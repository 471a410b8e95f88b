"""``opaque(i)``: the integer i, passed through an empty assembly block LLVM cannot see into.

For generated kernels (``functional/conv_direct_source.py``): LLVM cannot tell two opaque
indices apart from their values, so it keeps each load they address where the source put
it. Without them it loads an input pixel once for all the multiply-adds that use it and
keeps it in a register meanwhile: with a 7x7 kernel row and AVX2's 16 registers, more
pixels than fit. The block emits no instruction (at most a copy between registers).

Imported by generated kernels only: it needs numba.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


@intrinsic
def opaque(typingctx, value):
    """``value``, unchanged, through ``asm("" : "=r"(out) : "0"(value))``."""
    if not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        kind = ir.FunctionType(args[0].type, [args[0].type])
        return builder.asm(kind, "", "=r,0", list(args), side_effect=False)

    return value(value), codegen
