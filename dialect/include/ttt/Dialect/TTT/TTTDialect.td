//===- TTTDialect.td - the ttt dialect -------------------------*- tablegen -*-===//
//
// The model level of the compiler: TTT-Linear language models and their training recipe, at
// layer granularity. See docs/architecture.md and docs/models.md.
//
//===----------------------------------------------------------------------===//

#ifndef TTT_DIALECT_TD
#define TTT_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def TTT_Dialect : Dialect {
  let name = "ttt";
  let cppNamespace = "::ttt";
  let summary = "TTT-Linear language models and their training recipe, at layer granularity";
  let description = [{
    The `ttt` dialect is the input language of `tttc`. A `ttt.model` holds one language model:
    parameter declarations (`ttt.param`), layer-level ops (embedding, RMSNorm, causal depthwise
    conv, the whole TTT-Linear layer, SwiGLU MLP, tied LM head, cross-entropy) and, as typed
    attributes, the model configuration and the training recipe. The compiler lowers it to
    tensor primitives, differentiates it, fuses it and plans its memory; the runtime executes the
    resulting plan.

    Tensors use the row-vector convention of the reference implementation: a token is a row and a
    linear map is `x * W` with `W : [in, out]`. Activations are `tensor<?x?xDxf32>` (batch and
    sequence length are chosen at compile time by `tttc --per-device-batch/--seq-len`); the
    element type in the model file is always f32, the compiled precision is a `tttc` flag.
  }];
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

class TTT_Op<string mnemonic, list<Trait> traits = []>
    : Op<TTT_Dialect, mnemonic, traits>;

class TTT_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<TTT_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // TTT_DIALECT_TD
