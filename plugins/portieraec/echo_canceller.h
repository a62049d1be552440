// webrtc-audio-processing (the 0.3 API of Debian 12) behind a small plain
// C++ face: S16 interleaved 10 ms frames in, settings as a struct, metrics
// out. The elements, the unit tests and the bench all drive it this way, and
// no webrtc header leaks into them.
//
// The float interface of the library is used underneath: unlike its int16
// AudioFrame interface it accepts a far end at another rate or channel count
// than the near end (a door may play 48 kHz stereo and record 16 kHz mono)
// and resamples internally.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace webrtc {
class AudioProcessing;
}

namespace portier::aec {

enum class NoiseSuppression { Off, Low, Moderate, High, VeryHigh };
enum class EchoSuppression { Low, Moderate, High };  // the non-linear stage after the filter

struct Settings {
  bool echo_cancel = true;
  EchoSuppression echo_suppression = EchoSuppression::Moderate;
  NoiseSuppression noise_suppression = NoiseSuppression::Moderate;
  bool gain_control = false;
  bool high_pass_filter = true;
  // The door's latencies are rarely known to the millisecond: let the library
  // find the delay itself, and give its filter a longer reach.
  bool delay_agnostic = true;
  bool extended_filter = true;
};

struct Metrics {
  bool valid = false;  // the library had enough data to report
  int erle_db = 0;     // echo return loss enhancement, instant and average
  int erle_average_db = 0;
  int erl_db = 0;           // echo return loss (the room's own attenuation)
  int delay_median_ms = 0;  // the library's delay estimate, beyond what it was told
  int delay_std_ms = 0;
  float fraction_poor_delays = 0;
};

class EchoCanceller {
 public:
  explicit EchoCanceller(const Settings &settings = {});
  ~EchoCanceller();
  EchoCanceller(const EchoCanceller &) = delete;
  EchoCanceller &operator=(const EchoCanceller &) = delete;

  static bool supported_rate(int rate);

  // The near end's format. Starts afresh (the filter forgets the room).
  bool configure(int rate, int channels);
  bool configured() const { return rate_ != 0; }
  int rate() const { return rate_; }
  int channels() const { return channels_; }

  // Takes effect at once; switching the delay-agnostic mode or the extended
  // filter restarts the filter's adaptation.
  void apply(const Settings &settings);
  const Settings &settings() const { return settings_; }

  // One 10 ms frame of what the speaker played, at its own rate and channels.
  bool analyze_far(const int16_t *frame, int rate, int channels);
  // One 10 ms near-end frame, processed in place. delay_ms: how much later
  // the echo of a far-end frame reaches this call than the frame reached
  // analyze_far(), as far as the caller knows (set_stream_delay_ms).
  bool process_near(int16_t *frame, int delay_ms);

  Metrics metrics() const;
  uint64_t errors() const { return errors_; }

 private:
  void apply_locked();

  Settings settings_;
  int rate_ = 0, channels_ = 0;
  std::unique_ptr<webrtc::AudioProcessing> apm_;
  // deinterleaved float frames: near in/out, far
  std::vector<float> near_, far_;
  std::vector<float *> near_ptrs_, far_ptrs_;
  uint64_t errors_ = 0;
  mutable Metrics last_;  // the library reports some periods as invalid: keep the last good one
};

}  // namespace portier::aec
