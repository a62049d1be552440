/**
 * SECTION:element-portieraecprobe
 * @title: portieraecprobe
 * @short_description: the far end for portieraec: what the door's speaker plays
 *
 * portieraecprobe sits on the playback path, just before the audio sink, and
 * passes the audio through untouched (the very same buffers). On the way it
 * cuts a copy into 10 ms frames, stamps each with the moment it will leave
 * the speaker (the buffer's running time plus the latency the pipeline gave
 * the sinks) and keeps the last two seconds of them for the #GstPortierAec
 * element on the capture path whose #GstPortierAec:probe-name names this
 * probe. Both must be in one pipeline (they compare running times).
 *
 * The probe's name is its key: it is claimed when the element goes to READY,
 * and a second probe with the same name in the process fails to start. When
 * the probe stops (PAUSED to READY), the canceller notices, passes audio
 * through and says so once.
 *
 * Formats: S16LE interleaved, 8, 16, 32 or 48 kHz, mono or stereo; the
 * canceller may run at another rate.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 audiotestsrc is-live=true wave=pink-noise volume=0.3 ! \
 *   audio/x-raw,rate=16000,channels=1 ! portieraecprobe ! tee name=speaker \
 *   speaker. ! queue ! fakesink \
 *   speaker. ! queue ! audioconvert ! audioecho delay=40000000 intensity=0.6 ! audioconvert ! \
 *   portieraec ! fakesink
 * ]| The test signal is "played" (to fakesink) through the probe, and the same
 * signal with a 40 ms echo added stands in for the microphone. At a door:
 * `... ! portieraecprobe ! alsasink` and `alsasrc ! portieraec ! ...`.
 * pipelines/aec-loop.sh runs this loop and prints the echo's level before and
 * after the canceller.
 */
#include "gstportieraecprobe.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "far_end_queue.h"
#include "frame_batcher.h"

GST_DEBUG_CATEGORY_STATIC(gst_portier_aec_probe_debug);
#define GST_CAT_DEFAULT gst_portier_aec_probe_debug

namespace aec = portier::aec;

enum {
  PROP_0,
  PROP_PLAYBACK_LATENCY,
  PROP_QUEUED_FRAMES,
};

#define AEC_CAPS \
  "audio/x-raw, format=(string)" GST_AUDIO_NE(S16) ", layout=(string)interleaved, "        \
  "rate=(int){ 48000, 32000, 16000, 8000 }, channels=(int)[ 1, 2 ]"

struct AecProbePrivate {
  // Owned jointly with the registry and, while paired, the canceller: a
  // canceller never reads a queue that was freed under it.
  std::shared_ptr<aec::FarEndQueue> queue = std::make_shared<aec::FarEndQueue>();
  std::string registered_name;  // guarded by the state change lock
  aec::FrameBatcher batcher;    // streaming thread
  // What the pipeline told the sinks to add to each running time
  // (GST_EVENT_LATENCY): the delay between this element and the speaker.
  std::atomic<GstClockTime> latency{0};
};

struct _GstPortierAecProbe {
  GstAudioFilter parent;
  AecProbePrivate *priv;
};

#define gst_portier_aec_probe_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstPortierAecProbe, gst_portier_aec_probe, GST_TYPE_AUDIO_FILTER,
                        GST_DEBUG_CATEGORY_INIT(gst_portier_aec_probe_debug, "portieraecprobe", 0,
                                                "echo canceller's speaker probe"))
GST_ELEMENT_REGISTER_DEFINE(portieraecprobe, "portieraecprobe", GST_RANK_NONE,
                            GST_TYPE_PORTIER_AEC_PROBE)

static gboolean gst_portier_aec_probe_setup(GstAudioFilter *filter, const GstAudioInfo *info) {
  GstPortierAecProbe *self = GST_PORTIER_AEC_PROBE(filter);
  GST_INFO_OBJECT(self, "far end: %d Hz, %d channel(s)", GST_AUDIO_INFO_RATE(info),
                  GST_AUDIO_INFO_CHANNELS(info));
  self->priv->batcher.configure(GST_AUDIO_INFO_RATE(info), GST_AUDIO_INFO_CHANNELS(info));
  return TRUE;
}

// Called in passthrough mode with the buffer that goes downstream unchanged:
// only read from it.
static GstFlowReturn gst_portier_aec_probe_transform_ip(GstBaseTransform *trans, GstBuffer *buf) {
  GstPortierAecProbe *self = GST_PORTIER_AEC_PROBE(trans);
  AecProbePrivate *p = self->priv;
  if (p->batcher.channels() == 0) return GST_FLOW_NOT_NEGOTIATED;
  if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT)) p->batcher.clear();
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return GST_FLOW_OK;  // nothing to learn from it
  const size_t frame_bytes = sizeof(int16_t) * p->batcher.channels();
  const GstClockTime pts = GST_BUFFER_PTS(buf);
  p->batcher.push(
      reinterpret_cast<const int16_t *>(map.data), map.size / frame_bytes,
      GST_CLOCK_TIME_IS_VALID(pts) ? static_cast<int64_t>(pts) : aec::FrameBatcher::kNoTime);
  gst_buffer_unmap(buf, &map);

  const GstClockTime latency = p->latency.load();
  const size_t n = p->batcher.ready();
  for (size_t i = 0; i < n; ++i) {
    const int64_t t = p->batcher.frame_time(i);
    const guint64 rt = t < 0 ? GST_CLOCK_TIME_NONE
                             : gst_segment_to_running_time(&trans->segment, GST_FORMAT_TIME,
                                                           static_cast<guint64>(t));
    if (!GST_CLOCK_TIME_IS_VALID(rt)) continue;  // outside the segment: never played
    p->queue->push(static_cast<int64_t>(rt + latency), p->batcher.frame(i), p->batcher.rate(),
                   p->batcher.channels());
  }
  p->batcher.pop(n);
  return GST_FLOW_OK;
}

static gboolean gst_portier_aec_probe_src_event(GstBaseTransform *trans, GstEvent *event) {
  GstPortierAecProbe *self = GST_PORTIER_AEC_PROBE(trans);
  if (GST_EVENT_TYPE(event) == GST_EVENT_LATENCY) {
    GstClockTime latency = 0;
    gst_event_parse_latency(event, &latency);
    GST_INFO_OBJECT(self, "playback latency %" GST_TIME_FORMAT, GST_TIME_ARGS(latency));
    self->priv->latency = latency;
  }
  return GST_BASE_TRANSFORM_CLASS(parent_class)->src_event(trans, event);
}

static gboolean gst_portier_aec_probe_sink_event(GstBaseTransform *trans, GstEvent *event) {
  GstPortierAecProbe *self = GST_PORTIER_AEC_PROBE(trans);
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP) self->priv->batcher.clear();
  return GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(trans, event);
}

static GstStateChangeReturn gst_portier_aec_probe_change_state(GstElement *element,
                                                               GstStateChange transition) {
  GstPortierAecProbe *self = GST_PORTIER_AEC_PROBE(element);
  AecProbePrivate *p = self->priv;
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY: {
      gchar *name = gst_object_get_name(GST_OBJECT(element));
      const bool ok = aec::ProbeRegistry::instance().add(name, p->queue);
      if (ok) p->registered_name = name;
      g_free(name);
      if (!ok) {
        // Two probes under one name: a canceller could pair with the wrong
        // speaker, so refuse rather than guess.
        GST_ELEMENT_ERROR(self, RESOURCE, BUSY,
                          ("Another portieraecprobe is named \"%s\"", GST_OBJECT_NAME(element)),
                          ("give each probe its own name and set portieraec's probe-name"));
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    }
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      p->batcher.clear();
      p->queue->reopen();
      break;
    default:
      break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      p->queue->close();  // the canceller learns that the speaker path is gone
      p->latency = 0;
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      aec::ProbeRegistry::instance().remove(p->registered_name, p->queue.get());
      p->registered_name.clear();
      break;
    default:
      break;
  }
  return ret;
}

static void gst_portier_aec_probe_get_property(GObject *object, guint prop_id, GValue *value,
                                               GParamSpec *pspec) {
  GstPortierAecProbe *self = GST_PORTIER_AEC_PROBE(object);
  switch (prop_id) {
    case PROP_PLAYBACK_LATENCY:
      g_value_set_uint64(value, self->priv->latency.load());
      break;
    case PROP_QUEUED_FRAMES:
      g_value_set_uint(value, static_cast<guint>(self->priv->queue->size()));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_portier_aec_probe_finalize(GObject *object) {
  GstPortierAecProbe *self = GST_PORTIER_AEC_PROBE(object);
  // a probe disposed without going back to NULL still frees its name
  if (!self->priv->registered_name.empty())
    aec::ProbeRegistry::instance().remove(self->priv->registered_name, self->priv->queue.get());
  self->priv->queue->close();
  delete self->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_portier_aec_probe_init(GstPortierAecProbe *self) {
  self->priv = new AecProbePrivate();
  // The speaker must hear exactly what it would without the probe.
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_gap_aware(GST_BASE_TRANSFORM(self), TRUE);
}

static void gst_portier_aec_probe_class_init(GstPortierAecProbeClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  GstAudioFilterClass *filter_class = GST_AUDIO_FILTER_CLASS(klass);

  gobject_class->get_property = gst_portier_aec_probe_get_property;
  gobject_class->finalize = gst_portier_aec_probe_finalize;
  constexpr auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      gobject_class, PROP_PLAYBACK_LATENCY,
      g_param_spec_uint64("playback-latency", "Playback latency",
                          "Nanoseconds between a buffer's running time here and its playing "
                          "(the latency the pipeline gave its sinks)",
                          0, G_MAXUINT64, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_QUEUED_FRAMES,
      g_param_spec_uint("queued-frames", "Queued frames",
                        "10 ms far-end frames waiting for the canceller (at most 200)", 0,
                        G_MAXUINT, 0, ro));

  element_class->change_state = gst_portier_aec_probe_change_state;
  trans_class->transform_ip = gst_portier_aec_probe_transform_ip;
  trans_class->transform_ip_on_passthrough = TRUE;
  trans_class->src_event = gst_portier_aec_probe_src_event;
  trans_class->sink_event = gst_portier_aec_probe_sink_event;
  filter_class->setup = gst_portier_aec_probe_setup;

  GstCaps *caps = gst_caps_from_string(AEC_CAPS);
  gst_audio_filter_class_add_pad_templates(filter_class, caps);
  gst_caps_unref(caps);
  gst_element_class_set_static_metadata(
      element_class, "Echo canceller speaker probe", "Filter/Audio",
      "Passes the speaker's audio through and hands it to portieraec as the far end",
      "portier developers");
}
