// Writing a file so that readers see either the old content or the whole new one, never a torn
// write: a temp file next to the target, fsync, rename, then fsync of the directory.
#pragma once

#include <cstdint>
#include <string>

namespace ttt::checkpoint {
// Returns "" or a one-line error naming `path`; the temp file is removed on failure.
std::string writeFileAtomically(const std::string &path, const uint8_t *data, size_t size);
} // namespace ttt::checkpoint
