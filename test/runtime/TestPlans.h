// Small plans built with the flatbuffers builder, shared by the runtime tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::test {
// The flatbuffer payload of a two-layer toy model with every table filled in.
std::vector<uint8_t> toyPlanPayload();
// A payload with only a parameter table (provenance, config, recipe, compiled absent).
std::vector<uint8_t> bareParameterPayload();
// Header + payload, as tttc writes it.
std::vector<uint8_t> toyPlanFile();

// A fresh empty directory under the test temp dir; removed by removeTree.
std::string makeTempDir();
void removeTree(const std::string &dir);
void writeBytes(const std::string &path, const std::vector<uint8_t> &bytes);
std::vector<uint8_t> readBytes(const std::string &path);
} // namespace ttt::test
