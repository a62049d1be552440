#include "proxy/media_relay.h"

#include <gst/net/gstnetaddressmeta.h>
#include <gst/video/video-event.h>

#include <algorithm>

#include "common/gst_util.h"
#include "common/json.h"
#include "common/log.h"
#include "rtpfork/gstrtpfork.h"
#include "rtpfork/rtp_header.h"

namespace portier::proxy {
namespace {

int64_t mono_s() { return g_get_monotonic_time() / G_USEC_PER_SEC; }

// Where a packet came from (udpsrc attaches a GstNetAddressMeta).
bool sender_of(GstBuffer *buf, std::string *host, uint16_t *port) {
  GstNetAddressMeta *meta = gst_buffer_get_net_address_meta(buf);
  if (!meta || !G_IS_INET_SOCKET_ADDRESS(meta->addr)) return false;
  GInetSocketAddress *isa = G_INET_SOCKET_ADDRESS(meta->addr);
  gchar *h = g_inet_address_to_string(g_inet_socket_address_get_address(isa));
  *host = h;
  g_free(h);
  *port = g_inet_socket_address_get_port(isa);
  return true;
}

// Does this compound RTCP packet (RFC 3550 §6.1) carry a keyframe request:
// PLI or FIR (RFC 4585 §6.3.1, RFC 5104 §4.3.1), or the old FIR of RFC 2032?
bool asks_for_keyframe(const uint8_t *p, size_t n) {
  for (size_t off = 0; off + 4 <= n;) {
    const uint8_t *pkt = p + off;
    const size_t len = (static_cast<size_t>(rtp::read16(pkt + 2)) + 1) * 4;
    if ((pkt[0] >> 6) != 2 || off + len > n) return false;
    const int fmt = pkt[0] & 0x1f;
    if ((pkt[1] == 206 && (fmt == 1 || fmt == 4)) || pkt[1] == 192) return true;
    off += len;
  }
  return false;
}

GstElement *make(const char *factory, const std::string &name) {
  GstElement *e = gst_element_factory_make(factory, name.c_str());
  if (!e) PLOG_ERROR("relay: GStreamer element %s is missing", factory);
  return e;
}

}  // namespace

// ------------------------------------------------------------------ call state

namespace {

struct Peer {
  std::string host;  // host, rtp and rtcp are guarded by Call::lock once media flows
  uint16_t rtp = 0;
  uint16_t rtcp = 0;
  // Read on every packet without the lock (the fast path once latched); set
  // under Call::lock.
  std::atomic<bool> latched_rtp{false};
  std::atomic<bool> latched_rtcp{false};

  // Where signalling says the peer is (before any of its packets arrived).
  void signalled(const std::string &h, uint16_t rtp_port, uint16_t rtcp_port) {
    host = h;
    rtp = rtp_port;
    rtcp = rtcp_port;
    latched_rtp = latched_rtcp = false;
  }
};

struct Stream;
struct BranchMedia;

// What a pad probe needs; lives as long as the elements it watches.
struct ProbeCtx {
  MediaRelay::Call *call = nullptr;
  Stream *stream = nullptr;
  BranchMedia *branch = nullptr;
};

struct BranchMedia {
  PortPool::Pair ports;
  Peer device;
  bool connected = false;
  std::atomic<bool> winner{false};  // written under Call::lock, read per packet
  guint fork_id = G_MAXUINT;
  GstElement *to_dev_rtp = nullptr, *to_dev_rtcp = nullptr;      // udpsink, fed by rtpfork
  GstElement *from_dev_rtp = nullptr, *from_dev_rtcp = nullptr;  // udpsrc, into the funnels
  GstPad *funnel_rtp_pad = nullptr, *funnel_rtcp_pad = nullptr;
  ProbeCtx ctx;
};

struct Branch {
  size_t index = 0;
  std::vector<std::unique_ptr<BranchMedia>> media;  // one per stream (null: not relayed)
  bool connected = false;
};

struct Stream {
  sdp::Media offer;
  PortPool::Pair ports;  // caller-facing
  Peer caller;
  std::atomic<uint32_t> caller_ssrc{0};  // the SSRC of the caller's latest RTP packet
  GstElement *src_rtp = nullptr, *src_rtcp = nullptr, *fork = nullptr;
  GstElement *funnel_rtp = nullptr, *funnel_rtcp = nullptr, *up_rtp = nullptr, *up_rtcp = nullptr;
  ProbeCtx ctx;
  size_t index = 0;
};

}  // namespace

struct MediaRelay::Call {
  MediaRelay *relay = nullptr;
  std::string id;
  std::string offer;
  GstElement *pipeline = nullptr;
  guint bus_watch = 0;
  std::vector<std::unique_ptr<Stream>> streams;
  std::map<size_t, std::unique_ptr<Branch>> branches;
  bool early_forwarded = false;
  int connected = 0;
  long winner = -1;
  uint32_t our_ssrc = 0;  // sender SSRC of the PLIs we send
  std::mutex lock;
  std::atomic<int64_t> last_activity{0};
  int64_t started = 0;
};

namespace {

using Call = MediaRelay::Call;

// Send to where the peer's packets come from (symmetric RTP), once. `src` is
// the udpsrc the packet came through: once latched, it stops attaching the
// sender's address to every packet (a GObject and a meta per packet, for
// nothing), so a latched stream costs one atomic load here.
void latch(Call *call, Peer &peer, bool rtcp, GstBuffer *buf, GstElement *src, GstElement *sink) {
  std::atomic<bool> &latched = rtcp ? peer.latched_rtcp : peer.latched_rtp;
  if (latched.load(std::memory_order_acquire)) return;
  std::string host;
  uint16_t port;
  if (!sender_of(buf, &host, &port)) return;
  bool moved = false;
  {
    std::lock_guard<std::mutex> l(call->lock);
    uint16_t &known = rtcp ? peer.rtcp : peer.rtp;
    if (latched) return;
    latched = true;
    if (host != peer.host || port != known) {
      PLOG_INFO("relay: call-id=%s %s from %s:%u, not %s:%u as signalled: latched",
                call->id.c_str(), rtcp ? "RTCP" : "RTP", host.c_str(), port, peer.host.c_str(),
                known);
      if (!rtcp) peer.host = host;
      known = port;
      moved = true;
    }
  }
  if (moved && sink) g_object_set(sink, "host", host.c_str(), "port", port, nullptr);
  // udpsrc reads this flag before every receive.
  if (src) g_object_set(src, "retrieve-sender-address", FALSE, nullptr);
}

GstPadProbeReturn on_caller_rtp(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *ctx = static_cast<ProbeCtx *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  ctx->call->last_activity = mono_s();
  latch(ctx->call, ctx->stream->caller, false, buf, ctx->stream->src_rtp, ctx->stream->up_rtp);
  // The SSRC our PLIs name (RFC 4585 §6.1 "SSRC of media source"); only the
  // fixed header is read, the packet itself is rtpfork's to check.
  uint8_t head[12];
  if (gst_buffer_extract(buf, 0, head, sizeof head) == sizeof head && (head[0] >> 6) == 2)
    ctx->stream->caller_ssrc.store(rtp::read32(head + 8), std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn on_caller_rtcp(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *ctx = static_cast<ProbeCtx *>(data);
  ctx->call->last_activity = mono_s();
  latch(ctx->call, ctx->stream->caller, true, GST_PAD_PROBE_INFO_BUFFER(info),
        ctx->stream->src_rtcp, ctx->stream->up_rtcp);
  return GST_PAD_PROBE_OK;
}

// rtpfork asks upstream for a keyframe (a branch joined, or a device sent PLI
// and rtpfork let it through its de-duplication): tell the caller with an RTCP
// PLI (RFC 4585 §6.3.1) from the caller-facing RTCP port.
GstPadProbeReturn on_fork_upstream(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (!gst_video_event_is_force_key_unit(event)) return GST_PAD_PROBE_OK;
  auto *ctx = static_cast<ProbeCtx *>(data);
  Stream *s = ctx->stream;
  std::string host;
  uint16_t port;
  uint32_t media_ssrc;
  {
    std::lock_guard<std::mutex> l(ctx->call->lock);
    host = s->caller.host;
    port = s->caller.rtcp;
    media_ssrc = s->caller_ssrc.load(std::memory_order_relaxed);
  }
  uint8_t pli[12] = {0x80 | 1, 206, 0, 2};
  rtp::write32(pli + 4, ctx->call->our_ssrc);
  rtp::write32(pli + 8, media_ssrc);
  GInetAddress *ia = g_inet_address_new_from_string(host.c_str());
  if (ia && port) {
    GSocketAddress *to = g_inet_socket_address_new(ia, port);
    g_socket_send_to(s->ports.rtcp, to, reinterpret_cast<const gchar *>(pli), sizeof pli, nullptr,
                     nullptr);
    g_object_unref(to);
    PLOG_DEBUG("relay: call-id=%s PLI to the caller %s:%u", ctx->call->id.c_str(), host.c_str(),
               port);
  }
  if (ia) g_object_unref(ia);
  return GST_PAD_PROBE_DROP;  // nobody further up (udpsrc) would know what to do with it
}

bool is_winner(ProbeCtx *ctx) { return ctx->branch->winner.load(std::memory_order_acquire); }

GstPadProbeReturn on_device_rtp(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *ctx = static_cast<ProbeCtx *>(data);
  ctx->call->last_activity = mono_s();
  latch(ctx->call, ctx->branch->device, false, GST_PAD_PROBE_INFO_BUFFER(info),
        ctx->branch->from_dev_rtp, ctx->branch->to_dev_rtp);
  // Only the device that answered talks to the caller.
  return is_winner(ctx) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

GstPadProbeReturn on_device_rtcp(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *ctx = static_cast<ProbeCtx *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  ctx->call->last_activity = mono_s();
  latch(ctx->call, ctx->branch->device, true, buf, ctx->branch->from_dev_rtcp,
        ctx->branch->to_dev_rtcp);
  if (is_winner(ctx)) return GST_PAD_PROBE_OK;  // the winner's RTCP goes to the caller whole
  // An early device's keyframe request goes through rtpfork's de-duplication.
  GstMapInfo map;
  bool wants = false;
  if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
    wants = asks_for_keyframe(map.data, map.size);
    gst_buffer_unmap(buf, &map);
  }
  if (wants) {
    gchar *name = g_strdup_printf("src_%u", ctx->branch->fork_id);
    if (GstPad *pad = gst_element_get_static_pad(ctx->stream->fork, name)) {
      gst_pad_send_event(pad,
                         gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
      gst_object_unref(pad);
    }
    g_free(name);
  }
  return GST_PAD_PROBE_DROP;
}

gboolean on_bus(GstBus *, GstMessage *msg, gpointer data) {
  const std::string problem = bus_problem(msg);
  if (!problem.empty())
    PLOG_WARN("relay: call-id=%s %s", static_cast<Call *>(data)->id.c_str(), problem.c_str());
  return G_SOURCE_CONTINUE;
}

bool relayable(const sdp::Media &m) {
  return m.port != 0 && (m.type == "audio" || m.type == "video") &&
         m.protocol.rfind("RTP/", 0) == 0;
}

std::string caps_for(const sdp::Media &m) {
  std::string caps = "application/x-rtp,media=" + m.type;
  if (!m.payloads.empty() && !m.payloads.front().encoding.empty()) {
    const sdp::Payload &p = m.payloads.front();
    std::string enc = p.encoding;
    for (auto &ch : enc) ch = static_cast<char>(g_ascii_toupper(ch));
    caps += ",encoding-name=" + enc + ",payload=" + std::to_string(p.pt);
    if (p.clock_rate) caps += ",clock-rate=" + std::to_string(p.clock_rate);
  }
  return caps;
}

GstElement *udpsink(const std::string &name, GSocket *socket, const std::string &host,
                    uint16_t port) {
  GstElement *e = make("udpsink", name);
  if (e)
    g_object_set(e, "socket", socket, "close-socket", FALSE, "host", host.c_str(), "port", port,
                 "sync", FALSE, "async", FALSE, nullptr);
  return e;
}

GstElement *udpsrc(const std::string &name, GSocket *socket, const char *caps) {
  GstElement *e = make("udpsrc", name);
  if (e) {
    GstCaps *c = gst_caps_from_string(caps);
    g_object_set(e, "socket", socket, "close-socket", FALSE, "caps", c, nullptr);
    gst_caps_unref(c);
  }
  return e;
}

void add_probe(GstElement *e, const char *pad_name, GstPadProbeType type, GstPadProbeCallback cb,
               ProbeCtx *ctx) {
  GstPad *pad = gst_element_get_static_pad(e, pad_name);
  gst_pad_add_probe(pad, type, cb, ctx, nullptr);
  gst_object_unref(pad);
}

// The branch's media elements: rtpfork -> device, device -> funnels.
bool connect_branch(Call *call, Stream *s, BranchMedia *bm, size_t branch) {
  const std::string tag = std::to_string(s->index) + "-" + std::to_string(branch);
  bm->ctx = ProbeCtx{call, s, bm};
  bm->to_dev_rtp = udpsink("to-dev-rtp-" + tag, bm->ports.rtp, bm->device.host, bm->device.rtp);
  bm->to_dev_rtcp = udpsink("to-dev-rtcp-" + tag, bm->ports.rtcp, bm->device.host, bm->device.rtcp);
  bm->from_dev_rtp = udpsrc("from-dev-rtp-" + tag, bm->ports.rtp, "application/x-rtp");
  bm->from_dev_rtcp = udpsrc("from-dev-rtcp-" + tag, bm->ports.rtcp, "application/x-rtcp");
  if (!bm->to_dev_rtp || !bm->to_dev_rtcp || !bm->from_dev_rtp || !bm->from_dev_rtcp) return false;
  gst_bin_add_many(GST_BIN(call->pipeline), bm->to_dev_rtp, bm->to_dev_rtcp, bm->from_dev_rtp,
                   bm->from_dev_rtcp, nullptr);

  g_signal_emit_by_name(s->fork, "add-branch", &bm->fork_id);
  gchar *rtp_name = g_strdup_printf("src_%u", bm->fork_id);
  gchar *rtcp_name = g_strdup_printf("rtcp_src_%u", bm->fork_id);
  gst_element_link_pads(s->fork, rtp_name, bm->to_dev_rtp, "sink");
  gst_element_link_pads(s->fork, rtcp_name, bm->to_dev_rtcp, "sink");
  g_free(rtp_name);
  g_free(rtcp_name);

  bm->funnel_rtp_pad = gst_element_request_pad_simple(s->funnel_rtp, "sink_%u");
  bm->funnel_rtcp_pad = gst_element_request_pad_simple(s->funnel_rtcp, "sink_%u");
  GstPad *out = gst_element_get_static_pad(bm->from_dev_rtp, "src");
  gst_pad_link(out, bm->funnel_rtp_pad);
  gst_object_unref(out);
  out = gst_element_get_static_pad(bm->from_dev_rtcp, "src");
  gst_pad_link(out, bm->funnel_rtcp_pad);
  gst_object_unref(out);
  add_probe(bm->from_dev_rtp, "src", GST_PAD_PROBE_TYPE_BUFFER, on_device_rtp, &bm->ctx);
  add_probe(bm->from_dev_rtcp, "src", GST_PAD_PROBE_TYPE_BUFFER, on_device_rtcp, &bm->ctx);

  // The relay pipeline is always PLAYING, and may still be on its way there:
  // syncing with the parent's current state could leave the new elements behind.
  for (GstElement *e : {bm->to_dev_rtp, bm->to_dev_rtcp, bm->from_dev_rtp, bm->from_dev_rtcp})
    gst_element_set_state(e, GST_STATE_PLAYING);
  bm->connected = true;
  return true;
}

void disconnect_branch(Call *call, Stream *s, BranchMedia *bm) {
  if (!bm->connected) return;
  // Sources first (their threads stop), then the fork's pads, then the sinks.
  for (GstElement *e : {bm->from_dev_rtp, bm->from_dev_rtcp})
    gst_element_set_state(e, GST_STATE_NULL);
  if (bm->funnel_rtp_pad) gst_element_release_request_pad(s->funnel_rtp, bm->funnel_rtp_pad);
  if (bm->funnel_rtcp_pad) gst_element_release_request_pad(s->funnel_rtcp, bm->funnel_rtcp_pad);
  g_clear_object(&bm->funnel_rtp_pad);
  g_clear_object(&bm->funnel_rtcp_pad);
  gboolean ok = FALSE;
  g_signal_emit_by_name(s->fork, "remove-branch", bm->fork_id, &ok);
  for (GstElement *e : {bm->to_dev_rtp, bm->to_dev_rtcp}) gst_element_set_state(e, GST_STATE_NULL);
  for (GstElement *e : {bm->from_dev_rtp, bm->from_dev_rtcp, bm->to_dev_rtp, bm->to_dev_rtcp})
    gst_bin_remove(GST_BIN(call->pipeline), e);
  bm->connected = false;
}

}  // namespace

// ------------------------------------------------------------------ relay

MediaRelay::MediaRelay(RelaySettings s)
    : settings_(std::move(s)),
      ports_(settings_.listen_address.empty() ? settings_.sdp_address : settings_.listen_address,
             settings_.port_min, settings_.port_max) {
  if (settings_.enabled) {
    if (!gst_is_initialized()) gst_init(nullptr, nullptr);
    // The element is built into the proxy: no plugin path to get wrong.
    GST_ELEMENT_REGISTER(rtpfork, nullptr);
  }
}

MediaRelay::~MediaRelay() {
  while (!calls_.empty()) destroy(calls_.begin()->second.get());
}

bool MediaRelay::start_call(const std::string &call_id, std::string_view offer,
                            std::string *error) {
  if (calls_.count(call_id)) {
    *error = "call already relayed";
    return false;
  }
  auto session = sdp::parse(offer, error);
  if (!session) return false;
  auto c = std::make_unique<Call>();
  c->relay = this;
  c->id = call_id;
  c->offer = std::string(offer);
  c->started = mono_s();
  c->last_activity = c->started;
  c->our_ssrc = g_random_int();
  c->pipeline = gst_pipeline_new(("relay-" + call_id.substr(0, 32)).c_str());
  bool any = false;
  for (size_t i = 0; i < session->media.size(); ++i) {
    auto s = std::make_unique<Stream>();
    s->offer = session->media[i];
    s->index = i;
    if (relayable(s->offer)) {
      auto pair = ports_.take(error);
      if (!pair) {
        c->streams.push_back(std::move(s));
        destroy(c.release());
        return false;
      }
      s->ports = *pair;
      s->caller.signalled(s->offer.address, s->offer.port, s->offer.rtcp_port);
      s->ctx = ProbeCtx{c.get(), s.get(), nullptr};
      const std::string n = std::to_string(i);
      s->src_rtp = udpsrc("from-caller-rtp-" + n, s->ports.rtp, caps_for(s->offer).c_str());
      s->src_rtcp = udpsrc("from-caller-rtcp-" + n, s->ports.rtcp, "application/x-rtcp");
      s->fork = make("rtpfork", "fork-" + n);
      s->funnel_rtp = make("funnel", "to-caller-rtp-funnel-" + n);
      s->funnel_rtcp = make("funnel", "to-caller-rtcp-funnel-" + n);
      s->up_rtp = udpsink("to-caller-rtp-" + n, s->ports.rtp, s->caller.host, s->caller.rtp);
      s->up_rtcp = udpsink("to-caller-rtcp-" + n, s->ports.rtcp, s->caller.host, s->caller.rtcp);
      GstElement **parts[] = {&s->src_rtp,     &s->src_rtcp, &s->fork,   &s->funnel_rtp,
                              &s->funnel_rtcp, &s->up_rtp,   &s->up_rtcp};
      if (std::any_of(std::begin(parts), std::end(parts), [](GstElement **e) { return !*e; })) {
        *error = "a GStreamer element is missing (gstreamer1.0-plugins-good?)";
        // Not in the pipeline yet, so destroy() would not free them: drop
        // the floating references here.
        for (GstElement **e : parts)
          if (*e) gst_object_unref(gst_object_ref_sink(*e)), *e = nullptr;
        c->streams.push_back(std::move(s));
        destroy(c.release());
        return false;
      }
      gst_bin_add_many(GST_BIN(c->pipeline), s->src_rtp, s->src_rtcp, s->fork, s->funnel_rtp,
                       s->funnel_rtcp, s->up_rtp, s->up_rtcp, nullptr);
      gst_element_link_pads(s->src_rtp, "src", s->fork, "sink");
      gst_element_link_pads(s->src_rtcp, "src", s->fork, "rtcp_sink");
      gst_element_link(s->funnel_rtp, s->up_rtp);
      gst_element_link(s->funnel_rtcp, s->up_rtcp);
      add_probe(s->src_rtp, "src", GST_PAD_PROBE_TYPE_BUFFER, on_caller_rtp, &s->ctx);
      add_probe(s->src_rtcp, "src", GST_PAD_PROBE_TYPE_BUFFER, on_caller_rtcp, &s->ctx);
      add_probe(s->fork, "sink", GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, on_fork_upstream, &s->ctx);
      any = true;
    } else if (s->offer.port != 0) {
      *error = "cannot relay m=" + s->offer.type + " " + s->offer.protocol;
      c->streams.push_back(std::move(s));
      destroy(c.release());
      return false;
    }
    c->streams.push_back(std::move(s));
  }
  if (!any) {
    *error = "no audio or video to relay";
    destroy(c.release());
    return false;
  }
  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(c->pipeline));
  c->bus_watch = gst_bus_add_watch(bus, on_bus, c.get());
  gst_object_unref(bus);
  if (gst_element_set_state(c->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    *error = "the relay pipeline does not start";
    destroy(c.release());
    return false;
  }
  PLOG_INFO("relay: call-id=%s relayed, %zu stream(s)", call_id.c_str(), c->streams.size());
  calls_[call_id] = std::move(c);
  return true;
}

std::optional<std::string> MediaRelay::offer_for_branch(const std::string &call_id, size_t branch,
                                                        std::string *error) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    *error = "no such call";
    return std::nullopt;
  }
  Call *c = it->second.get();
  c->last_activity = mono_s();
  if (c->branches.count(branch)) {
    *error = "branch exists";
    return std::nullopt;
  }
  auto b = std::make_unique<Branch>();
  b->index = branch;
  std::vector<sdp::RelayEndpoint> endpoints;
  for (auto &s : c->streams) {
    auto bm = std::make_unique<BranchMedia>();
    if (s->ports.port) {
      auto pair = ports_.take(error);
      if (!pair) {
        for (auto &m : b->media)
          if (m) ports_.give_back(m->ports);
        return std::nullopt;
      }
      bm->ports = *pair;
    }
    endpoints.push_back(endpoint(bm->ports.port));
    b->media.push_back(std::move(bm));
  }
  auto sdp_out = sdp::rewrite(c->offer, endpoints, error);
  if (!sdp_out) {
    for (auto &m : b->media) ports_.give_back(m->ports);
    return std::nullopt;
  }
  c->branches[branch] = std::move(b);
  return sdp_out;
}

MediaRelay::Answer MediaRelay::answer_from_branch(const std::string &call_id, size_t branch,
                                                  std::string_view sdp_text, bool final) {
  Answer a;
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    a.error = "no such call";
    return a;
  }
  Call *c = it->second.get();
  auto bit = c->branches.find(branch);
  if (bit == c->branches.end()) {
    a.error = "no such branch";
    return a;
  }
  Branch *b = bit->second.get();
  c->last_activity = mono_s();  // signalling counts too: a door may send nothing while ringing
  auto answer = sdp::parse(sdp_text, &a.error);
  if (!answer) return a;
  if (answer->media.size() != c->streams.size()) {
    a.error = "the answer has " + std::to_string(answer->media.size()) + " m= lines, the offer " +
              std::to_string(c->streams.size()) + " (RFC 3264 §6)";
    return a;
  }
  // Connect the branch on its first answer with SDP, while the call has room
  // for one more early stream (a 200 always gets one).
  if (!b->connected && (final || c->connected < settings_.max_early_media)) {
    for (size_t i = 0; i < c->streams.size(); ++i) {
      Stream *s = c->streams[i].get();
      BranchMedia *bm = b->media[i].get();
      const sdp::Media &m = answer->media[i];
      if (!s->ports.port || m.port == 0) continue;  // not relayed, or rejected by the device
      bm->device.signalled(m.address, m.port, m.rtcp_port);
      if (!connect_branch(c, s, bm, branch))
        PLOG_WARN("relay: call-id=%s branch %zu: cannot connect", call_id.c_str(), branch);
    }
    b->connected = true;
    ++c->connected;
    PLOG_INFO("relay: call-id=%s branch %zu gets the %s stream", call_id.c_str(), branch,
              final ? "answered" : "early");
  } else if (!b->connected) {
    PLOG_INFO(
        "relay: call-id=%s branch %zu: max-early-media-per-call (%d) reached, no early "
        "media for it",
        call_id.c_str(), branch, settings_.max_early_media);
  }
  if (final) {
    {
      std::lock_guard<std::mutex> l(c->lock);
      c->winner = static_cast<long>(branch);
      for (auto &[idx, other] : c->branches)
        for (auto &bm : other->media) bm->winner = idx == branch;
    }
    for (size_t i = 0; i < c->streams.size(); ++i) {
      BranchMedia *bm = b->media[i].get();
      if (!bm->connected) continue;
      gboolean ok = FALSE;
      g_signal_emit_by_name(c->streams[i]->fork, "select-branch", bm->fork_id, &ok);
    }
  }
  std::vector<sdp::RelayEndpoint> endpoints;
  for (auto &s : c->streams) endpoints.push_back(endpoint(s->ports.port));
  auto out = sdp::rewrite(sdp_text, endpoints, &a.error);
  if (!out) return a;
  a.sdp = *out;
  // The caller sees one early dialog: the first early answer; then the 200.
  a.forward = final || !c->early_forwarded;
  if (!final) c->early_forwarded = true;
  return a;
}

std::optional<std::string> MediaRelay::pass_sdp(const std::string &call_id, bool from_caller,
                                                std::string_view sdp_text, std::string *error) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    *error = "no such call";
    return std::nullopt;
  }
  Call *c = it->second.get();
  auto bit = c->winner >= 0 ? c->branches.find(static_cast<size_t>(c->winner)) : c->branches.end();
  if (bit == c->branches.end()) {
    *error = "the call has no answered branch";
    return std::nullopt;
  }
  Branch *w = bit->second.get();
  c->last_activity = mono_s();
  auto session = sdp::parse(sdp_text, error);
  if (!session) return std::nullopt;
  if (session->media.size() != c->streams.size()) {
    // New m= lines would need new relay ports: not supported yet.
    *error = "the number of m= lines changed (" + std::to_string(c->streams.size()) + " -> " +
             std::to_string(session->media.size()) + ")";
    return std::nullopt;
  }
  std::vector<sdp::RelayEndpoint> endpoints;
  for (size_t i = 0; i < c->streams.size(); ++i) {
    Stream *s = c->streams[i].get();
    BranchMedia *bm = w->media[i].get();
    const sdp::Media &m = session->media[i];
    // The sender may have moved (hold, a new network): follow it unless its
    // packets told us where it really is.
    if (s->ports.port && m.port) {
      std::lock_guard<std::mutex> l(c->lock);
      Peer &peer = from_caller ? s->caller : bm->device;
      GstElement *rtp_sink = from_caller ? s->up_rtp : bm->to_dev_rtp;
      GstElement *rtcp_sink = from_caller ? s->up_rtcp : bm->to_dev_rtcp;
      if (!peer.latched_rtp) {
        peer.host = m.address;
        peer.rtp = m.port;
        if (rtp_sink) g_object_set(rtp_sink, "host", peer.host.c_str(), "port", peer.rtp, nullptr);
      }
      if (!peer.latched_rtcp) {
        peer.rtcp = m.rtcp_port;
        if (rtcp_sink)
          g_object_set(rtcp_sink, "host", m.rtcp_address.c_str(), "port", peer.rtcp, nullptr);
      }
    }
    const uint16_t port = from_caller ? bm->ports.port : s->ports.port;
    endpoints.push_back(endpoint(port));
  }
  return sdp::rewrite(sdp_text, endpoints, error);
}

void MediaRelay::branch_gone(const std::string &call_id, size_t branch) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  Call *c = it->second.get();
  auto bit = c->branches.find(branch);
  if (bit == c->branches.end()) return;
  Branch *b = bit->second.get();
  for (size_t i = 0; i < b->media.size(); ++i) {
    disconnect_branch(c, c->streams[i].get(), b->media[i].get());
    ports_.give_back(b->media[i]->ports);
  }
  if (b->connected) --c->connected;
  c->branches.erase(bit);
}

void MediaRelay::end_call(const std::string &call_id, const char *why) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  PLOG_INFO("relay: call-id=%s freed (%s)", call_id.c_str(), why);
  destroy(it->second.get());
}

sdp::RelayEndpoint MediaRelay::endpoint(uint16_t rtp_port) const {
  // RTCP on the odd port above; 0 keeps a stream rejected (RFC 3264 §6).
  return {settings_.sdp_address, rtp_port, static_cast<uint16_t>(rtp_port ? rtp_port + 1 : 0)};
}

void MediaRelay::destroy(Call *c) {
  if (c->bus_watch) g_source_remove(c->bus_watch), c->bus_watch = 0;
  if (c->pipeline) {
    gst_element_set_state(c->pipeline, GST_STATE_NULL);
    gst_object_unref(c->pipeline);
    c->pipeline = nullptr;
  }
  for (auto &[idx, b] : c->branches)
    for (auto &bm : b->media) ports_.give_back(bm->ports);
  for (auto &s : c->streams) ports_.give_back(s->ports);
  auto it = calls_.find(c->id);
  if (it != calls_.end() && it->second.get() == c)
    calls_.erase(it);
  else
    delete c;  // never registered (failed start)
}

void MediaRelay::expire_idle() {
  const int64_t now = mono_s();
  std::vector<std::string> idle;
  for (auto &[id, c] : calls_)
    if (now - c->last_activity > settings_.inactivity_timeout) idle.push_back(id);
  for (auto &id : idle) end_call(id, "no media for inactivity-timeout seconds");
}

std::string MediaRelay::json() const {
  const int64_t now = mono_s();
  std::string out = "{\"ports_in_use\":" + std::to_string(ports_in_use()) + ",\"calls\":[";
  bool first = true;
  for (const auto &[id, c] : calls_) {
    out += first ? "" : ",";
    first = false;
    size_t ports = 0;
    for (const auto &s : c->streams) ports += s->ports.port ? 2 : 0;
    std::string branches;
    for (const auto &[idx, b] : c->branches) {
      for (const auto &bm : b->media) ports += bm->ports.port ? 2 : 0;
      branches += branches.empty() ? "" : ",";
      branches += "{\"branch\":" + std::to_string(idx) +
                  ",\"connected\":" + (b->connected ? "true" : "false") +
                  ",\"winner\":" + (c->winner == static_cast<long>(idx) ? "true" : "false") + "}";
    }
    out += "{\"call_id\":" + json::quote(id) + ",\"age\":" + std::to_string(now - c->started) +
           ",\"idle\":" + std::to_string(now - c->last_activity) +
           ",\"ports\":" + std::to_string(ports) + ",\"branches\":[" + branches + "]}";
  }
  return out + "]}";
}

}  // namespace portier::proxy
