#include "ttt/Dialect/TTT/TTTOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace ttt;

namespace {
std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(
      shape, os, [&](int64_t d) { d == ShapedType::kDynamic ? os << "?" : os << d; }, "x");
  return s;
}

// Checks `value` is a tensor of exactly `shape`; the message names the operand, what it is and
// the shape it must have.
LogicalResult expectShape(Operation *op, Value value, ArrayRef<int64_t> shape, StringRef role,
                          StringRef meaning) {
  auto type = cast<ShapedType>(value.getType());
  if (type.getShape() == shape)
    return success();
  return op->emitOpError() << role << " has shape " << shapeString(type.getShape())
                           << ", expected " << shapeString(shape) << " (" << meaning << ")";
}

// Activations are [batch, seq, features] with a static feature size.
FailureOr<int64_t> featureSize(Operation *op, Value value, StringRef role) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() != 3 || type.isDynamicDim(2))
    return op->emitOpError() << role << " must be a [batch, seq, features] tensor with a static "
                             << "feature size, got " << value.getType();
  return type.getDimSize(2);
}

LogicalResult expectTokens(Operation *op, Value value, StringRef role) {
  if (cast<RankedTensorType>(value.getType()).getRank() == 2)
    return success();
  return op->emitOpError() << role << " must be a [batch, seq] tensor of token ids, got "
                           << value.getType();
}

std::optional<int64_t> leadingDimsMatch(Value a, Value b) {
  auto ta = cast<RankedTensorType>(a.getType()), tb = cast<RankedTensorType>(b.getType());
  for (int i = 0; i < 2; ++i)
    if (ta.getDimSize(i) != tb.getDimSize(i))
      return i;
  return std::nullopt;
}
} // namespace

//===----------------------------------------------------------------------===//
// model / repeat
//===----------------------------------------------------------------------===//

void ModelOp::getAsmBlockArgumentNames(Region &region, OpAsmSetValueNameFn setName) {
  if (region.empty() || region.front().getNumArguments() != 2)
    return;
  setName(region.front().getArgument(0), "tokens");
  setName(region.front().getArgument(1), "targets");
}

void RepeatOp::getAsmBlockArgumentNames(Region &region, OpAsmSetValueNameFn setName) {
  if (!region.empty() && region.front().getNumArguments() == 1)
    setName(region.front().getArgument(0), "h");
}

LogicalResult RepeatOp::verifyRegions() {
  if (getCount() <= 0)
    return emitOpError() << "count must be positive, got " << getCount();
  Block &body = getBody().front();
  if (body.getNumArguments() != 1 || body.getArgument(0).getType() != getInit().getType())
    return emitOpError() << "body must take exactly one argument of the carried type "
                         << getInit().getType();
  auto yield = dyn_cast<YieldOp>(body.getTerminator());
  if (!yield)
    return emitOpError() << "body must end with ttt.yield";
  if (yield.getValue().getType() != getType())
    return emitOpError() << "ttt.yield gives " << yield.getValue().getType()
                         << " but the repeat carries " << getType();
  return success();
}

//===----------------------------------------------------------------------===//
// param
//===----------------------------------------------------------------------===//

void ParamOp::getAsmResultNames(OpAsmSetValueNameFn setName) { setName(getResult(), getName()); }

// "name" init[(std)] [no_decay] hf("hf name"[, layout]) attr-dict : type
ParseResult ParamOp::parse(OpAsmParser &parser, OperationState &result) {
  std::string name, hfName;
  StringRef initWord;
  SMLoc initLoc = parser.getCurrentLocation();
  if (parser.parseString(&name) || parser.parseKeyword(&initWord))
    return failure();
  std::optional<InitKind> init = symbolizeInitKind(initWord);
  if (!init)
    return parser.emitError(initLoc, "unknown initializer '")
           << initWord << "'; use zeros, ones, normal(std) or truncated_normal(std)";
  Builder &b = parser.getBuilder();
  result.addAttribute(getNameAttrName(result.name), b.getStringAttr(name));
  result.addAttribute(getInitAttrName(result.name), InitKindAttr::get(b.getContext(), *init));
  if (succeeded(parser.parseOptionalLParen())) {
    double std = 0;
    if (parser.parseFloat(std) || parser.parseRParen())
      return failure();
    result.addAttribute(getStdAttrName(result.name), b.getF64FloatAttr(std));
  }
  if (succeeded(parser.parseOptionalKeyword("no_decay")))
    result.addAttribute(getNoDecayAttrName(result.name), b.getUnitAttr());
  if (parser.parseKeyword("hf") || parser.parseLParen() || parser.parseString(&hfName))
    return failure();
  result.addAttribute(getHfNameAttrName(result.name), b.getStringAttr(hfName));
  if (succeeded(parser.parseOptionalComma())) {
    StringRef layoutWord;
    SMLoc layoutLoc = parser.getCurrentLocation();
    if (parser.parseKeyword(&layoutWord))
      return failure();
    std::optional<HfLayout> layout = symbolizeHfLayout(layoutWord);
    if (!layout)
      return parser.emitError(layoutLoc, "unknown Hugging Face layout '")
             << layoutWord << "'; use same, transpose, conv or unsqueeze1";
    result.addAttribute(getHfLayoutAttrName(result.name),
                        HfLayoutAttr::get(b.getContext(), *layout));
  }
  Type type;
  if (parser.parseRParen() || parser.parseOptionalAttrDict(result.attributes) ||
      parser.parseColonType(type))
    return failure();
  result.addTypes(type);
  return success();
}

void ParamOp::print(OpAsmPrinter &p) {
  p << " ";
  p.printString(getName());
  p << " " << stringifyInitKind(getInit());
  if (getStd())
    p << "(" << detail::formatF64(getStd()->convertToDouble()) << ")";
  if (getNoDecay())
    p << " no_decay";
  p << " hf(";
  p.printString(getHfName());
  if (getLayout() != HfLayout::same)
    p << ", " << stringifyHfLayout(getLayout());
  p << ")";
  p.printOptionalAttrDict((*this)->getAttrs(), {getNameAttrName(), getInitAttrName(),
                                                getStdAttrName(), getNoDecayAttrName(),
                                                getHfNameAttrName(), getHfLayoutAttrName()});
  p << " : " << getType();
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError() << "needs a non-empty name";
  bool random = getInit() == InitKind::normal || getInit() == InitKind::truncated_normal;
  if (random && !getStd())
    return emitOpError() << "initializer " << stringifyInitKind(getInit())
                         << " needs a standard deviation, e.g. normal(0.02)";
  if (!random && getStd())
    return emitOpError() << "initializer " << stringifyInitKind(getInit())
                         << " takes no standard deviation; remove it";
  if (random && !(getStd()->convertToDouble() > 0))
    return emitOpError() << "standard deviation must be positive, got "
                         << detail::formatF64(getStd()->convertToDouble());
  if (getHfName().empty())
    return emitOpError() << "needs a Hugging Face name: hf(\"model....\")";
  bool inRepeat = isa<RepeatOp>((*this)->getParentOp());
  bool hasPlaceholder = getHfName().contains(kLayerPlaceholder);
  if (inRepeat && !hasPlaceholder)
    return emitOpError() << "is declared inside ttt.repeat, so its Hugging Face name must contain "
                         << kLayerPlaceholder << " for the layer index";
  if (!inRepeat && hasPlaceholder)
    return emitOpError() << "Hugging Face name uses " << kLayerPlaceholder
                         << " outside ttt.repeat; there is no layer index here";
  int64_t rank = getType().getRank();
  switch (getLayout()) {
  case HfLayout::transpose:
    if (rank != 2)
      return emitOpError() << "hf layout 'transpose' needs a 2-d parameter, got rank " << rank;
    break;
  case HfLayout::conv:
    if (rank != 2)
      return emitOpError() << "hf layout 'conv' needs a [width, channels] parameter, got rank "
                           << rank;
    break;
  case HfLayout::unsqueeze1:
    if (rank != 1 && rank != 2)
      return emitOpError() << "hf layout 'unsqueeze1' needs a 1-d or 2-d parameter, got rank "
                           << rank;
    break;
  case HfLayout::same:
    break;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// layer ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  if (failed(expectTokens(*this, getTokens(), "tokens")))
    return failure();
  auto table = getTable().getType();
  if (table.getRank() != 2)
    return emitOpError() << "table must be [vocab, hidden], got " << table;
  FailureOr<int64_t> d = featureSize(*this, getResult(), "result");
  if (failed(d))
    return failure();
  if (*d != table.getDimSize(1))
    return emitOpError() << "result feature size " << *d << " differs from the table's hidden "
                         << "size " << table.getDimSize(1);
  if (auto dim = leadingDimsMatch(getTokens(), getResult()))
    return emitOpError() << "result dimension " << *dim << " differs from the tokens'";
  return success();
}

LogicalResult RmsNormOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, getInput(), "input");
  if (failed(d) ||
      failed(expectShape(*this, getWeight(), {*d}, "weight", "one scale per feature")))
    return failure();
  if (!(getEps().convertToDouble() > 0))
    return emitOpError() << "eps must be positive";
  return success();
}

LogicalResult CausalConvOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, getInput(), "input");
  if (failed(d))
    return failure();
  auto kernel = getKernel().getType();
  if (kernel.getRank() != 2 || kernel.getDimSize(1) != *d || kernel.getDimSize(0) < 1)
    return emitOpError() << "kernel has shape " << shapeString(kernel.getShape())
                         << ", expected [width, " << *d << "] (taps x channels, depthwise)";
  return expectShape(*this, getBias(), {*d}, "bias", "one per channel");
}

ArrayRef<std::pair<StringRef, unsigned>> TTTLinearOp::getOperandGroups() {
  static const std::pair<StringRef, unsigned> groups[] = {
      {"q", 1},       {"v", 1},        {"gate", 1},     {"out", 1},
      {"conv_q", 2},  {"conv_k", 2},   {"lr_gate", 2},  {"token_idx", 1},
      {"ttt_norm", 2}, {"init_state", 2}, {"post_norm", 2}};
  return groups;
}

namespace {
// The parameter shapes of ttt.ttt_linear, in operand order after the input, implied by the
// hidden size and the attributes.
struct TTTLinearShapes {
  SmallVector<SmallVector<int64_t>> shapes;
  SmallVector<std::string> meanings;
};
TTTLinearShapes tttLinearShapes(int64_t d, int64_t heads, int64_t miniBatch, int64_t width) {
  int64_t f = d / heads;
  TTTLinearShapes s;
  auto add = [&](SmallVector<int64_t> shape, std::string meaning) {
    s.shapes.push_back(shape);
    s.meanings.push_back(meaning);
  };
  for (int i = 0; i < 4; ++i)
    add({d, d}, "hidden x hidden");
  for (int i = 0; i < 2; ++i) {
    add({width, d}, "conv_width x hidden");
    add({d}, "hidden");
  }
  add({heads, d}, "heads x hidden");
  add({heads}, "heads");
  add({miniBatch}, "mini_batch");
  add({heads, f}, "heads x head_dim");
  add({heads, f}, "heads x head_dim");
  add({heads, f, f}, "heads x head_dim x head_dim");
  add({heads, f}, "heads x head_dim");
  add({d}, "hidden");
  add({d}, "hidden");
  return s;
}

StringRef tttLinearOperandName(unsigned index) {
  static const char *names[] = {"q", "v", "gate", "out", "conv_q kernel", "conv_q bias",
                                "conv_k kernel", "conv_k bias", "lr_gate weight", "lr_gate bias",
                                "token_idx", "ttt_norm scale", "ttt_norm bias", "init_state W1",
                                "init_state b1", "post_norm scale", "post_norm bias"};
  return names[index];
}
} // namespace

LogicalResult TTTLinearOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, getInput(), "input");
  if (failed(d))
    return failure();
  if (getHeads() <= 0 || getMiniBatch() <= 0 || getConvWidth() <= 0)
    return emitOpError() << "heads, mini_batch and conv_width must be positive";
  if (*d % getHeads() != 0)
    return emitOpError() << "hidden size " << *d << " is not divisible by heads " << getHeads();
  if (!(getBaseLr().convertToDouble() > 0) || !(getRopeTheta().convertToDouble() > 0) ||
      !(getEps().convertToDouble() > 0))
    return emitOpError() << "base_lr, rope_theta and eps must be positive";
  TTTLinearShapes expected = tttLinearShapes(*d, getHeads(), getMiniBatch(), getConvWidth());
  for (auto [i, value] : llvm::enumerate(getOperands().drop_front()))
    if (failed(expectShape(*this, value, expected.shapes[i], tttLinearOperandName(i),
                           expected.meanings[i])))
      return failure();
  return success();
}

ParseResult TTTLinearOp::parse(OpAsmParser &parser, OperationState &result) {
  OpAsmParser::UnresolvedOperand input;
  SmallVector<OpAsmParser::UnresolvedOperand> params;
  SmallVector<SMLoc> paramLocs;
  if (parser.parseOperand(input))
    return failure();
  for (auto [keyword, count] : getOperandGroups()) {
    if (parser.parseKeyword(keyword) || parser.parseLParen())
      return failure();
    for (unsigned i = 0; i < count; ++i) {
      paramLocs.push_back(parser.getCurrentLocation());
      if ((i > 0 && parser.parseComma()) || parser.parseOperand(params.emplace_back()))
        return failure();
    }
    if (parser.parseRParen())
      return failure();
  }
  Type type;
  SMLoc typeLoc;
  if (parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parser.getCurrentLocation(&typeLoc) || parser.parseType(type))
    return failure();
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || tensor.getRank() != 3 || tensor.isDynamicDim(2) ||
      !tensor.getElementType().isF32())
    return parser.emitError(typeLoc, "expected the input type tensor<?x?xDxf32>");
  auto intAttr = [&](StringRef name) -> int64_t {
    auto attr = dyn_cast_or_null<IntegerAttr>(result.attributes.get(name));
    return attr ? attr.getInt() : 0;
  };
  int64_t d = tensor.getDimSize(2), heads = intAttr("heads");
  int64_t miniBatch = intAttr("mini_batch"), width = intAttr("conv_width");
  if (heads <= 0 || miniBatch <= 0 || width <= 0 || d % heads != 0)
    return parser.emitError(typeLoc)
           << "ttt.ttt_linear needs integer attributes heads (dividing the hidden size " << d
           << "), mini_batch and conv_width, all positive";
  if (parser.resolveOperand(input, type, result.operands))
    return failure();
  TTTLinearShapes expected = tttLinearShapes(d, heads, miniBatch, width);
  Type f32 = parser.getBuilder().getF32Type();
  for (auto [i, operand] : llvm::enumerate(params)) {
    Type want = RankedTensorType::get(expected.shapes[i], f32);
    if (parser.resolveOperand(operand, want, result.operands))
      return parser.emitError(paramLocs[i])
             << tttLinearOperandName(i) << " must be " << want << " ("
             << expected.meanings[i] << ") for this input type and these attributes";
  }
  result.addTypes(type);
  return success();
}

void TTTLinearOp::print(OpAsmPrinter &p) {
  p << " " << getInput();
  unsigned next = 1;
  for (auto [keyword, count] : getOperandGroups()) {
    p << " " << keyword << "(";
    for (unsigned i = 0; i < count; ++i)
      p << (i ? ", " : "") << getOperand(next++);
    p << ")";
  }
  // Attributes with plain numbers ("base_lr = 1.0"), eps only when not the default.
  p << " {heads = " << getHeads() << ", mini_batch = " << getMiniBatch()
    << ", conv_width = " << getConvWidth()
    << ", base_lr = " << detail::formatF64(getBaseLr().convertToDouble())
    << ", rope_theta = " << detail::formatF64(getRopeTheta().convertToDouble());
  if (getEps().convertToDouble() != 1e-6)
    p << ", eps = " << detail::formatF64(getEps().convertToDouble());
  p << "} : " << getType();
}

LogicalResult SwiGLUMlpOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, getInput(), "input");
  if (failed(d))
    return failure();
  auto gate = getWGate().getType();
  if (gate.getRank() != 2 || gate.getDimSize(0) != *d)
    return emitOpError() << "gate weight has shape " << shapeString(gate.getShape())
                         << ", expected [" << *d << ", intermediate]";
  int64_t inter = gate.getDimSize(1);
  return expectShape(*this, getWDown(), {inter, *d}, "down weight", "intermediate x hidden");
}

LogicalResult LmHeadOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, getInput(), "input");
  if (failed(d))
    return failure();
  auto table = getTable().getType();
  if (table.getRank() != 2 || table.getDimSize(1) != *d)
    return emitOpError() << "table has shape " << shapeString(table.getShape()) << ", expected [vocab, "
                         << *d << "]";
  FailureOr<int64_t> v = featureSize(*this, getResult(), "result");
  if (failed(v))
    return failure();
  if (*v != table.getDimSize(0))
    return emitOpError() << "result has " << *v << " logits per token, the table has vocab "
                         << table.getDimSize(0);
  if (auto dim = leadingDimsMatch(getInput(), getResult()))
    return emitOpError() << "result dimension " << *dim << " differs from the input's";
  return success();
}

LogicalResult CrossEntropyOp::verify() {
  if (failed(featureSize(*this, getLogits(), "logits")) ||
      failed(expectTokens(*this, getTargets(), "targets")))
    return failure();
  if (auto dim = leadingDimsMatch(getLogits(), getTargets()))
    return emitOpError() << "targets dimension " << *dim << " differs from the logits'";
  return success();
}

#define GET_OP_CLASSES
#include "ttt/Dialect/TTT/TTTOps.cpp.inc"
