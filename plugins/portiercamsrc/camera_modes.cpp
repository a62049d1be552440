#include "camera_modes.h"

#include <algorithm>
#include <cstdio>

namespace portier::camera {

int compare(Fraction a, Fraction b) {
  const int64_t l = static_cast<int64_t>(a.num) * b.den;
  const int64_t r = static_cast<int64_t>(b.num) * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

std::string fourcc_name(uint32_t code) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((code >> (8 * i)) & 0xff);
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}

FormatInfo format_info(uint32_t code) {
  // cost: 0 is what an encoder takes as it is; packed YUV needs one cheap
  // repack; RGB and grey a colour conversion; JPEG a decode per frame.
  struct Entry {
    uint32_t code;
    FormatInfo info;
  };
  static const Entry table[] = {
      {fourcc('Y', 'U', '1', '2'), {FormatKind::Raw, "I420", 0}},
      {fourcc('N', 'V', '1', '2'), {FormatKind::Raw, "NV12", 0}},
      {fourcc('Y', 'V', '1', '2'), {FormatKind::Raw, "YV12", 1}},
      {fourcc('N', 'V', '2', '1'), {FormatKind::Raw, "NV21", 1}},
      {fourcc('Y', 'U', 'Y', 'V'), {FormatKind::Raw, "YUY2", 2}},
      {fourcc('U', 'Y', 'V', 'Y'), {FormatKind::Raw, "UYVY", 2}},
      {fourcc('Y', 'V', 'Y', 'U'), {FormatKind::Raw, "YVYU", 2}},
      {fourcc('R', 'G', 'B', '3'), {FormatKind::Raw, "RGB", 3}},
      {fourcc('B', 'G', 'R', '3'), {FormatKind::Raw, "BGR", 3}},
      {fourcc('G', 'R', 'E', 'Y'), {FormatKind::Raw, "GRAY8", 3}},
      {fourcc('M', 'J', 'P', 'G'), {FormatKind::Jpeg, nullptr, 4}},
      {fourcc('J', 'P', 'E', 'G'), {FormatKind::Jpeg, nullptr, 4}},
  };
  for (const Entry &e : table)
    if (e.code == code) return e.info;
  return {};
}

Fraction choose_rate(const Mode &mode, Fraction wanted) {
  if (mode.rates.empty()) return {};
  if (mode.rate_range && mode.rates.size() == 2) {
    const Fraction lo = mode.rates[0], hi = mode.rates[1];
    if (compare(wanted, lo) < 0) return lo;
    if (compare(wanted, hi) > 0) return hi;
    return wanted;
  }
  std::optional<Fraction> above, highest;
  for (const Fraction &r : mode.rates) {
    if (!r.known()) continue;
    if (compare(r, wanted) == 0) return wanted;
    if (compare(r, wanted) > 0 && (!above || compare(r, *above) < 0)) above = r;
    if (!highest || compare(r, *highest) > 0) highest = r;
  }
  if (above) return *above;
  return highest ? *highest : Fraction{};
}

namespace {

// How well one mode fits the request; smaller is better, field by field.
struct Fit {
  int rate_short;         // 1: cannot reach the requested rate
  int size_class;         // 0 exact, 1 bigger, 2 smaller in some dimension
  int64_t size_distance;  // within a class: the nearest (or, smaller, the biggest)
  Fraction rate;          // with rate_short: the higher the better
  int cost;

  bool better_than(const Fit &o) const {
    if (rate_short != o.rate_short) return rate_short < o.rate_short;
    if (size_class != o.size_class) return size_class < o.size_class;
    if (size_distance != o.size_distance) return size_distance < o.size_distance;
    if (rate_short && compare(rate, o.rate) != 0) return compare(rate, o.rate) > 0;
    return cost < o.cost;
  }
};

Fit fit_of(const Mode &m, Fraction rate, const Request &req) {
  Fit f{};
  f.rate = rate;
  // A driver that lists no rate is taken at its word: videorate will cope.
  f.rate_short = rate.known() && compare(rate, req.rate) < 0 ? 1 : 0;
  const int64_t area = static_cast<int64_t>(m.width) * m.height;
  const int64_t wanted = static_cast<int64_t>(req.width) * req.height;
  if (m.width == req.width && m.height == req.height) {
    f.size_class = 0;
  } else if (m.width >= req.width && m.height >= req.height) {
    f.size_class = 1;
    f.size_distance = area - wanted;
  } else {
    f.size_class = 2;
    f.size_distance = -area;
  }
  f.cost = format_info(m.fourcc).cost;
  return f;
}

}  // namespace

std::optional<Choice> choose_mode(const std::vector<Mode> &modes, const Request &request) {
  std::optional<Choice> best;
  Fit best_fit{};
  for (const Mode &m : modes) {
    if (format_info(m.fourcc).kind == FormatKind::Unusable || m.width <= 0 || m.height <= 0)
      continue;
    const Fraction rate = choose_rate(m, request.rate);
    const Fit f = fit_of(m, rate, request);
    // strictly better only: among equals the driver's first listed wins
    if (!best || f.better_than(best_fit)) {
      best = Choice{m, rate};
      best_fit = f;
    }
  }
  return best;
}

std::string source_caps(const Choice &choice) {
  const FormatInfo info = format_info(choice.mode.fourcc);
  std::string caps;
  if (info.kind == FormatKind::Raw)
    caps = std::string("video/x-raw,format=") + info.gst_format;
  else if (info.kind == FormatKind::Jpeg)
    caps = "image/jpeg";
  else
    return {};
  char rest[96];
  std::snprintf(rest, sizeof rest, ",width=%d,height=%d", choice.mode.width, choice.mode.height);
  caps += rest;
  if (choice.rate.known()) {
    std::snprintf(rest, sizeof rest, ",framerate=%d/%d", choice.rate.num, choice.rate.den);
    caps += rest;
  }
  return caps;
}

std::vector<std::pair<int, int>> sizes_in_range(const SizeRange &r) {
  static const std::pair<int, int> common[] = {
      {160, 120},  {320, 240},  {352, 288},  {640, 360},   {640, 480},   {800, 600},
      {1024, 768}, {1280, 720}, {1280, 960}, {1920, 1080}, {2560, 1440}, {3840, 2160},
  };
  auto on_grid = [](int v, int lo, int hi, int step) {
    return v >= lo && v <= hi && (step <= 1 || (v - lo) % step == 0);
  };
  std::vector<std::pair<int, int>> out;
  auto add = [&](int w, int h) {
    if (w > 0 && h > 0 && std::find(out.begin(), out.end(), std::make_pair(w, h)) == out.end())
      out.emplace_back(w, h);
  };
  add(r.min_width, r.min_height);
  for (const auto &[w, h] : common)
    if (on_grid(w, r.min_width, r.max_width, r.step_width) &&
        on_grid(h, r.min_height, r.max_height, r.step_height))
      add(w, h);
  add(r.max_width, r.max_height);
  return out;
}

}  // namespace portier::camera
