// RUN: ttt-opt %s -split-input-file -verify-diagnostics
// Malformed input gets a parser diagnostic at the offending token.

// expected-error @+2 {{expected integer value}}
// expected-error @+1 {{failed to parse TTT_ConfigAttr parameter 'vocab' which is to be a `int64_t`}}
ttt.model @bad config = <vocab = > recipe = <> {
}

// -----

ttt.model @bad2
  // expected-error @+2 {{expected 'true' or 'false'}}
  // expected-error @+1 {{failed to parse TTT_ConfigAttr parameter 'tie_embeddings' which is to be a `bool`}}
  config = <vocab = 32, hidden = 8, intermediate = 16, layers = 1, heads = 2, conv_width = 4, rope_theta = 10000.0, rms_eps = 1.0e-06, init_range = 0.02, tie_embeddings = yes, share_qk = true, use_gate = true, pre_conv = true>
  recipe = <> {
}

// -----

// expected-error @+1 {{custom op 'ttt.bogus' is unknown}}
ttt.bogus
