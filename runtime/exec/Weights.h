// The model's parameters on the host, in plan order and our layout: drawn by the plan's init
// program, or moved through Hugging Face safetensors (spec 5.2).
#pragma once

#include "ttt/schema/plan_generated.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::exec {
template <typename T> using Weights = std::vector<std::vector<T>>; // one vector per parameter

/// Runs the plan's init program with `seed`. "" or one line.
template <typename T> std::string initWeights(const plan::Plan &plan, uint64_t seed, Weights<T> &w);
/// Reads HF safetensors (every parameter, right shapes). "" or one line naming the file.
template <typename T>
std::string loadWeights(const plan::Plan &plan, const std::string &path, Weights<T> &w);
/// Writes HF safetensors (tied lm_head left out) in T's precision, atomically.
template <typename T>
std::string saveWeights(const plan::Plan &plan, const Weights<T> &w, const std::string &path);
} // namespace ttt::exec
