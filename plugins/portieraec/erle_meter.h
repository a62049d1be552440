// Echo return loss enhancement, measured from outside the canceller: how much
// weaker its output is than its input while there is echo to remove,
// 10 log10(E[in^2] / E[out^2]) in dB.
//
// Only 10 ms blocks whose input is above a floor count: in the pauses of
// speech both sides carry only the microphone's noise, and averaging those
// in would measure the noise, not the canceller. The input should then be
// echo alone (far-end single talk), as in the tests and the bench; with a
// visitor talking at the same time the figure means nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace portier::aec {

class ErleMeter {
 public:
  // window_s: the length of each point of the time series.
  ErleMeter(int rate, int channels, double window_s = 1.0, double floor_dbfs = -60.0);

  // The canceller's input and output, interleaved, the same length.
  void add(const int16_t *in, const int16_t *out, size_t samples_per_channel);

  // ERLE of each window so far; NaN for a window with no block above the floor.
  std::vector<double> series() const;
  // ERLE over everything from `from_s` seconds on (the steady state after
  // convergence); NaN when no block counted.
  double erle_db(double from_s = 0.0) const;
  // The input's and output's levels over the counted blocks from `from_s` on.
  double input_dbfs(double from_s = 0.0) const;
  double output_dbfs(double from_s = 0.0) const;
  double seconds() const { return static_cast<double>(samples_) / rate_; }

 private:
  struct Window {
    double in = 0, out = 0;  // sums of squares over counted blocks
    uint64_t samples = 0;    // counted samples (all channels)
  };
  Window total(double from_s) const;

  int rate_, channels_;
  size_t block_len_, window_blocks_;
  double floor_;  // mean square, full scale = 1
  uint64_t samples_ = 0;
  // the block being filled
  double block_in_ = 0, block_out_ = 0;
  size_t block_fill_ = 0, blocks_ = 0;
  std::vector<Window> windows_;
};

}  // namespace portier::aec
