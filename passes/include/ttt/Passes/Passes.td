//===- Passes.td - ttt compiler passes -------------------------*- tablegen -*-===//

#ifndef TTT_PASSES_TD
#define TTT_PASSES_TD

include "mlir/Pass/PassBase.td"

def TTTUnrollRepeat : Pass<"ttt-unroll-repeat", "::ttt::ModelOp"> {
  let summary = "Unrolls ttt.repeat into one copy of the layer per layer index";
  let description = [{
    Replaces each `ttt.repeat N` by N copies of its body, threading the residual stream, and
    turns every `ttt.param` of the body into N model-level parameters named `layers.<i>.<name>`
    with `{i}` in the Hugging Face name replaced by i. The parameter set (names, shapes,
    initializers, Hugging Face names) is unchanged, so the unrolled model is equivalent.

    Example:
    ```mlir
    %out = ttt.repeat 2 times(%h0) : tensor<?x?x64xf32> {
    ^bb0(%h: tensor<?x?x64xf32>):
      %w = ttt.param "norm" ones hf("model.layers.{i}.seq_norm.weight") : tensor<64xf32>
      ...
    }
    // becomes
    %w0 = ttt.param "layers.0.norm" ones hf("model.layers.0.seq_norm.weight") : tensor<64xf32>
    ...
    %w1 = ttt.param "layers.1.norm" ones hf("model.layers.1.seq_norm.weight") : tensor<64xf32>
    ```
  }];
}

#endif // TTT_PASSES_TD
