// Which source a call's media socket listens to, so that RFC 4733 events sent
// straight to the door's RTP port from a port in no SDP are not credited to
// the resident in the call (and open the door).
//
// A door or monitor receives its media from the address the peer's SDP named
// (the proxy's relay, RFC 3264 §5: c= and m= say where the peer is) and from
// nowhere else. Over NAT-free home LANs the peer also sends from there; its
// port is latched on its first packet, as the relay latches its legs: from
// then on one host and one port are heard, and the rest is dropped. A new SDP
// naming another host starts over. Plain C++: the GStreamer side reads each
// packet's GstNetAddressMeta and asks admit().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace portier {

class RtpSourceLatch {
 public:
  // The host the peer's SDP names (an IP literal); "" or anything else:
  // nothing is heard. The same host again keeps the latched port.
  void expect(const std::string &host);
  // May a packet from `address` (4 or 16 bytes, network order) and `port`
  // enter? Called from a streaming thread.
  bool admit(const uint8_t *address, size_t length, uint16_t port);
  uint64_t dropped() const { return dropped_; }

 private:
  std::mutex mutex_;
  size_t length_ = 0;  // 0: nothing expected
  uint8_t address_[16] = {};
  uint16_t port_ = 0;  // 0: not latched yet
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace portier
