"""8-lane int32 row operations, emitted as LLVM vector instructions.

numba's loop vectorizer leaves a loop scalar when its trip count is below its vector width times
its interleave (8 x 4 int32 lanes on AVX2), and numba keeps LLVM's SLP vectorizer off (a known
miscompilation), so the short rows of a conv kernel (8 or 16 output channels) would run one
int32 at a time. These intrinsics add 8 consecutive int32 in one vector operation instead
(on AVX2 one ymm load, add and store; LLVM splits them where vectors are narrower). The
caller guarantees that all 8 lanes are in bounds: nothing is checked here.

Numba's on-disk cache (cache=True) is keyed on the source file of each compiled function, not on
the modules it calls: after editing this file (or neurohw.chip), clear the __pycache__ of
neurohw/emu, or the kernels keep the old code.
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 8
_V = ir.VectorType(ir.IntType(32), LANES)


def _lanes(context, builder, aty, ary, index):
    """Pointer to ary[index:index + 8] as one <8 x i32> (unaligned)."""
    a = context.make_array(aty)(context, builder, ary)
    i = index if index.type.width == 64 else builder.zext(index, ir.IntType(64))
    return builder.bitcast(builder.gep(a.data, [i]), _V.as_pointer())


def _splat(builder, k):
    """An integer scalar as int32 (truncated or sign-extended) in all 8 lanes."""
    i32 = ir.IntType(32)
    k = builder.trunc(k, i32) if k.type.width > 32 else builder.sext(k, i32) if k.type.width < 32 else k
    ks = builder.insert_element(ir.Constant(_V, None), k, ir.Constant(i32, 0))
    return builder.shuffle_vector(ks, ir.Constant(_V, None), ir.Constant(_V, [0] * LANES))


def _int32_array(t):
    return isinstance(t, types.Array) and t.dtype == types.int32 and t.ndim == 1


@intrinsic
def add_scaled8(typingctx, dst, di, src, si, scale):
    """dst[di:di + 8] += src[si:si + 8] * scale (int32, wrapping like the chip's int32 adds)."""
    if not (_int32_array(dst) and _int32_array(src) and isinstance(scale, types.Integer)
            and isinstance(di, types.Integer) and isinstance(si, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        d, s = _lanes(context, builder, sig.args[0], args[0], args[1]), _lanes(context, builder, sig.args[2], args[2], args[3])
        ks = _splat(builder, args[4])
        prod = builder.mul(builder.load(s, align=4), ks)
        builder.store(builder.add(builder.load(d, align=4), prod), d, align=4)
        return context.get_dummy_value()
    return types.void(dst, di, src, si, scale), codegen


@intrinsic
def add_product8(typingctx, dst, di, w, wi, x, xi):
    """dst[di:di + 8] += w[wi:wi + 8] * x[xi:xi + 8]; x uint8 (spikes) or int32 (payloads), int32 sums."""
    if not (_int32_array(dst) and _int32_array(w) and isinstance(x, types.Array) and x.ndim == 1
            and x.dtype in (types.uint8, types.int32)):
        return None

    def codegen(context, builder, sig, args):
        d, wv = _lanes(context, builder, sig.args[0], args[0], args[1]), _lanes(context, builder, sig.args[2], args[2], args[3])
        xa = context.make_array(sig.args[4])(context, builder, args[4])
        i = args[5] if args[5].type.width == 64 else builder.zext(args[5], ir.IntType(64))
        if sig.args[4].dtype == types.uint8:
            xb = builder.bitcast(builder.gep(xa.data, [i]), ir.VectorType(ir.IntType(8), LANES).as_pointer())
            xv = builder.zext(builder.load(xb, align=1), _V)
        else:
            xv = builder.load(builder.bitcast(builder.gep(xa.data, [i]), _V.as_pointer()), align=4)
        builder.store(builder.add(builder.load(d, align=4), builder.mul(builder.load(wv, align=4), xv)), d, align=4)
        return context.get_dummy_value()
    return types.void(dst, di, w, wi, x, xi), codegen


@intrinsic
def store_plus8(typingctx, dst, di, src, si, c):
    """dst[di:di + 8] = src[si:si + 8] + c (int32)."""
    if not (_int32_array(dst) and _int32_array(src) and isinstance(c, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        d, s = _lanes(context, builder, sig.args[0], args[0], args[1]), _lanes(context, builder, sig.args[2], args[2], args[3])
        ks = _splat(builder, args[4])
        builder.store(builder.add(builder.load(s, align=4), ks), d, align=4)
        return context.get_dummy_value()
    return types.void(dst, di, src, si, c), codegen
