// portiercamsrc: the door's camera, or a test pattern when there is none.
// See the doc block in gstportiercamsrc.cpp.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_PORTIER_CAM_SRC (gst_portier_cam_src_get_type())
G_DECLARE_FINAL_TYPE(GstPortierCamSrc, gst_portier_cam_src, GST, PORTIER_CAM_SRC, GstBin)

#define GST_TYPE_PORTIER_CAM_SRC_FORMAT (gst_portier_cam_src_format_get_type())
GType gst_portier_cam_src_format_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(portiercamsrc);

G_END_DECLS
