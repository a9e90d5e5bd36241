// The plan file container: a fixed 32-byte header in front of the flatbuffer payload.
//
//   offset  size  field
//   0       4     magic "TTTP"
//   4       2     format major (little endian); must equal the runtime's
//   6       2     format minor; must be <= the runtime's
//   8       8     payload size in bytes
//   16      8     FNV-1a 64 checksum of the payload
//   24      8     reserved, zero
//
// Shared by the compiler (writer) and the runtime (reader); knows nothing of MLIR.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::plan {
struct Plan;  // flatbuffers table from plan_generated.h

constexpr char kMagic[4] = {'T', 'T', 'T', 'P'};
constexpr uint16_t kFormatMajor = 1;
constexpr uint16_t kFormatMinor = 0;
constexpr size_t kHeaderSize = 32;

uint64_t fnv1a64(const uint8_t *data, size_t size);

// Header + payload as they go to disk.
std::vector<uint8_t> encodePlanFile(const uint8_t *payload, size_t size);

// Writes atomically: a temp file next to `path`, fsync, rename. Returns "" or an error.
std::string writePlanFile(const std::string &path, const uint8_t *payload, size_t size);

// A loaded, fully checked plan. `plan()` is valid while this object lives.
class PlanFile {
public:
  // Reads and checks header, size, checksum and the flatbuffer verifier, in that order. On failure
  // returns false and sets `error` to one line naming the file, the problem and what to do.
  bool load(const std::string &path, std::string &error);
  // Same checks on bytes already in memory; `name` is used in messages.
  bool loadBytes(std::vector<uint8_t> bytes, const std::string &name, std::string &error);

  const Plan *plan() const;
  uint16_t major() const { return major_; }
  uint16_t minor() const { return minor_; }
  uint64_t checksum() const { return checksum_; }
  size_t fileSize() const { return bytes_.size(); }

private:
  std::vector<uint8_t> bytes_;
  uint16_t major_ = 0, minor_ = 0;
  uint64_t checksum_ = 0;
};
} // namespace ttt::plan
