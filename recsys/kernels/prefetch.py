"""Software prefetch for numba kernels: ``prefetch(A, row, col)`` hints that A[row, col] will
be written soon, so its cache line is fetched while the current rating is being updated.

numba has no prefetch of its own; this intrinsic emits LLVM's ``llvm.prefetch`` (write
intent, high locality), which compiles to ``prefetchw`` on x86. It never faults, so it
needs no bounds check: an out-of-range address is simply not fetched.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, row, col):
    """Prefetch the cache line holding array[row, col] (a 2-D array) for writing."""
    if not isinstance(array, types.Array) or array.ndim != 2:
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        indices = [context.cast(builder, args[1], signature.args[1], types.intp),
                   context.cast(builder, args[2], signature.args[2], types.intp)]
        pointer = cgutils.get_item_pointer2(
            context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
            cgutils.unpack_tuple(builder, ary.strides), array_type.layout, indices,
            wraparound=False, boundscheck=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fn_type, "llvm.prefetch.p0i8")
        # (address, 1 = write, 3 = keep in all cache levels, 1 = data cache)
        builder.call(fn, [builder.bitcast(pointer, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen
