// The plan's names of the elementwise and reduction kinds (Kernels.h): one table each, read by
// both executors, the fused-step parser and kernel-check.
#include "runtime/backend/cpu/Kernels.h"

namespace ttt::cpu {
namespace {
template <typename E>
bool find(const std::vector<std::pair<std::string, E>> &table, const std::string &name, E &op) {
  for (const auto &[n, e] : table)
    if (n == name) {
      op = e;
      return true;
    }
  return false;
}
} // namespace

const std::vector<std::pair<std::string, BinaryOp>> &binaryOpNames() {
  static const std::vector<std::pair<std::string, BinaryOp>> names = {
      {"add", BinaryOp::add}, {"sub", BinaryOp::sub}, {"mul", BinaryOp::mul},
      {"div", BinaryOp::div}, {"max", BinaryOp::max}};
  return names;
}
const std::vector<std::pair<std::string, UnaryOp>> &unaryOpNames() {
  static const std::vector<std::pair<std::string, UnaryOp>> names = {
      {"neg", UnaryOp::neg},         {"exp", UnaryOp::exp},
      {"log", UnaryOp::log},         {"sqrt", UnaryOp::sqrt},
      {"rsqrt", UnaryOp::rsqrt},     {"reciprocal", UnaryOp::reciprocal},
      {"sigmoid", UnaryOp::sigmoid}, {"silu", UnaryOp::silu},
      {"gelu_tanh", UnaryOp::gelu_tanh}, {"relu", UnaryOp::relu},
      {"scale", UnaryOp::scale},     {"add_scalar", UnaryOp::add_scalar}};
  return names;
}
const std::vector<std::pair<std::string, ReduceOp>> &reduceOpNames() {
  static const std::vector<std::pair<std::string, ReduceOp>> names = {
      {"sum", ReduceOp::sum}, {"mean", ReduceOp::mean}, {"max", ReduceOp::max}};
  return names;
}
bool binaryOpByName(const std::string &name, BinaryOp &op) {
  return find(binaryOpNames(), name, op);
}
bool unaryOpByName(const std::string &name, UnaryOp &op) { return find(unaryOpNames(), name, op); }
bool reduceOpByName(const std::string &name, ReduceOp &op) {
  return find(reduceOpNames(), name, op);
}
} // namespace ttt::cpu
