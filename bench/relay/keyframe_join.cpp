// keyframe_join: how long a device that joins mid-GOP waits for its first picture.
//
// A live VP8 "door" (videotestsrc, vp8enc with a keyframe every KEYINT seconds,
// rtpvp8pay) feeds rtpfork. Again and again a branch is added at a random point
// of the GOP, as when a monitor answers 183, with a receiver behind it
// (rtpvp8depay ! vp8dec); the time from add-branch to the first decoded frame is
// measured, then the branch is removed. Four modes: without keyframe request
// and replay (the receiver waits for the door's next keyframe), with the
// request only (rtpfork's GstForceKeyUnit reaches vp8enc, as a PLI reaches a
// door), with the GOP replay only, and with both.
//
//   keyframe_join [KEYINT_SECONDS=10] [JOINS_PER_MODE=10]
//
// Prints one line per mode: p50, p95 and max in milliseconds. In-process (no
// network): this measures the fork, not the wire. Bounded: at most KEYINT + 2 s
// per join.
#include <gst/gst.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

struct Join {
  GMutex lock;
  GCond cond;
  gint64 first_frame_us = 0;
};

GstPadProbeReturn on_frame(GstPad *, GstPadProbeInfo *, gpointer data) {
  auto *j = static_cast<Join *>(data);
  g_mutex_lock(&j->lock);
  if (!j->first_frame_us) {
    j->first_frame_us = g_get_monotonic_time();
    g_cond_signal(&j->cond);
  }
  g_mutex_unlock(&j->lock);
  return GST_PAD_PROBE_OK;
}

// One join: add a branch with a decoder, wait for its first frame, remove it.
// Returns the wait in ms, or -1 when no frame came within the bound.
double one_join(GstElement *pipeline, GstElement *fork, int keyint) {
  GstElement *bin = gst_parse_bin_from_description(
      "queue max-size-buffers=0 max-size-time=0 max-size-bytes=0 ! rtpvp8depay ! vp8dec ! "
      "fakesink sync=false async=false name=sink",
      TRUE, nullptr);
  gst_bin_add(GST_BIN(pipeline), bin);
  Join j{};
  g_mutex_init(&j.lock);
  g_cond_init(&j.cond);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(bin), "sink");
  GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(sinkpad, GST_PAD_PROBE_TYPE_BUFFER, on_frame, &j, nullptr);
  gst_object_unref(sinkpad);
  gst_object_unref(sink);
  gst_element_set_state(bin, GST_STATE_PLAYING);

  const gint64 start = g_get_monotonic_time();
  guint id = G_MAXUINT;
  g_signal_emit_by_name(fork, "add-branch", &id);
  gchar *name = g_strdup_printf("src_%u", id);
  GstPad *src = gst_element_get_static_pad(fork, name);
  GstPad *in = gst_element_get_static_pad(bin, "sink");
  gst_pad_link(src, in);
  gst_object_unref(in);
  gst_object_unref(src);
  g_free(name);

  g_mutex_lock(&j.lock);
  const gint64 deadline = start + (keyint + 2) * G_USEC_PER_SEC;
  while (!j.first_frame_us && g_get_monotonic_time() < deadline)
    g_cond_wait_until(&j.cond, &j.lock, deadline);
  const gint64 got = j.first_frame_us;
  g_mutex_unlock(&j.lock);

  gboolean ok;
  g_signal_emit_by_name(fork, "remove-branch", id, &ok);
  gst_element_set_state(bin, GST_STATE_NULL);
  gst_bin_remove(GST_BIN(pipeline), bin);
  g_cond_clear(&j.cond);
  g_mutex_clear(&j.lock);
  return got ? (got - start) / 1000.0 : -1;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  const int keyint = argc > 1 ? std::atoi(argv[1]) : 10;
  const int joins = argc > 2 ? std::atoi(argv[2]) : 10;
  const int fps = 15;
  std::string desc =
      "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,"
      "framerate=" +
      std::to_string(fps) +
      "/1 ! vp8enc deadline=1 "
      "keyframe-max-dist=" +
      std::to_string(keyint * fps) + " ! rtpvp8pay ! rtpfork name=fork";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline) {
    std::fprintf(stderr, "keyframe_join: %s (is GST_PLUGIN_PATH set to build/plugins?)\n",
                 err ? err->message : "?");
    return 2;
  }
  GstElement *fork = gst_bin_get_by_name(GST_BIN(pipeline), "fork");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  g_usleep(2 * G_USEC_PER_SEC);  // the encoder is running, its first keyframe is old

  std::mt19937 rng(20261126);
  std::uniform_int_distribution<int> pause_ms(300, keyint * 1000 - 300);
  struct Mode {
    const char *name;
    bool request, replay;
  } modes[] = {{"neither", false, false},
               {"keyframe request", true, false},
               {"GOP replay", false, true},
               {"both (default)", true, true}};
  std::printf("keyframe interval %d s, %d joins per mode, 640x480 VP8 at %d fps\n", keyint, joins,
              fps);
  std::printf("%-18s %8s %8s %8s %8s\n", "mode", "p50 ms", "p95 ms", "max ms", "missed");
  for (const Mode &m : modes) {
    g_object_set(fork, "request-keyframe", m.request, "replay-gop", m.replay,
                 "keyframe-min-interval", 0u, nullptr);
    // Turning replay on starts an empty cache: let one keyframe interval pass so
    // that it holds a GOP, as it always does in a running relay.
    g_usleep(static_cast<gulong>(keyint + 1) * G_USEC_PER_SEC);
    std::vector<double> waits;
    int missed = 0;
    for (int i = 0; i < joins; ++i) {
      g_usleep(static_cast<gulong>(pause_ms(rng)) * 1000);  // somewhere in the GOP
      const double w = one_join(pipeline, fork, keyint);
      if (w < 0)
        ++missed;
      else
        waits.push_back(w);
    }
    if (waits.empty())
      std::printf("%-18s %8s %8s %8s %8d\n", m.name, "-", "-", "-", missed);
    else
      std::printf("%-18s %8.1f %8.1f %8.1f %8d\n", m.name, percentile(waits, 0.5),
                  percentile(waits, 0.95), percentile(waits, 1.0), missed);
    std::fflush(stdout);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(fork);
  gst_object_unref(pipeline);
  return 0;
}
