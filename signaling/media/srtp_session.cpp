#include "media/srtp_session.h"

#include <algorithm>
#include <string>

#include "media/gst_util.h"

namespace portier {
namespace {

// udpsrc's caps name what it hears: srtpdec takes application/x-srtp(x-srtcp)
// and hands on application/x-rtp(x-rtcp) with the other fields kept.
void mark_protected(GstElement *upstream) {
  if (!g_object_class_find_property(G_OBJECT_GET_CLASS(upstream), "caps")) return;
  GstCaps *caps = nullptr;
  g_object_get(upstream, "caps", &caps, nullptr);
  if (!caps) return;
  GstCaps *out = gst_caps_copy(caps);
  gst_caps_unref(caps);
  for (guint i = 0; i < gst_caps_get_size(out); ++i) {
    GstStructure *s = gst_caps_get_structure(out, i);
    if (gst_structure_has_name(s, "application/x-rtp"))
      gst_structure_set_name(s, "application/x-srtp");
    if (gst_structure_has_name(s, "application/x-rtcp"))
      gst_structure_set_name(s, "application/x-srtcp");
  }
  g_object_set(upstream, "caps", out, nullptr);
  gst_caps_unref(out);
}

bool link(GstPad *src, GstPad *sink, std::string *error) {
  const GstPadLinkReturn r = gst_pad_link(src, sink);
  if (r == GST_PAD_LINK_OK) return true;
  gchar *a = gst_object_get_path_string(GST_OBJECT(src));
  gchar *b = gst_object_get_path_string(GST_OBJECT(sink));
  *error = std::string("cannot link ") + a + " to " + b + ": " + gst_pad_link_get_name(r);
  g_free(a);
  g_free(b);
  return false;
}

// Moves the link `pad` -> its peer (or peer -> `pad`) through `in` -> `out`.
bool splice(GstPad *pad, GstPad *in, GstPad *out, std::string *error) {
  GstPad *peer = gst_pad_get_peer(pad);
  if (!peer) return true;  // not linked: nothing to protect
  bool ok;
  if (GST_PAD_IS_SRC(pad)) {
    gst_pad_unlink(pad, peer);
    ok = link(pad, in, error) && link(out, peer, error);
  } else {
    gst_pad_unlink(peer, pad);
    if (GstElement *up = gst_pad_get_parent_element(peer)) {
      mark_protected(up);
      gst_object_unref(up);
    }
    ok = link(peer, in, error) && link(out, pad, error);
  }
  gst_object_unref(peer);
  return ok;
}

void set_null(GstElement *enc) {
  for (const char *p : {"rtp-cipher", "rtp-auth", "rtcp-cipher", "rtcp-auth"})
    gst_util_set_object_arg(G_OBJECT(enc), p, "null");
}

}  // namespace

struct SrtpSession::Entry {
  SrtpSession *self;
  GstPad *src;       // the element's pad that pairs with the probed sink pad
  GstPad *rtcp_src;  // srtpdec's rtp_sink: where muxed RTCP goes (else null)
  bool decoder;
};

namespace {

// What srtpdec does before the first muxed RTCP packet leaves its rtcp_src:
// the stream-start, caps and segment that pad has not seen yet.
void ensure_rtcp_events(GstPad *rtcp_src, GstPad *rtp_src) {
  if (GstEvent *e = gst_pad_get_sticky_event(rtcp_src, GST_EVENT_SEGMENT, 0)) {
    gst_event_unref(e);
    return;
  }
  if (GstEvent *e = gst_pad_get_sticky_event(rtcp_src, GST_EVENT_STREAM_START, 0)) {
    gst_event_unref(e);
  } else {
    // The RTP side's stream id with /rtcp, as srtpdec names it (a pad of an
    // element with two sink pads cannot make one of its own).
    std::string id = "portier-rtcp-mux";
    if (GstEvent *rtp = gst_pad_get_sticky_event(rtp_src, GST_EVENT_STREAM_START, 0)) {
      const gchar *rtp_id = nullptr;
      gst_event_parse_stream_start(rtp, &rtp_id);
      if (rtp_id) id = rtp_id;
      gst_event_unref(rtp);
    }
    id += "/rtcp";
    gst_pad_push_event(rtcp_src, gst_event_new_stream_start(id.c_str()));
  }
  if (GstEvent *e = gst_pad_get_sticky_event(rtcp_src, GST_EVENT_CAPS, 0)) {
    gst_event_unref(e);
  } else {
    GstCaps *caps = gst_caps_new_empty_simple("application/x-rtcp");
    gst_pad_push_event(rtcp_src, gst_event_new_caps(caps));
    gst_caps_unref(caps);
  }
  GstEvent *seg = gst_pad_get_sticky_event(rtp_src, GST_EVENT_SEGMENT, 0);
  if (!seg) {
    GstSegment s;
    gst_segment_init(&s, GST_FORMAT_TIME);
    seg = gst_event_new_segment(&s);
  }
  gst_pad_push_event(rtcp_src, seg);
}

}  // namespace

GstPadProbeReturn SrtpSession::on_enter(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *e = static_cast<Entry *>(data);
  const bool list = GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST;
  if (e->decoder) count(nullptr, info, &e->self->in_);
  switch (e->self->mode_.load()) {
    case srtp:
      return GST_PAD_PROBE_OK;
    case plain:
      if (list) {
        gst_pad_push_list(e->src, gst_buffer_list_ref(GST_PAD_PROBE_INFO_BUFFER_LIST(info)));
      } else if (e->rtcp_src && is_muxed_rtcp(GST_PAD_PROBE_INFO_BUFFER(info))) {
        ensure_rtcp_events(e->rtcp_src, e->src);
        gst_pad_push(e->rtcp_src, gst_buffer_ref(GST_PAD_PROBE_INFO_BUFFER(info)));
      } else {
        gst_pad_push(e->src, gst_buffer_ref(GST_PAD_PROBE_INFO_BUFFER(info)));
      }
      return GST_PAD_PROBE_DROP;
    default:
      return GST_PAD_PROBE_DROP;
  }
}

void SrtpSession::watch(GstPad *sink, GstPad *src, GstPad *rtcp_src, bool decoder) {
  const auto types =
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST);
  gst_pad_add_probe(sink, types, on_enter, new Entry{this, src, rtcp_src, decoder},
                    [](gpointer p) { delete static_cast<Entry *>(p); });
  // What leaves srtpdec is counted once per pad (rtcp_src serves two entries).
  for (GstPad *out : {src, rtcp_src}) {
    if (!decoder || !out || std::find(counted_.begin(), counted_.end(), out) != counted_.end())
      continue;
    gst_pad_add_probe(out, types, count, &out_, nullptr);
    counted_.push_back(out);
  }
}

GstPadProbeReturn SrtpSession::count(GstPad *, GstPadProbeInfo *info, gpointer counter) {
  auto *n = static_cast<std::atomic<uint64_t> *>(counter);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    *n += gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  else
    ++*n;
  return GST_PAD_PROBE_OK;
}

bool SrtpSession::insert(GstElement *pipeline, GstElement *rtpbin, unsigned id, GSocket *rtp_socket,
                         RtpSourceLatch *latch, std::string *error) {
  const std::string n = std::to_string(id);
  auto pad_of = [&](const std::string &name) {
    return gst_element_get_static_pad(rtpbin, (name + n).c_str());
  };
  bool ok = true;
  for (const char *kind : {"rtp", "rtcp"}) {
    GstPad *send = pad_of(std::string("send_") + kind + "_src_");
    if (send && gst_pad_is_linked(send)) {
      if (!enc_) {
        enc_ = gst_element_factory_make("srtpenc", nullptr);
        if (!enc_) {
          *error = "no srtpenc (gstreamer1.0-plugins-bad)";
          gst_object_unref(send);
          return false;
        }
        set_null(enc_);  // no key yet: a suite without one would keep it from starting
        gst_bin_add(GST_BIN(pipeline), enc_);
        gst_object_ref(enc_);
      }
      // srtpenc makes rtp_src_N with rtp_sink_N (rtcp_ alike), N read from
      // the name asked for: so it is asked for by name.
      GstPadTemplate *templ = gst_element_class_get_pad_template(
          GST_ELEMENT_GET_CLASS(enc_), (std::string(kind) + "_sink_%u").c_str());
      GstPad *in =
          gst_element_request_pad(enc_, templ, (std::string(kind) + "_sink_" + n).c_str(), nullptr);
      GstPad *out = in ? gst_element_get_static_pad(enc_, (std::string(kind) + "_src_" + n).c_str())
                       : nullptr;
      if (!out) *error = std::string("srtpenc has no ") + kind + "_src_" + n;
      if (out) watch(in, out, nullptr, false);
      // rtcp-mux: our RTCP, protected or not, leaves by the RTP socket.
      if (out && std::string(kind) == "rtcp")
        gst_pad_add_probe(out, GST_PAD_PROBE_TYPE_BUFFER, on_rtcp_out, this, nullptr);
      ok = ok && out && splice(send, in, out, error);
      if (in) gst_object_unref(in);
      if (out) gst_object_unref(out);
    }
    if (send) gst_object_unref(send);
    GstPad *recv = pad_of(std::string("recv_") + kind + "_sink_");
    if (recv && gst_pad_is_linked(recv)) {
      if (!dec_) {
        dec_ = gst_element_factory_make("srtpdec", nullptr);
        if (!dec_) {
          *error = "no srtpdec (gstreamer1.0-plugins-bad)";
          gst_object_unref(recv);
          return false;
        }
        gst_bin_add(GST_BIN(pipeline), dec_);
        gst_object_ref(dec_);
        key_handler_ = g_signal_connect(dec_, "request-key", G_CALLBACK(on_request_key), this);
      }
      GstPad *in = gst_element_get_static_pad(dec_, (std::string(kind) + "_sink").c_str());
      GstPad *out = gst_element_get_static_pad(dec_, (std::string(kind) + "_src").c_str());
      GstPad *rtcp_out = gst_element_get_static_pad(dec_, "rtcp_src");
      watch(in, out, std::string(kind) == "rtp" ? rtcp_out : nullptr, true);
      gst_object_unref(rtcp_out);
      ok = ok && splice(recv, in, out, error);
      gst_object_unref(in);
      gst_object_unref(out);
    }
    if (recv) gst_object_unref(recv);
  }
  if (ok && rtp_socket) {
    rtp_socket_ = G_SOCKET(g_object_ref(rtp_socket));
    // A session that receives no RTP (the door's video) still hears the
    // peer's muxed RTCP on its RTP port: a udpsrc there into srtpdec, whose
    // RTP output (nothing, from a well-behaved peer) is discarded.
    GstPad *recv = pad_of("recv_rtp_sink_");
    const bool receives = recv && gst_pad_is_linked(recv);
    if (recv) gst_object_unref(recv);
    if (!receives && dec_) {
      GstElement *src = gst_element_factory_make("udpsrc", nullptr);
      GstElement *sink = gst_element_factory_make("fakesink", nullptr);
      GstCaps *caps = gst_caps_new_empty_simple("application/x-srtp");
      g_object_set(src, "socket", rtp_socket, "close-socket", FALSE, "caps", caps, nullptr);
      gst_caps_unref(caps);
      g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
      gst_bin_add_many(GST_BIN(pipeline), src, sink, nullptr);
      if (latch) hear_only_peer(src, latch);
      GstPad *src_pad = gst_element_get_static_pad(src, "src");
      GstPad *sink_pad = gst_element_get_static_pad(sink, "sink");
      GstPad *in = gst_element_get_static_pad(dec_, "rtp_sink");
      GstPad *out = gst_element_get_static_pad(dec_, "rtp_src");
      GstPad *rtcp_out = gst_element_get_static_pad(dec_, "rtcp_src");
      ok = link(src_pad, in, error) && link(out, sink_pad, error);
      watch(in, out, rtcp_out, true);
      for (GstPad *p : {src_pad, sink_pad, in, out, rtcp_out}) gst_object_unref(p);
    }
  }
  if (!ok) *error = "SRTP in RTP session " + n + ": " + *error;
  return ok;
}

GstPadProbeReturn SrtpSession::on_rtcp_out(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<SrtpSession *>(data);
  if (!self->mux_.load() || !self->rtp_socket_) return GST_PAD_PROBE_OK;
  GSocketAddress *dest = nullptr;
  {
    std::lock_guard<std::mutex> guard(self->lock_);
    if (self->mux_dest_) dest = G_SOCKET_ADDRESS(g_object_ref(self->mux_dest_));
  }
  if (dest) {
    GstMapInfo map;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
      g_socket_send_to(self->rtp_socket_, dest, reinterpret_cast<const gchar *>(map.data), map.size,
                       nullptr, nullptr);
      gst_buffer_unmap(buf, &map);
    }
    g_object_unref(dest);
  }
  return GST_PAD_PROBE_DROP;  // and not from the RTCP socket as well
}

void SrtpSession::set_mux(bool on, const std::string &host, uint16_t port) {
  GSocketAddress *dest =
      on && port ? g_inet_socket_address_new_from_string(host.c_str(), port) : nullptr;
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (mux_dest_) g_object_unref(mux_dest_);
    mux_dest_ = dest;
  }
  mux_ = on;
}

void SrtpSession::sync_state() {
  for (GstElement *e : {enc_, dec_})
    if (e) gst_element_sync_state_with_parent(e);
}

GstCaps *SrtpSession::on_request_key(GstElement *, guint, gpointer data) {
  auto *self = static_cast<SrtpSession *>(data);
  std::lock_guard<std::mutex> guard(self->lock_);
  // No key (a packet that slipped in while the keys changed): srtpdec drops
  // the packet and asks again for the next one.
  if (!self->keys_) return nullptr;
  const sdp::CryptoKey &k = self->keys_->recv_key;
  const sdp::SrtpSuiteInfo &i = sdp::suite_info(k.suite);
  GstBuffer *key = gst_buffer_new_memdup(k.bytes.data(), k.size);
  GstCaps *caps = gst_caps_new_simple(
      "application/x-srtp", "srtp-key", GST_TYPE_BUFFER, key, "srtp-cipher", G_TYPE_STRING,
      i.gst_cipher, "srtp-auth", G_TYPE_STRING, i.gst_rtp_auth, "srtcp-cipher", G_TYPE_STRING,
      i.gst_cipher, "srtcp-auth", G_TYPE_STRING, i.gst_rtcp_auth, nullptr);
  gst_buffer_unref(key);
  return caps;
}

void SrtpSession::set(const std::optional<sdp::Agreed::Srtp> &srtp) {
  {
    std::lock_guard<std::mutex> guard(lock_);
    const bool same =
        configured_ && keys_.has_value() == srtp.has_value() &&
        (!srtp || (keys_->send_key == srtp->send_key && keys_->recv_key == srtp->recv_key));
    if (same) return;
    keys_ = srtp;
    configured_ = true;
  }
  if (!srtp) mode_ = plain;
  if (enc_) {
    if (srtp) {
      // The suite first, then the key: a new key makes srtpenc set its
      // session up again with whatever suite is set by then.
      const sdp::SrtpSuiteInfo &i = sdp::suite_info(srtp->send_key.suite);
      gst_util_set_object_arg(G_OBJECT(enc_), "rtp-cipher", i.gst_cipher);
      gst_util_set_object_arg(G_OBJECT(enc_), "rtcp-cipher", i.gst_cipher);
      gst_util_set_object_arg(G_OBJECT(enc_), "rtp-auth", i.gst_rtp_auth);
      gst_util_set_object_arg(G_OBJECT(enc_), "rtcp-auth", i.gst_rtcp_auth);
      GstBuffer *key = gst_buffer_new_memdup(srtp->send_key.bytes.data(), srtp->send_key.size);
      g_object_set(enc_, "key", key, nullptr);
      gst_buffer_unref(key);
    }
  }
  // srtpdec asks for the key of each SSRC again (on_request_key).
  if (dec_) g_signal_emit_by_name(dec_, "clear-keys");
  if (srtp) mode_ = SrtpSession::srtp;
}

GstPad *SrtpSession::decrypted_rtp_pad() const {
  return dec_ ? gst_element_get_static_pad(dec_, "rtp_src") : nullptr;
}

uint64_t SrtpSession::dropped() const {
  const uint64_t out = out_.load(), in = in_.load();
  return in > out ? in - out : 0;
}

std::string SrtpSession::suite() const {
  std::lock_guard<std::mutex> guard(lock_);
  return keys_ ? sdp::suite_name(keys_->send_key.suite) : "";
}

void SrtpSession::reset() {
  if (dec_ && key_handler_) g_signal_handler_disconnect(dec_, key_handler_);
  key_handler_ = 0;
  if (enc_) gst_object_unref(enc_), enc_ = nullptr;
  if (dec_) gst_object_unref(dec_), dec_ = nullptr;
  if (rtp_socket_) g_object_unref(rtp_socket_), rtp_socket_ = nullptr;
  counted_.clear();
  mux_ = false;
  std::lock_guard<std::mutex> guard(lock_);
  if (mux_dest_) g_object_unref(mux_dest_), mux_dest_ = nullptr;
  keys_.reset();
  configured_ = false;
  mode_ = drop;
  in_ = 0;
  out_ = 0;
}

}  // namespace portier
