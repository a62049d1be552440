#include "echo_canceller.h"

#include <webrtc/modules/audio_processing/include/audio_processing.h>

#include <algorithm>
#include <climits>

namespace portier::aec {

namespace {

using webrtc::AudioProcessing;

AudioProcessing::ChannelLayout layout(int channels) {
  return channels == 2 ? AudioProcessing::kStereo : AudioProcessing::kMono;
}

void deinterleave(const int16_t *in, int frames, int channels, std::vector<float> &out,
                  std::vector<float *> &ptrs) {
  out.resize(static_cast<size_t>(frames) * channels);
  ptrs.resize(channels);
  for (int c = 0; c < channels; ++c) {
    float *dst = out.data() + static_cast<size_t>(c) * frames;
    ptrs[c] = dst;
    for (int i = 0; i < frames; ++i) dst[i] = in[i * channels + c] * (1.0f / 32768.0f);
  }
}

int16_t to_s16(float x) {
  const float v = x * 32768.0f;
  if (v >= 32767.0f) return 32767;
  if (v <= -32768.0f) return -32768;
  return static_cast<int16_t>(v < 0 ? v - 0.5f : v + 0.5f);
}

webrtc::EchoCancellation::SuppressionLevel suppression(EchoSuppression s) {
  switch (s) {
    case EchoSuppression::Low:
      return webrtc::EchoCancellation::kLowSuppression;
    case EchoSuppression::High:
      return webrtc::EchoCancellation::kHighSuppression;
    default:
      return webrtc::EchoCancellation::kModerateSuppression;
  }
}

webrtc::NoiseSuppression::Level ns_level(NoiseSuppression s) {
  switch (s) {
    case NoiseSuppression::Low:
      return webrtc::NoiseSuppression::kLow;
    case NoiseSuppression::High:
      return webrtc::NoiseSuppression::kHigh;
    case NoiseSuppression::VeryHigh:
      return webrtc::NoiseSuppression::kVeryHigh;
    default:
      return webrtc::NoiseSuppression::kModerate;
  }
}

}  // namespace

EchoCanceller::EchoCanceller(const Settings &settings) : settings_(settings) {}
EchoCanceller::~EchoCanceller() = default;

bool EchoCanceller::supported_rate(int rate) {
  return rate == 8000 || rate == 16000 || rate == 32000 || rate == 48000;
}

bool EchoCanceller::configure(int rate, int channels) {
  if (!supported_rate(rate) || channels < 1 || channels > 2) return false;
  webrtc::Config config;
  config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(settings_.extended_filter));
  config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(settings_.delay_agnostic));
  // The experimental AGC drives an analog microphone gain we do not have.
  config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
  std::unique_ptr<AudioProcessing> apm(AudioProcessing::Create(config));
  if (!apm) return false;
  webrtc::ProcessingConfig pc;
  pc.input_stream() = webrtc::StreamConfig(rate, channels);
  pc.output_stream() = webrtc::StreamConfig(rate, channels);
  // the far end's format is the near end's until a far-end frame says otherwise
  pc.reverse_input_stream() = webrtc::StreamConfig(rate, 1);
  pc.reverse_output_stream() = webrtc::StreamConfig(rate, 1);
  if (apm->Initialize(pc) != AudioProcessing::kNoError) return false;
  apm_ = std::move(apm);
  rate_ = rate;
  channels_ = channels;
  last_ = Metrics{};
  apply_locked();
  return true;
}

void EchoCanceller::apply(const Settings &settings) {
  const bool config_changed = settings.delay_agnostic != settings_.delay_agnostic ||
                              settings.extended_filter != settings_.extended_filter;
  settings_ = settings;
  if (!apm_) return;
  if (config_changed) {
    webrtc::Config config;
    config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(settings_.extended_filter));
    config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(settings_.delay_agnostic));
    apm_->SetExtraOptions(config);
  }
  apply_locked();
}

void EchoCanceller::apply_locked() {
  webrtc::EchoCancellation *ec = apm_->echo_cancellation();
  ec->Enable(settings_.echo_cancel);
  ec->set_suppression_level(suppression(settings_.echo_suppression));
  // Playback and capture share one clock in a door's pipeline: no drift.
  ec->enable_drift_compensation(false);
  ec->enable_metrics(true);
  ec->enable_delay_logging(true);
  webrtc::NoiseSuppression *ns = apm_->noise_suppression();
  if (settings_.noise_suppression != NoiseSuppression::Off)
    ns->set_level(ns_level(settings_.noise_suppression));
  ns->Enable(settings_.noise_suppression != NoiseSuppression::Off);
  webrtc::GainControl *gc = apm_->gain_control();
  // Digital only: the door's microphone gain is fixed by the installer.
  gc->set_mode(webrtc::GainControl::kAdaptiveDigital);
  gc->Enable(settings_.gain_control);
  apm_->high_pass_filter()->Enable(settings_.high_pass_filter);
}

bool EchoCanceller::analyze_far(const int16_t *frame, int rate, int channels) {
  if (!apm_ || !supported_rate(rate) || channels < 1 || channels > 2) return false;
  const int frames = rate / 100;
  deinterleave(frame, frames, channels, far_, far_ptrs_);
  const int err = apm_->AnalyzeReverseStream(far_ptrs_.data(), static_cast<size_t>(frames), rate,
                                             layout(channels));
  if (err != AudioProcessing::kNoError) ++errors_;
  return err == AudioProcessing::kNoError;
}

bool EchoCanceller::process_near(int16_t *frame, int delay_ms) {
  if (!apm_) return false;
  const int frames = rate_ / 100;
  deinterleave(frame, frames, channels_, near_, near_ptrs_);
  // The library wants a delay whenever its echo canceller is on; a value it
  // finds odd only earns a warning code, the frame is processed all the same.
  apm_->set_stream_delay_ms(std::max(0, delay_ms));
  const webrtc::StreamConfig config(rate_, channels_);
  const int err = apm_->ProcessStream(near_ptrs_.data(), config, config, near_ptrs_.data());
  if (err != AudioProcessing::kNoError && err != AudioProcessing::kBadStreamParameterWarning) {
    ++errors_;
    return false;
  }
  for (int c = 0; c < channels_; ++c) {
    const float *src = near_ptrs_[c];
    for (int i = 0; i < frames; ++i) frame[i * channels_ + c] = to_s16(src[i]);
  }
  return true;
}

Metrics EchoCanceller::metrics() const {
  if (!apm_ || !settings_.echo_cancel) return last_;
  webrtc::EchoCancellation *ec = apm_->echo_cancellation();
  webrtc::EchoCancellation::Metrics m;
  // The library answers -100 (and at times INT_MIN) while it has too little
  // data; such a reading keeps the last good one.
  auto good = [](int v) { return v != INT_MIN && v > -100; };
  if (ec->GetMetrics(&m) == AudioProcessing::kNoError) {
    if (good(m.echo_return_loss_enhancement.instant)) {
      last_.valid = true;
      last_.erle_db = m.echo_return_loss_enhancement.instant;
    }
    if (good(m.echo_return_loss_enhancement.average))
      last_.erle_average_db = m.echo_return_loss_enhancement.average;
    if (good(m.echo_return_loss.average)) last_.erl_db = m.echo_return_loss.average;
  }
  int median = 0, std = 0;
  float poor = 0;
  if (ec->GetDelayMetrics(&median, &std, &poor) == AudioProcessing::kNoError && median >= 0) {
    last_.delay_median_ms = median;
    last_.delay_std_ms = std;
    last_.fraction_poor_delays = poor;
  }
  return last_;
}

}  // namespace portier::aec
