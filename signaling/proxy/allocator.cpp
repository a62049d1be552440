#include "proxy/allocator.h"

#include <jemalloc/jemalloc.h>

#include <cstdint>
#include <string>

// Read by jemalloc before its first allocation (jemalloc(3), "TUNING");
// <jemalloc/jemalloc.h> declares it, with C linkage.
const char *malloc_conf = "thp:always,metadata_thp:auto";

namespace portier::proxy::allocator {
namespace {

size_t read_size(const char *name) {
  size_t value = 0, len = sizeof value;
  return mallctl(name, &value, &len, nullptr, 0) == 0 ? value : 0;
}

}  // namespace

Usage usage() {
  // The statistics are a snapshot taken at the last epoch: take a new one.
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  mallctl("epoch", &epoch, &len, &epoch, len);
  return Usage{read_size("stats.allocated"), read_size("stats.resident")};
}

void give_back_free_pages() {
  const std::string purge = "arena." + std::to_string(MALLCTL_ARENAS_ALL) + ".purge";
  mallctl(purge.c_str(), nullptr, nullptr, nullptr, 0);
}

}  // namespace portier::proxy::allocator
