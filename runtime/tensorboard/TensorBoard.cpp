#include "runtime/tensorboard/TensorBoard.h"


#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <limits.h>
#include <sys/time.h>
#include <unistd.h>

namespace ttt::tensorboard {
namespace {

// Byte-at-a-time table for the reflected Castagnoli polynomial: one step per input byte is ample
// for a few records per training step.
std::array<uint32_t, 256> makeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    table[i] = crc;
  }
  return table;
}

double nowSeconds() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

std::string hostName() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0')
    return "localhost";
  // A '/' would make the name a path; hostnames never hold one, but be safe.
  std::string host(name);
  for (char &c : host)
    if (c == '/')
      c = '_';
  return host;
}

// The protobuf wire format of event.proto, written by hand: the runtime links Debian's
// sentencepiece, which carries its own copy of protobuf-lite, and two protobuf runtimes in one
// process collide (a crash in MessageLite). Field numbers and types are those of event.proto.
void varint(std::string &out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(uint8_t(v));
}
void key(std::string &out, int field, int wireType) { varint(out, uint64_t(field) << 3 | wireType); }
void fixed(std::string &out, const void *p, size_t n) { out.append(static_cast<const char *>(p), n); }
void bytesField(std::string &out, int field, const std::string &data) {
  key(out, field, 2);
  varint(out, data.size());
  out += data;
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
std::string eventBytes(double wallTime, int64_t step, const std::string *fileVersion,
                       const std::string *summary) {
  std::string out;
  key(out, 1, 1);
  fixed(out, &wallTime, 8); // little-endian hosts only (x86-64, aarch64)
  if (step != 0) {
    key(out, 2, 0);
    varint(out, uint64_t(step));
  }
  if (fileVersion)
    bytesField(out, 3, *fileVersion);
  if (summary)
    bytesField(out, 5, *summary);
  return out;
}

// Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
std::string scalarSummary(const std::string &tag, float value) {
  std::string v;
  bytesField(v, 1, tag);
  key(v, 2, 5);
  fixed(v, &value, 4);
  std::string summary;
  bytesField(summary, 1, v);
  return summary;
}

} // namespace

uint32_t crc32c(const uint8_t *data, size_t size) {
  static const std::array<uint32_t, 256> table = makeCrc32cTable();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i)
    crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t maskedCrc32c(const uint8_t *data, size_t size) {
  uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void appendRecord(std::string &out, const std::string &payload) {
  auto appendLe = [&out](uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i)
      out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
  };
  uint8_t length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<uint8_t>((static_cast<uint64_t>(payload.size()) >> (8 * i)) & 0xFFu);
  out.append(reinterpret_cast<const char *>(length), sizeof(length));
  appendLe(maskedCrc32c(length, sizeof(length)), 4);
  out += payload;
  appendLe(maskedCrc32c(reinterpret_cast<const uint8_t *>(payload.data()), payload.size()), 4);
}

std::unique_ptr<EventWriter> EventWriter::open(const std::string &logDir, std::string &error) {
  error.clear();
  if (logDir.empty()) {
    error = "tensorboard: empty log directory";
    return nullptr;
  }
  std::error_code ec;
  std::filesystem::create_directories(logDir, ec);
  if (ec) {
    error = "tensorboard: cannot create log directory " + logDir + ": " + ec.message();
    return nullptr;
  }
  double wallTime = nowSeconds();
  std::string base = logDir + "/events.out.tfevents." +
                     std::to_string(static_cast<long long>(wallTime)) + "." + hostName();
  std::string path = base;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    path = base + "." + std::to_string(static_cast<long long>(getpid()));
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    error = "tensorboard: cannot create " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<EventWriter> writer(new EventWriter(fd, path));
  const std::string fileVersion = "brain.Event:2";
  appendRecord(writer->pending_, eventBytes(wallTime, 0, &fileVersion, nullptr));
  // TensorBoard needs the version record to recognize the file: write it now, not at step 1.
  error = writer->flush();
  if (!error.empty())
    return nullptr;
  return writer;
}

EventWriter::~EventWriter() {
  (void)flush();
  ::close(fd_);
}

void EventWriter::scalar(const std::string &tag, int64_t step, double value, double wallTime) {
  const std::string summary = scalarSummary(tag, static_cast<float>(value));
  appendRecord(pending_, eventBytes(wallTime, step, nullptr, &summary));
}

std::string EventWriter::flush() {
  // write(2) alone is enough for a killed process (the kernel holds the bytes); no fsync per
  // step, which would cost a disk round trip on every step for a log that is not precious.
  size_t done = 0;
  while (done < pending_.size()) {
    ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      std::string reason = n < 0 ? std::strerror(errno) : "wrote 0 bytes";
      pending_.erase(0, done);
      return "tensorboard: cannot write " + path_ + ": " + reason;
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
  return "";
}

} // namespace ttt::tensorboard
