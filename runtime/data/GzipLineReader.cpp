#include "runtime/data/GzipLineReader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ttt::data {

struct GzipLineReader::Stream {
  z_stream zs{};
  bool inStream = false; // between a member's header and its end
};

GzipLineReader::GzipLineReader(const std::string &path) : z_(new Stream), in_(1 << 20) {
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_)
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  // 15 + 16: gzip only (a zlib or raw stream is not a C4 shard)
  if (inflateInit2(&z_->zs, 15 + 16) != Z_OK)
    throw std::runtime_error("zlib: inflateInit2 failed");
}

GzipLineReader::~GzipLineReader() {
  inflateEnd(&z_->zs);
  if (file_)
    std::fclose(file_);
}

bool GzipLineReader::fill() {
  if (done_)
    return false;
  unsigned char out[1 << 16];
  size_t before = buf_.size();
  while (buf_.size() == before) {
    z_stream &zs = z_->zs;
    if (zs.avail_in == 0) {
      size_t n = std::fread(in_.data(), 1, in_.size(), file_);
      compressedBytes_ += n;
      if (n == 0) {
        done_ = true;
        if (z_->inStream) {
          truncated_ = true;
          error_ = "file ends inside the compressed stream after " +
                   std::to_string(compressedBytes_) + " bytes";
        }
        return false;
      }
      zs.next_in = in_.data();
      zs.avail_in = static_cast<uInt>(n);
    }
    zs.next_out = out;
    zs.avail_out = sizeof(out);
    z_->inStream = true;
    sawData_ = true;
    int rc = inflate(&zs, Z_NO_FLUSH);
    buf_.append(reinterpret_cast<char *>(out), sizeof(out) - zs.avail_out);
    if (rc == Z_STREAM_END) {
      z_->inStream = false;
      inflateReset(&zs); // another gzip member may follow
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      done_ = corrupt_ = true;
      error_ = std::string("inflate: ") + (zs.msg ? zs.msg : "error") + " near compressed byte " +
               std::to_string(compressedBytes_ - zs.avail_in);
      return buf_.size() != before;
    }
  }
  return true;
}

bool GzipLineReader::next(std::string &line) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      line.assign(buf_, pos_, nl - pos_);
      pos_ = nl + 1;
      ++lineNo_;
      return true;
    }
    // keep only the unfinished line before inflating more
    buf_.erase(0, pos_);
    pos_ = 0;
    if (!fill()) {
      if (buf_.empty() || truncated_ || corrupt_)
        return false; // a cut-off last line is dropped; the caller reports truncated()/corrupt()
      line.swap(buf_);
      buf_.clear();
      ++lineNo_;
      return true; // a complete file whose last line has no '\n'
    }
  }
}

bool GzipLineReader::nextBlock(std::string &block, size_t minBytes, uint64_t &lines) {
  block.clear();
  lines = 0;
  for (;;) {
    size_t last = buf_.rfind('\n');
    if (last != std::string::npos && last >= pos_) {
      lines += std::count(buf_.begin() + pos_, buf_.begin() + last + 1, '\n');
      block.append(buf_, pos_, last + 1 - pos_);
      pos_ = last + 1;
    }
    if (block.size() >= minBytes)
      break;
    buf_.erase(0, pos_); // keep only the unfinished line before inflating more
    pos_ = 0;
    if (!fill()) {
      if (!buf_.empty() && !truncated_ && !corrupt_) { // a complete file whose last line has no '\n'
        block.append(buf_);
        block.push_back('\n');
        ++lines;
        buf_.clear();
      }
      break; // a cut-off last line is dropped; the caller reports truncated()/corrupt()
    }
  }
  lineNo_ += lines;
  return lines > 0;
}

} // namespace ttt::data
