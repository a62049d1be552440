// rtpfork: an RTP tee for early media. See the doc block in gstrtpfork.cpp.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_RTP_FORK (gst_rtp_fork_get_type())
G_DECLARE_FINAL_TYPE(GstRtpFork, gst_rtp_fork, GST, RTP_FORK, GstElement)

#define GST_TYPE_RTP_FORK_PAD (gst_rtp_fork_pad_get_type())
G_DECLARE_FINAL_TYPE(GstRtpForkPad, gst_rtp_fork_pad, GST, RTP_FORK_PAD, GstPad)

GST_ELEMENT_REGISTER_DECLARE(rtpfork);

G_END_DECLS
