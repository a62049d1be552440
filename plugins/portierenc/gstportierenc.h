// portierenc: picks and configures the best video encoder present. See the
// doc block in gstportierenc.cpp.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_PORTIER_ENC (gst_portier_enc_get_type())
G_DECLARE_FINAL_TYPE(GstPortierEnc, gst_portier_enc, GST, PORTIER_ENC, GstBin)

typedef enum {
  GST_PORTIER_ENC_CODEC_AUTO,
  GST_PORTIER_ENC_CODEC_H264,
  GST_PORTIER_ENC_CODEC_VP8,
} GstPortierEncCodec;

#define GST_TYPE_PORTIER_ENC_CODEC (gst_portier_enc_codec_get_type())
GType gst_portier_enc_codec_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(portierenc);

G_END_DECLS
