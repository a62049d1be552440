#include "encoder_choice.h"

#include <algorithm>

namespace portier::encpick {

Ordering order_candidates(std::vector<Candidate> candidates, const ChoicePolicy &policy,
                          const EncoderTable &table) {
  Ordering out;
  auto taken = [&](const std::string &name) {
    return std::find(out.order.begin(), out.order.end(), name) != out.order.end();
  };
  for (const std::string &name : policy.try_first) {
    const bool present = std::any_of(candidates.begin(), candidates.end(),
                                     [&](const Candidate &c) { return c.factory == name; });
    if (present && !taken(name)) out.order.push_back(name);
  }

  std::vector<Candidate> ranked;
  for (Candidate &c : candidates) {
    if (taken(c.factory)) continue;
    if (c.rank == 0) {
      out.left_out.emplace_back(c.factory, "rank none");
      continue;
    }
    const EncoderRow *row = table.find(c.factory);
    if (row && !row->skip_reason.empty()) {
      out.left_out.emplace_back(c.factory, row->skip_reason);
      continue;
    }
    ranked.push_back(std::move(c));
  }
  std::sort(ranked.begin(), ranked.end(), [&](const Candidate &a, const Candidate &b) {
    if (policy.prefer_hardware && a.hardware != b.hardware) return a.hardware;
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.factory < b.factory;
  });
  for (const Candidate &c : ranked) out.order.push_back(c.factory);
  return out;
}

std::vector<std::string> split_names(const std::string &list) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string name = list.substr(start, end - start);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    if (!name.empty()) names.push_back(std::move(name));
    start = end + 1;
  }
  return names;
}

}  // namespace portier::encpick
