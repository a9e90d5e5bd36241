#include "runtime/tensorboard/TensorBoard.h"

#include "event.pb.h"

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

std::string serialize(const Event &event) {
  std::string bytes;
  event.SerializeToString(&bytes);
  return bytes;
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
  Event version;
  version.set_wall_time(wallTime);
  version.set_file_version("brain.Event:2");
  appendRecord(writer->pending_, serialize(version));
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
  Event event;
  event.set_wall_time(wallTime);
  event.set_step(step);
  Summary::Value *entry = event.mutable_summary()->add_value();
  entry->set_tag(tag);
  entry->set_simple_value(static_cast<float>(value));
  appendRecord(pending_, serialize(event));
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
