#include "erle_meter.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace portier::aec {

ErleMeter::ErleMeter(int rate, int channels, double window_s, double floor_dbfs)
    : rate_(rate),
      channels_(channels),
      block_len_(std::max(1, rate / 100)),
      window_blocks_(std::max<size_t>(1, static_cast<size_t>(std::lround(window_s * 100)))),
      floor_(std::pow(10.0, floor_dbfs / 10.0)) {}

void ErleMeter::add(const int16_t *in, const int16_t *out, size_t samples_per_channel) {
  constexpr double kScale = 1.0 / (32768.0 * 32768.0);
  for (size_t i = 0; i < samples_per_channel; ++i) {
    for (int c = 0; c < channels_; ++c) {
      const double x = in[i * channels_ + c], y = out[i * channels_ + c];
      block_in_ += x * x * kScale;
      block_out_ += y * y * kScale;
    }
    ++samples_;
    if (++block_fill_ < block_len_) continue;
    const size_t w = blocks_++ / window_blocks_;
    if (windows_.size() <= w) windows_.resize(w + 1);
    const uint64_t n = static_cast<uint64_t>(block_len_) * channels_;
    if (block_in_ / n >= floor_) {
      windows_[w].in += block_in_;
      windows_[w].out += block_out_;
      windows_[w].samples += n;
    }
    block_in_ = block_out_ = 0;
    block_fill_ = 0;
  }
}

static double ratio_db(double num, double den) {
  if (num <= 0) return std::numeric_limits<double>::quiet_NaN();
  // an output of exact zeros (a muted canceller) would be infinitely good:
  // count it as one LSB of noise instead
  return 10.0 * std::log10(num / std::max(den, 1.0 / (32768.0 * 32768.0)));
}

std::vector<double> ErleMeter::series() const {
  std::vector<double> v;
  v.reserve(windows_.size());
  for (const Window &w : windows_) v.push_back(ratio_db(w.in, w.out));
  return v;
}

ErleMeter::Window ErleMeter::total(double from_s) const {
  Window t;
  const size_t first = static_cast<size_t>(std::max(0.0, from_s) * 100 / window_blocks_);
  for (size_t i = first; i < windows_.size(); ++i) {
    t.in += windows_[i].in;
    t.out += windows_[i].out;
    t.samples += windows_[i].samples;
  }
  return t;
}

double ErleMeter::erle_db(double from_s) const {
  const Window t = total(from_s);
  return ratio_db(t.in, t.out);
}

double ErleMeter::input_dbfs(double from_s) const {
  const Window t = total(from_s);
  return t.samples ? 10.0 * std::log10(std::max(t.in, 1e-30) / t.samples)
                   : std::numeric_limits<double>::quiet_NaN();
}

double ErleMeter::output_dbfs(double from_s) const {
  const Window t = total(from_s);
  return t.samples ? 10.0 * std::log10(std::max(t.out, 1e-30) / t.samples)
                   : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace portier::aec
