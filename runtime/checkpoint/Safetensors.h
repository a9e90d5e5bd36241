// Reading and writing safetensors files (the Hugging Face tensor container) to the published
// format: 8-byte little-endian header size, a JSON header {name: {dtype, shape, data_offsets},
// optional
// "__metadata__": {string: string}} padded with spaces to a multiple of 8, then the data buffer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ttt::checkpoint {
enum class DType { F64, F32, BF16, I32, I64 };

const char *dtypeName(DType d);
size_t dtypeSize(DType d);
// "F32" -> F32; false for anything else (other safetensors dtypes included).
bool parseDType(const std::string &name, DType &out);

// bfloat16 <-> float: round to nearest even; NaN stays NaN (quiet).
uint16_t floatToBf16(float f);
float bf16ToFloat(uint16_t b);

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data; // row-major, little-endian

  int64_t numel() const;
  // Reads element i as a double (any dtype); no bounds check.
  double at(int64_t i) const;
};

// Convenience constructors: values converted to `dtype` (bf16 by rounding to nearest even).
Tensor makeTensor(const std::string &name, DType dtype, std::vector<int64_t> shape,
                  const std::vector<double> &values);
Tensor makeTensor(const std::string &name, DType dtype, std::vector<int64_t> shape,
                  const std::vector<float> &values);
Tensor makeIntTensor(const std::string &name, DType dtype, std::vector<int64_t> shape,
                     const std::vector<int64_t> &values);

struct SafetensorsFile {
  std::vector<Tensor> tensors;
  std::map<std::string, std::string> metadata;

  const Tensor *find(const std::string &name) const;
};

// The file's bytes. Tensors are laid out by element size (largest first), then by name, so every
// tensor starts aligned to its element size (the order the reference implementation uses).
// Returns "" or an error (duplicate or empty name, "__metadata__" as a tensor name, byte count
// that does not match dtype and shape).
std::string encodeSafetensors(const SafetensorsFile &file, std::vector<uint8_t> &out);
// Writes atomically: temp file next to `path`, fsync, rename, fsync of the directory.
std::string writeSafetensors(const std::string &path, const SafetensorsFile &file);

// Parses and validates everything: header size, JSON, entry fields, dtypes, shapes against byte
// counts, offsets in range, no overlap, no gap, no trailing bytes. Each problem is a one-line
// error naming `name` (the file) and the tensor. Tensors come back in data-offset order.
std::string decodeSafetensors(const uint8_t *bytes, size_t size, const std::string &name,
                              SafetensorsFile &out);
std::string readSafetensors(const std::string &path, SafetensorsFile &out);

// Largest header accepted on read (the reference implementation's limit).
constexpr uint64_t kMaxHeaderSize = 100u << 20;
} // namespace ttt::checkpoint
