"""Atomic fetch-add, acquire loads and release stores of int64 array elements, for numba
kernels.

numba has no atomics on the CPU. These two intrinsics are enough for one thread to
publish "block done" and another to wait for it: every write the first thread made
before ``store_release`` is visible to the second after its ``load_acquire`` sees the
value. (x86 orders plain loads and stores this way already; the atomics also keep LLVM
from hoisting the load out of a wait loop or reordering the writes past the store.)
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic


def _pointer(context, builder, array_type, array, index, index_type):
    ary = context.make_array(array_type)(context, builder, array)
    idx = context.cast(builder, index, index_type, types.intp)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [idx], wraparound=False)


@intrinsic
def load_acquire(typingctx, array, index):
    """array[index] read with acquire ordering (array: 1-D int64)."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def store_release(typingctx, array, index, value):
    """array[index] = value with release ordering (array: 1-D int64)."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


@intrinsic
def fetch_add(typingctx, array, index, value):
    """Atomically add ``value`` to array[index] and return the old value (array: 1-D int64)."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, value, "seq_cst")

    return types.int64(array, index, value), codegen


@intrinsic
def cpu_yield(typingctx):
    """Give the core to another runnable thread (``sched_yield``); returns at once if none.

    A thread waiting for another must not spin through its time slice when the cores are
    shared: the thread it waits for may be the one needing the core.
    """

    def codegen(context, builder, signature, args):
        fn_type = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fn_type, "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen
