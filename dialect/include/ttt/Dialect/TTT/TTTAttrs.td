//===- TTTAttrs.td - model configuration and training recipe ---*- tablegen -*-===//

#ifndef TTT_ATTRS_TD
#define TTT_ATTRS_TD

include "ttt/Dialect/TTT/TTTDialect.td"
include "mlir/IR/EnumAttr.td"

// Doubles and booleans printed as plain numbers / true|false inside struct-like attributes.
def TTT_F64Param : AttrParameter<"::ttt::F64", "a 64-bit float"> {
  let parser = [{ ::ttt::detail::parseF64($_parser) }];
  let printer = [{ ::ttt::detail::printF64($_printer, $_self) }];
}
def TTT_BoolParam : AttrParameter<"bool", "true or false"> {
  let parser = [{ ::ttt::detail::parseBool($_parser) }];
  let printer = [{ $_printer << ($_self ? "true" : "false") }];
}

def TTT_ConfigAttr : TTT_Attr<"Config", "config"> {
  let summary = "Model hyper-parameters of a TTT-Linear language model";
  let description = [{
    The sizes and fixed constants of the model (spec section 1.1); the names follow the Hugging
    Face `TTTConfig` (spec 5.1) where one exists. Only the Mamba backbone "(M)" is supported, so
    `share_qk`, `use_gate` and `pre_conv` must be true; they are spelled out so that the file
    says what it is and the importer can reject other backbones with a clear message.

    Checked: all sizes positive, `hidden % heads == 0`, positive rope theta, eps and init range.

    Example:
    ```mlir
    config = <vocab = 32000, hidden = 768, intermediate = 2048, layers = 12, heads = 12,
              conv_width = 4, rope_theta = 10000.0, rms_eps = 1.0e-6, init_range = 0.02,
              tie_embeddings = true, share_qk = true, use_gate = true, pre_conv = true>
    ```
  }];
  let parameters = (ins "int64_t":$vocab, "int64_t":$hidden, "int64_t":$intermediate,
                        "int64_t":$layers, "int64_t":$heads, "int64_t":$conv_width,
                        TTT_F64Param:$rope_theta, TTT_F64Param:$rms_eps, TTT_F64Param:$init_range,
                        TTT_BoolParam:$tie_embeddings, TTT_BoolParam:$share_qk,
                        TTT_BoolParam:$use_gate, TTT_BoolParam:$pre_conv);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getHeadDim() const { return getHidden() / getHeads(); }
  }];
}

def TTT_RecipeAttr : TTT_Attr<"Recipe", "recipe"> {
  let summary = "The training recipe: optimizer, schedule, batch and inner-loop settings";
  let description = [{
    What the reference trainer does (spec section 4): AdamW with `beta1`, `beta2`, `eps` and
    decoupled `weight_decay`, gradients clipped to global norm `grad_clip`, a linear warmup over
    `warmup_steps` from 0 to `lr` then a cosine decay to `lr_end` at `total_steps`;
    `global_batch` sequences of `seq_len` tokens per optimizer step; the TTT inner loop runs over
    mini-batches of `mini_batch` tokens with base learning rate `inner_base_lr`, and its backward
    pass keeps the inner state every `remat_group` mini-batches and recomputes inside a group.
    `state_passing` carries each row's final inner state into the next step (off in the
    reference). `seed` keys initialization and data order; `checkpoint_every` and
    `milestone_every` are in optimizer steps. The runtime may override the scalars by flags;
    shapes (`seq_len`, batch) are fixed by `tttc`.

    Checked: optimizer is "adamw", `seq_len % mini_batch == 0`, `remat_group` divides the
    number of mini-batches, `warmup_steps <= total_steps`, positive rates, betas in [0, 1),
    `lr_end <= lr`.

    Example:
    ```mlir
    recipe = <optimizer = "adamw", beta1 = 0.9, beta2 = 0.95, eps = 1.0e-8, weight_decay = 0.1,
              grad_clip = 1.0, lr = 3.0e-3, lr_end = 1.0e-5, warmup_steps = 480,
              total_steps = 4800, global_batch = 256, seq_len = 2048, mini_batch = 16,
              inner_base_lr = 1.0, remat_group = 4, state_passing = false, seed = 0,
              checkpoint_every = 1000, milestone_every = 2000>
    ```
  }];
  let parameters = (ins StringRefParameter<"optimizer name">:$optimizer,
                        TTT_F64Param:$beta1, TTT_F64Param:$beta2, TTT_F64Param:$eps,
                        TTT_F64Param:$weight_decay, TTT_F64Param:$grad_clip,
                        TTT_F64Param:$lr, TTT_F64Param:$lr_end,
                        "int64_t":$warmup_steps, "int64_t":$total_steps,
                        "int64_t":$global_batch, "int64_t":$seq_len, "int64_t":$mini_batch,
                        TTT_F64Param:$inner_base_lr, "int64_t":$remat_group,
                        TTT_BoolParam:$state_passing, "int64_t":$seed,
                        "int64_t":$checkpoint_every, "int64_t":$milestone_every);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def TTT_InitKind : I32EnumAttr<"InitKind", "how a parameter is initialised", [
    I32EnumAttrCase<"zeros", 0>, I32EnumAttrCase<"ones", 1>,
    I32EnumAttrCase<"normal", 2>, I32EnumAttrCase<"truncated_normal", 3>]> {
  let cppNamespace = "::ttt";
}

def TTT_HfLayout : I32EnumAttr<"HfLayout",
    "how the Hugging Face tensor is laid out relative to ours", [
    I32EnumAttrCase<"same", 0>, I32EnumAttrCase<"transpose", 1>,
    I32EnumAttrCase<"conv", 2>, I32EnumAttrCase<"unsqueeze1", 3>]> {
  let cppNamespace = "::ttt";
}

#endif // TTT_ATTRS_TD
