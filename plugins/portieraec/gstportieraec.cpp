/**
 * SECTION:element-portieraec
 * @title: portieraec
 * @short_description: software echo canceller for the door's microphone
 *
 * A door station's speaker is a hand's width from its microphone: without
 * echo cancellation the resident hears their own voice come back. portieraec
 * sits on the capture path and removes from the microphone's audio what the
 * #GstPortierAecProbe named by #GstPortierAec:probe-name saw on the playback
 * path, with webrtc-audio-processing's echo canceller; it can also suppress
 * noise, remove low-frequency rumble and even out the level.
 *
 * Audio is processed in 10 ms frames. Before each one the canceller takes
 * from the probe the far-end audio played during that frame, matched by
 * running time (the probe adds the playback latency), so both streams must
 * run in one pipeline. What the timestamps cannot know (the sound card's own
 * buffering, the air between speaker and microphone) the library finds by
 * itself with #GstPortierAec:delay-agnostic, or is told with
 * #GstPortierAec:delay-ms.
 *
 * Without its probe (none of that name, or it stopped) the canceller passes
 * the audio through untouched and posts one warning; it pairs again as soon
 * as the probe runs. Audio whose samples do not fill a last 10 ms frame waits
 * for the next buffer, so the element adds up to 10 ms of latency.
 *
 * The #GstPortierAec:stats structure reports the library's own measure of
 * the echo return loss enhancement (ERLE) and its delay estimate, and counts
 * frames (processed, passed through, far-end frames used, silent and late).
 *
 * Formats: S16LE interleaved, 8, 16, 32 or 48 kHz, mono or stereo.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 audiotestsrc is-live=true wave=pink-noise volume=0.3 ! \
 *   audio/x-raw,rate=16000,channels=1 ! portieraecprobe ! tee name=speaker \
 *   speaker. ! queue ! fakesink \
 *   speaker. ! queue ! audioconvert ! audioecho delay=40000000 intensity=0.6 ! audioconvert ! \
 *   portieraec ! fakesink
 * ]| A test signal stands in for the far end and, with a 40 ms echo added,
 * for the microphone; pipelines/aec-loop.sh runs it and prints the echo's
 * level before and after. At a door: `alsasrc ! portieraec ! opusenc ! ...`
 * with `... ! portieraecprobe ! alsasink` in the same pipeline.
 */
#include "gstportieraec.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "echo_canceller.h"
#include "far_end_queue.h"
#include "frame_batcher.h"

GST_DEBUG_CATEGORY_STATIC(gst_portier_aec_debug);
#define GST_CAT_DEFAULT gst_portier_aec_debug

namespace aec = portier::aec;

enum {
  PROP_0,
  PROP_PROBE_NAME,
  PROP_ECHO_CANCEL,
  PROP_ECHO_SUPPRESSION_LEVEL,
  PROP_NOISE_SUPPRESSION,
  PROP_GAIN_CONTROL,
  PROP_HIGH_PASS_FILTER,
  PROP_DELAY_AGNOSTIC,
  PROP_EXTENDED_FILTER,
  PROP_DELAY_MS,
  PROP_STATS,
};

#define DEFAULT_PROBE_NAME "portieraecprobe0"
#define DEFAULT_DELAY_MS 0
#define MAX_DELAY_MS 500

#define AEC_CAPS \
  "audio/x-raw, format=(string)" GST_AUDIO_NE(S16) ", layout=(string)interleaved, "        \
  "rate=(int){ 48000, 32000, 16000, 8000 }, channels=(int)[ 1, 2 ]"

// ------------------------------------------------------------------ enums

#define GST_TYPE_PORTIER_AEC_NOISE_SUPPRESSION (gst_portier_aec_noise_suppression_get_type())
static GType gst_portier_aec_noise_suppression_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(aec::NoiseSuppression::Off), "No noise suppression", "none"},
      {static_cast<gint>(aec::NoiseSuppression::Low), "Low suppression", "low"},
      {static_cast<gint>(aec::NoiseSuppression::Moderate), "Moderate suppression", "moderate"},
      {static_cast<gint>(aec::NoiseSuppression::High), "High suppression", "high"},
      {static_cast<gint>(aec::NoiseSuppression::VeryHigh), "Very high suppression", "very-high"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstPortierAecNoiseSuppression", values));
  return type;
}

#define GST_TYPE_PORTIER_AEC_ECHO_SUPPRESSION (gst_portier_aec_echo_suppression_get_type())
static GType gst_portier_aec_echo_suppression_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(aec::EchoSuppression::Low), "Low suppression", "low"},
      {static_cast<gint>(aec::EchoSuppression::Moderate), "Moderate suppression", "moderate"},
      {static_cast<gint>(aec::EchoSuppression::High), "High suppression", "high"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstPortierAecEchoSuppression", values));
  return type;
}

// ------------------------------------------------------------------ element

struct Counters {
  std::atomic<guint64> frames{0};              // processed by the library
  std::atomic<guint64> passthrough_frames{0};  // passed untouched: no probe
  std::atomic<guint64> far_frames{0};          // far-end frames given to the library
};

struct AecPrivate {
  // Settings: written by the application, read by the streaming thread,
  // which applies them to the library between two frames.
  std::mutex lock;
  std::string probe_name = DEFAULT_PROBE_NAME;
  aec::Settings settings;
  guint delay_ms = DEFAULT_DELAY_MS;
  bool settings_changed = false;
  bool probe_changed = false;
  aec::Metrics metrics;  // the last reading, taken by the streaming thread
  guint64 far_silent = 0, far_stale = 0, far_overflowed = 0, errors = 0;
  bool linked = false;

  // The streaming thread's own.
  aec::EchoCanceller canceller;
  aec::FrameBatcher batcher;
  std::shared_ptr<aec::FarEndQueue> probe;
  aec::FarEndCursor cursor;
  std::vector<aec::FarFrame> far;
  bool warned_unpaired = false;
  bool discont = true;
  guint frames_since_metrics = 0;

  Counters counters;
};

struct _GstPortierAec {
  GstAudioFilter parent;
  AecPrivate *priv;
};

#define gst_portier_aec_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstPortierAec, gst_portier_aec, GST_TYPE_AUDIO_FILTER,
                        GST_DEBUG_CATEGORY_INIT(gst_portier_aec_debug, "portieraec", 0,
                                                "echo canceller"))
GST_ELEMENT_REGISTER_DEFINE(portieraec, "portieraec", GST_RANK_NONE, GST_TYPE_PORTIER_AEC)

using Lock = std::lock_guard<std::mutex>;

static gboolean gst_portier_aec_setup(GstAudioFilter *filter, const GstAudioInfo *info) {
  GstPortierAec *self = GST_PORTIER_AEC(filter);
  AecPrivate *p = self->priv;
  const int rate = GST_AUDIO_INFO_RATE(info), channels = GST_AUDIO_INFO_CHANNELS(info);
  {
    Lock l(p->lock);
    p->canceller.apply(p->settings);
    p->settings_changed = false;
  }
  if (!p->canceller.configure(rate, channels)) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Could not start the echo canceller"),
                      ("webrtc-audio-processing refused %d Hz, %d channel(s)", rate, channels));
    return FALSE;
  }
  GST_INFO_OBJECT(self, "near end: %d Hz, %d channel(s)", rate, channels);
  p->batcher.configure(rate, channels);
  p->cursor.reset();
  return TRUE;
}

// Pairs with the probe, or notices that it went away. Streaming thread.
static void update_pairing(GstPortierAec *self) {
  AecPrivate *p = self->priv;
  std::string name;
  bool renamed;
  {
    Lock l(p->lock);
    name = p->probe_name;
    renamed = p->probe_changed;
    p->probe_changed = false;
  }
  if (renamed || (p->probe && p->probe->closed())) {
    if (p->probe) {
      GST_ELEMENT_WARNING(self, STREAM, FAILED,
                          ("The echo probe stopped: audio passes through without echo "
                           "cancellation"),
                          ("probe \"%s\" closed or renamed", name.c_str()));
      p->warned_unpaired = true;
    }
    p->probe.reset();
  }
  if (!p->probe) {
    std::shared_ptr<aec::FarEndQueue> q = aec::ProbeRegistry::instance().find(name);
    if (q && !q->closed()) {
      GST_INFO_OBJECT(self, "paired with probe \"%s\"", name.c_str());
      p->probe = std::move(q);
      p->cursor.reset();
      // the filter learnt another speaker, or none: start it afresh
      p->canceller.configure(p->canceller.rate(), p->canceller.channels());
      p->warned_unpaired = false;
    } else if (!p->warned_unpaired) {
      GST_ELEMENT_WARNING(self, RESOURCE, NOT_FOUND,
                          ("No echo probe named \"%s\": audio passes through without echo "
                           "cancellation",
                           name.c_str()),
                          ("add a portieraecprobe of that name to the playback path"));
      p->warned_unpaired = true;
    }
  }
  Lock l(p->lock);
  p->linked = p->probe != nullptr;
}

// Processes the complete frames the batcher holds into `out` (n frames).
static void process_frames(GstPortierAec *self, size_t n, int16_t *out) {
  AecPrivate *p = self->priv;
  GstBaseTransform *trans = GST_BASE_TRANSFORM(self);
  guint delay_ms;
  bool echo_cancel;
  {
    Lock l(p->lock);
    if (p->settings_changed) {
      p->canceller.apply(p->settings);
      p->settings_changed = false;
    }
    delay_ms = p->delay_ms;
    echo_cancel = p->settings.echo_cancel;
  }
  if (echo_cancel) update_pairing(self);
  const size_t frame_values = p->batcher.frame_samples() * p->batcher.channels();
  for (size_t i = 0; i < n; ++i) {
    int16_t *frame = p->batcher.frame(i);
    if (echo_cancel && !p->probe) {  // unpaired: untouched
      ++p->counters.passthrough_frames;
    } else {
      if (echo_cancel) {
        const int64_t t = p->batcher.frame_time(i);
        const guint64 rt = t < 0 ? GST_CLOCK_TIME_NONE
                                 : gst_segment_to_running_time(&trans->segment, GST_FORMAT_TIME,
                                                               static_cast<guint64>(t));
        if (GST_CLOCK_TIME_IS_VALID(rt)) {
          const size_t got = p->cursor.take(*p->probe, static_cast<int64_t>(rt), p->far);
          for (size_t k = 0; k < got; ++k)
            p->canceller.analyze_far(p->far[k].samples.data(), p->far[k].rate, p->far[k].channels);
          p->counters.far_frames += got;
        }
      }
      p->canceller.process_near(frame, static_cast<int>(delay_ms));
      ++p->counters.frames;
    }
    std::copy(frame, frame + frame_values, out + i * frame_values);
  }
  // The library's metrics are read here, in its own thread, about once a
  // second, so the stats property never touches it from another thread.
  p->frames_since_metrics += static_cast<guint>(n);
  if (p->frames_since_metrics >= 100) {
    p->frames_since_metrics = 0;
    aec::Metrics m = p->canceller.metrics();
    Lock l(p->lock);
    p->metrics = m;
    p->far_silent = p->cursor.silent();
    p->far_stale = p->cursor.stale();
    p->far_overflowed = p->probe ? p->probe->overflowed() : p->far_overflowed;
    p->errors = p->canceller.errors();
  }
}

static GstFlowReturn gst_portier_aec_submit_input_buffer(GstBaseTransform *trans,
                                                         gboolean is_discont, GstBuffer *input) {
  GstPortierAec *self = GST_PORTIER_AEC(trans);
  AecPrivate *p = self->priv;
  if (p->batcher.channels() == 0) {
    gst_buffer_unref(input);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (is_discont) p->discont = true;
  GstMapInfo map;
  if (gst_buffer_map(input, &map, GST_MAP_READ)) {
    const GstClockTime pts = GST_BUFFER_PTS(input);
    p->batcher.push(
        reinterpret_cast<const int16_t *>(map.data),
        map.size / (sizeof(int16_t) * p->batcher.channels()),
        GST_CLOCK_TIME_IS_VALID(pts) ? static_cast<int64_t>(pts) : aec::FrameBatcher::kNoTime);
    gst_buffer_unmap(input, &map);
  }
  gst_buffer_unref(input);
  return GST_FLOW_OK;
}

// One output buffer per input buffer: every complete frame the input made.
static GstFlowReturn make_output(GstPortierAec *self, size_t frames, size_t real_last,
                                 GstBuffer **outbuf) {
  AecPrivate *p = self->priv;
  const size_t frame_values = p->batcher.frame_samples() * p->batcher.channels();
  GstBuffer *buf =
      gst_buffer_new_allocate(nullptr, frames * frame_values * sizeof(int16_t), nullptr);
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_WRITE)) {
    gst_buffer_unref(buf);
    return GST_FLOW_ERROR;
  }
  const int64_t t = p->batcher.frame_time(0);
  process_frames(self, frames, reinterpret_cast<int16_t *>(map.data));
  gst_buffer_unmap(buf, &map);
  p->batcher.pop(frames);
  const size_t samples = (frames - 1) * p->batcher.frame_samples() +
                         (real_last ? real_last : p->batcher.frame_samples());
  if (real_last) gst_buffer_resize(buf, 0, samples * p->batcher.channels() * sizeof(int16_t));
  if (t >= 0) GST_BUFFER_PTS(buf) = static_cast<GstClockTime>(t);
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale_int(samples, GST_SECOND, p->batcher.rate());
  if (p->discont) {
    GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
    p->discont = false;
  }
  *outbuf = buf;
  return GST_FLOW_OK;
}

static GstFlowReturn gst_portier_aec_generate_output(GstBaseTransform *trans, GstBuffer **outbuf) {
  GstPortierAec *self = GST_PORTIER_AEC(trans);
  *outbuf = nullptr;
  const size_t n = self->priv->batcher.ready();
  if (n == 0) return GST_FLOW_OK;
  return make_output(self, n, 0, outbuf);
}

static gboolean gst_portier_aec_sink_event(GstBaseTransform *trans, GstEvent *event) {
  GstPortierAec *self = GST_PORTIER_AEC(trans);
  AecPrivate *p = self->priv;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_EOS:
      // The last samples do not fill a frame: complete it with silence,
      // process it, and send only the real samples.
      if (p->batcher.channels() && p->batcher.pending()) {
        const size_t real = p->batcher.pad();
        GstBuffer *out = nullptr;
        if (make_output(self, p->batcher.ready(), real, &out) == GST_FLOW_OK && out)
          gst_pad_push(GST_BASE_TRANSFORM_SRC_PAD(trans), out);
      }
      break;
    case GST_EVENT_FLUSH_STOP:
      p->batcher.clear();
      p->cursor.reset();
      p->discont = true;
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(trans, event);
}

// A partial frame waits for the next buffer: up to one frame of latency.
static gboolean gst_portier_aec_query(GstBaseTransform *trans, GstPadDirection direction,
                                      GstQuery *query) {
  gboolean ret = GST_BASE_TRANSFORM_CLASS(parent_class)->query(trans, direction, query);
  if (ret && direction == GST_PAD_SRC && GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency(query, &live, &min, &max);
    const GstClockTime frame = aec::FrameBatcher::kFrameMs * GST_MSECOND;
    min += frame;
    if (GST_CLOCK_TIME_IS_VALID(max)) max += frame;
    gst_query_set_latency(query, live, min, max);
  }
  return ret;
}

static gboolean gst_portier_aec_stop(GstBaseTransform *trans) {
  AecPrivate *p = GST_PORTIER_AEC(trans)->priv;
  p->batcher.clear();
  p->probe.reset();
  p->cursor.reset();
  p->warned_unpaired = false;
  Lock l(p->lock);
  p->linked = false;
  return TRUE;
}

// ------------------------------------------------------------------ properties

static GstStructure *make_stats(GstPortierAec *self) {
  AecPrivate *p = self->priv;
  Lock l(p->lock);
  const aec::Metrics &m = p->metrics;
  return gst_structure_new(
      "application/x-portieraec-stats", "probe-linked", G_TYPE_BOOLEAN, p->linked, "frames",
      G_TYPE_UINT64, p->counters.frames.load(), "passthrough-frames", G_TYPE_UINT64,
      p->counters.passthrough_frames.load(), "far-frames", G_TYPE_UINT64,
      p->counters.far_frames.load(), "far-silent-frames", G_TYPE_UINT64, p->far_silent,
      "far-late-frames", G_TYPE_UINT64, p->far_stale, "far-overflowed-frames", G_TYPE_UINT64,
      p->far_overflowed, "errors", G_TYPE_UINT64, p->errors, "metrics-valid", G_TYPE_BOOLEAN,
      m.valid, "erle", G_TYPE_INT, m.erle_db, "erle-average", G_TYPE_INT, m.erle_average_db, "erl",
      G_TYPE_INT, m.erl_db, "delay-median-ms", G_TYPE_INT, m.delay_median_ms, "delay-std-ms",
      G_TYPE_INT, m.delay_std_ms, "fraction-poor-delays", G_TYPE_DOUBLE,
      static_cast<gdouble>(m.fraction_poor_delays), nullptr);
}

static void gst_portier_aec_set_property(GObject *object, guint prop_id, const GValue *value,
                                         GParamSpec *pspec) {
  GstPortierAec *self = GST_PORTIER_AEC(object);
  AecPrivate *p = self->priv;
  Lock l(p->lock);
  aec::Settings &s = p->settings;
  switch (prop_id) {
    case PROP_PROBE_NAME: {
      const gchar *name = g_value_get_string(value);
      p->probe_name = name ? name : DEFAULT_PROBE_NAME;
      p->probe_changed = true;
      return;
    }
    case PROP_ECHO_CANCEL:
      s.echo_cancel = g_value_get_boolean(value);
      break;
    case PROP_ECHO_SUPPRESSION_LEVEL:
      s.echo_suppression = static_cast<aec::EchoSuppression>(g_value_get_enum(value));
      break;
    case PROP_NOISE_SUPPRESSION:
      s.noise_suppression = static_cast<aec::NoiseSuppression>(g_value_get_enum(value));
      break;
    case PROP_GAIN_CONTROL:
      s.gain_control = g_value_get_boolean(value);
      break;
    case PROP_HIGH_PASS_FILTER:
      s.high_pass_filter = g_value_get_boolean(value);
      break;
    case PROP_DELAY_AGNOSTIC:
      s.delay_agnostic = g_value_get_boolean(value);
      break;
    case PROP_EXTENDED_FILTER:
      s.extended_filter = g_value_get_boolean(value);
      break;
    case PROP_DELAY_MS:
      p->delay_ms = g_value_get_uint(value);
      return;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      return;
  }
  p->settings_changed = true;
}

static void gst_portier_aec_get_property(GObject *object, guint prop_id, GValue *value,
                                         GParamSpec *pspec) {
  GstPortierAec *self = GST_PORTIER_AEC(object);
  AecPrivate *p = self->priv;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, make_stats(self));
    return;
  }
  Lock l(p->lock);
  const aec::Settings &s = p->settings;
  switch (prop_id) {
    case PROP_PROBE_NAME:
      g_value_set_string(value, p->probe_name.c_str());
      break;
    case PROP_ECHO_CANCEL:
      g_value_set_boolean(value, s.echo_cancel);
      break;
    case PROP_ECHO_SUPPRESSION_LEVEL:
      g_value_set_enum(value, static_cast<gint>(s.echo_suppression));
      break;
    case PROP_NOISE_SUPPRESSION:
      g_value_set_enum(value, static_cast<gint>(s.noise_suppression));
      break;
    case PROP_GAIN_CONTROL:
      g_value_set_boolean(value, s.gain_control);
      break;
    case PROP_HIGH_PASS_FILTER:
      g_value_set_boolean(value, s.high_pass_filter);
      break;
    case PROP_DELAY_AGNOSTIC:
      g_value_set_boolean(value, s.delay_agnostic);
      break;
    case PROP_EXTENDED_FILTER:
      g_value_set_boolean(value, s.extended_filter);
      break;
    case PROP_DELAY_MS:
      g_value_set_uint(value, p->delay_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

// ------------------------------------------------------------------ life cycle

static void gst_portier_aec_finalize(GObject *object) {
  delete GST_PORTIER_AEC(object)->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_portier_aec_init(GstPortierAec *self) { self->priv = new AecPrivate(); }

static void gst_portier_aec_class_init(GstPortierAecClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  GstAudioFilterClass *filter_class = GST_AUDIO_FILTER_CLASS(klass);
  gobject_class->set_property = gst_portier_aec_set_property;
  gobject_class->get_property = gst_portier_aec_get_property;
  gobject_class->finalize = gst_portier_aec_finalize;

  const aec::Settings defaults;
  constexpr auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                               GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_property(
      gobject_class, PROP_PROBE_NAME,
      g_param_spec_string("probe-name", "Probe name",
                          "Name of the portieraecprobe on the speaker path of this pipeline",
                          DEFAULT_PROBE_NAME, rw));
  g_object_class_install_property(
      gobject_class, PROP_ECHO_CANCEL,
      g_param_spec_boolean("echo-cancel", "Echo cancel",
                           "Remove the speaker's echo (needs the probe; without it audio "
                           "passes through)",
                           defaults.echo_cancel, rw));
  g_object_class_install_property(
      gobject_class, PROP_ECHO_SUPPRESSION_LEVEL,
      g_param_spec_enum("echo-suppression-level", "Echo suppression level",
                        "How hard the stage after the adaptive filter suppresses what echo is "
                        "left (higher: less echo, more clipped double talk)",
                        GST_TYPE_PORTIER_AEC_ECHO_SUPPRESSION,
                        static_cast<gint>(defaults.echo_suppression), rw));
  g_object_class_install_property(
      gobject_class, PROP_NOISE_SUPPRESSION,
      g_param_spec_enum("noise-suppression", "Noise suppression",
                        "Suppression of stationary noise (street, fans)",
                        GST_TYPE_PORTIER_AEC_NOISE_SUPPRESSION,
                        static_cast<gint>(defaults.noise_suppression), rw));
  g_object_class_install_property(
      gobject_class, PROP_GAIN_CONTROL,
      g_param_spec_boolean("gain-control", "Gain control",
                           "Adaptive digital gain toward a steady speech level",
                           defaults.gain_control, rw));
  g_object_class_install_property(gobject_class, PROP_HIGH_PASS_FILTER,
                                  g_param_spec_boolean("high-pass-filter", "High-pass filter",
                                                       "Remove DC and rumble below about 80 Hz",
                                                       defaults.high_pass_filter, rw));
  g_object_class_install_property(
      gobject_class, PROP_DELAY_AGNOSTIC,
      g_param_spec_boolean("delay-agnostic", "Delay agnostic",
                           "Let the library estimate the speaker-to-microphone delay itself "
                           "(webrtc::DelayAgnostic)",
                           defaults.delay_agnostic, rw));
  g_object_class_install_property(
      gobject_class, PROP_EXTENDED_FILTER,
      g_param_spec_boolean("extended-filter", "Extended filter",
                           "A longer adaptive filter, for longer echo tails and delay errors "
                           "(webrtc::ExtendedFilter)",
                           defaults.extended_filter, rw));
  g_object_class_install_property(
      gobject_class, PROP_DELAY_MS,
      g_param_spec_uint("delay-ms", "Delay (ms)",
                        "Delay between speaker and microphone that the running times do not "
                        "show (sound card buffers, the air), passed to the library",
                        0, MAX_DELAY_MS, DEFAULT_DELAY_MS, rw));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "Pairing, frame counts, the library's ERLE/ERL (dB) and delay "
                         "estimate (ms)",
                         GST_TYPE_STRUCTURE,
                         static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  trans_class->submit_input_buffer = gst_portier_aec_submit_input_buffer;
  trans_class->generate_output = gst_portier_aec_generate_output;
  trans_class->sink_event = gst_portier_aec_sink_event;
  trans_class->query = gst_portier_aec_query;
  trans_class->stop = gst_portier_aec_stop;
  filter_class->setup = gst_portier_aec_setup;

  GstCaps *caps = gst_caps_from_string(AEC_CAPS);
  gst_audio_filter_class_add_pad_templates(filter_class, caps);
  gst_caps_unref(caps);
  gst_element_class_set_static_metadata(
      element_class, "Echo canceller", "Filter/Effect/Audio",
      "Removes the door speaker's echo from the microphone (webrtc-audio-processing), with the "
      "far end from a portieraecprobe",
      "portier developers");
  gst_type_mark_as_plugin_api(GST_TYPE_PORTIER_AEC_NOISE_SUPPRESSION,
                              static_cast<GstPluginAPIFlags>(0));
  gst_type_mark_as_plugin_api(GST_TYPE_PORTIER_AEC_ECHO_SUPPRESSION,
                              static_cast<GstPluginAPIFlags>(0));
}
