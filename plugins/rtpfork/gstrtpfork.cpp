/**
 * SECTION:element-rtpfork
 * @title: rtpfork
 * @short_description: RTP tee for early media, one branch per ringing device
 *
 * rtpfork sends one RTP stream (and its RTCP) to any number of branches, one
 * per device that answered 183, and lets the application pick the winner when
 * one device answers 200. What a plain tee does not do:
 *
 * - A new branch starts with a picture: when its pad is linked, the element
 *   asks upstream for a keyframe (a #GstForceKeyUnit event, which an encoder
 *   or a relay turns into RTCP PLI/FIR), de-duplicated per SSRC with one
 *   retry, and sends it the packets cached since the last keyframe right
 *   away, so a device that joins in the middle of a long GOP decodes at once.
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
 * The branches' flow returns combine as tee's do: an error of one branch is
 * returned upstream (the others still get the packet), NOT_LINKED only when
 * no branch is linked. With no branch at all the packets are dropped and
 * the flow is OK: a door streams before any device answers.
 *
 * The fork's logic is rtp::RtpForkCore (rtp_fork_core.h), which the proxy's
 * relay engine runs as well; this element is its GStreamer edge.
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

#include "keyframe_detect.h"
#include "rtcp_packet.h"
#include "rtp_fork_core.h"
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

// What the element keeps of a branch besides the fork core's state: the
// counters (read by the stats property from any thread) and whether its
// first packet was announced (the thread that pushes to the branch: the
// streaming thread, or the one that links it under the stream lock).
struct BranchState {
  guint id = 0;
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

// ------------------------------------------------------------------ the core's edge

// What one branch gets from one event: its packets as one buffer, or as a
// list when there are several (a replay, an input list).
struct Delivery {
  GstRtpForkPad *pad;  // a reference
  GstBuffer *single = nullptr;
  GstBufferList *list = nullptr;
  guint count = 0;
  guint replayed = 0;
  guint64 bytes = 0;
};

// What the fork core asked for during one event, done once the lock is let go.
struct Work {
  std::vector<Delivery> deliveries;
  std::vector<std::pair<GstPad *, GstBuffer *>> rtcp;  // references
  guint keyframe_request = 0;  // the count of the last request, 0: none
  std::vector<GstBuffer *> released;  // the GOP's: unreffed after the pushes

  void clear() {
    for (Delivery &d : deliveries) {
      if (d.single) gst_buffer_unref(d.single);
      if (d.list) gst_buffer_list_unref(d.list);
      gst_object_unref(d.pad);
    }
    for (auto &[pad, buf] : rtcp) {
      gst_buffer_unref(buf);
      gst_object_unref(pad);
    }
    for (GstBuffer *b : released) gst_buffer_unref(b);
    *this = Work();
  }
};

// The buffer as a branch must see it: the same buffer when its ids stay, a
// copy with the branch's ids when they change.
static GstBuffer *with_ids(GstBuffer *buf, const rtp::Outgoing &o) {
  if (!o.rewritten) return gst_buffer_ref(buf);
  GstBuffer *copy = gst_buffer_copy_deep(buf);
  GstMapInfo map;
  if (gst_buffer_map(copy, &map, GST_MAP_WRITE)) {
    rtp::rewrite(map.data, o.ids.seq, o.ids.timestamp, o.ids.ssrc);
    gst_buffer_unmap(copy, &map);
  }
  return copy;
}

// The element's side of rtp::ForkEdge: packets are GstBuffers, branches
// GstRtpForkPads. Called under the element's lock, so it only collects.
struct Outbox final : rtp::ForkEdge {
  ~Outbox() { work.clear(); }

  void hold(rtp::PacketHandle p) override { gst_buffer_ref(static_cast<GstBuffer *>(p)); }
  void release(rtp::PacketHandle p) override {
    work.released.push_back(static_cast<GstBuffer *>(p));
  }
  void send(rtp::BranchHandle branch, const rtp::Outgoing *pkts, size_t n, bool replay) override {
    auto *pad = static_cast<GstRtpForkPad *>(branch);
    if (work.deliveries.empty() || work.deliveries.back().pad != pad)
      work.deliveries.push_back(Delivery{GST_RTP_FORK_PAD(gst_object_ref(pad))});
    Delivery &d = work.deliveries.back();
    for (size_t i = 0; i < n; ++i) {
      GstBuffer *out = with_ids(static_cast<GstBuffer *>(pkts[i].packet), pkts[i]);
      d.bytes += gst_buffer_get_size(out);
      if (++d.count == 1) {
        d.single = out;
        continue;
      }
      if (!d.list) {
        d.list = gst_buffer_list_new_sized(static_cast<guint>(n) + 1);
        gst_buffer_list_add(d.list, d.single);
        d.single = nullptr;
      }
      gst_buffer_list_add(d.list, out);
    }
    if (replay) d.replayed += static_cast<guint>(n);
  }
  void forward_rtcp(rtp::BranchHandle branch, uint32_t from, uint32_t to) override {
    auto it = rtcp_pads->find(static_cast<GstRtpForkPad *>(branch)->branch->id);
    if (it == rtcp_pads->end() || !rtcp_in) return;
    GstBuffer *out;
    if (from != to) {
      out = gst_buffer_copy_deep(rtcp_in);
      GstMapInfo map;
      if (gst_buffer_map(out, &map, GST_MAP_WRITE)) {
        rtp::rewrite_rtcp_ssrc(map.data, map.size, from, to);
        gst_buffer_unmap(out, &map);
      }
    } else {
      out = gst_buffer_ref(rtcp_in);
    }
    work.rtcp.emplace_back(GST_PAD(gst_object_ref(it->second)), out);
  }
  void request_keyframe(uint32_t) override { work.keyframe_request = ++keyframe_requests; }

  Work take() { return std::exchange(work, Work()); }

  Work work;
  const std::map<guint, GstPad *> *rtcp_pads = nullptr;
  GstBuffer *rtcp_in = nullptr;  // the source's RTCP being forwarded
  guint keyframe_requests = 0;   // GstForceKeyUnit's count
};

// ------------------------------------------------------------------ element

struct RtpForkPrivate {
  RtpForkPrivate() { outbox.rtcp_pads = &rtcp_pads; }

  std::mutex lock;
  // Branches by id: the RTP pad (a GstRtpForkPad) and the optional RTCP pad.
  // The element holds a reference on each. An RTP pad joins the fork core
  // when it is linked.
  std::map<guint, GstRtpForkPad *> branches;
  std::map<guint, GstPad *> rtcp_pads;
  guint next_id = 0;

  Outbox outbox;  // before core: the core releases its GOP into it when it goes
  rtp::RtpForkCore core{outbox, default_settings()};

  // settings the core keeps in its own units
  guint keyframe_retry_ms = DEFAULT_KEYFRAME_RETRY;
  guint keyframe_min_interval_ms = DEFAULT_KEYFRAME_MIN_INTERVAL;

  std::atomic<guint64> rtcp_in{0};

  static rtp::RtpForkCore::Settings default_settings() {
    rtp::RtpForkCore::Settings s;
    s.replay_gop = DEFAULT_REPLAY_GOP;
    s.request_keyframe = DEFAULT_REQUEST_KEYFRAME;
    s.timing = {DEFAULT_KEYFRAME_RETRY * 1000, DEFAULT_KEYFRAME_MIN_INTERVAL * 1000};
    s.gop_max_packets = DEFAULT_GOP_MAX_PACKETS;
    s.gop_max_bytes = DEFAULT_GOP_MAX_BYTES;
    return s;
  }
  void set_timing() {
    core.set_timing({static_cast<int64_t>(keyframe_retry_ms) * 1000,
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

static void announce_first_packet(GstRtpFork *self, BranchState *b, guint replayed) {
  GST_INFO_OBJECT(self, "first packet on branch %u (%u replayed)", b->id, replayed);
  g_signal_emit(self, signals[SIGNAL_BRANCH_FIRST_PACKET], 0, b->id, replayed);
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(
          GST_OBJECT(self), gst_structure_new("rtpfork-first-packet", "branch", G_TYPE_UINT, b->id,
                                              "replayed", G_TYPE_UINT, replayed, nullptr)));
}

// tee's rule for the branches' flow returns: a branch's error (FLUSHING,
// NOT_NEGOTIATED, ERROR...) is returned, the first one wins; EOS only when
// every branch is at EOS, NOT_LINKED only when none is linked; else OK.
// A branch released while its packets went out does not count (as tee's
// removed pads), nor does an event that pushed nothing.
struct FlowCombiner {
  GstFlowReturn error = GST_FLOW_OK;
  bool any = false, all_not_linked = true, all_eos = true;

  void add(GstFlowReturn ret) {
    any = true;
    if (ret == GST_FLOW_NOT_LINKED) return;
    all_not_linked = false;
    if (ret != GST_FLOW_EOS) all_eos = false;
    if (error == GST_FLOW_OK && (ret == GST_FLOW_FLUSHING || ret <= GST_FLOW_NOT_NEGOTIATED))
      error = ret;
  }
  GstFlowReturn result() const {
    if (error != GST_FLOW_OK) return error;
    if (!any) return GST_FLOW_OK;
    if (all_not_linked) return GST_FLOW_NOT_LINKED;
    return all_eos ? GST_FLOW_EOS : GST_FLOW_OK;
  }
};

// Does what the core asked for, outside the element's lock: the keyframe
// request upstream (as a GstForceKeyUnit, which an encoder or a relay turns
// into RTCP PLI/FIR), then each branch's packets, then the source's RTCP.
// One branch failing does not stop the others.
static GstFlowReturn deliver(GstRtpFork *self, Work &w) {
  if (w.keyframe_request) {
    GST_DEBUG_OBJECT(self, "asking upstream for a keyframe");
    gst_pad_push_event(self->sinkpad, gst_video_event_new_upstream_force_key_unit(
                                          GST_CLOCK_TIME_NONE, TRUE, w.keyframe_request));
  }
  std::vector<GstFlowReturn> results;
  results.reserve(w.deliveries.size());
  for (Delivery &d : w.deliveries) {
    BranchState *b = d.pad->branch;
    GstFlowReturn ret = d.list ? gst_pad_push_list(GST_PAD(d.pad), d.list)
                               : gst_pad_push(GST_PAD(d.pad), d.single);
    d.list = nullptr;
    d.single = nullptr;
    if (ret != GST_FLOW_OK && ret != GST_FLOW_NOT_LINKED)
      GST_DEBUG_OBJECT(self, "branch %u: %s", b->id, gst_flow_get_name(ret));
    results.push_back(ret);
    b->packets += d.count;
    b->bytes += d.bytes;
    b->replayed += d.replayed;
    if (!b->first_sent) {
      b->first_sent = true;
      announce_first_packet(self, b, d.replayed);
    }
  }
  FlowCombiner flows;
  if (!w.deliveries.empty()) {
    Lock l(self->priv->lock);
    for (size_t i = 0; i < w.deliveries.size(); ++i) {
      auto it = self->priv->branches.find(w.deliveries[i].pad->branch->id);
      if (it != self->priv->branches.end() && it->second == w.deliveries[i].pad)
        flows.add(results[i]);
    }
  }
  for (auto &[pad, buf] : w.rtcp) {
    gst_pad_push(pad, buf);
    gst_object_unref(pad);
  }
  w.rtcp.clear();
  w.clear();
  return flows.result();
}

// Runs one event of the core under the lock, then does what it asked for.
template <typename Event>
static GstFlowReturn run(GstRtpFork *self, Event &&event) {
  Work w;
  {
    Lock l(self->priv->lock);
    event(self->priv->core);
    w = self->priv->outbox.take();
  }
  return deliver(self, w);
}

// Due GOP replays go out now, in the application's thread, when the
// streaming thread is not inside the element: the sink pad's stream lock
// keeps them ahead of the branch's live packets. When it is, it sends them
// itself before its next packet.
static void send_due(GstRtpFork *self) {
  if (!GST_PAD_STREAM_TRYLOCK(self->sinkpad)) return;
  run(self, [](rtp::RtpForkCore &core) { core.tick(now_us()); });
  GST_PAD_STREAM_UNLOCK(self->sinkpad);
}

// ------------------------------------------------------------------ forwarding

// One or more RTP packets in (a buffer or a buffer list).
static GstFlowReturn forward(GstRtpFork *self, GstBuffer **bufs, guint n) {
  // Not thread_local: a branch may feed another rtpfork in the same thread.
  std::vector<GstMapInfo> maps(n);
  std::vector<rtp::Incoming> in(n);
  for (guint i = 0; i < n; ++i) {
    in[i] = {bufs[i], nullptr, 0};
    if (gst_buffer_map(bufs[i], &maps[i], GST_MAP_READ))
      in[i].data = maps[i].data, in[i].size = maps[i].size;
  }
  Work w;
  {
    Lock l(self->priv->lock);
    rtp::RtpForkCore &core = self->priv->core;
    const uint64_t changes = core.counters().source_changes;
    const uint32_t ssrc = core.source_ssrc();
    core.on_rtp(in.data(), n, now_us());
    if (core.counters().source_changes != changes)
      GST_INFO_OBJECT(self, "source SSRC %08x -> %08x", ssrc, core.source_ssrc());
    w = self->priv->outbox.take();
  }
  for (guint i = 0; i < n; ++i)
    if (in[i].data) gst_buffer_unmap(bufs[i], &maps[i]);
  return deliver(self, w);
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
static GstFlowReturn gst_rtp_fork_rtcp_chain(GstPad *, GstObject *parent, GstBuffer *buf) {
  GstRtpFork *self = GST_RTP_FORK(parent);
  RtpForkPrivate *p = self->priv;
  ++p->rtcp_in;
  Work w;
  {
    Lock l(p->lock);
    p->outbox.rtcp_in = buf;
    p->core.on_rtcp();
    p->outbox.rtcp_in = nullptr;
    w = p->outbox.take();
  }
  deliver(self, w);
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
  GST_INFO_OBJECT(self, "stream: %s, clock rate %d", name ? name : "(no encoding-name)",
                  clock_rate);
  run(self, [&](rtp::RtpForkCore &core) {
    core.set_codec(codec, clock_rate > 0 ? static_cast<uint32_t>(clock_rate) : 0);
  });
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
    case GST_EVENT_STREAM_START:
      run(self, [](rtp::RtpForkCore &core) { core.drop_gop(); });
      break;
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
    run(self, [](rtp::RtpForkCore &core) { core.branch_wants_keyframe(now_us()); });
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

// A branch joins the fork when its RTP pad is linked, as it can receive only
// then: it asks for a keyframe and gets the cached GOP at once.
static void on_branch_linked(GstPad *pad, GstPad *, gpointer) {
  // The parent, not a pointer kept at connect time: a released pad is linked
  // to nothing of ours.
  GstElement *element = gst_pad_get_parent_element(pad);
  if (!element) return;
  auto *self = GST_RTP_FORK(element);
  auto *branch = GST_RTP_FORK_PAD(pad);
  bool joined = false;
  run(self, [&](rtp::RtpForkCore &core) {
    auto it = self->priv->branches.find(branch->branch->id);
    if (it != self->priv->branches.end() && it->second == branch)
      joined = core.add_branch(branch->branch->id, branch, now_us());
  });
  if (joined) {
    GST_INFO_OBJECT(self, "branch %u joins the fork", branch->branch->id);
    send_due(self);
  }
  gst_object_unref(element);
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
      GST_RTP_FORK_PAD(pad)->branch->id = id;
      g_signal_connect(pad, "linked", G_CALLBACK(on_branch_linked), nullptr);
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
        p->core.remove_branch(it->first);
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
  bool ok = false;
  run(self, [&](rtp::RtpForkCore &core) { ok = core.select_branch(id, now_us()); });
  if (!ok) return FALSE;
  GST_INFO_OBJECT(self, "branch %u selected: the others stop receiving", id);
  send_due(self);
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
  const rtp::RtpForkCore &core = p->core;
  const rtp::RtpForkCore::Counters &in = core.counters();
  GstStructure *s = gst_structure_new(
      "application/x-rtpfork-stats", "packets-in", G_TYPE_UINT64, in.packets_in, "invalid-in",
      G_TYPE_UINT64, in.invalid_in, "keyframes-in", G_TYPE_UINT64, in.keyframes_in, "rtcp-in",
      G_TYPE_UINT64, p->rtcp_in.load(), "keyframe-requests-sent", G_TYPE_UINT64,
      static_cast<guint64>(core.keyframe_requests().sent()), "keyframe-requests-suppressed",
      G_TYPE_UINT64, static_cast<guint64>(core.keyframe_requests().suppressed()), "gop-packets",
      G_TYPE_UINT, static_cast<guint>(core.gop_packets()), "selected", G_TYPE_INT,
      static_cast<gint>(core.selected()), nullptr);
  GValue branches = G_VALUE_INIT;
  gst_value_array_init(&branches, p->branches.size());
  for (auto &[id, pad] : p->branches) {
    BranchState *b = pad->branch;
    const rtp::RtpForkCore::Branch *joined = core.branch(id);  // null: not linked yet
    GstStructure *bs = gst_structure_new(
        "branch", "id", G_TYPE_UINT, id, "packets", G_TYPE_UINT64, b->packets.load(), "bytes",
        G_TYPE_UINT64, b->bytes.load(), "replayed", G_TYPE_UINT64, b->replayed.load(), "receiving",
        G_TYPE_BOOLEAN, joined && joined->receiving, "ssrc", G_TYPE_UINT,
        joined ? joined->sequencer.ssrc() : 0u, nullptr);
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
  run(self, [&](rtp::RtpForkCore &core) {
    const rtp::RtpForkCore::Settings &now = core.settings();
    switch (prop_id) {
      case PROP_REPLAY_GOP:
        core.set_replay_gop(g_value_get_boolean(value));
        break;
      case PROP_REQUEST_KEYFRAME:
        core.set_request_keyframe(g_value_get_boolean(value));
        break;
      case PROP_KEYFRAME_RETRY:
        p->keyframe_retry_ms = g_value_get_uint(value);
        p->set_timing();
        break;
      case PROP_KEYFRAME_MIN_INTERVAL:
        p->keyframe_min_interval_ms = g_value_get_uint(value);
        p->set_timing();
        break;
      case PROP_GOP_MAX_PACKETS:
        core.set_gop_limits(g_value_get_uint(value), now.gop_max_bytes);
        break;
      case PROP_GOP_MAX_BYTES:
        core.set_gop_limits(now.gop_max_packets, g_value_get_uint(value));
        break;
      default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
  });
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
  const rtp::RtpForkCore::Settings &settings = p->core.settings();
  switch (prop_id) {
    case PROP_REPLAY_GOP:
      g_value_set_boolean(value, settings.replay_gop);
      break;
    case PROP_REQUEST_KEYFRAME:
      g_value_set_boolean(value, settings.request_keyframe);
      break;
    case PROP_KEYFRAME_RETRY:
      g_value_set_uint(value, p->keyframe_retry_ms);
      break;
    case PROP_KEYFRAME_MIN_INTERVAL:
      g_value_set_uint(value, p->keyframe_min_interval_ms);
      break;
    case PROP_GOP_MAX_PACKETS:
      g_value_set_uint(value, static_cast<guint>(settings.gop_max_packets));
      break;
    case PROP_GOP_MAX_BYTES:
      g_value_set_uint(value, static_cast<guint>(settings.gop_max_bytes));
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
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    run(GST_RTP_FORK(element), [](rtp::RtpForkCore &core) { core.reset(); });
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
   * The branch that answered 200: only it keeps receiving, whoever joins
   * later. FALSE for an unknown id or a branch whose pad is not linked yet.
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
