"""Software prefetch of factor rows for the SGD block kernels (``recsys.kernels.cpu.sgd``).

Why: within a block the ratings run in user order, so each user's row is met once, in a
run of that user's ratings, and the rows of a block's user range are met in increasing
address order. Where the factors fit in the last-level cache those rows arrive from it
in time. Where they do not (10M MovieLens-shaped ratings at k=128: 41 MB of factors), each
block starts on user rows that have left the cache since the block before it in their
range, and the hardware prefetcher, which sees a run of about five ratings per row, does
not get ahead of them. Fetching the row of the user whose run starts ``ahead`` ratings
later, once per run, hides that: the 10M blocks ran at 28.7-29.3 ns a rating against
32.0-32.7 (16 ahead; one thread, 4 alternated runs each), and at 1M, where nothing misses,
it cost 3% (25.7-26.3 against 24.9-25.5 ns), so the backend asks for it only when the
factors are larger than the cache (``recsys.training.backends.cpu``). A prefetch changes
no value: the models are the same bit for bit with and without it (tested).

The kernels write the check and the prefetch loop out in their own loops: moved into an
``inline="always"`` helper the same code ran the 10M blocks at 31.4-31.7 ns instead of
28.9-29.3 (4 runs each, alternated), and as a plain call at 46.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

#: Bytes in a cache line.
LINE = 64


@intrinsic
def prefetch(typingctx, array, row, col):
    """Prefetch the cache line of ``array[row, col]`` (a 2-D array) for writing, into
    every cache level."""
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
        # the name for the typed i8* the IR is written with; LLVMs with opaque pointers
        # upgrade it to llvm.prefetch.p0 (prefetchw emitted with numba 0.58.1's LLVM 14
        # and 0.68.1's LLVM 22)
        fn = cgutils.get_or_insert_function(builder.module, fn_type, "llvm.prefetch.p0i8")
        # (address, 1: for writing, 3: keep in every level, 1: data)
        builder.call(fn, [builder.bitcast(pointer, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen
