#include "synthetic_echo.h"

#include <algorithm>
#include <cmath>

namespace portier::aec {

namespace {
constexpr double kPi = 3.14159265358979323846;
double db_to_gain(double db) { return std::pow(10.0, db / 20.0); }
}  // namespace

double Rng::gaussian() {
  // Box-Muller; one value per call is enough here.
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

// ------------------------------------------------------------------ PseudoSpeech

void PseudoSpeech::Resonator::tune(double freq, double bandwidth, int rate) {
  const double r = std::exp(-kPi * bandwidth / rate);
  const double w = 2.0 * kPi * freq / rate;
  a1 = 2.0 * r * std::cos(w);
  a2 = -r * r;
  // unity gain at the centre, so a formant's level is its amplitude below
  b0 = (1.0 - r) * std::sqrt(1.0 - 2.0 * r * std::cos(2.0 * w) + r * r);
}

double PseudoSpeech::Resonator::step(double x) {
  const double y = b0 * x + a1 * y1 + a2 * y2;
  y2 = y1;
  y1 = y;
  return y;
}

PseudoSpeech::PseudoSpeech(int rate, uint64_t seed, double level_dbfs)
    : rate_(rate), rng_(seed), gain_(1.0) {
  // The level of a resonator bank depends on pitch, formants and rate in ways
  // not worth modelling: a copy runs for a few seconds, quietly enough never
  // to clip, and the gain is set from the RMS of its non-silent samples (the
  // active speech level). The copy draws the same numbers, so the samples
  // handed out are the ones measured.
  PseudoSpeech copy = *this;
  copy.gain_ = 1e-3;
  std::vector<float> s = copy.generate(static_cast<size_t>(rate) * 4);
  double energy = 0;
  size_t active = 0;
  for (float x : s)
    if (x != 0.0f) energy += double(x) * x, ++active;
  const double rms = std::sqrt(energy / std::max<size_t>(active, 1)) / copy.gain_;
  gain_ = db_to_gain(level_dbfs) / std::max(rms, 1e-9);
}

void PseudoSpeech::next_segment() {
  seg_pos_ = 0;
  const auto ms = [&](double lo, double hi) {
    return static_cast<size_t>((lo + (hi - lo) * rng_.uniform()) * rate_ / 1000.0);
  };
  if (syllables_left_ == 0 && !pause_) {  // end of a word: breathe
    pause_ = true;
    seg_len_ = ms(120, 450);
    return;
  }
  if (pause_) syllables_left_ = 1 + static_cast<int>(rng_.uniform() * 4);
  pause_ = false;
  --syllables_left_;
  seg_len_ = ms(110, 300);
  voiced_ = rng_.uniform() < 0.8;
  level_ = 0.35 + 0.65 * rng_.uniform();
  f0_ = 95 + 125 * rng_.uniform();
  f0_drift_ = (rng_.symmetric() * 0.25 * f0_) / seg_len_;  // Hz per sample
  const double nyquist = 0.45 * rate_;                     // formants stay clear of the band edge
  const double f1 = 300 + 500 * rng_.uniform(), f2 = 900 + 1400 * rng_.uniform(),
               f3 = 2400 + 800 * rng_.uniform();
  formant_[0].tune(std::min(f1, nyquist), 90, rate_);
  formant_[1].tune(std::min(f2, nyquist), 130, rate_);
  formant_[2].tune(std::min(f3, nyquist), 200, rate_);
  fricative_.tune(std::min(3500.0, nyquist), 1800, rate_);
}

void PseudoSpeech::generate(float *out, size_t n) {
  const double attack = 0.025 * rate_, release = 0.05 * rate_;
  for (size_t i = 0; i < n; ++i) {
    if (seg_pos_ >= seg_len_) next_segment();
    double y = 0;
    if (!pause_) {
      const double pos = static_cast<double>(seg_pos_);
      const double left = static_cast<double>(seg_len_ - seg_pos_);
      double env = level_;
      if (pos < attack) env *= 0.5 - 0.5 * std::cos(kPi * pos / attack);
      if (left < release) env *= 0.5 - 0.5 * std::cos(kPi * left / release);
      if (voiced_) {
        // A pulse per pitch period, scaled by the period so each harmonic has
        // the same amplitude whatever the pitch; a little breath noise keeps
        // the spectrum from being only lines.
        const double f0 = f0_ + f0_drift_ * pos;
        phase_ += f0 / rate_;
        double x = 0.05 * rng_.symmetric();
        if (phase_ >= 1.0) {
          phase_ -= 1.0;
          x += 0.5 * rate_ / f0;
        }
        y = formant_[0].step(x) + 0.5 * formant_[1].step(x) + 0.25 * formant_[2].step(x);
      } else {
        y = 0.6 * fricative_.step(rng_.gaussian());
        formant_[0].step(0), formant_[1].step(0), formant_[2].step(0);
      }
      y *= env;
    } else {
      for (Resonator &r : formant_) r.step(0);  // the next syllable starts from rest
    }
    ++seg_pos_;
    out[i] = static_cast<float>(std::clamp(y * gain_, -1.0, 1.0));
  }
}

std::vector<float> PseudoSpeech::generate(size_t n) {
  std::vector<float> v(n);
  generate(v.data(), n);
  return v;
}

// ------------------------------------------------------------------ EchoPath

EchoPath::EchoPath(int rate, const EchoPathSpec &spec)
    : delay_(static_cast<size_t>(std::lround(spec.delay_ms * rate / 1000.0))),
      noise_rng_(spec.seed ^ 0x5eed),
      noise_gain_(db_to_gain(spec.noise_dbfs) * std::sqrt(3.0)) {  // uniform noise at that RMS
  Rng rng(spec.seed);
  const size_t n = std::max<size_t>(1, static_cast<size_t>(spec.tail_ms * rate / 1000.0));
  taps_.resize(n);
  const double decay = spec.decay_ms * rate / 1000.0;
  for (size_t k = 0; k < n; ++k)
    taps_[k] = static_cast<float>(rng.gaussian() * std::exp(-static_cast<double>(k) / decay));
  taps_[0] = 1.0f;  // the direct sound from the speaker leads
  // A small speaker passes little below 200 Hz or above 5 kHz: two one-pole
  // filters over the response (a low-pass, then a high-pass).
  const double lp = std::exp(-2.0 * kPi * std::min(5000.0, 0.4 * rate) / rate);
  const double hp = std::exp(-2.0 * kPi * 200.0 / rate);
  double l = 0, h_prev_in = 0, h = 0;
  for (float &t : taps_) {
    l = (1 - lp) * t + lp * l;
    h = hp * (h + l - h_prev_in);
    h_prev_in = l;
    t = static_cast<float>(h);
  }
  double energy = 0;
  for (float t : taps_) energy += double(t) * t;
  const double scale = db_to_gain(spec.echo_gain_db) / std::sqrt(energy);
  for (float &t : taps_) t = static_cast<float>(t * scale);
  line_.assign(delay_ + taps_.size() - 1, 0.0f);
}

void EchoPath::process(const float *far, float *mic, size_t n) {
  const size_t keep = line_.size();
  line_.insert(line_.end(), far, far + n);
  const size_t ntaps = taps_.size();
  for (size_t i = 0; i < n; ++i) {
    // the newest sample that reached the microphone is delay_ samples old
    const float *x = &line_[keep + i - delay_];
    double acc = 0;
    for (size_t k = 0; k < ntaps; ++k) acc += double(taps_[k]) * x[-static_cast<ptrdiff_t>(k)];
    acc += noise_gain_ * noise_rng_.symmetric();
    mic[i] = static_cast<float>(acc);
  }
  line_.erase(line_.begin(), line_.begin() + n);
}

int16_t to_s16(float x) {
  const float v = std::nearbyint(x * 32768.0f);
  return static_cast<int16_t>(std::clamp(v, -32768.0f, 32767.0f));
}

std::vector<int16_t> to_s16(const std::vector<float> &x) {
  std::vector<int16_t> v(x.size());
  std::transform(x.begin(), x.end(), v.begin(), [](float f) { return to_s16(f); });
  return v;
}

}  // namespace portier::aec
