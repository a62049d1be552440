/**
 * SECTION:element-portierenc
 * @title: portierenc
 * @short_description: picks the best H.264 or VP8 encoder present and sets it up for live video
 *
 * portierenc is a bin that holds the best video encoder this machine has for
 * the negotiated codec, configured for a live call. It looks for it the way
 * GStreamer's autodetect elements look for a sink, when it goes to READY:
 *
 * - The codec is the #GstPortierEnc:codec property, or, when that is `auto`,
 *   the first of `video/x-h264` and `video/x-vp8` that the downstream peer
 *   accepts, in the peer's order (H.264 when the peer takes anything).
 * - The candidates are the video encoders whose source template can produce
 *   that codec. Hardware encoders (klass containing "Hardware") come first,
 *   then the others by rank; rank NONE is left out, as autodetect does, unless
 *   the factory is named in #GstPortierEnc:try-first, which is tried before
 *   everything else (#GstPortierEnc:prefer-hardware=false: by rank alone).
 *   `GST_PLUGIN_FEATURE_RANK=x264enc:NONE,openh264enc:MAX` forces a choice
 *   without touching portier.
 * - Each candidate is brought to READY in turn, on a bus of its own, and the
 *   first that gets there is kept: a hardware encoder whose device is missing
 *   or busy fails here and the next one is tried. The chosen factory is in the
 *   read-only #GstPortierEnc:encoder property (`gst-launch-1.0 -v` shows it).
 *
 * The encoder is then set up for real time from a per-encoder table (plugins/
 * portierenc/encoder_table.cpp): no B-frames or lookahead, zero-latency tuning,
 * the #GstPortierEnc:bitrate and a keyframe at least every
 * #GstPortierEnc:keyframe-interval frames. A hardware vendor adds a row for
 * its encoder, or writes a table file named by the PORTIER_ENCODER_TABLE
 * environment variable or the #GstPortierEnc:encoder-table property:
 *
 * |[
 * [acmeh264enc]
 * target-bitrate = ${bps}
 * gop-length = ${keyframe-interval}
 * ]|
 *
 * `${kbps}`, `${bps}` and `${keyframe-interval}` stand for the element's
 * settings; a property the chosen encoder does not have is skipped (debug log),
 * a value it does not take is skipped with a warning.
 *
 * H.264 leaves through h264parse with config-interval=-1, so SPS and PPS
 * precede every IDR frame and a device that joins in the middle of a call can
 * decode the next keyframe; the profile is constrained-baseline whenever the
 * encoder and downstream allow it. A #GstForceKeyUnit event from downstream
 * (rtpfork sends one when a device joins, a relay when a phone sends PLI)
 * reaches the encoder, which makes the next frame a keyframe. A videoconvert
 * in front adapts the camera's format to the encoder (passthrough when they
 * agree).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -v videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=15/1 ! \
 *   portierenc bitrate=800 keyframe-interval=150 ! rtph264pay pt=96 ! \
 *   udpsink host=127.0.0.1 port=5004 sync=false
 * ]| Sends H.264 over RTP with the best encoder present (the codec follows from
 * rtph264pay); pipelines/door-send.sh runs it with a receiver that decodes it.
 */
#include "gstportierenc.h"

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "encoder_choice.h"
#include "encoder_table.h"

GST_DEBUG_CATEGORY_STATIC(gst_portier_enc_debug);
#define GST_CAT_DEFAULT gst_portier_enc_debug

namespace encpick = portier::encpick;

enum {
  PROP_0,
  PROP_CODEC,
  PROP_BITRATE,
  PROP_KEYFRAME_INTERVAL,
  PROP_PREFER_HARDWARE,
  PROP_TRY_FIRST,
  PROP_ENCODER_TABLE,
  PROP_ENCODER,
  N_PROPS,
};
static GParamSpec *properties[N_PROPS];

#define DEFAULT_CODEC GST_PORTIER_ENC_CODEC_AUTO
#define DEFAULT_BITRATE 1000          // kbit/s
#define DEFAULT_KEYFRAME_INTERVAL 60  // frames: 4 s at 15 fps, 2 s at 30 fps
#define DEFAULT_PREFER_HARDWARE TRUE
#define TABLE_ENV "PORTIER_ENCODER_TABLE"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-h264; video/x-vp8"));

GType gst_portier_enc_codec_get_type(void) {
  static gsize id = 0;
  static const GEnumValue values[] = {
      {GST_PORTIER_ENC_CODEC_AUTO, "The first of H.264 and VP8 that downstream accepts", "auto"},
      {GST_PORTIER_ENC_CODEC_H264, "H.264", "h264"},
      {GST_PORTIER_ENC_CODEC_VP8, "VP8", "vp8"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&id))
    g_once_init_leave(&id, g_enum_register_static("GstPortierEncCodec", values));
  return id;
}

struct PortierEncPrivate {
  std::mutex lock;
  // settings
  GstPortierEncCodec codec = DEFAULT_CODEC;
  guint bitrate = DEFAULT_BITRATE;
  guint keyframe_interval = DEFAULT_KEYFRAME_INTERVAL;
  bool prefer_hardware = DEFAULT_PREFER_HARDWARE;
  std::string try_first;
  std::string encoder_table;

  // Built when going to READY, torn down when going back to NULL.
  std::string chosen;
  encpick::EncoderRow row;          // the chosen encoder's row (empty if it has none)
  GstElement *encoder = nullptr;    // a reference
  std::vector<GstElement *> chain;  // our children, upstream first
};

struct _GstPortierEnc {
  GstBin parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  PortierEncPrivate *priv;
};

#define gst_portier_enc_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstPortierEnc, gst_portier_enc, GST_TYPE_BIN,
                        GST_DEBUG_CATEGORY_INIT(gst_portier_enc_debug, "portierenc", 0,
                                                "Encoder picker"))
GST_ELEMENT_REGISTER_DEFINE(portierenc, "portierenc", GST_RANK_NONE, GST_TYPE_PORTIER_ENC)

using Lock = std::lock_guard<std::mutex>;

static const char *codec_caps(GstPortierEncCodec codec) {
  return codec == GST_PORTIER_ENC_CODEC_VP8 ? "video/x-vp8" : "video/x-h264";
}

static const char *codec_name(GstPortierEncCodec codec) {
  return codec == GST_PORTIER_ENC_CODEC_VP8 ? "VP8" : "H.264";
}

// ------------------------------------------------------------------ the codec

// The first of H.264 and VP8 in the order the downstream peer lists them;
// H.264 when the peer takes anything or nothing is linked yet.
static bool codec_from_downstream(GstPortierEnc *self, GstPortierEncCodec *codec) {
  GstCaps *peer = gst_pad_peer_query_caps(self->srcpad, nullptr);
  bool found = false;
  if (!peer || gst_caps_is_any(peer)) {
    *codec = GST_PORTIER_ENC_CODEC_H264;
    found = true;
  } else {
    for (guint i = 0; i < gst_caps_get_size(peer) && !found; ++i) {
      const gchar *name = gst_structure_get_name(gst_caps_get_structure(peer, i));
      if (g_str_equal(name, "video/x-h264")) {
        *codec = GST_PORTIER_ENC_CODEC_H264;
        found = true;
      } else if (g_str_equal(name, "video/x-vp8")) {
        *codec = GST_PORTIER_ENC_CODEC_VP8;
        found = true;
      }
    }
  }
  GST_DEBUG_OBJECT(self, "downstream accepts %" GST_PTR_FORMAT, peer);
  if (peer) gst_caps_unref(peer);
  return found;
}

// ------------------------------------------------------------------ the choice

// Every video encoder whose source template can produce the codec, except
// portierenc itself (its own template says it can).
static std::vector<encpick::Candidate> list_candidates(GstPortierEnc *self, const char *caps_str) {
  GstElementFactory *own = gst_element_get_factory(GST_ELEMENT(self));
  GList *encoders = gst_element_factory_list_get_elements(
      GST_ELEMENT_FACTORY_TYPE_ENCODER | GST_ELEMENT_FACTORY_TYPE_MEDIA_VIDEO, GST_RANK_NONE);
  GstCaps *caps = gst_caps_from_string(caps_str);
  GList *fitting = gst_element_factory_list_filter(encoders, caps, GST_PAD_SRC, FALSE);
  std::vector<encpick::Candidate> out;
  for (GList *l = fitting; l; l = l->next) {
    GstElementFactory *f = GST_ELEMENT_FACTORY(l->data);
    if (own && g_str_equal(GST_OBJECT_NAME(f), GST_OBJECT_NAME(own))) continue;
    const gchar *klass = gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS);
    out.push_back({GST_OBJECT_NAME(f), gst_plugin_feature_get_rank(GST_PLUGIN_FEATURE(f)),
                   klass && strstr(klass, "Hardware") != nullptr});
  }
  gst_plugin_feature_list_free(fitting);
  gst_plugin_feature_list_free(encoders);
  gst_caps_unref(caps);
  return out;
}

// True when the encoder's source caps name constrained-baseline among its
// profiles. Asked in READY, where hardware encoders report what the device
// can do; a template without profiles tells nothing, so no profile is forced.
static bool offers_constrained_baseline(GstElement *encoder) {
  GstPad *src = gst_element_get_static_pad(encoder, "src");
  if (!src) return false;
  GstCaps *caps = gst_pad_query_caps(src, nullptr);
  GstCaps *cb = gst_caps_from_string("video/x-h264,profile=constrained-baseline");
  bool named = false;
  for (guint i = 0; i < gst_caps_get_size(caps) && !named; ++i)
    named = gst_structure_has_field(gst_caps_get_structure(caps, i), "profile");
  const bool ok = named && gst_caps_can_intersect(caps, cb);
  gst_caps_unref(cb);
  gst_caps_unref(caps);
  gst_object_unref(src);
  return ok;
}

// Creates `name` and brings it to READY on a private bus, so that a failing
// candidate's error does not reach the application. Returns a (non-floating)
// reference in NULL state, or nullptr with the reason in *why.
static GstElement *probe(GstPortierEnc *self, const std::string &name, bool *constrained_baseline,
                         std::string *why) {
  GstElement *el = gst_element_factory_make(name.c_str(), "encoder");
  if (!el) {
    *why = "cannot be created";
    return nullptr;
  }
  gst_object_ref_sink(el);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(el, bus);
  const bool ok = gst_element_set_state(el, GST_STATE_READY) != GST_STATE_CHANGE_FAILURE;
  if (ok) {
    *constrained_baseline = offers_constrained_baseline(el);
  } else if (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError *err = nullptr;
    gst_message_parse_error(msg, &err, nullptr);
    *why = std::string("no READY: ") + err->message;
    g_error_free(err);
    gst_message_unref(msg);
  } else {
    *why = "no READY";
  }
  gst_element_set_state(el, GST_STATE_NULL);
  gst_element_set_bus(el, nullptr);
  gst_bus_set_flushing(bus, TRUE);
  gst_object_unref(bus);
  if (!ok) {
    GST_INFO_OBJECT(self, "%s: %s", name.c_str(), why->c_str());
    gst_object_unref(el);
    return nullptr;
  }
  return el;
}

// One "property = value" of the table onto the encoder. Never fails: what the
// encoder does not have or take is logged and skipped.
static void apply_setting(GstPortierEnc *self, GstElement *encoder,
                          const encpick::ResolvedSetting &s) {
  const char *factory = GST_OBJECT_NAME(gst_element_get_factory(encoder));
  GParamSpec *pspec = g_object_class_find_property(G_OBJECT_GET_CLASS(encoder), s.property.c_str());
  if (!pspec || !(pspec->flags & G_PARAM_WRITABLE)) {
    GST_DEBUG_OBJECT(self, "%s has no writable property %s: skipped", factory, s.property.c_str());
    return;
  }
  GValue v = G_VALUE_INIT;
  g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(pspec));
  if (!gst_value_deserialize_with_pspec(&v, s.value.c_str(), pspec)) {
    GST_WARNING_OBJECT(self, "%s: \"%s\" is not a value of %s (%s): skipped", factory,
                       s.value.c_str(), s.property.c_str(), g_type_name(G_VALUE_TYPE(&v)));
    g_value_unset(&v);
    return;
  }
  if (g_param_value_validate(pspec, &v))
    GST_WARNING_OBJECT(self, "%s: %s=%s is out of range: clamped", factory, s.property.c_str(),
                       s.value.c_str());
  g_object_set_property(G_OBJECT(encoder), s.property.c_str(), &v);
  g_value_unset(&v);
  GST_DEBUG_OBJECT(self, "%s: %s=%s", factory, s.property.c_str(), s.value.c_str());
}

// ------------------------------------------------------------------ the chain

static void teardown(GstPortierEnc *self) {
  PortierEncPrivate *p = self->priv;
  std::vector<GstElement *> chain;
  GstElement *encoder;
  bool had_choice;
  {
    Lock l(p->lock);
    chain.swap(p->chain);
    encoder = p->encoder;
    p->encoder = nullptr;
    had_choice = !p->chosen.empty();
    p->chosen.clear();
    p->row = {};
  }
  gst_ghost_pad_set_target(GST_GHOST_PAD(self->sinkpad), nullptr);
  gst_ghost_pad_set_target(GST_GHOST_PAD(self->srcpad), nullptr);
  for (GstElement *el : chain) {
    gst_element_set_state(el, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(self), el);
  }
  if (encoder) gst_object_unref(encoder);
  if (had_choice) g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_ENCODER]);
}

// videoconvert ! ENCODER [! capsfilter ! h264parse], between the ghost pads.
static bool build_chain(GstPortierEnc *self, GstPortierEncCodec codec, GstElement *encoder,
                        bool constrained_baseline) {
  std::vector<GstElement *> chain;
  auto make = [&](const char *factory, const char *name) {
    GstElement *el = gst_element_factory_make(factory, name);
    if (!el)
      GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("Element %s is missing", factory),
                        ("portierenc needs %s from GStreamer's plugins", factory));
    return el;
  };
  GstElement *convert = make("videoconvert", "convert");
  if (!convert) return false;
  chain.push_back(convert);
  chain.push_back(encoder);
  bool ok = true;
  if (codec == GST_PORTIER_ENC_CODEC_H264) {
    if (constrained_baseline) {
      GstElement *profile = make("capsfilter", "profile");
      GstCaps *caps = gst_caps_from_string("video/x-h264,profile=constrained-baseline");
      if (profile) g_object_set(profile, "caps", caps, nullptr);
      gst_caps_unref(caps);
      ok = ok && profile;
      if (profile) chain.push_back(profile);
    }
    // SPS and PPS before every IDR: a device joining mid-call, or one whose
    // first packets were lost, needs them to decode the next keyframe.
    GstElement *parse = make("h264parse", "parse");
    ok = ok && parse;
    if (parse) {
      g_object_set(parse, "config-interval", -1, nullptr);
      chain.push_back(parse);
    }
  }
  // The bin takes its own reference of the encoder; priv->encoder keeps ours.
  for (GstElement *el : chain) gst_bin_add(GST_BIN(self), el);
  for (size_t i = 0; ok && i + 1 < chain.size(); ++i)
    if (!gst_element_link(chain[i], chain[i + 1])) {
      GST_ELEMENT_ERROR(
          self, CORE, NEGOTIATION, (nullptr),
          ("cannot link %s to %s", GST_OBJECT_NAME(chain[i]), GST_OBJECT_NAME(chain[i + 1])));
      ok = false;
    }
  {
    Lock l(self->priv->lock);
    self->priv->chain = chain;
  }
  if (!ok) return false;
  GstPad *sink = gst_element_get_static_pad(chain.front(), "sink");
  GstPad *src = gst_element_get_static_pad(chain.back(), "src");
  ok = gst_ghost_pad_set_target(GST_GHOST_PAD(self->sinkpad), sink) &&
       gst_ghost_pad_set_target(GST_GHOST_PAD(self->srcpad), src);
  gst_object_unref(sink);
  gst_object_unref(src);
  if (!ok) GST_ELEMENT_ERROR(self, CORE, PAD, (nullptr), ("cannot set the ghost pads' targets"));
  return ok;
}

static bool load_table(GstPortierEnc *self, const std::string &path, encpick::EncoderTable *table) {
  *table = encpick::EncoderTable::builtin();
  if (path.empty()) return true;
  std::string error;
  if (!table->merge_file(path, &error)) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Bad encoder table"), ("%s", error.c_str()));
    return false;
  }
  GST_INFO_OBJECT(self, "encoder table %s merged", path.c_str());
  return true;
}

// NULL -> READY: the codec, the candidates, the probe, the settings, the chain.
static bool pick_and_build(GstPortierEnc *self) {
  PortierEncPrivate *p = self->priv;
  GstPortierEncCodec codec;
  encpick::ChoicePolicy policy;
  encpick::Targets targets;
  std::string table_path;
  {
    Lock l(p->lock);
    codec = p->codec;
    policy.prefer_hardware = p->prefer_hardware;
    policy.try_first = encpick::split_names(p->try_first);
    targets.bitrate_kbps = p->bitrate;
    targets.keyframe_interval = p->keyframe_interval;
    table_path = p->encoder_table;
  }
  if (table_path.empty()) {
    const char *env = g_getenv(TABLE_ENV);
    if (env) table_path = env;
  }
  encpick::EncoderTable table;
  if (!load_table(self, table_path, &table)) return false;

  if (codec == GST_PORTIER_ENC_CODEC_AUTO && !codec_from_downstream(self, &codec)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Downstream takes neither H.264 nor VP8"),
                      (nullptr));
    return false;
  }

  const encpick::Ordering ordering =
      encpick::order_candidates(list_candidates(self, codec_caps(codec)), policy, table);
  std::string tried;  // for the error message when nothing works
  for (const auto &[name, why] : ordering.left_out) {
    GST_DEBUG_OBJECT(self, "%s left out: %s", name.c_str(), why.c_str());
    tried += "\n  " + name + ": left out, " + why;
  }
  GstElement *encoder = nullptr;
  bool constrained_baseline = false;
  for (const std::string &name : ordering.order) {
    std::string why;
    encoder = probe(self, name, &constrained_baseline, &why);
    if (encoder) break;
    tried += "\n  " + name + ": " + why;
  }
  if (!encoder) {
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN, ("No usable %s encoder", codec_name(codec)),
                      ("candidates:%s", tried.empty() ? " none" : tried.c_str()));
    return false;
  }

  const std::string chosen = GST_OBJECT_NAME(gst_element_get_factory(encoder));
  const encpick::EncoderRow *row = table.find(chosen);
  if (row) {
    for (const encpick::ResolvedSetting &s : encpick::resolve(*row, targets))
      apply_setting(self, encoder, s);
  } else {
    GST_INFO_OBJECT(self, "%s has no row in the encoder table: its own defaults apply",
                    chosen.c_str());
  }
  // The profile only when downstream can take it too (an SDP answer may have
  // asked for another).
  if (constrained_baseline && codec == GST_PORTIER_ENC_CODEC_H264) {
    GstCaps *cb = gst_caps_from_string("video/x-h264,profile=constrained-baseline");
    GstCaps *peer = gst_pad_peer_query_caps(self->srcpad, nullptr);
    constrained_baseline = !peer || gst_caps_can_intersect(peer, cb);
    if (peer) gst_caps_unref(peer);
    gst_caps_unref(cb);
  }
  GST_INFO_OBJECT(self, "%s encoder: %s%s", codec_name(codec), chosen.c_str(),
                  constrained_baseline ? ", constrained-baseline" : "");
  {
    Lock l(p->lock);
    p->chosen = chosen;
    p->row = row ? *row : encpick::EncoderRow{chosen, {}, {}};
    p->encoder = encoder;
  }
  g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_ENCODER]);
  return build_chain(self, codec, encoder, constrained_baseline);
}

// A new bitrate while the encoder exists: its bitrate settings again. Most
// encoders take a new bitrate while playing (x264enc documents it).
static void update_bitrate(GstPortierEnc *self) {
  PortierEncPrivate *p = self->priv;
  GstElement *encoder;
  encpick::EncoderRow row;
  encpick::Targets targets;
  {
    Lock l(p->lock);
    if (!p->encoder) return;
    encoder = GST_ELEMENT(gst_object_ref(p->encoder));
    row = p->row;
    targets.bitrate_kbps = p->bitrate;
    targets.keyframe_interval = p->keyframe_interval;
  }
  for (const encpick::ResolvedSetting &s : encpick::resolve(row, targets))
    if (s.uses_bitrate) apply_setting(self, encoder, s);
  gst_object_unref(encoder);
}

// ------------------------------------------------------------------ properties

static void gst_portier_enc_set_property(GObject *object, guint prop_id, const GValue *value,
                                         GParamSpec *pspec) {
  GstPortierEnc *self = GST_PORTIER_ENC(object);
  PortierEncPrivate *p = self->priv;
  if (prop_id == PROP_BITRATE) {
    {
      Lock l(p->lock);
      p->bitrate = g_value_get_uint(value);
    }
    update_bitrate(self);
    return;
  }
  Lock l(p->lock);
  switch (prop_id) {
    case PROP_CODEC:
      p->codec = static_cast<GstPortierEncCodec>(g_value_get_enum(value));
      break;
    case PROP_KEYFRAME_INTERVAL:
      p->keyframe_interval = g_value_get_uint(value);
      break;
    case PROP_PREFER_HARDWARE:
      p->prefer_hardware = g_value_get_boolean(value);
      break;
    case PROP_TRY_FIRST:
      p->try_first = g_value_get_string(value) ? g_value_get_string(value) : "";
      break;
    case PROP_ENCODER_TABLE:
      p->encoder_table = g_value_get_string(value) ? g_value_get_string(value) : "";
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_portier_enc_get_property(GObject *object, guint prop_id, GValue *value,
                                         GParamSpec *pspec) {
  PortierEncPrivate *p = GST_PORTIER_ENC(object)->priv;
  Lock l(p->lock);
  auto string_or_null = [](const std::string &s) { return s.empty() ? nullptr : s.c_str(); };
  switch (prop_id) {
    case PROP_CODEC:
      g_value_set_enum(value, p->codec);
      break;
    case PROP_BITRATE:
      g_value_set_uint(value, p->bitrate);
      break;
    case PROP_KEYFRAME_INTERVAL:
      g_value_set_uint(value, p->keyframe_interval);
      break;
    case PROP_PREFER_HARDWARE:
      g_value_set_boolean(value, p->prefer_hardware);
      break;
    case PROP_TRY_FIRST:
      g_value_set_string(value, string_or_null(p->try_first));
      break;
    case PROP_ENCODER_TABLE:
      g_value_set_string(value, string_or_null(p->encoder_table));
      break;
    case PROP_ENCODER:
      g_value_set_string(value, string_or_null(p->chosen));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

// ------------------------------------------------------------------ life cycle

static GstStateChangeReturn gst_portier_enc_change_state(GstElement *element,
                                                         GstStateChange transition) {
  GstPortierEnc *self = GST_PORTIER_ENC(element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY && !pick_and_build(self)) {
    teardown(self);
    return GST_STATE_CHANGE_FAILURE;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if ((transition == GST_STATE_CHANGE_NULL_TO_READY && ret == GST_STATE_CHANGE_FAILURE) ||
      transition == GST_STATE_CHANGE_READY_TO_NULL)
    teardown(self);
  return ret;
}

static void gst_portier_enc_finalize(GObject *object) {
  GstPortierEnc *self = GST_PORTIER_ENC(object);
  if (self->priv->encoder) gst_object_unref(self->priv->encoder);
  delete self->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_portier_enc_init(GstPortierEnc *self) {
  self->priv = new PortierEncPrivate();
  // Targets come at READY, once the codec is known; pads without a target
  // still link, by their templates.
  GstElementClass *klass = GST_ELEMENT_GET_CLASS(self);
  self->sinkpad = gst_ghost_pad_new_no_target_from_template(
      "sink", gst_element_class_get_pad_template(klass, "sink"));
  self->srcpad = gst_ghost_pad_new_no_target_from_template(
      "src", gst_element_class_get_pad_template(klass, "src"));
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

static void gst_portier_enc_class_init(GstPortierEncClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_portier_enc_set_property;
  gobject_class->get_property = gst_portier_enc_get_property;
  gobject_class->finalize = gst_portier_enc_finalize;

  // Read when the element goes to READY: no mutability flag, NULL state only.
  constexpr auto at_start = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_CODEC] = g_param_spec_enum(
      "codec", "Codec", "Codec to encode; auto: the first of H.264 and VP8 downstream accepts",
      GST_TYPE_PORTIER_ENC_CODEC, DEFAULT_CODEC, at_start);
  properties[PROP_BITRATE] =
      g_param_spec_uint("bitrate", "Bitrate", "Target bitrate in kbit/s (also while playing)", 1,
                        2000000, DEFAULT_BITRATE,
                        static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                 GST_PARAM_MUTABLE_PLAYING));
  properties[PROP_KEYFRAME_INTERVAL] = g_param_spec_uint(
      "keyframe-interval", "Keyframe interval",
      "Largest distance between two keyframes, in frames (forced keyframes come on top)", 1,
      G_MAXINT, DEFAULT_KEYFRAME_INTERVAL, at_start);
  properties[PROP_PREFER_HARDWARE] = g_param_spec_boolean(
      "prefer-hardware", "Prefer hardware",
      "Try hardware encoders (klass \"Hardware\") before software ones of higher rank",
      DEFAULT_PREFER_HARDWARE, at_start);
  properties[PROP_TRY_FIRST] = g_param_spec_string(
      "try-first", "Try first",
      "Comma-separated encoder factories to try before the others, in this order, even at "
      "rank none",
      nullptr, at_start);
  properties[PROP_ENCODER_TABLE] = g_param_spec_string(
      "encoder-table", "Encoder table",
      "File of per-encoder settings merged over the built-in table (default: $" TABLE_ENV ")",
      nullptr, at_start);
  properties[PROP_ENCODER] = g_param_spec_string(
      "encoder", "Encoder", "Factory name of the chosen encoder (set in READY and above)", nullptr,
      static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_properties(gobject_class, N_PROPS, properties);

  element_class->change_state = gst_portier_enc_change_state;
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Encoder picker", "Codec/Encoder/Video",
      "Picks the best H.264 or VP8 encoder present, hardware first, and sets it up for live "
      "video: no B-frames, bitrate, keyframe interval, keyframes on request",
      "portier developers");
  gst_type_mark_as_plugin_api(GST_TYPE_PORTIER_ENC_CODEC, static_cast<GstPluginAPIFlags>(0));
}
