//===- TTTOps.td - ttt dialect operations ----------------------*- tablegen -*-===//

#ifndef TTT_OPS_TD
#define TTT_OPS_TD

include "ttt/Dialect/TTT/TTTDialect.td"
include "ttt/Dialect/TTT/TTTAttrs.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/CommonAttrConstraints.td"

def TTT_Activation : RankedTensorOf<[F32]>;
def TTT_Weight : StaticShapeTensorOf<[F32]>;
def TTT_Tokens : RankedTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// Structure: model, parameters, repeated layers, terminators
//===----------------------------------------------------------------------===//

def TTT_ModelOp : TTT_Op<"model", [
    Symbol, IsolatedFromAbove, SingleBlock,
    DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmBlockArgumentNames"]>]> {
  let summary = "A TTT-Linear language model and its training recipe";
  let description = [{
    The unit `tttc` compiles. The body computes the training loss of one batch: its block takes
    the input tokens and the target tokens (both `tensor<?x?xi32>`, batch x sequence) and ends
    with `ttt.return` of the scalar loss. Parameters are declared with `ttt.param` in the body
    (global ones) or inside a `ttt.repeat` (one instance per layer). The model configuration and
    the training recipe are typed attributes; the verifier checks that every parameter shape,
    layer attribute and repeat count agrees with them.

    Example:
    ```mlir
    ttt.model @ttt_tiny config = <vocab = 32000, hidden = 64, ...> recipe = <optimizer = "adamw", ...> {
    ^bb0(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>):
      %embed = ttt.param "embed" normal(0.02) hf("model.embed_tokens.weight") : tensor<32000x64xf32>
      ...
      ttt.return %loss : tensor<f32>
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TTT_ConfigAttr:$config, TTT_RecipeAttr:$recipe);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `config` `=` $config `recipe` `=` $recipe attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
}

def TTT_ParamOp : TTT_Op<"param", [
    Pure, ParentOneOf<["ModelOp", "RepeatOp"]>,
    DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmResultNames"]>]> {
  let summary = "Declares a trainable parameter";
  let description = [{
    One outer-loop parameter: its name, shape (the result type, our layout: row-vector
    convention, `[in, out]` for linear maps), initializer (spec 3.2), weight-decay flag and the
    Hugging Face state-dict name and layout used in checkpoints (spec 5.2).

    * initializer: `zeros`, `ones`, `normal(std)` or `truncated_normal(std)`: a normal
      truncated at +-2 sigma and rescaled so that its standard deviation is `std` (flax's
      LeCun normal, used for the convs with `std = 1/sqrt(width)`).
    * `no_decay` excludes it from weight decay; the reference decays every parameter (spec 3.3),
      so the checked-in models never use it.
    * `hf(name[, layout])`: the Hugging Face key; inside a `ttt.repeat`, `{i}` stands for the
      layer index. The layout says how the HF tensor relates to ours: `same` (default),
      `transpose` (nn.Linear `[out, in]`), `conv` (Conv1d `[channels, 1, width]` from our
      `[width, channels]`), `unsqueeze1` (a unit axis inserted at position 1: `[H, 1, d]` from
      our `[H, d]`, `[H, 1]` from our `[H]`).

    Inside a repeat the parameter's full name is `layers.<i>.<name>`.

    Example:
    ```mlir
    %w1 = ttt.param "ttt.W1" normal(0.02) hf("model.layers.{i}.seq_modeling_block.W1") : tensor<4x16x16xf32>
    %wq = ttt.param "ttt.wq" normal(0.02) hf("model.layers.{i}.seq_modeling_block.q_proj.weight", transpose) : tensor<64x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, TTT_InitKind:$init, OptionalAttr<F64Attr>:$std,
                       UnitAttr:$no_decay, StrAttr:$hf_name, OptionalAttr<TTT_HfLayout>:$hf_layout);
  let results = (outs TTT_Weight:$result);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The layer index placeholder in Hugging Face names inside a repeat.
    static constexpr llvm::StringLiteral kLayerPlaceholder = "{i}";
    /// Number of scalars in this parameter.
    int64_t getNumElements() { return getType().getNumElements(); }
    ::ttt::HfLayout getLayout() { return getHfLayout().value_or(::ttt::HfLayout::same); }
  }];
}

def TTT_RepeatOp : TTT_Op<"repeat", [
    SingleBlock, AllTypesMatch<["init", "result"]>,
    DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmBlockArgumentNames"]>]> {
  let summary = "The residual block, written once and repeated for every layer";
  let description = [{
    Runs its body `count` times, threading the residual stream: the block argument is the
    stream entering layer i, `ttt.yield` gives the stream leaving it. Every `ttt.param` inside
    the body declares one parameter per layer (named `layers.<i>.<name>`, Hugging Face name with
    `{i}` replaced), so checkpoints, sharding and the memory planner see ordinary per-layer
    tensors; the compiler unrolls the repeat when it expands layers into primitives.
    `count` must equal the configuration's `layers`.

    Example:
    ```mlir
    %out = ttt.repeat 12 times(%h0) : tensor<?x?x768xf32> {
    ^bb0(%h: tensor<?x?x768xf32>):
      ...
      ttt.yield %h3 : tensor<?x?x768xf32>
    }
    ```
  }];
  let arguments = (ins I64Attr:$count, TTT_Activation:$init);
  let results = (outs TTT_Activation:$result);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$count `times` `(` $init `)` attr-dict `:` type($result) $body";
  let hasRegionVerifier = 1;
}

def TTT_YieldOp : TTT_Op<"yield", [Pure, Terminator, HasParent<"RepeatOp">]> {
  let summary = "Ends a repeated layer with the residual stream it produces";
  let description = [{
    Terminator of `ttt.repeat`; its operand becomes the next layer's input.

    Example:
    ```mlir
    ttt.yield %h3 : tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins TTT_Activation:$value);
  let assemblyFormat = "$value attr-dict `:` type($value)";
}

def TTT_ReturnOp : TTT_Op<"return", [Pure, Terminator, HasParent<"ModelOp">]> {
  let summary = "Returns the scalar training loss of the model";
  let description = [{
    Terminator of `ttt.model`. The operand is the loss that training minimises, produced by
    `ttt.cross_entropy`.

    Example:
    ```mlir
    ttt.return %loss : tensor<f32>
    ```
  }];
  let arguments = (ins 0DTensorOf<[F32]>:$loss);
  let assemblyFormat = "$loss attr-dict `:` type($loss)";
}

//===----------------------------------------------------------------------===//
// Layer-level ops
//===----------------------------------------------------------------------===//

def TTT_EmbeddingOp : TTT_Op<"embedding", [Pure]> {
  let summary = "Token embedding lookup";
  let description = [{
    `h[b, t, :] = table[tokens[b, t], :]` with `table : [vocab, hidden]`. No scaling and no
    positional embedding (spec 3.1). Token ids outside `[0, vocab)` are a runtime error.

    Example:
    ```mlir
    %h0 = ttt.embedding %tokens, %embed : tensor<?x?xi32>, tensor<32000x768xf32> -> tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins TTT_Tokens:$tokens, TTT_Weight:$table);
  let results = (outs TTT_Activation:$result);
  let assemblyFormat = [{
    $tokens `,` $table attr-dict `:` type($tokens) `,` type($table) `->` type($result)
  }];
  let hasVerifier = 1;
}

def TTT_RmsNormOp : TTT_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "RMSNorm over the hidden dimension";
  let description = [{
    `y = w * x / sqrt(mean(x^2) + eps)` over the last dimension, statistics in fp32 at least
    (spec 3.1). `weight : [hidden]`.

    Example:
    ```mlir
    %u = ttt.rms_norm %h, %seq_norm {eps = 1.0e-6} : tensor<?x?x768xf32>, tensor<768xf32>
    ```
  }];
  let arguments = (ins TTT_Activation:$input, TTT_Weight:$weight,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs TTT_Activation:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def TTT_CausalConvOp : TTT_Op<"causal_conv", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Depthwise causal convolution over the sequence, with bias";
  let description = [{
    `y[t, c] = bias[c] + sum_j kernel[j, c] * x[t - W + 1 + j, c]`, `x[< 0] = 0`, with
    `kernel : [W, hidden]` (tap `W - 1` multiplies the current token) and `bias : [hidden]`.
    Used as the block-level pre-conv (spec 3.1) and, inside `ttt.ttt_linear`, as conv_q/conv_k.

    Example:
    ```mlir
    %c = ttt.causal_conv %n, %kernel, %bias : tensor<?x?x768xf32>, tensor<4x768xf32>, tensor<768xf32>
    ```
  }];
  let arguments = (ins TTT_Activation:$input, TTT_Weight:$kernel, TTT_Weight:$bias);
  let results = (outs TTT_Activation:$result);
  let assemblyFormat = [{
    $input `,` $kernel `,` $bias attr-dict `:` type($input) `,` type($kernel) `,` type($bias)
  }];
  let hasVerifier = 1;
}

def TTT_AddOp : TTT_Op<"add", [Pure, Commutative, AllTypesMatch<["lhs", "rhs", "result"]>]> {
  let summary = "Residual addition";
  let description = [{
    Elementwise `lhs + rhs`; adds a sub-layer's output to the residual stream.

    Example:
    ```mlir
    %h1 = ttt.add %h, %c : tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins TTT_Activation:$lhs, TTT_Activation:$rhs);
  let results = (outs TTT_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def TTT_TTTLinearOp : TTT_Op<"ttt_linear", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "The whole TTT-Linear layer, Mamba backbone (spec section 2)";
  let description = [{
    Input `u` (the RMS-normalised residual stream), output added to the residual. In order:
    `S = u Wq` (shared Q/K projection); `XQ = conv_q(S)`, `XK = conv_k(S)` (depthwise causal,
    width `conv_width`); `XV = u Wv`; heads split head-major (`heads` x `hidden/heads`); RoPE
    (theta `rope_theta`, interleaved pairs) on XQ and XK at position `t mod mini_batch`; the
    inner learning rate `eta = tau_i * base_lr * sigmoid(u . w_h + c_h) / head_dim` with
    `tau_i = max(0, 1/i + token_idx[i])`; the inner model `f(x) = x + LN(x W + b)` (LN with
    `ttt_norm` scale and bias, eps `eps`) trained by mini-batch gradient descent on
    `1/2 |LN(k W + b) - (v - k)|^2` over mini-batches of `mini_batch` tokens, starting from
    `init_state` (W1, b1) for every sequence; output rows `q + LN(q W_i + b_i)`; then a
    LayerNorm over the hidden size (`post_norm`), times `gelu_tanh(u Wg)`, times `Wo`.

    Operand groups (shapes with D = hidden, H = heads, f = D / H, W = conv_width,
    b = mini_batch): `q(Wq)`, `v(Wv)`, `gate(Wg)`, `out(Wo)` all `[D, D]`;
    `conv_q(kernel [W, D], bias [D])`, `conv_k(...)`; `lr_gate(weight [H, D], bias [H])`;
    `token_idx([b])`; `ttt_norm(scale [H, f], bias [H, f])`; `init_state(W1 [H, f, f],
    b1 [H, f])`; `post_norm(scale [D], bias [D])`. The parameter types are implied by the input
    type and the attributes, so only the input type is written.

    Example:
    ```mlir
    %t = ttt.ttt_linear %u q(%wq) v(%wv) gate(%wg) out(%wo) conv_q(%cqk, %cqb) conv_k(%ckk, %ckb)
           lr_gate(%lrw, %lrb) token_idx(%tidx) ttt_norm(%tnw, %tnb) init_state(%w1, %b1)
           post_norm(%pnw, %pnb)
           {heads = 12, mini_batch = 16, conv_width = 4, base_lr = 1.0, rope_theta = 10000.0}
           : tensor<?x?x768xf32>
    ```
  }];
  let arguments = (ins TTT_Activation:$input,
                       TTT_Weight:$w_q, TTT_Weight:$w_v, TTT_Weight:$w_g, TTT_Weight:$w_o,
                       TTT_Weight:$conv_q_kernel, TTT_Weight:$conv_q_bias,
                       TTT_Weight:$conv_k_kernel, TTT_Weight:$conv_k_bias,
                       TTT_Weight:$lr_weight, TTT_Weight:$lr_bias, TTT_Weight:$token_idx,
                       TTT_Weight:$ttt_norm_weight, TTT_Weight:$ttt_norm_bias,
                       TTT_Weight:$w1, TTT_Weight:$b1,
                       TTT_Weight:$post_norm_weight, TTT_Weight:$post_norm_bias,
                       I64Attr:$heads, I64Attr:$mini_batch, I64Attr:$conv_width,
                       F64Attr:$base_lr, F64Attr:$rope_theta,
                       DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs TTT_Activation:$result);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Keyword groups of the assembly format, in operand order (after the input).
    static llvm::ArrayRef<std::pair<llvm::StringRef, unsigned>> getOperandGroups();
  }];
}

def TTT_SwiGLUMlpOp : TTT_Op<"swiglu_mlp", [
    Pure, AllTypesMatch<["input", "result"]>, AllTypesMatch<["w_gate", "w_up"]>]> {
  let summary = "SwiGLU feed-forward block";
  let description = [{
    `(silu(x W_gate) * (x W_up)) W_down`, no biases (spec 3.1); `W_gate, W_up : [D, I]`,
    `W_down : [I, D]`.

    Example:
    ```mlir
    %m = ttt.swiglu_mlp %n gate(%w1) up(%w3) down(%w2)
           : tensor<?x?x768xf32>, tensor<768x2048xf32>, tensor<2048x768xf32>
    ```
  }];
  let arguments = (ins TTT_Activation:$input, TTT_Weight:$w_gate, TTT_Weight:$w_up,
                       TTT_Weight:$w_down);
  let results = (outs TTT_Activation:$result);
  let assemblyFormat = [{
    $input `gate` `(` $w_gate `)` `up` `(` $w_up `)` `down` `(` $w_down `)` attr-dict
    `:` type($input) `,` type($w_gate) `,` type($w_down)
  }];
  let hasVerifier = 1;
}

def TTT_LmHeadOp : TTT_Op<"lm_head", [Pure]> {
  let summary = "Output projection to vocabulary logits, tied to the embedding";
  let description = [{
    `logits = x table^T` with `table : [vocab, hidden]`. With `tie_embeddings` the table must be
    the embedding's parameter (the model verifier checks it), so the head adds no parameter.
    The fusion passes merge it with `ttt.cross_entropy` so full logits never exist.

    Example:
    ```mlir
    %logits = ttt.lm_head %hf, %embed : tensor<?x?x768xf32>, tensor<32000x768xf32> -> tensor<?x?x32000xf32>
    ```
  }];
  let arguments = (ins TTT_Activation:$input, TTT_Weight:$table);
  let results = (outs TTT_Activation:$result);
  let assemblyFormat = [{
    $input `,` $table attr-dict `:` type($input) `,` type($table) `->` type($result)
  }];
  let hasVerifier = 1;
}

def TTT_CrossEntropyOp : TTT_Op<"cross_entropy", [Pure]> {
  let summary = "Masked mean next-token cross-entropy, in fp32";
  let description = [{
    For each sequence `-sum_t m_t log softmax(logits_t)[target_t] / max(sum_t m_t, 1e-10)`,
    then the mean over the batch (spec 4.5). The mask `m_t` drops targets equal to
    `ignore_token` (BOS = 1 by default): predictions of BOS do not count.

    Example:
    ```mlir
    %loss = ttt.cross_entropy %logits, %targets : tensor<?x?x32000xf32>, tensor<?x?xi32> -> tensor<f32>
    ```
  }];
  let arguments = (ins TTT_Activation:$logits, TTT_Tokens:$targets,
                       DefaultValuedAttr<I64Attr, "1">:$ignore_token);
  let results = (outs 0DTensorOf<[F32]>:$loss);
  let assemblyFormat = [{
    $logits `,` $targets attr-dict `:` type($logits) `,` type($targets) `->` type($loss)
  }];
  let hasVerifier = 1;
}

#endif // TTT_OPS_TD
