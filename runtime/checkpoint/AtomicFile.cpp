#include "runtime/checkpoint/AtomicFile.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace ttt::checkpoint {
std::string writeFileAtomically(const std::string &path, const uint8_t *data, size_t size) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](int err) {
    ::unlink(tmp.c_str());
    return "cannot write '" + path + "': " + std::strerror(err);
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return "cannot write '" + path + "': " + std::strerror(errno);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      ::close(fd);
      return fail(err);
    }
    done += size_t(n);
  }
  // Close even when fsync fails, so the descriptor never leaks.
  int syncErr = ::fsync(fd) == 0 ? 0 : errno;
  int closeErr = ::close(fd) == 0 ? 0 : errno;
  if (syncErr || closeErr)
    return fail(syncErr ? syncErr : closeErr);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(errno);
  // Make the rename itself durable: fsync the directory that holds the new entry.
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}
} // namespace ttt::checkpoint
