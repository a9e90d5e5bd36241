#include "runtime/plan/PlanFile.h"

#include "ttt/schema/plan_generated.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <sys/stat.h>
#include <unistd.h>

namespace ttt::plan {
namespace {
void putLE(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i)
    p[i] = uint8_t(v >> (8 * i));
}
uint64_t getLE(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v |= uint64_t(p[i]) << (8 * i);
  return v;
}
std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}
std::string printable(const uint8_t *p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s += (p[i] >= 32 && p[i] < 127) ? char(p[i]) : '.';
  return s;
}
} // namespace

uint64_t fnv1a64(const uint8_t *data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

std::vector<uint8_t> encodePlanFile(const uint8_t *payload, size_t size) {
  std::vector<uint8_t> out(kHeaderSize + size, 0);
  std::memcpy(out.data(), kMagic, 4);
  putLE(&out[4], kFormatMajor, 2);
  putLE(&out[6], kFormatMinor, 2);
  putLE(&out[8], size, 8);
  putLE(&out[16], fnv1a64(payload, size), 8);
  if (size)
    std::memcpy(out.data() + kHeaderSize, payload, size);
  return out;
}

std::string writePlanFile(const std::string &path, const uint8_t *payload, size_t size) {
  std::vector<uint8_t> bytes = encodePlanFile(payload, size);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return "cannot write '" + path + "': " + std::strerror(errno);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      std::string err = "cannot write '" + path + "': " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    done += size_t(n);
  }
  // Close even when fsync fails, so the descriptor never leaks.
  bool synced = ::fsync(fd) == 0;
  int syncErrno = errno;
  bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    std::string err = "cannot write '" + path + "': " + std::strerror(synced ? errno : syncErrno);
    ::unlink(tmp.c_str());
    return err;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = "cannot write '" + path + "': " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return err;
  }
  // Make the rename itself durable: fsync the directory that holds the new entry.
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}

bool PlanFile::load(const std::string &path, std::string &error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = path + ": cannot open plan: " + std::strerror(errno) + "; compile one with `tttc MODEL -o " +
            path + "`";
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    error = path + ": is a directory, not a plan file; pass the train.bin that tttc wrote";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open plan: " + std::strerror(errno) + "; check its permissions";
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    error = path + ": cannot read plan: " + std::strerror(errno) + "; copy or compile it again";
    return false;
  }
  return loadBytes(std::move(bytes), path, error);
}

bool PlanFile::loadBytes(std::vector<uint8_t> bytes, const std::string &name, std::string &error) {
  bytes_.clear();
  if (bytes.empty()) {
    error = name + ": not a ttt plan (the file is empty); compile one with `tttc MODEL -o " + name + "`";
    return false;
  }
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    error = name + ": not a ttt plan (starts with '" +
            printable(bytes.data(), std::min<size_t>(4, bytes.size())) +
            "', expected 'TTTP'); compile one with `tttc MODEL -o " + name + "`";
    return false;
  }
  if (bytes.size() < kHeaderSize) {
    error = name + ": truncated plan: " + std::to_string(bytes.size()) + " bytes, shorter than the " +
            std::to_string(kHeaderSize) + "-byte header; copy or compile it again";
    return false;
  }
  major_ = uint16_t(getLE(&bytes[4], 2));
  minor_ = uint16_t(getLE(&bytes[6], 2));
  uint64_t size = getLE(&bytes[8], 8);
  checksum_ = getLE(&bytes[16], 8);
  std::string ours = std::to_string(kFormatMajor) + "." + std::to_string(kFormatMinor);
  std::string theirs = std::to_string(major_) + "." + std::to_string(minor_);
  if (major_ > kFormatMajor || (major_ == kFormatMajor && minor_ > kFormatMinor)) {
    error = name + ": plan format " + theirs + " is newer than this runtime (" + ours +
            "); use a newer ttt-run or rebuild the plan with tttc " + std::to_string(kFormatMajor) + ".x";
    return false;
  }
  if (major_ < kFormatMajor) {
    error = name + ": plan format " + theirs + " is older than this runtime (" + ours +
            "); rebuild the plan with tttc " + std::to_string(kFormatMajor) + ".x";
    return false;
  }
  if (bytes.size() - kHeaderSize > size) {
    error = name + ": not a valid plan: " + std::to_string(bytes.size() - kHeaderSize - size) +
            " bytes follow the " + std::to_string(size) + "-byte payload the header announces; copy or "
            "compile it again";
    return false;
  }
  if (bytes.size() - kHeaderSize < size) {
    error = name + ": truncated plan: header says " + std::to_string(size) + " payload bytes, file has " +
            std::to_string(bytes.size() - kHeaderSize) + "; copy or compile it again";
    return false;
  }
  const uint8_t *payload = bytes.data() + kHeaderSize;
  uint64_t actual = fnv1a64(payload, size);
  if (actual != checksum_) {
    error = name + ": corrupt plan: payload checksum " + hex64(actual) + " does not match the header's " +
            hex64(checksum_) + "; copy or compile it again";
    return false;
  }
  flatbuffers::Verifier verifier(payload, size);
  if (!VerifyPlanBuffer(verifier)) {
    error = name + ": invalid plan: the payload fails the schema verifier (written by a broken tttc?); "
                   "compile it again";
    return false;
  }
  bytes_ = std::move(bytes);
  return true;
}

const Plan *PlanFile::plan() const {
  return bytes_.empty() ? nullptr : GetPlan(bytes_.data() + kHeaderSize);
}
} // namespace ttt::plan
