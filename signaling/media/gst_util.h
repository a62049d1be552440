// Small GStreamer helpers shared by the programs that run pipelines (the
// proxy's relay, the door's camera, the door's and the monitor's call
// media). Header-only: portier_common does not link GStreamer.
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>
#include <gst/net/gstnetaddressmeta.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/rtp_source_latch.h"

namespace portier {

// Whether an element factory is installed (or registered by the program).
inline bool have_element(const char *factory) {
  GstElementFactory *f = gst_element_factory_find(factory);
  if (f) gst_object_unref(f);
  return f != nullptr;
}

// gst_parse_launch() with its error as one line: nullptr and *error
// ("WHAT: reason") when the description does not build.
inline GstElement *parse_pipeline(const std::string &description, const char *what,
                                  std::string *error) {
  GError *gerr = nullptr;
  GstElement *p = gst_parse_launch(description.c_str(), &gerr);
  if (p && !gerr) return p;
  *error = std::string(what) + ": " + (gerr ? gerr->message : "cannot build");
  g_clear_error(&gerr);
  if (p) gst_object_unref(p);
  return nullptr;
}

// gst_parse_bin_from_description() with its pads ghosted, and its error as
// parse_pipeline's: nullptr and *error ("WHAT: reason").
inline GstElement *parse_bin(const std::string &description, const char *what, std::string *error) {
  GError *gerr = nullptr;
  GstElement *bin = gst_parse_bin_from_description(description.c_str(), TRUE, &gerr);
  if (bin && !gerr) return bin;
  *error = std::string(what) + ": " + (gerr ? gerr->message : "cannot build");
  g_clear_error(&gerr);
  if (bin) gst_object_unref(bin);
  return nullptr;
}

// The element `name` of `bin` (a udpsrc or multiudpsink) set to use `socket`,
// which stays open when the element goes (a PortPool owns it). Returns it
// with a reference the caller owns.
inline GstElement *element_on_socket(GstElement *bin, const char *name, GSocket *socket) {
  GstElement *e = gst_bin_get_by_name(GST_BIN(bin), name);
  g_object_set(e, "socket", socket, "close-socket", FALSE, nullptr);
  return e;
}

// Links `src` (rtpbin's pad for a new SSRC) to `target`'s sink pad, in place
// of whatever was linked there before (the peer restarted its stream, or the
// relay switched sources). False when the pads do not link (caps?).
inline bool link_replacing(GstPad *src, GstElement *target) {
  GstPad *sinkpad = gst_element_get_static_pad(target, "sink");
  if (GstPad *old = gst_pad_get_peer(sinkpad)) {
    gst_pad_unlink(old, sinkpad);
    gst_object_unref(old);
  }
  const bool ok = gst_pad_link(src, sinkpad) == GST_PAD_LINK_OK;
  gst_object_unref(sinkpad);
  return ok;
}

// Points a multiudpsink at host:port, or at nothing with host "" or port 0;
// *current remembers the destination, so an unchanged one is left alone.
inline void set_destination(GstElement *sink, const std::string &host, uint16_t port,
                            std::string *current) {
  if (!sink) return;
  const std::string dest = host.empty() || !port ? "" : host + "|" + std::to_string(port);
  if (*current == dest) return;
  g_signal_emit_by_name(sink, "clear");
  if (!dest.empty()) g_signal_emit_by_name(sink, "add", host.c_str(), static_cast<gint>(port));
  *current = dest;
}

// Did `buf`, from a udpsrc, come from the peer `latch` listens to? udpsrc
// puts the sender's address on every buffer as a GstNetAddressMeta. Only RTP
// and RTCP (first byte 128-191, RFC 7983 §7) are heard and may latch: a STUN
// keep-alive a peer sends to keep its NAT open (RFC 6263: Linphone, and
// portier-monitor towards a door it reaches without the relay) is dropped
// here, before it could fix the latch on a ringing device that never answers.
inline bool from_peer(GstBuffer *buf, RtpSourceLatch &latch) {
  guint8 first = 0;
  if (gst_buffer_extract(buf, 0, &first, 1) != 1 || first < 128 || first > 191) return false;
  GstNetAddressMeta *meta = gst_buffer_get_net_address_meta(buf);
  if (!meta || !G_IS_INET_SOCKET_ADDRESS(meta->addr)) return latch.admit(nullptr, 0, 0);
  auto *isa = G_INET_SOCKET_ADDRESS(meta->addr);
  GInetAddress *ia = g_inet_socket_address_get_address(isa);
  return latch.admit(g_inet_address_to_bytes(ia), g_inet_address_get_native_size(ia),
                     g_inet_socket_address_get_port(isa));
}

// A pad probe (on a udpsrc's src pad, before any other) that drops every
// packet not from_peer(). A probe, not a connected socket: the socket is the
// PortPool's and is shared with the multiudpsink that sends from it, and a
// latch can follow the peer's first packet, which connect() cannot.
inline void hear_only_peer(GstElement *udpsrc, RtpSourceLatch *latch) {
  GstPad *pad = gst_element_get_static_pad(udpsrc, "src");
  gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad *, GstPadProbeInfo *info, gpointer data) {
        return from_peer(GST_PAD_PROBE_INFO_BUFFER(info), *static_cast<RtpSourceLatch *>(data))
                   ? GST_PAD_PROBE_OK
                   : GST_PAD_PROBE_DROP;
      },
      latch, nullptr);
  gst_object_unref(pad);
}

// Runs fn(T *) on the main loop (from a streaming thread: a pad probe, an
// appsink callback), unless the object `alive` points to is gone by then:
// its owner resets the shared_ptr first thing in its destructor.
template <typename T, typename F>
void post_to_main(const std::shared_ptr<T *> &alive, F fn) {
  struct Job {
    std::weak_ptr<T *> alive;
    std::function<void(T *)> fn;
  };
  auto *job = new Job{alive, std::move(fn)};
  g_main_context_invoke_full(
      nullptr, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        auto *j = static_cast<Job *>(data);
        if (auto a = j->alive.lock()) j->fn(*a);
        return G_SOURCE_REMOVE;
      },
      job, [](gpointer data) { delete static_cast<Job *>(data); });
}

// An error or warning on a pipeline's bus as "ELEMENT: message" for one log
// line; "" for every other message.
inline std::string bus_problem(GstMessage *msg) {
  const GstMessageType type = GST_MESSAGE_TYPE(msg);
  if (type != GST_MESSAGE_ERROR && type != GST_MESSAGE_WARNING) return "";
  GError *err = nullptr;
  gchar *dbg = nullptr;
  if (type == GST_MESSAGE_ERROR)
    gst_message_parse_error(msg, &err, &dbg);
  else
    gst_message_parse_warning(msg, &err, &dbg);
  std::string out = std::string(GST_OBJECT_NAME(msg->src)) + ": " + (err ? err->message : "?");
  g_clear_error(&err);
  g_free(dbg);
  return out;
}

}  // namespace portier
