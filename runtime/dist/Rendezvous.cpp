// The communicator of a torchrun-style launch (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): rank
// 0 listens on the rendezvous port (rendezvousPort: MASTER_PORT, or the next one under torchrun,
// whose agent holds MASTER_PORT itself), every other rank connects to it. It carries only
// what sets the job up and keeps it in step — the NCCL id, the loss, stop flags, barriers — as
// small sums through rank 0 in rank order; the gradients go over NCCL (the CUDA backend), never
// through here. A peer that closes its connection (it died) or stays silent past the timeout
// stops the job with a message naming it.
#include "runtime/dist/Comm.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace ttt::dist {
namespace {
std::string env(const char *name) {
  const char *v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

class Rendezvous final : public Communicator {
public:
  ~Rendezvous() override {
    for (int fd : peers_)
      if (fd >= 0)
        ::close(fd);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "torchrun"; }
  std::string allReduceSum(float *data, int64_t n) override { return reduce(data, n); }
  std::string allReduceSum(double *data, int64_t n) override { return reduce(data, n); }
  std::string barrier() override {
    double one = 1.0;
    return reduce(&one, 1);
  }
  // Straight to rank 0 (the default would all-reduce size() x count values through it).
  std::string gatherToRoot(const float *s, float *r, int64_t n) override { return gather(s, r, n); }
  std::string gatherToRoot(const double *s, double *r, int64_t n) override {
    return gather(s, r, n);
  }

  std::string open(int rank, int size, const std::string &host, int port, int timeoutSeconds) {
    rank_ = rank, size_ = size, timeout_ = timeoutSeconds;
    if (size == 1)
      return "";
    return rank == 0 ? listenForPeers(port) : connectToRankZero(host, port);
  }

private:
  template <typename T> std::string reduce(T *data, int64_t n) {
    if (size_ == 1 || n == 0)
      return "";
    const size_t bytes = size_t(n) * sizeof(T);
    if (rank_ != 0) {
      if (std::string e = sendAll(peers_[0], data, bytes, 0); !e.empty())
        return e;
      return recvAll(peers_[0], data, bytes, 0);
    }
    // Rank 0 adds the ranks' values in rank order: the same sum on every run.
    std::vector<T> in(static_cast<size_t>(n));
    for (int r = 1; r < size_; ++r) {
      if (std::string e = recvAll(peers_[size_t(r)], in.data(), bytes, r); !e.empty())
        return e;
      for (int64_t i = 0; i < n; ++i)
        data[i] += in[size_t(i)];
    }
    for (int r = 1; r < size_; ++r)
      if (std::string e = sendAll(peers_[size_t(r)], data, bytes, r); !e.empty())
        return e;
    return "";
  }

  template <typename T> std::string gather(const T *send, T *recv, int64_t n) {
    const size_t bytes = size_t(n) * sizeof(T);
    if (rank_ != 0)
      return bytes == 0 ? "" : sendAll(peers_[0], send, bytes, 0);
    std::copy(send, send + n, recv);
    for (int r = 1; r < size_ && bytes > 0; ++r)
      if (std::string e = recvAll(peers_[size_t(r)], recv + size_t(r) * size_t(n), bytes, r);
          !e.empty())
        return e;
    return "";
  }

  std::string sendAll(int fd, const void *p, size_t bytes, int peer) {
    const char *c = static_cast<const char *>(p);
    while (bytes > 0) {
      ssize_t k = ::send(fd, c, bytes, MSG_NOSIGNAL);
      if (k <= 0)
        return "rank " + std::to_string(peer) + " is gone (sending to it failed: " +
               std::strerror(errno) + "); stopping the job";
      c += k, bytes -= size_t(k);
    }
    return "";
  }
  std::string recvAll(int fd, void *p, size_t bytes, int peer) {
    char *c = static_cast<char *>(p);
    while (bytes > 0) {
      ssize_t k = ::recv(fd, c, bytes, 0);
      if (k == 0)
        return "rank " + std::to_string(peer) + " closed its connection (it stopped or died); "
               "stopping the job";
      if (k < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK
                   ? "rank " + std::to_string(peer) + " sent nothing for " +
                         std::to_string(timeout_) +
                         " s (it hangs or died); stopping the job (TTT_RENDEZVOUS_TIMEOUT sets "
                         "the limit)"
                   : "receiving from rank " + std::to_string(peer) + " failed: " +
                         std::strerror(errno);
      c += k, bytes -= size_t(k);
    }
    return "";
  }
  void configure(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{};
    tv.tv_sec = timeout_;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  std::string listenForPeers(int port) {
    peers_.assign(size_t(size_), -1);
    int server = ::socket(AF_INET, SOCK_STREAM, 0);
    if (server < 0)
      return std::string("rendezvous: socket: ") + std::strerror(errno);
    int one = 1;
    ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(uint16_t(port));
    if (::bind(server, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(server, size_) != 0) {
      std::string why = std::strerror(errno);
      ::close(server);
      return "rank 0 cannot listen on port " + std::to_string(port) + " (" + why +
             "); pick a free MASTER_PORT (under torchrun the next port must be free too) or set "
             "TTT_RENDEZVOUS_PORT";
    }
    timeval tv{};
    tv.tv_sec = timeout_;
    ::setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int joined = 1; joined < size_; ++joined) {
      int fd = ::accept(server, nullptr, nullptr);
      if (fd < 0) {
        ::close(server);
        return "rank 0 waited " + std::to_string(timeout_) + " s for " +
               std::to_string(size_ - joined) + " of " + std::to_string(size_ - 1) +
               " ranks to connect to port " + std::to_string(port) +
               "; check that every rank was started with the same MASTER_ADDR/MASTER_PORT";
      }
      configure(fd);
      int32_t hello[2] = {-1, -1}; // rank, world size
      if (std::string e = recvAll(fd, hello, sizeof hello, -1); !e.empty()) {
        ::close(fd);
        ::close(server);
        return "rendezvous: a connecting rank went away: " + e;
      }
      if (hello[1] != size_ || hello[0] < 1 || hello[0] >= size_ || peers_[size_t(hello[0])] >= 0) {
        ::close(fd);
        ::close(server);
        return "rendezvous: a process says it is rank " + std::to_string(hello[0]) + " of " +
               std::to_string(hello[1]) + " but this job has WORLD_SIZE=" +
               std::to_string(size_) + " (or that rank already joined); start every rank with "
               "the same WORLD_SIZE and a distinct RANK";
      }
      peers_[size_t(hello[0])] = fd;
    }
    ::close(server);
    return "";
  }

  std::string connectToRankZero(const std::string &host, int port) {
    peers_.assign(1, -1);
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
      return "MASTER_ADDR=" + host + " does not resolve (" + ::gai_strerror(rc) + ")";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_);
    int fd = -1;
    while (true) {
      fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0)
        break;
      if (fd >= 0)
        ::close(fd);
      fd = -1;
      if (std::chrono::steady_clock::now() > deadline) {
        ::freeaddrinfo(res);
        return "rank " + std::to_string(rank_) + " could not reach rank 0 at " + host + ":" +
               std::to_string(port) + " within " + std::to_string(timeout_) +
               " s; check MASTER_ADDR/MASTER_PORT and that rank 0 started";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::freeaddrinfo(res);
    configure(fd);
    peers_[0] = fd;
    int32_t hello[2] = {rank_, size_};
    return sendAll(fd, hello, sizeof hello, 0);
  }

  int rank_ = 0, size_ = 1, timeout_ = 1800;
  std::vector<int> peers_; // rank 0: one socket per rank (index = rank); others: [rank 0]
};
} // namespace

int rendezvousPort(int masterPort, std::string &error) {
  error.clear();
  if (const std::string own = env("TTT_RENDEZVOUS_PORT"); !own.empty()) {
    char *end = nullptr;
    const long p = std::strtol(own.c_str(), &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) {
      error = "TTT_RENDEZVOUS_PORT='" + own + "' is not a port (1-65535)";
      return -1;
    }
    return int(p);
  }
  // torchrun's agent hosts its own store on MASTER_PORT (TORCHELASTIC_RUN_ID marks its workers).
  if (!env("TORCHELASTIC_RUN_ID").empty()) {
    if (masterPort >= 65535) {
      error = "MASTER_PORT=65535 leaves no port for the rendezvous after torchrun's; set "
              "TTT_RENDEZVOUS_PORT";
      return -1;
    }
    return masterPort + 1;
  }
  return masterPort;
}

std::unique_ptr<Communicator> openRendezvous(std::string &error) {
  error.clear();
  const std::string rank = env("RANK"), size = env("WORLD_SIZE"), host = env("MASTER_ADDR"),
                    port = env("MASTER_PORT");
  char *end = nullptr;
  const long r = std::strtol(rank.c_str(), &end, 10);
  const bool rankOk = !rank.empty() && *end == '\0';
  const long n = std::strtol(size.c_str(), &end, 10);
  const bool sizeOk = !size.empty() && *end == '\0';
  if (!rankOk || !sizeOk || n < 1 || r < 0 || r >= n) {
    error = "a torchrun-style launch needs RANK and WORLD_SIZE with 0 <= RANK < WORLD_SIZE (got "
            "RANK='" + rank + "', WORLD_SIZE='" + size + "')";
    return nullptr;
  }
  const long p = std::strtol(port.c_str(), &end, 10);
  if (n > 1 && (host.empty() || port.empty() || *end != '\0' || p < 1 || p > 65535)) {
    error = "a torchrun-style launch of " + size + " ranks needs MASTER_ADDR and MASTER_PORT "
            "(got MASTER_ADDR='" + host + "', MASTER_PORT='" + port + "')";
    return nullptr;
  }
  int timeout = 1800;
  if (const std::string t = env("TTT_RENDEZVOUS_TIMEOUT"); !t.empty())
    timeout = std::max(1, std::atoi(t.c_str()));
  const int rvPort = n > 1 ? rendezvousPort(int(p), error) : 0;
  if (rvPort < 0)
    return nullptr;
  return connectRendezvous(int(r), int(n), host, rvPort, timeout, error);
}

std::unique_ptr<Communicator> connectRendezvous(int rank, int size, const std::string &host,
                                                int port, int timeoutSeconds,
                                                std::string &error) {
  error.clear();
  auto comm = std::make_unique<Rendezvous>();
  if (std::string e = comm->open(rank, size, host, port, timeoutSeconds); !e.empty()) {
    error = e;
    return nullptr;
  }
  return comm;
}
} // namespace ttt::dist
