// portieraecprobe: the echo canceller's ear on the speaker path. See the doc
// block in gstportieraecprobe.cpp.
#pragma once

#include <gst/audio/gstaudiofilter.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_PORTIER_AEC_PROBE (gst_portier_aec_probe_get_type())
G_DECLARE_FINAL_TYPE(GstPortierAecProbe, gst_portier_aec_probe, GST, PORTIER_AEC_PROBE,
                     GstAudioFilter)

GST_ELEMENT_REGISTER_DECLARE(portieraecprobe);

G_END_DECLS
