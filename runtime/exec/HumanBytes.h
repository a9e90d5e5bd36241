// Byte counts for people: "421.24 MiB" (binary units, three significant decimals above bytes).
#pragma once

#include <cstdio>
#include <string>

namespace ttt::exec {
inline std::string humanBytes(double bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}
} // namespace ttt::exec
