// A deterministic stand-in for a visitor's voice and a door's echo path, so
// the echo canceller can be tested and benchmarked without recordings.
//
// PseudoSpeech is voiced syllables (a glottal pulse train with a wandering
// pitch through three formant resonators, the formants changing per syllable)
// and unvoiced ones (noise through a high resonance), under a syllable-rate
// envelope with pauses between words. It has what matters to an echo
// canceller: a speech-like spectrum that changes every 100-300 ms, onsets,
// and silences. EchoPath turns it into what the door's microphone hears: the
// speaker's sound after a delay and a decaying room response, plus a little
// noise of the microphone's own.
//
// Everything is seeded: the same arguments give the same samples on every
// machine, so a test's bound and a bench figure mean the same thing each run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace portier::aec {

// A small PRNG of our own: std's distributions may differ between libraries.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {  // xorshift64*
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545f4914f6cdd1dull;
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  double symmetric() { return 2.0 * uniform() - 1.0; }                      // [-1, 1)
  double gaussian();                                                        // N(0, 1)

 private:
  uint64_t s_;
};

class PseudoSpeech {
 public:
  // level_dbfs: the RMS of the non-silent parts (the active speech level);
  // -26 dBFS is the usual nominal level of speech in telephony.
  PseudoSpeech(int rate, uint64_t seed, double level_dbfs = -26.0);
  // The next n samples, as floats in [-1, 1].
  void generate(float *out, size_t n);
  std::vector<float> generate(size_t n);

 private:
  struct Resonator {  // two-pole band-pass, unity gain at its centre
    double b0 = 0, a1 = 0, a2 = 0, y1 = 0, y2 = 0;
    void tune(double freq, double bandwidth, int rate);
    double step(double x);
  };
  void next_segment();

  int rate_;
  Rng rng_;
  double gain_;
  // the current segment: a syllable or a pause
  size_t seg_len_ = 0, seg_pos_ = 0;
  bool voiced_ = false, pause_ = true;
  double level_ = 0;
  double f0_ = 120, f0_drift_ = 0, phase_ = 0;
  Resonator formant_[3];
  Resonator fricative_;
  int syllables_left_ = 0;  // in the current word
};

// Delay, then a room: an FIR whose taps decay exponentially (early
// reflections and a short tail), low-passed by a small speaker, scaled to
// the echo's gain relative to the far-end signal.
struct EchoPathSpec {
  double delay_ms = 40;
  double tail_ms = 30;       // length of the room response
  double decay_ms = 8;       // its 1/e decay time
  double echo_gain_db = -6;  // energy of the echo against the far end
  double noise_dbfs = -70;   // white noise of the microphone
  uint64_t seed = 7;
};

class EchoPath {
 public:
  EchoPath(int rate, const EchoPathSpec &spec);
  // What the microphone records while `far` plays: the echo plus noise.
  // Keeps its state across calls, so a stream can be fed in pieces.
  void process(const float *far, float *mic, size_t n);
  size_t delay_samples() const { return delay_; }
  const std::vector<float> &room_response() const { return taps_; }  // after the delay

 private:
  size_t delay_;
  std::vector<float> taps_;
  std::vector<float> line_;  // the far samples the next output still needs, then the new ones
  Rng noise_rng_;
  double noise_gain_;
};

// Float [-1, 1] to S16 with rounding and clipping, and back.
int16_t to_s16(float x);
std::vector<int16_t> to_s16(const std::vector<float> &x);
inline float from_s16(int16_t x) { return x / 32768.0f; }

}  // namespace portier::aec
