// The order in which portierenc tries the encoders that can produce the
// negotiated codec, in the style of GStreamer's autodetect elements.
//
//   1. The factories named in try-first, in that order, whatever their rank
//      (rank NONE included) or table row says: the integrator knows best.
//   2. Every other candidate, except rank NONE (GStreamer's "never autoplug
//      me", as autodetect does) and factories the table marks to skip:
//      hardware first (klass contains "Hardware") unless prefer-hardware is
//      off, then by rank, highest first, then by name, as
//      gst_plugin_feature_rank_compare_func() sorts.
//
// The element then probes the candidates in this order (READY state) and
// keeps the first that works. GST_PLUGIN_FEATURE_RANK changes the ranks the
// element sees, so it also forces or forbids an encoder without any portier
// setting.
#pragma once

#include <string>
#include <vector>

#include "encoder_table.h"

namespace portier::encpick {

// An element factory as the registry describes it.
struct Candidate {
  std::string factory;
  unsigned rank = 0;  // GstRank: 0 none, 64 marginal, 128 secondary, 256 primary
  bool hardware = false;
};

struct ChoicePolicy {
  bool prefer_hardware = true;
  std::vector<std::string> try_first;
};

struct Ordering {
  std::vector<std::string> order;  // to probe, first first
  // Candidates left out, each with the reason (for the debug log and the
  // error message when nothing works).
  std::vector<std::pair<std::string, std::string>> left_out;
};

Ordering order_candidates(std::vector<Candidate> candidates, const ChoicePolicy &policy,
                          const EncoderTable &table);

// "a, b,,c " -> {"a", "b", "c"}
std::vector<std::string> split_names(const std::string &list);

}  // namespace portier::encpick
