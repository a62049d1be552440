// Keyframe requests from joining branches, de-duplicated per SSRC.
//
// Ten devices that answer 183 within a few milliseconds must not make the door
// send ten keyframes: one request is outstanding per stream until a keyframe
// goes through; if none comes within `retry_after`, the request is sent once
// more, then given up (the next join asks again). Requests closer together
// than `min_interval` are held back and sent when the interval has passed, so
// a device that floods PLIs cannot turn the door's video into keyframes only.
// Times are in microseconds of any monotonic clock; the caller passes "now".
#pragma once

#include <cstdint>
#include <unordered_map>

namespace portier::rtp {

class KeyframeRequests {
 public:
  struct Timing {
    int64_t retry_after_us = 500'000;
    int64_t min_interval_us = 100'000;
  };
  KeyframeRequests() = default;
  explicit KeyframeRequests(Timing t) : timing_(t) {}

  // A branch wants a keyframe of stream `ssrc`. True: send a request upstream now.
  bool request(uint32_t ssrc, int64_t now_us);
  // Called for every packet of `ssrc` (cheap). True: send a request now (the
  // retry, or a request that min_interval held back).
  bool poll(uint32_t ssrc, int64_t now_us);
  // A keyframe of `ssrc` went through.
  void keyframe_seen(uint32_t ssrc);

  uint64_t sent() const { return sent_; }
  uint64_t suppressed() const { return suppressed_; }

 private:
  struct State {
    int64_t last_sent_us = 0;
    bool ever_sent = false;
    bool pending = false;  // sent, no keyframe yet
    bool retried = false;
    bool held = false;  // wanted, waiting for min_interval
  };
  bool send(State &s, int64_t now_us);

  Timing timing_;
  std::unordered_map<uint32_t, State> streams_;
  uint64_t sent_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace portier::rtp
