// portieraec: removes the door speaker's echo from the microphone. See the
// doc block in gstportieraec.cpp.
#pragma once

#include <gst/audio/gstaudiofilter.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_PORTIER_AEC (gst_portier_aec_get_type())
G_DECLARE_FINAL_TYPE(GstPortierAec, gst_portier_aec, GST, PORTIER_AEC, GstAudioFilter)

GST_ELEMENT_REGISTER_DECLARE(portieraec);

G_END_DECLS
