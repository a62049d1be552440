// The GStreamer plugin "portier": registers the elements, nothing else.
#include <gst/gst.h>

#include "portieraec/gstportieraec.h"
#include "portieraec/gstportieraecprobe.h"
#include "portiercamsrc/gstportiercamsrc.h"
#include "portierenc/gstportierenc.h"
#include "rtpfork/gstrtpfork.h"

static gboolean plugin_init(GstPlugin *plugin) {
  // Every element must register: a plugin with one missing would load and
  // then fail in some pipeline far from here.
  gboolean ok = GST_ELEMENT_REGISTER(rtpfork, plugin);
  ok &= GST_ELEMENT_REGISTER(portiercamsrc, plugin);
  ok &= GST_ELEMENT_REGISTER(portierenc, plugin);
  ok &= GST_ELEMENT_REGISTER(portieraecprobe, plugin);
  ok &= GST_ELEMENT_REGISTER(portieraec, plugin);
  return ok;
}

#ifndef PACKAGE
#define PACKAGE "portier"
#endif
#ifndef PORTIER_VERSION
#define PORTIER_VERSION "0.1.0"
#endif

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, portier,
                  "portier intercom elements: early-media RTP fork, door camera source, encoder "
                  "picker, echo canceller",
                  plugin_init, PORTIER_VERSION, "LGPL", "portier",
                  "https://github.com/portier-intercom/portier")
