#include "common/rtp_source_latch.h"

#include <arpa/inet.h>

#include <cstring>

namespace portier {

void RtpSourceLatch::expect(const std::string &host) {
  uint8_t bytes[16] = {};
  size_t length = 0;
  if (inet_pton(AF_INET, host.c_str(), bytes) == 1)
    length = 4;
  else if (inet_pton(AF_INET6, host.c_str(), bytes) == 1)
    length = 16;
  std::lock_guard<std::mutex> lock(mutex_);
  if (length && length == length_ && memcmp(bytes, address_, length) == 0) return;
  length_ = length;
  memcpy(address_, bytes, sizeof address_);
  port_ = 0;
}

bool RtpSourceLatch::admit(const uint8_t *address, size_t length, uint16_t port) {
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
  static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (address && length == 16 && memcmp(address, v4_mapped, 12) == 0) address += 12, length = 4;
  std::lock_guard<std::mutex> lock(mutex_);
  const bool host =
      address && length_ && length == length_ && port && memcmp(address, address_, length) == 0;
  if (host && !port_) port_ = port;
  if (host && port == port_) return true;
  ++dropped_;
  return false;
}

}  // namespace portier
