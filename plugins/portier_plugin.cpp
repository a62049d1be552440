// The GStreamer plugin "portier": registers the elements, nothing else.
#include <gst/gst.h>

#include "encpick/gstportierenc.h"
#include "rtpfork/gstrtpfork.h"

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = GST_ELEMENT_REGISTER(rtpfork, plugin);
  ok &= GST_ELEMENT_REGISTER(portierenc, plugin);
  return ok;
}

#ifndef PACKAGE
#define PACKAGE "portier"
#endif
#ifndef PORTIER_VERSION
#define PORTIER_VERSION "0.1.0"
#endif

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, portier,
                  "portier intercom elements: early-media RTP fork, encoder picker", plugin_init,
                  PORTIER_VERSION, "LGPL", "portier", "https://github.com/portier-intercom/portier")
