// TensorBoard event files for ttt-run's scalars (loss, lr, ...): what `tensorboard --logdir` and
// `wandb sync` read. Format: docs/logging.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ttt::tensorboard {

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) of `size` bytes, as in RFC 3720.
uint32_t crc32c(const uint8_t *data, size_t size);

/// The record checksum of the event format: crc32c rotated right by 15, plus 0xa282ead8.
uint32_t maskedCrc32c(const uint8_t *data, size_t size);

/// Appends one event-file record around `payload`: uint64 length (little endian), masked CRC of
/// those 8 bytes, the payload, masked CRC of the payload.
void appendRecord(std::string &out, const std::string &payload);

/// One events.out.tfevents.<unix seconds>.<hostname> file in a log directory. Scalars are
/// buffered in memory until flush(); flush after each step, so a killed run keeps every step
/// that flushed. Not thread-safe.
class EventWriter {
public:
  /// Creates `logDir` (and parents) when missing and a new event file in it, whose first record
  /// carries file_version "brain.Event:2". Never overwrites a file: if the name is taken (two
  /// runs in one second), ".<pid>" is appended. Returns nullptr and a one-line error.
  static std::unique_ptr<EventWriter> open(const std::string &logDir, std::string &error);

  ~EventWriter(); // flushes what is buffered (errors ignored) and closes the file

  EventWriter(const EventWriter &) = delete;
  EventWriter &operator=(const EventWriter &) = delete;

  /// Buffers one scalar: `value` is stored as float (the format's simple_value), `wallTime` in
  /// seconds since the Unix epoch.
  void scalar(const std::string &tag, int64_t step, double value, double wallTime);

  /// Writes the buffered records to the file. Returns "" or a one-line error naming the file;
  /// after an error the records stay buffered and the next flush retries them.
  std::string flush();

  const std::string &path() const { return path_; }

private:
  EventWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string path_;
  std::string pending_; // framed records not yet written
};

} // namespace ttt::tensorboard
