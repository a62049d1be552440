// The plain C++ under the echo canceller: cutting streams into 10 ms frames,
// handing the far end over in step with the near end, the ERLE meter, the
// synthetic echo path, and webrtc-audio-processing behind EchoCanceller.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "portieraec/echo_canceller.h"
#include "portieraec/erle_meter.h"
#include "portieraec/far_end_queue.h"
#include "portieraec/frame_batcher.h"
#include "portieraec/synthetic_echo.h"

using namespace portier::aec;

namespace {

constexpr int64_t kMs = 1000000;

std::vector<int16_t> ramp(size_t n, int16_t start = 0, int channels = 1) {
  std::vector<int16_t> v(n * channels);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int16_t>(start + i / channels);
  return v;
}

double rms_dbfs(const std::vector<float> &x) {
  double e = 0;
  for (float v : x) e += double(v) * v;
  return 10 * std::log10(e / x.size());
}

// ------------------------------------------------------------------ FrameBatcher

TEST(FrameBatcher, CutsTenMillisecondFramesFromBuffersOfAnySize) {
  FrameBatcher b(16000, 1);
  ASSERT_EQ(b.frame_samples(), 160u);
  auto data = ramp(1000);
  b.push(data.data(), 100, 0);  // 6.25 ms
  EXPECT_EQ(b.ready(), 0u);
  EXPECT_EQ(b.pending(), 100u);
  b.push(data.data() + 100, 400, 100 * 1000000000LL / 16000);
  ASSERT_EQ(b.ready(), 3u);
  EXPECT_EQ(b.pending(), 20u);
  EXPECT_EQ(b.frame(1)[0], 160);  // samples stay in order across buffers
  EXPECT_EQ(b.frame_time(0), 0);
  EXPECT_EQ(b.frame_time(1), 10 * kMs);
  EXPECT_EQ(b.frame_time(2), 20 * kMs);
  b.pop(2);
  EXPECT_EQ(b.ready(), 1u);
  EXPECT_EQ(b.frame(0)[0], 320);
  EXPECT_EQ(b.frame_time(0), 20 * kMs);
}

TEST(FrameBatcher, InterleavedStereoFramesHoldBothChannels) {
  FrameBatcher b(48000, 2);
  auto data = ramp(480, 0, 2);
  b.push(data.data(), 480, 5 * kMs);
  ASSERT_EQ(b.ready(), 1u);
  EXPECT_EQ(b.frame(0)[2 * 479 + 1], 479);
  EXPECT_EQ(b.frame_time(0), 5 * kMs);
}

TEST(FrameBatcher, ATimestampJumpStartsTheNextFramesAtTheNewTime) {
  FrameBatcher b(8000, 1);
  auto data = ramp(400);
  b.push(data.data(), 80, 0);                 // frame 0 at 0
  b.push(data.data() + 80, 40, 10 * kMs);     // half a frame, in step
  b.push(data.data() + 120, 200, 500 * kMs);  // the stream resumes at 500 ms
  ASSERT_EQ(b.ready(), 4u);
  EXPECT_EQ(b.frame_time(0), 0);
  EXPECT_EQ(b.frame_time(1), 10 * kMs);  // started before the jump: counted on
  // the first frame that starts after the new buffer's first sample
  EXPECT_EQ(b.frame_time(2), 500 * kMs + (160 - 120) * 1000000000LL / 8000);
  b.pop(4);
  EXPECT_EQ(b.pending(), 0u);
}

TEST(FrameBatcher, TimestampsWithinASampleOfTheGridAreNotJumps) {
  FrameBatcher b(48000, 1);
  auto data = ramp(1024);
  // 1024-sample buffers whose timestamps are rounded to the microsecond
  int64_t t = 0;
  for (int i = 0; i < 10; ++i) {
    b.push(data.data(), 1024, t / 1000 * 1000);
    t += 1024 * 1000000000LL / 48000;
  }
  ASSERT_EQ(b.ready(), 21u);
  for (size_t i = 0; i < b.ready(); ++i)
    EXPECT_EQ(b.frame_time(i), static_cast<int64_t>(i) * 10 * kMs);
}

TEST(FrameBatcher, WithoutTimestampsFramesCountFromZero) {
  FrameBatcher b(16000, 1);
  auto data = ramp(480);
  b.push(data.data(), 480, FrameBatcher::kNoTime);
  ASSERT_EQ(b.ready(), 3u);
  EXPECT_EQ(b.frame_time(2), 20 * kMs);
}

TEST(FrameBatcher, PadCompletesTheLastFrameWithSilence) {
  FrameBatcher b(16000, 1);
  auto data = ramp(200, 1);
  b.push(data.data(), 200, 0);
  b.pop(1);
  EXPECT_EQ(b.pad(), 40u);
  ASSERT_EQ(b.ready(), 1u);
  EXPECT_EQ(b.frame(0)[39], 200);
  EXPECT_EQ(b.frame(0)[40], 0);
  EXPECT_EQ(b.frame(0)[159], 0);
  b.pop(1);
  EXPECT_EQ(b.pad(), 0u);
}

// ------------------------------------------------------------------ far end

std::vector<int16_t> frame_of(int16_t value, int rate = 16000, int channels = 1) {
  return std::vector<int16_t>(static_cast<size_t>(rate / 100) * channels, value);
}

TEST(FarEndCursor, HandsOneFarFramePerNearFrameWhenAligned) {
  FarEndQueue q;
  for (int i = 0; i < 5; ++i) q.push(i * 10 * kMs, frame_of(i).data(), 16000, 1);
  FarEndCursor c;
  std::vector<FarFrame> out;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(c.take(q, i * 10 * kMs, out), 1u) << "near frame " << i;
    EXPECT_EQ(out[0].samples[0], i);
    EXPECT_EQ(out[0].time, i * 10 * kMs);
  }
  EXPECT_EQ(c.silent(), 0u);
  EXPECT_EQ(c.stale(), 0u);
}

TEST(FarEndCursor, FramesOutOfPhaseStillPairOneToOne) {
  for (int64_t phase : {-7 * kMs, -3 * kMs, 3 * kMs, 7 * kMs}) {
    FarEndQueue q;
    for (int i = 0; i < 12; ++i) q.push(i * 10 * kMs + phase, frame_of(i).data(), 16000, 1);
    FarEndCursor c;
    std::vector<FarFrame> out;
    size_t total = 0;
    for (int i = 1; i < 10; ++i) {
      const size_t n = c.take(q, i * 10 * kMs, out);
      EXPECT_EQ(n, 1u) << "phase " << phase / kMs << " ms, near frame " << i;
      total += n;
    }
    EXPECT_EQ(total, 9u);
    EXPECT_EQ(c.silent(), 0u) << "phase " << phase / kMs;
  }
}

TEST(FarEndCursor, FramesWhoseTimeHasPassedAreDropped) {
  FarEndQueue q;
  for (int i = 0; i < 30; ++i) q.push(i * 10 * kMs, frame_of(i).data(), 16000, 1);
  FarEndCursor c;
  std::vector<FarFrame> out;
  // the canceller starts late: the backlog before its first frame is useless
  ASSERT_EQ(c.take(q, 200 * kMs, out), 1u);
  EXPECT_EQ(out[0].samples[0], 20);
  EXPECT_EQ(c.stale(), 20u);
}

TEST(FarEndCursor, APauseInPlaybackBecomesSilence) {
  FarEndQueue q;
  q.push(0, frame_of(1).data(), 16000, 1);
  q.push(40 * kMs, frame_of(5).data(), 16000, 1);  // nothing played from 10 to 40 ms
  FarEndCursor c;
  std::vector<FarFrame> out;
  std::vector<int16_t> got;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(c.take(q, i * 10 * kMs, out), 1u);
    got.push_back(out[0].samples[0]);
    EXPECT_EQ(out[0].samples.size(), 160u);
  }
  EXPECT_EQ(got, (std::vector<int16_t>{1, 0, 0, 0, 5}));
  EXPECT_EQ(c.silent(), 3u);
  // and the speaker going quiet for good: silence, one frame per near frame
  EXPECT_EQ(c.take(q, 50 * kMs, out), 1u);
  EXPECT_EQ(out[0].samples[0], 0);
}

TEST(FarEndCursor, NothingBeforeTheFarEndStarts) {
  FarEndQueue q;
  FarEndCursor c;
  std::vector<FarFrame> out;
  EXPECT_EQ(c.take(q, 0, out), 0u);
  q.push(100 * kMs, frame_of(9).data(), 16000, 1);
  EXPECT_EQ(c.take(q, 10 * kMs, out), 0u) << "that frame is not played yet";
  EXPECT_EQ(c.take(q, 100 * kMs, out), 1u);
  EXPECT_EQ(out[0].samples[0], 9);
}

TEST(FarEndCursor, StartsOverAfterAJumpOfTheNearEnd) {
  FarEndQueue q;
  for (int i = 0; i < 3; ++i) q.push(i * 10 * kMs, frame_of(i).data(), 16000, 1);
  FarEndCursor c;
  std::vector<FarFrame> out;
  c.take(q, 0, out);
  q.push(5000 * kMs, frame_of(7).data(), 16000, 1);
  // a seek five seconds on: no 500 frames of silence, just the frame of then
  EXPECT_EQ(c.take(q, 5000 * kMs, out), 1u);
  EXPECT_EQ(out[0].samples[0], 7);
}

TEST(FarEndCursor, KeepsTheFarEndsOwnFormat) {
  FarEndQueue q;
  q.push(0, frame_of(3, 48000, 2).data(), 48000, 2);
  FarEndCursor c;
  std::vector<FarFrame> out;
  ASSERT_EQ(c.take(q, 0, out), 1u);
  EXPECT_EQ(out[0].rate, 48000);
  EXPECT_EQ(out[0].channels, 2);
  EXPECT_EQ(out[0].samples.size(), 960u);
  ASSERT_EQ(c.take(q, 10 * kMs, out), 1u);  // silence in the same format
  EXPECT_EQ(out[0].samples.size(), 960u);
}

TEST(FarEndQueue, IsBoundedAndDropsTheOldestFrames) {
  FarEndQueue q(10);
  for (int i = 0; i < 25; ++i) q.push(i * 10 * kMs, frame_of(i).data(), 16000, 1);
  EXPECT_EQ(q.size(), 10u);
  EXPECT_EQ(q.overflowed(), 15u);
  EXPECT_EQ(q.pushed(), 25u);
  FarEndCursor c;
  std::vector<FarFrame> out;
  ASSERT_EQ(c.take(q, 150 * kMs, out), 1u);
  EXPECT_EQ(out[0].samples[0], 15);
}

TEST(FarEndQueue, CloseEmptiesItAndReopenAcceptsFramesAgain) {
  FarEndQueue q;
  q.push(0, frame_of(1).data(), 16000, 1);
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_EQ(q.size(), 0u);
  q.reopen();
  EXPECT_FALSE(q.closed());
}

TEST(ProbeRegistry, PairsByNameAndRefusesASecondProbeOfTheSameName) {
  auto &r = ProbeRegistry::instance();
  auto a = std::make_shared<FarEndQueue>(), b = std::make_shared<FarEndQueue>();
  ASSERT_TRUE(r.add("unit-probe", a));
  EXPECT_TRUE(r.add("unit-probe", a)) << "the same probe again is fine";
  EXPECT_FALSE(r.add("unit-probe", b));
  EXPECT_EQ(r.find("unit-probe"), a);
  EXPECT_EQ(r.find("other"), nullptr);
  r.remove("unit-probe", b.get());  // not the holder: nothing happens
  EXPECT_EQ(r.find("unit-probe"), a);
  r.remove("unit-probe", a.get());
  EXPECT_EQ(r.find("unit-probe"), nullptr);
}

// ------------------------------------------------------------------ ErleMeter

TEST(ErleMeter, MeasuresTheEnergyRatioOfLoudBlocks) {
  ErleMeter m(16000, 1);
  std::vector<int16_t> in(16000 * 3), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<int16_t>(3000 * std::sin(i * 0.1));
    out[i] = static_cast<int16_t>(in[i] / 10);  // 20 dB weaker
  }
  m.add(in.data(), out.data(), in.size());
  EXPECT_NEAR(m.erle_db(), 20.0, 0.1);
  ASSERT_EQ(m.series().size(), 3u);
  EXPECT_NEAR(m.series()[2], 20.0, 0.1);
  EXPECT_NEAR(m.input_dbfs(), 20 * std::log10(3000 / 32768.0 / std::sqrt(2.0)), 0.1);
}

TEST(ErleMeter, QuietBlocksAndEarlyWindowsAreLeftOut) {
  ErleMeter m(8000, 1, 1.0, -50.0);
  std::vector<int16_t> loud(8000, 5000), quiet(8000, 10), zero(8000, 0), half(8000, 2500);
  m.add(loud.data(), loud.data(), 8000);   // second 0: 0 dB (not converged)
  m.add(quiet.data(), zero.data(), 8000);  // second 1: below the floor
  m.add(loud.data(), half.data(), 8000);   // second 2: 6 dB
  std::vector<double> s = m.series();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_NEAR(s[0], 0.0, 0.01);
  EXPECT_TRUE(std::isnan(s[1]));
  EXPECT_NEAR(m.erle_db(1.0), 6.02, 0.01);
  EXPECT_NEAR(m.erle_db(0.0), 10 * std::log10(2.0 / 1.25), 0.01);
}

// ------------------------------------------------------------------ synthetic echo

TEST(SyntheticEcho, PseudoSpeechIsDeterministicAtTheAskedLevel) {
  PseudoSpeech a(16000, 42), b(16000, 42), c(16000, 43);
  std::vector<float> x = a.generate(16000 * 4), y = b.generate(16000 * 4),
                     z = c.generate(16000 * 4);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
  std::vector<float> active;
  size_t silent = 0;
  for (float v : x) v == 0.0f ? ++silent : (active.push_back(v), 0);
  EXPECT_NEAR(rms_dbfs(active), -26.0, 1.5);
  // pauses between words, as speech has
  EXPECT_GT(silent, x.size() / 10);
  EXPECT_LT(silent, x.size() / 2);
}

TEST(SyntheticEcho, TheEchoComesAfterTheDelayAtTheAskedGain) {
  const int rate = 16000;
  EchoPathSpec spec;
  spec.delay_ms = 40;
  spec.echo_gain_db = -6;
  spec.noise_dbfs = -120;
  EchoPath path(rate, spec);
  EXPECT_EQ(path.delay_samples(), 640u);
  // white noise through it, fed in uneven pieces
  Rng rng(1);
  std::vector<float> far(rate * 2), mic(far.size());
  for (float &v : far) v = static_cast<float>(0.1 * rng.symmetric());
  path.process(far.data(), mic.data(), 1000);
  path.process(far.data() + 1000, mic.data() + 1000, far.size() - 1000);
  for (size_t i = 0; i < 640; ++i)
    ASSERT_LT(std::fabs(mic[i]), 1e-5) << "echo before the delay at " << i;
  const std::vector<float> tail(mic.begin() + rate / 2, mic.end()),
      src(far.begin() + rate / 2, far.end());
  // white noise: the echo's energy is the response's energy (6 dB down),
  // less what the speaker's band-pass removes from a flat spectrum
  EXPECT_NEAR(rms_dbfs(tail) - rms_dbfs(src), -6.0, 3.0);
}

// ------------------------------------------------------------------ EchoCanceller

struct CancellerRun {
  double erle_db, delta_db;
};

// Far-end speech through the echo path; `talk` adds a visitor's voice. With
// far_rate above rate the probe sees the same voice at far_rate (linear
// interpolation: the library's own resampler removes the images).
CancellerRun run_canceller(int rate, int far_rate, double seconds, bool far, bool talk,
                           Settings settings = {}) {
  EchoCanceller ec(settings);
  EXPECT_TRUE(ec.configure(rate, 1));
  PseudoSpeech far_speech(rate, 1), near_speech(rate, 2);
  EchoPathSpec spec;
  EchoPath path(rate, spec);
  ErleMeter meter(rate, 1);
  const size_t n = rate / 100, fn = far_rate / 100, up = far_rate / rate;
  std::vector<float> f(n), mic(n), voice(n);
  std::vector<int16_t> in(n), out(n), far16(fn);
  float last = 0;
  for (int i = 0; i < seconds * 100; ++i) {
    far_speech.generate(f.data(), n);
    if (!far) std::fill(f.begin(), f.end(), 0.0f);
    path.process(f.data(), mic.data(), n);
    if (talk) {
      near_speech.generate(voice.data(), n);
      for (size_t k = 0; k < n; ++k) mic[k] += voice[k];
    }
    for (size_t k = 0; k < n; ++k) in[k] = to_s16(mic[k]);
    if (far) {
      for (size_t k = 0; k < n; ++k) {
        for (size_t j = 0; j < up; ++j)
          far16[k * up + j] = to_s16(last + (f[k] - last) * static_cast<float>(j + 1) / up);
        last = f[k];
      }
      EXPECT_TRUE(ec.analyze_far(far16.data(), far_rate, 1));
    }
    out = in;
    EXPECT_TRUE(ec.process_near(out.data(), 0));
    meter.add(in.data(), out.data(), n);
  }
  return {meter.erle_db(5.0), meter.output_dbfs(5.0) - meter.input_dbfs(5.0)};
}

TEST(EchoCanceller, RemovesASyntheticEchoAt16kHz) {
  CancellerRun r = run_canceller(16000, 16000, 12, true, false);
  EXPECT_GE(r.erle_db, 25.0) << "steady-state ERLE";
}

TEST(EchoCanceller, RemovesTheEchoOfAFarEndAtAnotherRate) {
  // the door plays 48 kHz and records 16 kHz: the library resamples the far end
  CancellerRun r = run_canceller(16000, 48000, 12, true, false);
  EXPECT_GE(r.erle_db, 20.0);
}

TEST(EchoCanceller, LeavesNearEndSpeechAloneWithoutFarEnd) {
  Settings s;
  s.noise_suppression = NoiseSuppression::Off;
  CancellerRun r = run_canceller(16000, 16000, 8, false, true, s);
  EXPECT_NEAR(r.delta_db, 0.0, 3.0) << "a visitor talking alone is not echo";
}

TEST(EchoCanceller, RefusesFormatsTheLibraryDoesNotTake) {
  EchoCanceller ec;
  EXPECT_FALSE(ec.configure(44100, 1));
  EXPECT_FALSE(ec.configure(16000, 3));
  EXPECT_TRUE(ec.configure(48000, 2));
  std::vector<int16_t> frame(960, 100);
  EXPECT_TRUE(ec.process_near(frame.data(), 0));
  EXPECT_FALSE(ec.analyze_far(frame.data(), 22050, 1));
}

TEST(EchoCanceller, WithEverythingOffTheAudioIsUnchanged) {
  Settings s;
  s.echo_cancel = false;
  s.noise_suppression = NoiseSuppression::Off;
  s.high_pass_filter = false;
  s.gain_control = false;
  EchoCanceller ec(s);
  ASSERT_TRUE(ec.configure(16000, 1));
  PseudoSpeech voice(16000, 3);
  std::vector<float> v = voice.generate(160 * 50);
  std::vector<int16_t> in = to_s16(v), out = in;
  for (size_t i = 0; i < 50; ++i) ASSERT_TRUE(ec.process_near(out.data() + i * 160, 0));
  // the float round trip may move a sample by one step, no more
  for (size_t i = 0; i < in.size(); ++i) ASSERT_NEAR(in[i], out[i], 1) << "sample " << i;
}

}  // namespace
