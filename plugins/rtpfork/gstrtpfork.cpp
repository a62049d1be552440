/**
 * SECTION:element-rtpfork
 * @title: rtpfork
 * @short_description: RTP tee for early media, one branch per ringing device
 *
 * rtpfork sends one RTP stream (and its RTCP) to any number of branches, one
 * per device that answered 183, and lets the application pick the winner when
 * one device answers 200. What a plain tee does not do:
 *
 * - A new branch starts with a picture: the element asks upstream for a
 *   keyframe (a #GstForceKeyUnit event, which an encoder or a relay turns into
 *   RTCP PLI/FIR), de-duplicated per SSRC with one retry, and it replays the
 *   packets cached since the last keyframe, so a device that joins in the
 *   middle of a long GOP decodes at once.
 * - Each branch sees one SSRC and an unbroken sequence, even when the source
 *   restarts; packets are copied only when they must be rewritten.
 * - Branches are added, selected and removed at run time with the action
 *   signals #GstRtpFork::add-branch, #GstRtpFork::select-branch and
 *   #GstRtpFork::remove-branch (or by requesting and releasing `src_%u` pads).
 *   After select-branch only the winner receives; the others wait for removal.
 * - The first packet on each branch is announced with the
 *   #GstRtpFork::branch-first-packet signal and an element message
 *   `rtpfork-first-packet` (fields `branch`, `replayed`); the `stats` property
 *   counts packets, bytes and keyframe requests per branch.
 *
 * Buffer lists go out as lists, so a udpsink downstream sends them in one
 * sendmmsg() call; no thread or queue is needed per branch. Network sinks on
 * the branches should not sync to the clock (`sync=false async=false`): the
 * packets are paced by their source already, and a sink that waits would hold
 * up every other branch.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 ! \
 *   vp8enc deadline=1 keyframe-max-dist=150 ! rtpvp8pay ! rtpfork name=fork \
 *   fork.src_0 ! udpsink host=127.0.0.1 port=5004 sync=false async=false \
 *   fork.src_1 ! udpsink host=127.0.0.1 port=5006 sync=false async=false
 * ]| Sends the same VP8 stream to two receivers; pipelines/rtpfork-two-branches.sh
 * runs it together with two receivers that show the picture.
 */
#include "gstrtpfork.h"

#include <gst/video/video-event.h>

#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "branch_sequencer.h"
#include "gop_cache.h"
#include "keyframe_detect.h"
#include "keyframe_requests.h"
#include "rtcp_packet.h"
#include "rtp_header.h"

GST_DEBUG_CATEGORY_STATIC(gst_rtp_fork_debug);
#define GST_CAT_DEFAULT gst_rtp_fork_debug

namespace rtp = portier::rtp;

enum {
  PROP_0,
  PROP_REPLAY_GOP,
  PROP_REQUEST_KEYFRAME,
  PROP_KEYFRAME_RETRY,
  PROP_KEYFRAME_MIN_INTERVAL,
  PROP_GOP_MAX_PACKETS,
  PROP_GOP_MAX_BYTES,
  PROP_STATS,
};

enum {
  SIGNAL_ADD_BRANCH,
  SIGNAL_SELECT_BRANCH,
  SIGNAL_REMOVE_BRANCH,
  SIGNAL_BRANCH_FIRST_PACKET,
  LAST_SIGNAL,
};
static guint signals[LAST_SIGNAL];

#define DEFAULT_REPLAY_GOP TRUE
#define DEFAULT_REQUEST_KEYFRAME TRUE
#define DEFAULT_KEYFRAME_RETRY 500         // ms
#define DEFAULT_KEYFRAME_MIN_INTERVAL 100  // ms
#define DEFAULT_GOP_MAX_PACKETS 3000
#define DEFAULT_GOP_MAX_BYTES (4 * 1024 * 1024)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-rtp"));
static GstStaticPadTemplate rtcp_sink_template = GST_STATIC_PAD_TEMPLATE(
    "rtcp_sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("application/x-rtcp"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src_%u", GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS("application/x-rtp"));
static GstStaticPadTemplate rtcp_src_template = GST_STATIC_PAD_TEMPLATE(
    "rtcp_src_%u", GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS("application/x-rtcp"));

// ------------------------------------------------------------------ branch pad

// What one branch knows. The sequencer and first_sent belong to the streaming
// thread; receiving and needs_replay are guarded by the element's lock; the
// counters are read by the stats property from any thread.
struct BranchState {
  guint id = 0;
  rtp::BranchSequencer sequencer;
  bool receiving = true;
  bool needs_replay = false;
  bool first_sent = false;
  std::atomic<guint64> packets{0};
  std::atomic<guint64> bytes{0};
  std::atomic<guint64> replayed{0};
};

struct _GstRtpForkPad {
  GstPad parent;
  BranchState *branch;
};

G_DEFINE_TYPE(GstRtpForkPad, gst_rtp_fork_pad, GST_TYPE_PAD)

static void gst_rtp_fork_pad_finalize(GObject *object) {
  delete GST_RTP_FORK_PAD(object)->branch;
  G_OBJECT_CLASS(gst_rtp_fork_pad_parent_class)->finalize(object);
}

static void gst_rtp_fork_pad_class_init(GstRtpForkPadClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = gst_rtp_fork_pad_finalize;
}

static void gst_rtp_fork_pad_init(GstRtpForkPad *pad) { pad->branch = new BranchState(); }

// ------------------------------------------------------------------ element

struct RtpForkPrivate {
  std::mutex lock;
  // Branches by id: the RTP pad (a GstRtpForkPad, holding the state) and the
  // optional RTCP pad. The element holds a reference on each.
  std::map<guint, GstRtpForkPad *> branches;
  std::map<guint, GstPad *> rtcp_pads;
  guint next_id = 0;
  gint selected = -1;

  // the input stream
  rtp::VideoCodec codec = rtp::VideoCodec::None;
  guint clock_rate = 90000;
  bool have_ssrc = false;
  uint32_t ssrc = 0;
  bool keyframe_wanted = false;  // asked for before the first packet
  rtp::KeyframeRequests requests;
  rtp::GopCache<GstBuffer *> gop{DEFAULT_GOP_MAX_PACKETS, DEFAULT_GOP_MAX_BYTES,
                                 [](GstBuffer *&b) { gst_buffer_unref(b); }};
  guint fku_count = 0;

  // settings
  bool replay_gop = DEFAULT_REPLAY_GOP;
  bool request_keyframe = DEFAULT_REQUEST_KEYFRAME;
  guint keyframe_retry_ms = DEFAULT_KEYFRAME_RETRY;
  guint keyframe_min_interval_ms = DEFAULT_KEYFRAME_MIN_INTERVAL;
  guint gop_max_packets = DEFAULT_GOP_MAX_PACKETS;
  guint gop_max_bytes = DEFAULT_GOP_MAX_BYTES;

  // counters
  std::atomic<guint64> packets_in{0};
  std::atomic<guint64> invalid_in{0};
  std::atomic<guint64> keyframes_in{0};
  std::atomic<guint64> rtcp_in{0};

  void reset_timing() {
    requests = rtp::KeyframeRequests(
        rtp::KeyframeRequests::Timing{static_cast<int64_t>(keyframe_retry_ms) * 1000,
                                      static_cast<int64_t>(keyframe_min_interval_ms) * 1000});
  }
};

struct _GstRtpFork {
  GstElement parent;
  GstPad *sinkpad;
  GstPad *rtcp_sinkpad;
  RtpForkPrivate *priv;
};

#define gst_rtp_fork_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstRtpFork, gst_rtp_fork, GST_TYPE_ELEMENT,
                        GST_DEBUG_CATEGORY_INIT(gst_rtp_fork_debug, "rtpfork", 0,
                                                "RTP tee for early media"))
GST_ELEMENT_REGISTER_DEFINE(rtpfork, "rtpfork", GST_RANK_NONE, GST_TYPE_RTP_FORK)

using Lock = std::lock_guard<std::mutex>;

// Ids of "src_7" / "rtcp_src_7"; -1 for a template name or garbage.
static gint id_from_name(const gchar *name, const gchar *prefix) {
  if (!name || !g_str_has_prefix(name, prefix)) return -1;
  const gchar *digits = name + strlen(prefix);
  if (!*digits || strchr(digits, '%')) return -1;
  gchar *end = nullptr;
  guint64 v = g_ascii_strtoull(digits, &end, 10);
  return (*end || v > G_MAXINT) ? -1 : static_cast<gint>(v);
}

static gint64 now_us() { return g_get_monotonic_time(); }

// Sends one GstForceKeyUnit upstream, toward the encoder or the relay that
// turns it into RTCP PLI. Never called with the lock held.
static void send_keyframe_request(GstRtpFork *self, guint count, const char *why) {
  GST_DEBUG_OBJECT(self, "asking upstream for a keyframe (%s)", why);
  gst_pad_push_event(self->sinkpad,
                     gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, count));
}

// A branch joined, was selected or asked downstream for a keyframe.
static void want_keyframe(GstRtpFork *self, const char *why) {
  RtpForkPrivate *p = self->priv;
  guint count = 0;
  {
    Lock l(p->lock);
    if (!p->request_keyframe || p->codec == rtp::VideoCodec::None) {
      // Before caps arrive we cannot know whether this is video: remember.
      if (p->request_keyframe && !p->have_ssrc) p->keyframe_wanted = true;
      return;
    }
    if (!p->have_ssrc) {
      p->keyframe_wanted = true;
      return;
    }
    if (!p->requests.request(p->ssrc, now_us())) return;
    count = ++p->fku_count;
  }
  send_keyframe_request(self, count, why);
}

// ------------------------------------------------------------------ forwarding

// The packet as this branch must see it: the same buffer when nothing changes,
// a copy with new ids when the sequencer rewrites.
static GstBuffer *for_branch(BranchState *b, GstBuffer *buf, const rtp::Header &h, gint64 now) {
  const rtp::RtpIds out = b->sequencer.map({h.ssrc, h.seq, h.timestamp}, now);
  if (out.ssrc == h.ssrc && out.seq == h.seq && out.timestamp == h.timestamp)
    return gst_buffer_ref(buf);
  GstBuffer *copy = gst_buffer_copy_deep(buf);
  GstMapInfo map;
  if (gst_buffer_map(copy, &map, GST_MAP_WRITE)) {
    rtp::rewrite(map.data, out.seq, out.timestamp, out.ssrc);
    gst_buffer_unmap(copy, &map);
  }
  return copy;
}

static bool parse_buffer(GstBuffer *buf, rtp::Header *h, rtp::VideoCodec codec, bool *key) {
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return false;
  bool ok = rtp::parse(map.data, map.size, h);
  if (ok) *key = rtp::starts_keyframe(codec, map.data + h->payload_offset, h->payload_size);
  gst_buffer_unmap(buf, &map);
  return ok;
}

struct Target {
  GstRtpForkPad *pad;               // a reference
  std::vector<GstBuffer *> replay;  // references
};

static void announce_first_packet(GstRtpFork *self, BranchState *b, guint replayed) {
  GST_INFO_OBJECT(self, "first packet on branch %u (%u replayed)", b->id, replayed);
  g_signal_emit(self, signals[SIGNAL_BRANCH_FIRST_PACKET], 0, b->id, replayed);
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(
          GST_OBJECT(self), gst_structure_new("rtpfork-first-packet", "branch", G_TYPE_UINT, b->id,
                                              "replayed", G_TYPE_UINT, replayed, nullptr)));
}

// One or more RTP packets in (a buffer or a buffer list): cache, then send to
// every receiving branch, replaying the GOP first to branches that just joined.
static GstFlowReturn forward(GstRtpFork *self, GstBuffer **bufs, guint n) {
  RtpForkPrivate *p = self->priv;
  const gint64 now = now_us();
  // Not thread_local: a branch may feed another rtpfork in the same thread.
  std::vector<rtp::Header> headers(n);
  std::vector<char> valid(n, 0);
  std::vector<Target> targets;
  guint keyframe_requests = 0, first_count = 0;
  bool first_request = false;
  std::deque<GstBuffer *> retired;  // a GOP the keyframe ended: freed after sending
  {
    Lock l(p->lock);
    const rtp::VideoCodec codec = p->codec;
    targets.reserve(p->branches.size());
    for (auto &[id, pad] : p->branches) {
      BranchState *b = pad->branch;
      if (!b->receiving) continue;
      Target t{GST_RTP_FORK_PAD(gst_object_ref(pad)), {}};
      if (b->needs_replay) {
        b->needs_replay = false;
        for (GstBuffer *c : p->gop.packets()) t.replay.push_back(gst_buffer_ref(c));
      }
      targets.push_back(std::move(t));
    }
    for (guint i = 0; i < n; ++i) {
      bool key = false;
      if (!parse_buffer(bufs[i], &headers[i], codec, &key)) {
        ++p->invalid_in;
        continue;
      }
      valid[i] = 1;
      ++p->packets_in;
      const rtp::Header &h = headers[i];
      if (!p->have_ssrc || h.ssrc != p->ssrc) {
        if (p->have_ssrc) GST_INFO_OBJECT(self, "source SSRC %08x -> %08x", p->ssrc, h.ssrc);
        p->gop.clear();  // the old stream's GOP decodes nothing of the new one
        p->have_ssrc = true;
        p->ssrc = h.ssrc;
        if (p->keyframe_wanted && codec != rtp::VideoCodec::None) {
          p->keyframe_wanted = false;
          if (p->requests.request(h.ssrc, now)) first_request = true, first_count = ++p->fku_count;
        }
      }
      if (key) {
        ++p->keyframes_in;
        p->requests.keyframe_seen(h.ssrc);
      }
      if (codec != rtp::VideoCodec::None) {
        if (p->requests.poll(h.ssrc, now)) keyframe_requests = ++p->fku_count;
        if (p->replay_gop)
          p->gop.push(gst_buffer_ref(bufs[i]), gst_buffer_get_size(bufs[i]), key, h.timestamp);
      }
    }
    retired = p->gop.take_retired();
  }
  if (first_request) send_keyframe_request(self, first_count, "join before the first packet");
  if (keyframe_requests) send_keyframe_request(self, keyframe_requests, "retry");

  for (Target &t : targets) {
    BranchState *b = t.pad->branch;
    const guint replayed = static_cast<guint>(t.replay.size());
    guint count = 0;
    guint64 bytes = 0;
    // One packet goes out as a buffer, several (a replay, an input list) as a
    // list: no list is built in the common case of one live packet.
    GstBuffer *single = nullptr;
    GstBufferList *list = nullptr;
    auto add = [&](GstBuffer *out) {
      bytes += gst_buffer_get_size(out);
      if (++count == 1) {
        single = out;
        return;
      }
      if (!list) {
        list = gst_buffer_list_new_sized(replayed + n);
        gst_buffer_list_add(list, single);
        single = nullptr;
      }
      gst_buffer_list_add(list, out);
    };
    for (GstBuffer *c : t.replay) {
      rtp::Header h;
      bool key;
      if (parse_buffer(c, &h, rtp::VideoCodec::None, &key)) add(for_branch(b, c, h, now));
      gst_buffer_unref(c);
    }
    for (guint i = 0; i < n; ++i)
      if (valid[i]) add(for_branch(b, bufs[i], headers[i], now));
    if (count > 0) {
      GstFlowReturn ret =
          list ? gst_pad_push_list(GST_PAD(t.pad), list) : gst_pad_push(GST_PAD(t.pad), single);
      // One branch failing (a device gone, a pad being released) must not
      // stop the others: log it and go on.
      if (ret != GST_FLOW_OK && ret != GST_FLOW_NOT_LINKED && ret != GST_FLOW_FLUSHING)
        GST_DEBUG_OBJECT(self, "branch %u: %s", b->id, gst_flow_get_name(ret));
      b->packets += count;
      b->bytes += bytes;
      b->replayed += replayed;
      if (!b->first_sent) {
        b->first_sent = true;
        announce_first_packet(self, b, replayed);
      }
    }
    gst_object_unref(t.pad);
  }
  for (GstBuffer *old : retired) gst_buffer_unref(old);
  return GST_FLOW_OK;
}

static GstFlowReturn gst_rtp_fork_chain(GstPad *, GstObject *parent, GstBuffer *buf) {
  GstFlowReturn ret = forward(GST_RTP_FORK(parent), &buf, 1);
  gst_buffer_unref(buf);
  return ret;
}

static GstFlowReturn gst_rtp_fork_chain_list(GstPad *, GstObject *parent, GstBufferList *list) {
  const guint n = gst_buffer_list_length(list);
  std::vector<GstBuffer *> bufs(n);
  for (guint i = 0; i < n; ++i) bufs[i] = gst_buffer_list_get(list, i);
  GstFlowReturn ret = n ? forward(GST_RTP_FORK(parent), bufs.data(), n) : GST_FLOW_OK;
  gst_buffer_list_unref(list);
  return ret;
}

// RTCP from the source (sender reports, SDES, BYE) goes to every receiving
// branch, with the SSRC rewritten where the branch's stream carries another.
static void rewrite_rtcp_ssrc(GstBuffer *buf, uint32_t from, uint32_t to) {
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_WRITE)) return;
  rtp::rewrite_rtcp_ssrc(map.data, map.size, from, to);
  gst_buffer_unmap(buf, &map);
}

static GstFlowReturn gst_rtp_fork_rtcp_chain(GstPad *, GstObject *parent, GstBuffer *buf) {
  GstRtpFork *self = GST_RTP_FORK(parent);
  RtpForkPrivate *p = self->priv;
  ++p->rtcp_in;
  struct RtcpTarget {
    GstPad *pad;
    GstRtpForkPad *branch_pad;
  };
  std::vector<RtcpTarget> targets;
  {
    Lock l(p->lock);
    for (auto &[id, pad] : p->rtcp_pads) {
      auto it = p->branches.find(id);
      if (it == p->branches.end() || !it->second->branch->receiving) continue;
      targets.push_back(
          {GST_PAD(gst_object_ref(pad)), GST_RTP_FORK_PAD(gst_object_ref(it->second))});
    }
  }
  for (RtcpTarget &t : targets) {
    const rtp::BranchSequencer &seq = t.branch_pad->branch->sequencer;
    GstBuffer *out;
    if (seq.started() && seq.ssrc() != seq.source_ssrc()) {
      out = gst_buffer_copy_deep(buf);
      rewrite_rtcp_ssrc(out, seq.source_ssrc(), seq.ssrc());
    } else {
      out = gst_buffer_ref(buf);
    }
    gst_pad_push(t.pad, out);
    gst_object_unref(t.pad);
    gst_object_unref(t.branch_pad);
  }
  gst_buffer_unref(buf);
  return GST_FLOW_OK;
}

// ------------------------------------------------------------------ events, queries

// Events go to every branch of their kind; each push stores sticky events on
// the branch pad even when it has no peer yet, so a late link still gets them.
static gboolean forward_downstream(GstRtpFork *self, bool rtcp, GstEvent *event) {
  RtpForkPrivate *p = self->priv;
  std::vector<GstPad *> pads;
  {
    Lock l(p->lock);
    if (rtcp)
      for (auto &[id, pad] : p->rtcp_pads) pads.push_back(GST_PAD(gst_object_ref(pad)));
    else
      for (auto &[id, pad] : p->branches) pads.push_back(GST_PAD(gst_object_ref(pad)));
  }
  for (GstPad *pad : pads) {
    gst_pad_push_event(pad, gst_event_ref(event));
    gst_object_unref(pad);
  }
  gst_event_unref(event);
  return TRUE;
}

static void update_stream_from_caps(GstRtpFork *self, GstCaps *caps) {
  GstStructure *s = gst_caps_get_structure(caps, 0);
  const gchar *name = gst_structure_get_string(s, "encoding-name");
  gint clock_rate = 0;
  gst_structure_get_int(s, "clock-rate", &clock_rate);
  const gchar *media = gst_structure_get_string(s, "media");
  rtp::VideoCodec codec = name ? rtp::codec_from_encoding_name(name) : rtp::VideoCodec::None;
  if (media && g_strcmp0(media, "video") != 0) codec = rtp::VideoCodec::None;
  RtpForkPrivate *p = self->priv;
  Lock l(p->lock);
  if (codec != p->codec) p->gop.clear();
  p->codec = codec;
  if (clock_rate > 0) p->clock_rate = static_cast<guint>(clock_rate);
  GST_INFO_OBJECT(self, "stream: %s, clock rate %u", name ? name : "(no encoding-name)",
                  p->clock_rate);
}

static gboolean gst_rtp_fork_sink_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  GstRtpFork *self = GST_RTP_FORK(parent);
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps;
      gst_event_parse_caps(event, &caps);
      update_stream_from_caps(self, caps);
      break;
    }
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START: {
      Lock l(self->priv->lock);
      self->priv->gop.clear();
      break;
    }
    default:
      break;
  }
  return forward_downstream(self, false, event);
}

static gboolean gst_rtp_fork_rtcp_sink_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  return forward_downstream(GST_RTP_FORK(parent), true, event);
}

static gboolean gst_rtp_fork_src_event(GstPad *pad, GstObject *parent, GstEvent *event) {
  GstRtpFork *self = GST_RTP_FORK(parent);
  if (gst_video_event_is_force_key_unit(event)) {
    // A device asked (its PLI/FIR, turned into this event by the relay): one
    // request upstream for all of them.
    gst_event_unref(event);
    want_keyframe(self, "downstream request");
    return TRUE;
  }
  const bool is_rtcp = g_str_has_prefix(GST_PAD_NAME(pad), "rtcp_");
  return gst_pad_push_event(is_rtcp ? self->rtcp_sinkpad : self->sinkpad, event);
}

static gboolean gst_rtp_fork_sink_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
      // Any RTP: branches come and go, so their peers cannot constrain the input.
      GstCaps *filter, *templ = gst_pad_get_pad_template_caps(pad);
      gst_query_parse_caps(query, &filter);
      GstCaps *result = filter ? gst_caps_intersect_full(filter, templ, GST_CAPS_INTERSECT_FIRST)
                               : gst_caps_ref(templ);
      gst_query_set_caps_result(query, result);
      gst_caps_unref(result);
      gst_caps_unref(templ);
      return TRUE;
    }
    case GST_QUERY_ALLOCATION:
      return FALSE;  // branches come and go: nothing to propose
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

static gboolean gst_rtp_fork_src_query(GstPad *pad, GstObject *parent, GstQuery *query) {
  GstRtpFork *self = GST_RTP_FORK(parent);
  if (GST_QUERY_TYPE(query) == GST_QUERY_CAPS) {
    // What the input carries, or any RTP/RTCP before it is known.
    const bool is_rtcp = g_str_has_prefix(GST_PAD_NAME(pad), "rtcp_");
    GstCaps *caps = gst_pad_get_current_caps(is_rtcp ? self->rtcp_sinkpad : self->sinkpad);
    if (!caps) caps = gst_pad_get_pad_template_caps(pad);
    GstCaps *filter;
    gst_query_parse_caps(query, &filter);
    if (filter) {
      GstCaps *i = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
      gst_caps_unref(caps);
      caps = i;
    }
    gst_query_set_caps_result(query, caps);
    gst_caps_unref(caps);
    return TRUE;
  }
  const bool is_rtcp = g_str_has_prefix(GST_PAD_NAME(pad), "rtcp_");
  return gst_pad_peer_query(is_rtcp ? self->rtcp_sinkpad : self->sinkpad, query);
}

// ------------------------------------------------------------------ pads

static gboolean copy_sticky(GstPad *, GstEvent **event, gpointer dest) {
  gst_pad_store_sticky_event(GST_PAD(dest), *event);
  return TRUE;
}

static GstPad *gst_rtp_fork_request_new_pad(GstElement *element, GstPadTemplate *templ,
                                            const gchar *name, const GstCaps *) {
  GstRtpFork *self = GST_RTP_FORK(element);
  RtpForkPrivate *p = self->priv;
  const bool is_rtcp =
      templ == gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(element), "rtcp_src_%u");
  GstPad *pad;
  guint id;
  {
    Lock l(p->lock);
    gint wanted = id_from_name(name, is_rtcp ? "rtcp_src_" : "src_");
    if (wanted >= 0) {
      id = static_cast<guint>(wanted);
    } else if (is_rtcp) {
      // "rtcp_src_%u": the RTCP of the newest branch that has none yet
      id = p->next_id;
      for (auto &[bid, b] : p->branches)
        if (!p->rtcp_pads.count(bid)) id = bid;
    } else {
      id = p->next_id;
    }
    if (is_rtcp ? p->rtcp_pads.count(id) > 0 : p->branches.count(id) > 0) {
      GST_WARNING_OBJECT(self, "branch %u already has this pad", id);
      return nullptr;
    }
    if (id >= p->next_id) p->next_id = id + 1;
    gchar *pad_name = g_strdup_printf(is_rtcp ? "rtcp_src_%u" : "src_%u", id);
    if (is_rtcp) {
      pad = gst_pad_new_from_template(templ, pad_name);
    } else {
      pad = GST_PAD(g_object_new(GST_TYPE_RTP_FORK_PAD, "name", pad_name, "direction", GST_PAD_SRC,
                                 "template", templ, nullptr));
      BranchState *b = GST_RTP_FORK_PAD(pad)->branch;
      b->id = id;
      b->sequencer = rtp::BranchSequencer(p->clock_rate);
      b->needs_replay = p->replay_gop;
      b->receiving = true;
    }
    g_free(pad_name);
    gst_pad_set_event_function(pad, gst_rtp_fork_src_event);
    gst_pad_set_query_function(pad, gst_rtp_fork_src_query);
    if (is_rtcp)
      p->rtcp_pads[id] = GST_PAD(gst_object_ref(pad));
    else
      p->branches[id] = GST_RTP_FORK_PAD(gst_object_ref(pad));
  }
  if (GST_STATE(element) > GST_STATE_READY || GST_STATE_TARGET(element) > GST_STATE_READY)
    gst_pad_set_active(pad, TRUE);
  // New branches get the stream's sticky events (stream-start, caps, segment)
  // before their first packet, as tee does; an inactive pad would refuse them.
  gst_pad_sticky_events_foreach(is_rtcp ? self->rtcp_sinkpad : self->sinkpad, copy_sticky, pad);
  gst_element_add_pad(element, pad);
  GST_INFO_OBJECT(self, "branch %u: %s pad added", id, is_rtcp ? "RTCP" : "RTP");
  if (!is_rtcp) want_keyframe(self, "branch added");
  return pad;
}

static void gst_rtp_fork_release_pad(GstElement *element, GstPad *pad) {
  GstRtpFork *self = GST_RTP_FORK(element);
  RtpForkPrivate *p = self->priv;
  GstObject *held = nullptr;
  {
    Lock l(p->lock);
    for (auto it = p->branches.begin(); it != p->branches.end(); ++it)
      if (GST_PAD(it->second) == pad) {
        held = GST_OBJECT(it->second);
        if (p->selected == static_cast<gint>(it->first)) p->selected = -1;
        p->branches.erase(it);
        break;
      }
    if (!held)
      for (auto it = p->rtcp_pads.begin(); it != p->rtcp_pads.end(); ++it)
        if (it->second == pad) {
          held = GST_OBJECT(it->second);
          p->rtcp_pads.erase(it);
          break;
        }
  }
  if (!held) return;
  GST_INFO_OBJECT(self, "releasing %s", GST_PAD_NAME(pad));
  gst_pad_set_active(pad, FALSE);
  gst_element_remove_pad(element, pad);
  gst_object_unref(held);
}

// ------------------------------------------------------------------ action signals

static guint gst_rtp_fork_add_branch(GstRtpFork *self) {
  GstElementClass *klass = GST_ELEMENT_GET_CLASS(self);
  GstPad *rtp_pad = gst_element_request_pad(
      GST_ELEMENT(self), gst_element_class_get_pad_template(klass, "src_%u"), nullptr, nullptr);
  if (!rtp_pad) return G_MAXUINT;
  const guint id = GST_RTP_FORK_PAD(rtp_pad)->branch->id;
  gchar *rtcp_name = g_strdup_printf("rtcp_src_%u", id);
  gst_element_request_pad(GST_ELEMENT(self),
                          gst_element_class_get_pad_template(klass, "rtcp_src_%u"), rtcp_name,
                          nullptr);
  g_free(rtcp_name);
  return id;
}

static gboolean gst_rtp_fork_select_branch(GstRtpFork *self, guint id) {
  RtpForkPrivate *p = self->priv;
  {
    Lock l(p->lock);
    if (!p->branches.count(id)) return FALSE;
    p->selected = static_cast<gint>(id);
    for (auto &[bid, pad] : p->branches) pad->branch->receiving = bid == id;
  }
  GST_INFO_OBJECT(self, "branch %u selected: the others stop receiving", id);
  want_keyframe(self, "branch selected");
  return TRUE;
}

static gboolean gst_rtp_fork_remove_branch(GstRtpFork *self, guint id) {
  GstPad *rtp_pad = nullptr, *rtcp_pad = nullptr;
  {
    Lock l(self->priv->lock);
    auto b = self->priv->branches.find(id);
    if (b != self->priv->branches.end()) rtp_pad = GST_PAD(gst_object_ref(b->second));
    auto r = self->priv->rtcp_pads.find(id);
    if (r != self->priv->rtcp_pads.end()) rtcp_pad = GST_PAD(gst_object_ref(r->second));
  }
  if (!rtp_pad && !rtcp_pad) return FALSE;
  for (GstPad *pad : {rtp_pad, rtcp_pad}) {
    if (!pad) continue;
    gst_element_release_request_pad(GST_ELEMENT(self), pad);
    gst_object_unref(pad);
  }
  return TRUE;
}

// ------------------------------------------------------------------ properties

static GstStructure *make_stats(GstRtpFork *self) {
  RtpForkPrivate *p = self->priv;
  Lock l(p->lock);
  GstStructure *s = gst_structure_new(
      "application/x-rtpfork-stats", "packets-in", G_TYPE_UINT64, p->packets_in.load(),
      "invalid-in", G_TYPE_UINT64, p->invalid_in.load(), "keyframes-in", G_TYPE_UINT64,
      p->keyframes_in.load(), "rtcp-in", G_TYPE_UINT64, p->rtcp_in.load(), "keyframe-requests-sent",
      G_TYPE_UINT64, static_cast<guint64>(p->requests.sent()), "keyframe-requests-suppressed",
      G_TYPE_UINT64, static_cast<guint64>(p->requests.suppressed()), "gop-packets", G_TYPE_UINT,
      static_cast<guint>(p->gop.packets().size()), "selected", G_TYPE_INT, p->selected, nullptr);
  GValue branches = G_VALUE_INIT;
  gst_value_array_init(&branches, p->branches.size());
  for (auto &[id, pad] : p->branches) {
    BranchState *b = pad->branch;
    GstStructure *bs = gst_structure_new(
        "branch", "id", G_TYPE_UINT, id, "packets", G_TYPE_UINT64, b->packets.load(), "bytes",
        G_TYPE_UINT64, b->bytes.load(), "replayed", G_TYPE_UINT64, b->replayed.load(), "receiving",
        G_TYPE_BOOLEAN, b->receiving, "ssrc", G_TYPE_UINT, b->sequencer.ssrc(), nullptr);
    GValue v = G_VALUE_INIT;
    g_value_init(&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&v, bs);
    gst_value_array_append_and_take_value(&branches, &v);
  }
  gst_structure_take_value(s, "branches", &branches);
  return s;
}

static void gst_rtp_fork_set_property(GObject *object, guint prop_id, const GValue *value,
                                      GParamSpec *pspec) {
  GstRtpFork *self = GST_RTP_FORK(object);
  RtpForkPrivate *p = self->priv;
  Lock l(p->lock);
  switch (prop_id) {
    case PROP_REPLAY_GOP:
      p->replay_gop = g_value_get_boolean(value);
      if (!p->replay_gop) p->gop.clear();
      break;
    case PROP_REQUEST_KEYFRAME:
      p->request_keyframe = g_value_get_boolean(value);
      break;
    case PROP_KEYFRAME_RETRY:
      p->keyframe_retry_ms = g_value_get_uint(value);
      p->reset_timing();
      break;
    case PROP_KEYFRAME_MIN_INTERVAL:
      p->keyframe_min_interval_ms = g_value_get_uint(value);
      p->reset_timing();
      break;
    case PROP_GOP_MAX_PACKETS:
    case PROP_GOP_MAX_BYTES:
      if (prop_id == PROP_GOP_MAX_PACKETS)
        p->gop_max_packets = g_value_get_uint(value);
      else
        p->gop_max_bytes = g_value_get_uint(value);
      p->gop.set_limits(p->gop_max_packets, p->gop_max_bytes);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_rtp_fork_get_property(GObject *object, guint prop_id, GValue *value,
                                      GParamSpec *pspec) {
  GstRtpFork *self = GST_RTP_FORK(object);
  RtpForkPrivate *p = self->priv;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, make_stats(self));
    return;
  }
  Lock l(p->lock);
  switch (prop_id) {
    case PROP_REPLAY_GOP:
      g_value_set_boolean(value, p->replay_gop);
      break;
    case PROP_REQUEST_KEYFRAME:
      g_value_set_boolean(value, p->request_keyframe);
      break;
    case PROP_KEYFRAME_RETRY:
      g_value_set_uint(value, p->keyframe_retry_ms);
      break;
    case PROP_KEYFRAME_MIN_INTERVAL:
      g_value_set_uint(value, p->keyframe_min_interval_ms);
      break;
    case PROP_GOP_MAX_PACKETS:
      g_value_set_uint(value, p->gop_max_packets);
      break;
    case PROP_GOP_MAX_BYTES:
      g_value_set_uint(value, p->gop_max_bytes);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

// ------------------------------------------------------------------ life cycle

static GstStateChangeReturn gst_rtp_fork_change_state(GstElement *element,
                                                      GstStateChange transition) {
  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    RtpForkPrivate *p = GST_RTP_FORK(element)->priv;
    Lock l(p->lock);
    p->gop.clear();
    p->have_ssrc = false;
    p->reset_timing();
  }
  return ret;
}

static void gst_rtp_fork_finalize(GObject *object) {
  GstRtpFork *self = GST_RTP_FORK(object);
  for (auto &[id, pad] : self->priv->branches) gst_object_unref(pad);
  for (auto &[id, pad] : self->priv->rtcp_pads) gst_object_unref(pad);
  delete self->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_rtp_fork_init(GstRtpFork *self) {
  self->priv = new RtpForkPrivate();
  self->priv->reset_timing();
  self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
  gst_pad_set_chain_function(self->sinkpad, gst_rtp_fork_chain);
  gst_pad_set_chain_list_function(self->sinkpad, gst_rtp_fork_chain_list);
  gst_pad_set_event_function(self->sinkpad, gst_rtp_fork_sink_event);
  gst_pad_set_query_function(self->sinkpad, gst_rtp_fork_sink_query);
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);

  self->rtcp_sinkpad = gst_pad_new_from_static_template(&rtcp_sink_template, "rtcp_sink");
  gst_pad_set_chain_function(self->rtcp_sinkpad, gst_rtp_fork_rtcp_chain);
  gst_pad_set_query_function(self->rtcp_sinkpad, gst_rtp_fork_sink_query);
  gst_pad_set_event_function(self->rtcp_sinkpad, gst_rtp_fork_rtcp_sink_event);
  gst_element_add_pad(GST_ELEMENT(self), self->rtcp_sinkpad);
}

static void gst_rtp_fork_class_init(GstRtpForkClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_rtp_fork_set_property;
  gobject_class->get_property = gst_rtp_fork_get_property;
  gobject_class->finalize = gst_rtp_fork_finalize;

  constexpr auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                               GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_property(
      gobject_class, PROP_REPLAY_GOP,
      g_param_spec_boolean("replay-gop", "Replay GOP",
                           "Send a joining branch the packets since the last keyframe first",
                           DEFAULT_REPLAY_GOP, rw));
  g_object_class_install_property(
      gobject_class, PROP_REQUEST_KEYFRAME,
      g_param_spec_boolean("request-keyframe", "Request keyframe",
                           "Ask upstream for a keyframe when a branch is added or selected",
                           DEFAULT_REQUEST_KEYFRAME, rw));
  g_object_class_install_property(
      gobject_class, PROP_KEYFRAME_RETRY,
      g_param_spec_uint("keyframe-retry", "Keyframe retry",
                        "Milliseconds without a keyframe before the request is sent once more", 1,
                        60000, DEFAULT_KEYFRAME_RETRY, rw));
  g_object_class_install_property(
      gobject_class, PROP_KEYFRAME_MIN_INTERVAL,
      g_param_spec_uint("keyframe-min-interval", "Keyframe minimum interval",
                        "Milliseconds between two keyframe requests (later ones wait)", 0, 60000,
                        DEFAULT_KEYFRAME_MIN_INTERVAL, rw));
  g_object_class_install_property(gobject_class, PROP_GOP_MAX_PACKETS,
                                  g_param_spec_uint("gop-max-packets", "GOP max packets",
                                                    "Longest GOP kept for replay, in packets", 1,
                                                    G_MAXINT, DEFAULT_GOP_MAX_PACKETS, rw));
  g_object_class_install_property(
      gobject_class, PROP_GOP_MAX_BYTES,
      g_param_spec_uint("gop-max-bytes", "GOP max bytes", "Longest GOP kept for replay, in bytes",
                        1, G_MAXINT, DEFAULT_GOP_MAX_BYTES, rw));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "Packets in, keyframe requests, and per branch packets, bytes, replayed",
                         GST_TYPE_STRUCTURE,
                         static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  constexpr auto action = static_cast<GSignalFlags>(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION);
  /**
   * GstRtpFork::add-branch:
   * Adds a branch (pads `src_N` and `rtcp_src_N`) and returns N, or G_MAXUINT.
   */
  signals[SIGNAL_ADD_BRANCH] = g_signal_new_class_handler(
      "add-branch", G_TYPE_FROM_CLASS(klass), action, G_CALLBACK(gst_rtp_fork_add_branch), nullptr,
      nullptr, nullptr, G_TYPE_UINT, 0);
  /**
   * GstRtpFork::select-branch:
   * The branch that answered 200: only it keeps receiving. FALSE for an unknown id.
   */
  signals[SIGNAL_SELECT_BRANCH] = g_signal_new_class_handler(
      "select-branch", G_TYPE_FROM_CLASS(klass), action, G_CALLBACK(gst_rtp_fork_select_branch),
      nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 1, G_TYPE_UINT);
  /**
   * GstRtpFork::remove-branch:
   * Releases the branch's pads. FALSE for an unknown id.
   */
  signals[SIGNAL_REMOVE_BRANCH] = g_signal_new_class_handler(
      "remove-branch", G_TYPE_FROM_CLASS(klass), action, G_CALLBACK(gst_rtp_fork_remove_branch),
      nullptr, nullptr, nullptr, G_TYPE_BOOLEAN, 1, G_TYPE_UINT);
  /**
   * GstRtpFork::branch-first-packet:
   * Emitted from the streaming thread when a branch sends its first packet;
   * the second argument counts the replayed GOP packets.
   */
  signals[SIGNAL_BRANCH_FIRST_PACKET] =
      g_signal_new("branch-first-packet", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, nullptr,
                   nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);

  element_class->request_new_pad = gst_rtp_fork_request_new_pad;
  element_class->release_pad = gst_rtp_fork_release_pad;
  element_class->change_state = gst_rtp_fork_change_state;
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &rtcp_sink_template);
  gst_element_class_add_static_pad_template_with_gtype(element_class, &src_template,
                                                       GST_TYPE_RTP_FORK_PAD);
  gst_element_class_add_static_pad_template(element_class, &rtcp_src_template);
  gst_element_class_set_static_metadata(
      element_class, "RTP early-media fork", "Filter/Network/RTP",
      "Forks one RTP stream to a branch per ringing device, with keyframe requests and "
      "GOP replay for joining branches",
      "portier developers");
  gst_type_mark_as_plugin_api(GST_TYPE_RTP_FORK_PAD, static_cast<GstPluginAPIFlags>(0));
}
