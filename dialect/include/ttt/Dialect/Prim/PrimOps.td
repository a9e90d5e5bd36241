//===- PrimOps.td - the tttp primitive dialect -----------------*- tablegen -*-===//
//
// The primitive level: layer ops expanded into the tensor primitives of docs/primitives.md, with
// static shapes, inside programs (eval_step, ...). Every op here is one backend kernel, except
// tttp.scan, which runs its body once per mini-batch.
//
//===----------------------------------------------------------------------===//

#ifndef TTT_PRIM_OPS_TD
#define TTT_PRIM_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Prim_Dialect : Dialect {
  let name = "tttp";
  let cppNamespace = "::ttt::prim";
  let summary = "Tensor primitives of the compiled TTT training step";
  let description = [{
    Programs of static-shaped tensor primitives, produced from the `ttt` model by
    `ttt-expand`. Every op maps to one kernel of the backends (docs/primitives.md); `tttp.scan`
    is the TTT inner loop over mini-batches with the dual-form update as its body.
  }];
}

class Prim_Op<string mnemonic, list<Trait> traits = []> : Op<Prim_Dialect, mnemonic, traits>;

def Prim_VJPOpInterface : OpInterface<"VJPOpInterface"> {
  let cppNamespace = "::ttt::prim";
  let description = [{
    Reverse-mode rule of a primitive: given the cotangents of its results, emit the primitives
    that compute the cotangents of its operands. `ttt-autodiff` calls it for every op of the
    forward program in reverse order; a null result cotangent means zero, a null operand
    cotangent means "no gradient flows to this operand" (integer operands, constants).
  }];
  let methods = [
    InterfaceMethod<"Emits the operands' cotangents at the builder's insertion point.",
      "::mlir::LogicalResult", "buildVJP",
      (ins "::mlir::OpBuilder &":$builder,
           "::llvm::ArrayRef<::mlir::Value>":$resultCotangents,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandCotangents)>
  ];
}

def Prim_Tensor : StaticShapeTensorOf<[F32, F64]>;
def Prim_AnyTensor : StaticShapeTensorOf<[F32, F64, I32]>;

def Prim_ProgramOp : Prim_Op<"program", [IsolatedFromAbove, SingleBlock, NoTerminator]> {
  let summary = "One entry point of the plan (eval_step, micro_step, apply_step, init)";
  let description = [{
    A straight-line list of primitives. Parameters are read with `tttp.param`, batch inputs
    with `tttp.input`, results are named by `tttp.output`.

    Example:
    ```mlir
    tttp.program "eval_step" {
      %t = tttp.input "tokens" : tensor<2x64xi32>
      ...
      tttp.output "loss" %loss : tensor<f64>
    }
    ```
  }];
  let arguments = (ins StrAttr:$sym_name);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name attr-dict-with-keyword $body";
}

def Prim_ParamOp : Prim_Op<"param", [Pure]> {
  let summary = "Reads a parameter of the model by its full name";
  let description = [{
    Example: `%w = tttp.param "layers.0.ttt.W1" : tensor<4x16x16xf64>`
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Prim_Tensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def Prim_InputOp : Prim_Op<"input", [Pure]> {
  let summary = "A batch input of the program (tokens, targets)";
  let description = [{
    Example: `%t = tttp.input "tokens" : tensor<2x64xi32>`
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Prim_AnyTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def Prim_OutputOp : Prim_Op<"output", []> {
  let summary = "Names a result of the program";
  let description = [{
    Example: `tttp.output "loss" %l : tensor<f64>`
  }];
  let arguments = (ins StrAttr:$name, AnyTensor:$value);
  let assemblyFormat = "$name $value attr-dict `:` type($value)";
}

class Prim_SimpleOp<string mnemonic, string summaryText, string example,
                    list<Trait> traits = [DeclareOpInterfaceMethods<Prim_VJPOpInterface>]>
    : Prim_Op<mnemonic, !listconcat([Pure], traits)> {
  let summary = summaryText;
  let description = "Semantics: docs/primitives.md. Example: `" # example # "`";
  let results = (outs Prim_Tensor:$result);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

def Prim_EmbeddingOp : Prim_SimpleOp<"embedding", "Row gather from a table",
    "%h = tttp.embedding %tokens, %table : (tensor<2x64xi32>, tensor<32000x64xf64>) -> tensor<2x64x64xf64>"> {
  let arguments = (ins TensorOf<[I32]>:$tokens, Prim_Tensor:$table);
}

def Prim_MatmulOp : Prim_SimpleOp<"matmul",
    "Batched matrix product over the last two dimensions (a 2-d operand broadcasts)",
    "%c = tttp.matmul %a, %b {transpose_b} : (tensor<8x16x64xf64>, tensor<8x16x64xf64>) -> tensor<8x16x16xf64>"> {
  let arguments = (ins Prim_Tensor:$a, Prim_Tensor:$b, UnitAttr:$transpose_a,
                       UnitAttr:$transpose_b);
  let hasVerifier = 1;
}

def Prim_RmsNormOp : Prim_SimpleOp<"rms_norm", "RMSNorm over the last dimension",
    "%y = tttp.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<128x64xf64>, tensor<64xf64>) -> tensor<128x64xf64>"> {
  let arguments = (ins Prim_Tensor:$input, Prim_Tensor:$weight, F64Attr:$eps);
}

def Prim_LayerNormOp : Prim_SimpleOp<"layer_norm", "LayerNorm over the last dimension",
    "%y = tttp.layer_norm %x, %w, %b {eps = 1.0e-06 : f64} : (tensor<128x64xf64>, tensor<64xf64>, tensor<64xf64>) -> tensor<128x64xf64>"> {
  let arguments = (ins Prim_Tensor:$input, Prim_Tensor:$weight, Prim_Tensor:$bias, F64Attr:$eps);
}

def Prim_CausalConvOp : Prim_SimpleOp<"causal_conv",
    "Depthwise causal conv over the sequence; the optional history [B, K-1, C] stands before t = 0 (state passing; zeros without it)",
    "%y = tttp.causal_conv %x, %k, %b, %tail : (tensor<2x64x64xf64>, tensor<4x64xf64>, tensor<64xf64>, tensor<2x3x64xf64>) -> tensor<2x64x64xf64>"> {
  let arguments = (ins Prim_Tensor:$input, Prim_Tensor:$kernel, Prim_Tensor:$bias,
                       Optional<Prim_Tensor>:$history);
  let hasVerifier = 1;
}

def Prim_RopeOp : Prim_SimpleOp<"rope",
    "Rotary embedding on [B, T, H, f], interleaved pairs, position t mod period",
    "%y = tttp.rope %x {period = 16 : i64, theta = 1.0e+04 : f64} : (tensor<2x64x4x16xf64>) -> tensor<2x64x4x16xf64>"> {
  let arguments = (ins Prim_Tensor:$input, I64Attr:$period, F64Attr:$theta);
}

def Prim_BinaryOp : Prim_SimpleOp<"binary", "Elementwise add/sub/mul/div/max with broadcasting",
    "%y = tttp.binary %a, %b {kind = \"mul\"} : (tensor<8x16x16xf64>, tensor<16x1xf64>) -> tensor<8x16x16xf64>"> {
  let arguments = (ins Prim_Tensor:$lhs, Prim_Tensor:$rhs, StrAttr:$kind);
  let hasVerifier = 1;
}

def Prim_UnaryOp : Prim_SimpleOp<"unary", "Elementwise unary function",
    "%y = tttp.unary %x {kind = \"scale\", alpha = 0.5 : f64} : (tensor<8xf64>) -> tensor<8xf64>"> {
  let arguments = (ins Prim_Tensor:$input, StrAttr:$kind, DefaultValuedAttr<F64Attr, "0.0">:$alpha);
  let hasVerifier = 1;
}

def Prim_ReduceOp : Prim_SimpleOp<"reduce", "Sum, mean or max over the last dimension",
    "%y = tttp.reduce %x {kind = \"sum\"} : (tensor<8x16xf64>) -> tensor<8xf64>"> {
  let arguments = (ins Prim_Tensor:$input, StrAttr:$kind);
  let hasVerifier = 1;
}

def Prim_TransposeOp : Prim_SimpleOp<"transpose", "Permutes dimensions",
    "%y = tttp.transpose %x {perm = array<i64: 1, 0>} : (tensor<8x16xf64>) -> tensor<16x8xf64>"> {
  let arguments = (ins Prim_Tensor:$input, DenseI64ArrayAttr:$perm);
  let hasVerifier = 1;
}

def Prim_ReshapeOp : Prim_SimpleOp<"reshape", "Same elements, new shape (row-major)",
    "%y = tttp.reshape %x : (tensor<8x16xf64>) -> tensor<128xf64>"> {
  let arguments = (ins Prim_Tensor:$input);
  let hasVerifier = 1;
}

def Prim_ConcatOp : Prim_SimpleOp<"concat", "Concatenation of two tensors along one axis",
    "%y = tttp.concat %tail, %x {axis = 1 : i64} : (tensor<2x3x64xf32>, tensor<2x128x64xf32>) -> tensor<2x131x64xf32>"> {
  let arguments = (ins Prim_Tensor:$lhs, Prim_Tensor:$rhs, I64Attr:$axis);
  let hasVerifier = 1;
}

def Prim_SliceOp : Prim_SimpleOp<"slice", "Elements [start, start + size) along one axis",
    "%y = tttp.slice %x {axis = 1 : i64, start = 128 : i64} : (tensor<2x131x64xf32>) -> tensor<2x3x64xf32>"> {
  let arguments = (ins Prim_Tensor:$input, I64Attr:$axis, I64Attr:$start);
  let hasVerifier = 1;
}

def Prim_TrilOp : Prim_SimpleOp<"tril", "Zeroes entries above the diagonal of the last two dims",
    "%y = tttp.tril %x : (tensor<8x16x16xf64>) -> tensor<8x16x16xf64>"> {
  let arguments = (ins Prim_Tensor:$input);
}

def Prim_ConstantOp : Prim_Op<"constant", [Pure]> {
  let summary = "A tensor filled with one value";
  let description = [{
    Example: `%c = tttp.constant 1.0 : tensor<16xf64>`
  }];
  let arguments = (ins F64Attr:$value);
  let results = (outs Prim_Tensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($result)";
}

def Prim_IotaOp : Prim_Op<"iota", [Pure]> {
  let summary = "start, start + 1, ... along a 1-d tensor";
  let description = [{
    Example: `%i = tttp.iota 1.0 : tensor<16xf64>` gives 1, 2, ..., 16.
  }];
  let arguments = (ins F64Attr:$start);
  let results = (outs Prim_Tensor:$result);
  let assemblyFormat = "$start attr-dict `:` type($result)";
}

def Prim_SoftmaxXentOp : Prim_Op<"softmax_xent", [
    Pure, DeclareOpInterfaceMethods<Prim_VJPOpInterface>]> {
  let summary = "Per-token cross-entropy and mask of [N, V] logits";
  let description = [{
    Example: `%l, %m = tttp.softmax_xent %logits, %targets {ignore_token = 1 : i64} : (tensor<128x32000xf64>, tensor<128xi32>) -> (tensor<128xf64>, tensor<128xf64>)`
  }];
  let arguments = (ins Prim_Tensor:$logits, TensorOf<[I32]>:$targets, I64Attr:$ignore_token);
  let results = (outs Prim_Tensor:$loss, Prim_Tensor:$mask);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

def Prim_MaskedMeanOp : Prim_SimpleOp<"masked_mean",
    "Per-sequence masked mean of [B, T] losses, then the batch mean",
    "%l = tttp.masked_mean %loss, %mask : (tensor<2x64xf64>, tensor<2x64xf64>) -> tensor<f64>"> {
  let arguments = (ins Prim_Tensor:$loss, Prim_Tensor:$mask);
}

def Prim_ScanOp : Prim_Op<"scan", [SingleBlock, AttrSizedOperandSegments]> {
  let summary = "Loop over the leading dimension of the scanned inputs, carrying state";
  let description = [{
    `%finals..., %stacked... = tttp.scan (%inits...) over (%xs...)`: the body runs once per
    index s of the leading dimension of every scanned input; its block takes the carried values
    then slice s of each scanned input (leading dimension dropped) and yields the new carried
    values then one value per stacked output, which lands at index s of that output. This is the
    TTT inner loop: the carry is (W, b), the slices are one mini-batch. With `reverse` the
    indices run from the last to the first (the backward of a scan).

    Example:
    ```mlir
    %W, %b, %o = tttp.scan (%W1, %b1) over (%q, %k) : (tensor<2x4x16x16xf64>, ...) -> (...) {
    ^bb0(%w: ..., %bb: ..., %qs: ..., %ks: ...):
      ...
      tttp.yield %w2, %b2, %out : ...
    }
    ```
  }];
  let arguments = (ins Variadic<Prim_Tensor>:$inits, Variadic<Prim_Tensor>:$xs,
                       UnitAttr:$reverse);
  let results = (outs Variadic<Prim_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $inits `)` `over` `(` $xs `)` attr-dict `:` functional-type(operands, results) $body
  }];
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    int64_t getCount() {
      return llvm::cast<mlir::RankedTensorType>(getXs().front().getType()).getDimSize(0);
    }
  }];
}

def Prim_YieldOp : Prim_Op<"yield", [Pure, Terminator, HasParent<"ScanOp">]> {
  let summary = "Ends a scan body: new carried values, then this step's outputs";
  let description = [{
    Example: `tttp.yield %w2, %b2, %out : tensor<...>, tensor<...>, tensor<...>`
  }];
  let arguments = (ins Variadic<Prim_Tensor>:$values);
  let assemblyFormat = "$values attr-dict `:` type($values)";
}

def Prim_AccumulateGradOp : Prim_Op<"accumulate_grad", []> {
  let summary = "Adds a parameter's gradient into its persistent gradient buffer";
  let description = [{
    Placed by `ttt-autodiff` right after the parameter's gradient is final, so the reduction of
    its bucket can start while the backward goes on. The runtime adds `scale * grad` into the
    parameter's accumulator (scale = 1 / gradient-accumulation steps).

    Example: `tttp.accumulate_grad "layers.0.ttt.W1" %g : tensor<4x16x16xf32>`
  }];
  let arguments = (ins StrAttr:$name, Prim_Tensor:$grad);
  let assemblyFormat = "$name $grad attr-dict `:` type($grad)";
}

def Prim_BucketReadyOp : Prim_Op<"bucket_ready", []> {
  let summary = "Reduction point: every gradient of this bucket is final";
  let description = [{
    The data-parallel runtime starts reducing the bucket's accumulators here (on its own
    stream), overlapped with the rest of the backward. Buckets follow the backward order and
    hold about `bucket-mb` megabytes each.

    Example: `tttp.bucket_ready 0 ["final_norm", "embed"] {bytes = 8192000 : i64}`
  }];
  let arguments = (ins I64Attr:$bucket, StrArrayAttr:$params, I64Attr:$bytes);
  let assemblyFormat = "$bucket $params attr-dict";
}

//===----------------------------------------------------------------------===//
// Backward primitives (emitted by ttt-autodiff; kernels in runtime/backend/cpu/Backward.h)
//===----------------------------------------------------------------------===//

class Prim_BwdOp<string mnemonic, string summaryText, string example>
    : Prim_SimpleOp<mnemonic, summaryText, example, []>;

def Prim_EmbeddingBwdOp : Prim_BwdOp<"embedding_bwd",
    "Scatter-add of row cotangents into the table's gradient",
    "%dt = tttp.embedding_bwd %tokens, %dy : (tensor<2x64xi32>, tensor<2x64x64xf64>) -> tensor<32000x64xf64>"> {
  let arguments = (ins TensorOf<[I32]>:$tokens, Prim_Tensor:$dy);
}

class Prim_MultiBwdOp<string mnemonic, string summaryText, string example>
    : Prim_Op<mnemonic, [Pure]> {
  let summary = summaryText;
  let description = "Semantics: runtime/backend/cpu/Backward.h. Example: `" # example # "`";
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

def Prim_RmsNormBwdOp : Prim_MultiBwdOp<"rms_norm_bwd", "Cotangents of RMSNorm's input and scale",
    "%dx, %dw = tttp.rms_norm_bwd %x, %w, %dy {eps = 1.0e-06 : f64} : (...) -> (...)"> {
  let arguments = (ins Prim_Tensor:$input, Prim_Tensor:$weight, Prim_Tensor:$dy, F64Attr:$eps);
  let results = (outs Prim_Tensor:$dinput, Prim_Tensor:$dweight);
}

def Prim_LayerNormBwdOp : Prim_MultiBwdOp<"layer_norm_bwd",
    "Cotangents of LayerNorm's input, scale and bias",
    "%dx, %dw, %db = tttp.layer_norm_bwd %x, %w, %dy {eps = 1.0e-06 : f64} : (...) -> (...)"> {
  let arguments = (ins Prim_Tensor:$input, Prim_Tensor:$weight, Prim_Tensor:$dy, F64Attr:$eps);
  let results = (outs Prim_Tensor:$dinput, Prim_Tensor:$dweight, Prim_Tensor:$dbias);
}

def Prim_CausalConvBwdOp : Prim_MultiBwdOp<"causal_conv_bwd",
    "Cotangents of the causal conv's input, kernel and bias (the history, if any, feeds the kernel's; it gets none itself)",
    "%dx, %dk, %db = tttp.causal_conv_bwd %x, %k, %dy, %tail : (...) -> (...)"> {
  let arguments = (ins Prim_Tensor:$input, Prim_Tensor:$kernel, Prim_Tensor:$dy,
                       Optional<Prim_Tensor>:$history);
  let results = (outs Prim_Tensor:$dinput, Prim_Tensor:$dkernel, Prim_Tensor:$dbias);
}

def Prim_RopeBwdOp : Prim_BwdOp<"rope_bwd", "Rotary embedding by the opposite angle",
    "%dx = tttp.rope_bwd %dy {period = 16 : i64, theta = 1.0e+04 : f64} : (tensor<2x64x4x16xf64>) -> tensor<2x64x4x16xf64>"> {
  let arguments = (ins Prim_Tensor:$dy, I64Attr:$period, F64Attr:$theta);
}

def Prim_UnaryBwdOp : Prim_BwdOp<"unary_bwd", "dy * f'(x) of an elementwise unary function",
    "%dx = tttp.unary_bwd %x, %y, %dy {kind = \"sigmoid\", alpha = 0.0 : f64} : (...) -> tensor<8xf64>"> {
  let arguments = (ins Prim_Tensor:$input, Prim_Tensor:$output, Prim_Tensor:$dy, StrAttr:$kind,
                       DefaultValuedAttr<F64Attr, "0.0">:$alpha);
}

def Prim_SumToOp : Prim_BwdOp<"sum_to",
    "Sums over broadcast dimensions down to the result shape (the cotangent of broadcasting)",
    "%d = tttp.sum_to %x : (tensor<8x16x16xf64>) -> tensor<16x1xf64>"> {
  let arguments = (ins Prim_Tensor:$input);
}

def Prim_SoftmaxXentBwdOp : Prim_BwdOp<"softmax_xent_bwd",
    "dloss * mask * (softmax(logits) - onehot(target))",
    "%dl = tttp.softmax_xent_bwd %logits, %targets, %dloss {ignore_token = 1 : i64} : (...) -> tensor<128x32000xf64>"> {
  let arguments = (ins Prim_Tensor:$logits, TensorOf<[I32]>:$targets, Prim_Tensor:$dloss,
                       I64Attr:$ignore_token);
}

def Prim_MaskedMeanBwdOp : Prim_BwdOp<"masked_mean_bwd",
    "Cotangent of the per-token losses of masked_mean",
    "%dl = tttp.masked_mean_bwd %mask, %dout : (tensor<2x64xf64>, tensor<f64>) -> tensor<2x64xf64>"> {
  let arguments = (ins Prim_Tensor:$mask, Prim_Tensor:$dout);
}

//===----------------------------------------------------------------------===//
// Fused inner loop (emitted by ttt-fuse-inner-loop; kernels in runtime/backend/cpu/InnerLoop.h)
//===----------------------------------------------------------------------===//

def Prim_InnerLoopFwdOp : Prim_Op<"inner_loop_fwd", [Pure]> {
  let summary = "The whole forward inner loop of one TTT-Linear layer (spec 2.4-2.6)";
  let description = [{
    Replaces the `tttp.scan` that `ttt-expand` emits for the inner loop (or the grouped scan
    of `ttt-autodiff`): for every (batch, head) the mini-batches m = 0..n-1 run in order from
    (W0, b0), each one the dual-form step of spec 2.6 with the closed-form LN + L2 gradient of
    spec 2.4 (`eps` for both LayerNorms):

    * `Z = K W + b`, `G = LNL2grad(Z, V - K; gamma_h, lambda_h)` (row-wise)
    * `E[i, j] = tau[i] * eta[j]`, `Zbar = Q W + b - (tril(E) * (1 + tril(Q K^T))) G`
    * `o = Q + gamma_h * LN(Zbar) + lambda_h`
    * `W' = W - K^T diag(tau_last * eta) G`, `b' = b - (tau_last * eta)^T G`

    Operands: `W0 [B, H, f, f]`, `b0 [B, H, f]`, `q, k, v [n, B, H, b, f]`, `eta [n, B, H, b]`,
    `tau [b]` (the per-position scale tau_i, the rows of E), `tau_last []` (the scale of the
    carried update; the scan reads it as its own closure value, tau[b-1] in the model),
    `gamma, lambda [H, f]` (ttt_norm). Results: `W_final`, `b_final`, `o [n, B, H, b, f]` and
    the carried state at the start of every group of `remat_group` mini-batches,
    `ckpt_W [n/k, B, H, f, f]`, `ckpt_b [n/k, B, H, f]` (what `tttp.inner_loop_bwd` reads).
    With the unit attribute `token_major`, `q, k, v, o` are `[B, n, b, H, f]` and `eta`
    `[B, n, b, H]` instead (the projections' `[B, T, H, f]`): `ttt-fuse-inner-loop` folds the
    transposes between the two layouts into the ops.

    An optional last result `cache [n, B, H, 3 b f + b^2 + 6 b]` (f32) is the inner-loop cache:
    what `tttp.inner_loop_bwd` would otherwise recompute of every step (G, the normalized z and
    Zbar, the b x b scores, row statistics), written by the GPU's tensor-core kernels for the
    backward that takes it as its last operand; its layout is the backend's own (the CPU backend
    neither writes nor reads it). It trades memory for the backward's recomputation.

    Example:
    ```mlir
    %W, %b, %o, %cw, %cb = tttp.inner_loop_fwd %W0, %b0, %q, %k, %v, %eta, %tau, %taul, %g, %l
        {eps = 1.0e-06 : f64, remat_group = 2 : i64}
        : (tensor<2x4x16x16xf64>, ..., tensor<4x16xf64>) -> (..., tensor<2x2x4x16xf64>)
    ```
  }];
  let arguments = (ins Prim_Tensor:$w0, Prim_Tensor:$b0, Prim_Tensor:$q, Prim_Tensor:$k,
                       Prim_Tensor:$v, Prim_Tensor:$eta, Prim_Tensor:$tau, Prim_Tensor:$tau_last,
                       Prim_Tensor:$gamma, Prim_Tensor:$lambda, F64Attr:$eps,
                       I64Attr:$remat_group, UnitAttr:$token_major);
  let results = (outs Prim_Tensor:$w_final, Prim_Tensor:$b_final, Prim_Tensor:$o,
                      Prim_Tensor:$ckpt_w, Prim_Tensor:$ckpt_b, Optional<Prim_Tensor>:$cache);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Prim_InnerLoopBwdOp : Prim_Op<"inner_loop_bwd", [Pure]> {
  let summary = "Cotangents of every input of tttp.inner_loop_fwd";
  let description = [{
    The reverse of `tttp.inner_loop_fwd` with the same `eps` and `remat_group`: groups are
    visited last to first; each recomputes its forward from its checkpoint (keeping the state at
    every step start), then back-propagates through its steps in reverse.

    Operands: `ckpt_W [n/k, B, H, f, f]`, `ckpt_b [n/k, B, H, f]` (from the forward; `ckpt[0]`
    is W0/b0), `q, k, v, eta, tau, tau_last, gamma, lambda` (as for the forward), then the
    cotangents `dW_final [B, H, f, f]`, `db_final [B, H, f]`, `do [n, B, H, b, f]`.
    Results: `dW0, db0, dq, dk, dv, deta, dtau [b], dtau_last [], dgamma [H, f], dlambda [H, f]`.
    `token_major` as for the forward (then `do`, `dq`, `dk`, `dv` and `deta` too). An optional
    last operand is the forward's `cache` result (then only each group's W chain is recomputed).

    Example:
    ```mlir
    %dW0, %db0, %dq, %dk, %dv, %deta, %dtau, %dtl, %dg, %dl = tttp.inner_loop_bwd %cw, %cb,
        %q, %k, %v, %eta, %tau, %taul, %g, %l, %dW, %db, %do {eps = 1.0e-06 : f64, remat_group = 2 : i64}
        : (...) -> (...)
    ```
  }];
  let arguments = (ins Prim_Tensor:$ckpt_w, Prim_Tensor:$ckpt_b, Prim_Tensor:$q, Prim_Tensor:$k,
                       Prim_Tensor:$v, Prim_Tensor:$eta, Prim_Tensor:$tau, Prim_Tensor:$tau_last,
                       Prim_Tensor:$gamma, Prim_Tensor:$lambda, Prim_Tensor:$dw_final,
                       Prim_Tensor:$db_final, Prim_Tensor:$d_o, Optional<Prim_Tensor>:$cache,
                       F64Attr:$eps,
                       I64Attr:$remat_group, UnitAttr:$token_major);
  let results = (outs Prim_Tensor:$dw0, Prim_Tensor:$db0, Prim_Tensor:$dq, Prim_Tensor:$dk,
                      Prim_Tensor:$dv, Prim_Tensor:$deta, Prim_Tensor:$dtau,
                      Prim_Tensor:$dtau_last, Prim_Tensor:$dgamma, Prim_Tensor:$dlambda);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise fusion (emitted by ttt-fuse-elementwise; kernels in runtime/backend/cpu/Fused.h)
//===----------------------------------------------------------------------===//

def Prim_FusedElementwiseOp : Prim_Op<"fused_elementwise", [Pure]> {
  let summary = "A chain of elementwise primitives evaluated by one kernel";
  let description = [{
    Evaluates a small expression program per element of the result. Slots `0 .. #inputs - 1`
    are the inputs, slot `#inputs + j` the value of step j; the result is the last step. Step j
    is `ops[j]` applied to the slots `args[3j], args[3j + 1], args[3j + 2]` (-1: unused) with
    `alphas[j]`:

    * `add`, `sub`, `mul`, `div`, `max`: tttp.binary (two slots);
    * a tttp.unary kind (`silu`, `scale`, ...): one slot, `alpha` as in tttp.unary;
    * `<kind>_bwd`: tttp.unary_bwd of that kind on (x, y, dy) (three slots).

    An input with as many elements as the result is read in row-major order (any shape: a
    reshape inside the chain is a view); a smaller one broadcasts to the result shape (numpy
    rules). Each step is rounded to the element type exactly as the unfused primitive rounds
    it, so fused and unfused programs compute the same values.

    Example (SwiGLU's `silu(a) * b`):
    ```mlir
    %h = tttp.fused_elementwise %a, %b {alphas = array<f64: 0.0, 0.0>,
        args = array<i64: 0, -1, -1, 2, 1, -1>, ops = ["silu", "mul"]}
        : (tensor<128x256xf32>, tensor<128x256xf32>) -> tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Variadic<Prim_Tensor>:$inputs, StrArrayAttr:$ops,
                       DenseI64ArrayAttr:$args, DenseF64ArrayAttr:$alphas);
  let results = (outs Prim_Tensor:$result);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Prim_LmHeadXentOp : Prim_Op<"lm_head_xent", [Pure]> {
  let summary = "Tied lm_head and per-token cross-entropy, the logits never materialized";
  let description = [{
    For hidden `h [..., D]` (N rows), table `E [V, D]` and targets `i32` (N elements): the loss
    and mask of `tttp.softmax_xent(h E^T, targets)` and the row's log-sum-exp `lse [N]` (what
    the backward reads). The vocabulary is processed `chunk` columns at a time with an online
    log-sum-exp, so only `[rows, chunk]` logits exist at once.

    Example:
    ```mlir
    %loss, %mask, %lse = tttp.lm_head_xent %h, %E, %t {chunk = 4096 : i64, ignore_token = -1 : i64}
        : (tensor<2x64x64xf64>, tensor<32000x64xf64>, tensor<128xi32>)
        -> (tensor<128xf64>, tensor<128xf64>, tensor<128xf64>)
    ```
  }];
  let arguments = (ins Prim_Tensor:$hidden, Prim_Tensor:$table, TensorOf<[I32]>:$targets,
                       I64Attr:$ignore_token, I64Attr:$chunk);
  let results = (outs Prim_Tensor:$loss, Prim_Tensor:$mask, Prim_Tensor:$lse);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Prim_LmHeadXentBwdOp : Prim_Op<"lm_head_xent_bwd", [Pure]> {
  let summary = "Cotangents of the hidden states and the table of tttp.lm_head_xent";
  let description = [{
    With `G = dloss * mask * (softmax(h E^T) - onehot(targets))` (the softmax from the
    forward's `lse`): `dh = G E` (shape of h) and `dE = G^T h` ([V, D]), both computed chunk by
    chunk of the vocabulary with the logits recomputed, never the full `[N, V]`.

    Example:
    ```mlir
    %dh, %dE = tttp.lm_head_xent_bwd %h, %E, %t, %lse, %dloss {chunk = 4096 : i64, ignore_token = -1 : i64}
        : (tensor<2x64x64xf64>, tensor<32000x64xf64>, tensor<128xi32>, tensor<128xf64>, tensor<128xf64>)
        -> (tensor<2x64x64xf64>, tensor<32000x64xf64>)
    ```
  }];
  let arguments = (ins Prim_Tensor:$hidden, Prim_Tensor:$table, TensorOf<[I32]>:$targets,
                       Prim_Tensor:$lse, Prim_Tensor:$dloss, I64Attr:$ignore_token,
                       I64Attr:$chunk);
  let results = (outs Prim_Tensor:$dhidden, Prim_Tensor:$dtable);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // TTT_PRIM_OPS_TD
