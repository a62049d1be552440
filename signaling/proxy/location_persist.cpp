#include "proxy/location_persist.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace portier::proxy {
namespace {

// Version 2 added the RFC 8599 push parameters (three fields at the end of a
// binding). A version 1 file or journal record (an older proxy's) still loads,
// its bindings without push; an older proxy refuses a version 2 file.
constexpr std::string_view kHeader = "portier-registrations 2";
constexpr std::string_view kHeaderV1 = "portier-registrations 1";
constexpr size_t kFields = 12;  // the AOR, then every field of Binding

// Whether any of the 8 bytes of w is escaped (below 0x20, 0x7f or '%'): the
// classic "has a zero byte" test, on w itself for the bytes below 0x20, and on
// w xor the byte for the other two. Exact for "any", which is all it answers.
bool any_escaped(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  auto has_zero = [](uint64_t x) { return (x - kOnes) & ~x & kHighs; };
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
  return (below_space | has_zero(w ^ (kOnes * 0x7f)) | has_zero(w ^ (kOnes * '%'))) != 0;
}

// Tab and newline separate fields and records, so they and '%' itself are
// escaped; so is every other control byte, so the file stays one record per line
// whatever a User-Agent header contained.
void append_escaped(std::string &out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  static constexpr auto kEscaped = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = c < 0x20 || c == 0x7f || c == '%';
    return t;
  }();
  // Runs of plain characters are appended whole (a record per REGISTER), and
  // found eight bytes at a time: escapes are rare.
  size_t plain = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (s.size() - i >= 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, sizeof w);
      if (!any_escaped(w)) {
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (kEscaped[c]) {
      out.append(s, plain, i - plain);
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
      plain = i + 1;
    }
    ++i;
  }
  out.append(s, plain, s.size() - plain);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool unescape(std::string_view s, std::string &out) {
  out.clear();
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = hex_value(s[i + 1]);
    int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

template <typename T>
bool parse_number(std::string_view s, T &value) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

void append_number(std::string &out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

std::string errno_message(const std::string &what, const char *op, int err) {
  return what + ": " + op + ": " + std::strerror(err);
}

bool write_all(int fd, const std::string &data) {
  const char *p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

// rename(2) is atomic, but only durable once the directory entry is on disk.
bool sync_directory_of(const std::string &path, std::string *error) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = errno_message(dir, "open", errno);
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok && error) *error = errno_message(dir, "fsync", err);
  return ok;
}

constexpr size_t kBindingFields = kFields - 1;  // every field of Binding
constexpr size_t kBindingFieldsV1 = 8;          // without push

// Splits a line at its tabs into at most `max` fields; false when there are more.
bool split_fields(std::string_view line, std::string_view *fields, size_t max, size_t &n) {
  n = 0;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    if (n == max) return false;
    fields[n++] = line.substr(start, tab == std::string_view::npos ? tab : tab - start);
    if (tab == std::string_view::npos) return true;
    start = tab + 1;
  }
}

// The fields of one binding: "contact instance call_id cseq q_milli expires_at
// user_agent received pn-provider pn-prid pn-param" (version 1: the first 8).
// Everything a REGISTER could not have stored is refused here too, so an older
// version's file or a hand edit cannot bring it back.
bool parse_binding(const std::string_view *fields, size_t count, Binding &b, std::string &message) {
  static const char *const kNames[kBindingFields] = {
      "contact",    "instance", "call-id",     "cseq",    "q",       "expires-at",
      "user-agent", "received", "pn-provider", "pn-prid", "pn-param"};
  std::string *text[kBindingFields] = {&b.contact,       &b.instance,  &b.call_id,    nullptr,
                                       nullptr,          nullptr,      &b.user_agent, &b.received,
                                       &b.push.provider, &b.push.prid, &b.push.param};
  for (size_t i = 0; i < count; ++i) {
    if (text[i] && !unescape(fields[i], *text[i])) {
      message = std::string("bad escape in ") + kNames[i];
      return false;
    }
  }
  if (b.contact.empty()) {
    message = "empty contact";
    return false;
  }
  if (!is_valid_contact_uri(b.contact)) {
    message = "bad contact (not a SIP URI)";
    return false;
  }
  if (!parse_number(fields[3], b.cseq)) {
    message = "bad cseq";
    return false;
  }
  if (!parse_number(fields[4], b.q_milli) || b.q_milli < 0 || b.q_milli > 1000) {
    message = "bad q";
    return false;
  }
  if (!parse_number(fields[5], b.expires_at)) {
    message = "bad expires-at";
    return false;
  }
  if (!b.push.provider.empty() && b.push.prid.empty()) {
    message = "pn-provider without pn-prid";
    return false;
  }
  if (b.push.provider.empty() && !(b.push.prid.empty() && b.push.param.empty())) {
    message = "pn-prid or pn-param without pn-provider";
    return false;
  }
  return true;
}

void append_binding(std::string &out, const Binding &b) {
  append_escaped(out, b.contact);
  out += '\t';
  append_escaped(out, b.instance);
  out += '\t';
  append_escaped(out, b.call_id);
  out += '\t';
  append_number(out, b.cseq);
  out += '\t';
  append_number(out, b.q_milli);
  out += '\t';
  append_number(out, b.expires_at);
  out += '\t';
  append_escaped(out, b.user_agent);
  out += '\t';
  append_escaped(out, b.received);
  out += '\t';
  append_escaped(out, b.push.provider);
  out += '\t';
  append_escaped(out, b.push.prid);
  out += '\t';
  append_escaped(out, b.push.param);
}

// One snapshot line: the AOR, then the binding's fields, tab-separated.
bool parse_line(std::string_view line, size_t binding_fields, std::string &aor, Binding &b,
                std::string &message) {
  const size_t want = 1 + binding_fields;
  std::string_view fields[kFields];
  size_t n = 0;
  if (!split_fields(line, fields, want, n)) {
    message = "too many fields (expected " + std::to_string(want) + ")";
    return false;
  }
  if (n != want) {
    message = "expected " + std::to_string(want) + " fields, got " + std::to_string(n);
    return false;
  }
  if (!unescape(fields[0], aor)) {
    message = "bad escape in aor";
    return false;
  }
  if (aor.empty()) {
    message = "empty aor";
    return false;
  }
  return parse_binding(fields + 1, binding_fields, b, message);
}

// CRC-32 (IEEE 802.3): a journal record whose bytes did not all reach the disk,
// or were changed afterwards, is told apart from a whole one.
uint32_t crc32(std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = table[(c ^ static_cast<unsigned char>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// v as 8 lower-case hex digits at out.
void write_hex32(char *out, uint32_t v) {
  static const char kHex[] = "0123456789abcdef";
  for (int shift = 28; shift >= 0; shift -= 4) *out++ = kHex[(v >> shift) & 0xf];
}

// A journal line: "crc32 aor count binding-fields...", the CRC over everything
// after its own tab.
bool parse_journal_line(std::string_view line, std::string &aor, std::vector<Binding> &bindings,
                        std::string &message) {
  size_t tab = line.find('\t');
  uint32_t crc = 0;
  if (tab != 8 || std::from_chars(line.data(), line.data() + 8, crc, 16).ptr != line.data() + 8) {
    message = "not a journal record";
    return false;
  }
  std::string_view payload = line.substr(9);
  if (crc32(payload) != crc) {
    message = "checksum mismatch";
    return false;
  }
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    size_t t = payload.find('\t', start);
    fields.push_back(payload.substr(start, t == std::string_view::npos ? t : t - start));
    if (t == std::string_view::npos) break;
    start = t + 1;
  }
  size_t count = 0;
  if (fields.size() < 2 || !unescape(fields[0], aor) || aor.empty() ||
      !parse_number(fields[1], count)) {
    message = "bad aor or count";
    return false;
  }
  // The count tells a version 1 record (an older proxy's journal) from a
  // version 2 one.
  size_t per = kBindingFields;
  if (count != 0 && fields.size() == 2 + count * kBindingFieldsV1) per = kBindingFieldsV1;
  if (count > fields.size() || fields.size() != 2 + count * per) {
    message = "expected " + std::to_string(2 + count * kBindingFields) + " fields, got " +
              std::to_string(fields.size());
    return false;
  }
  bindings.clear();
  for (size_t i = 0; i < count; ++i) {
    Binding b;
    if (!parse_binding(&fields[2 + i * per], per, b, message)) return false;
    bindings.push_back(std::move(b));
  }
  return true;
}

// Reads a whole file; ENOENT is a missing file (*exists false), not an error.
bool read_whole(const std::string &path, std::string &text, bool &exists, std::string *error) {
  text.clear();
  exists = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    if (error) *error = errno_message(path, "open", errno);
    return false;
  }
  exists = true;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      if (error) *error = errno_message(path, "read", err);
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

// A copy of a file we could not fully use, for the admin: the next
// compaction rewrites the original.
std::string keep_copy(const std::string &path, const std::string &text, int64_t now) {
  std::string copy = path + ".bad-" + std::to_string(now);
  int fd = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "";
  bool ok = write_all(fd, text) && ::fsync(fd) == 0;
  ::close(fd);
  return ok ? copy : "";
}

}  // namespace

LocationPersister::LocationPersister(std::string path) : path_(std::move(path)) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { worker(); });
}

LocationPersister::~LocationPersister() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (journal_fd_ >= 0) ::close(journal_fd_);
  if (event_fd_ >= 0) ::close(event_fd_);
}

bool LocationPersister::load(LocationStore &store, int64_t now, std::string *error,
                             LoadReport *report) {
  LoadReport local;
  if (!report) report = &local;
  *report = LoadReport();
  std::map<std::string, std::vector<Binding>> records;

  std::string text;
  bool exists = false;
  if (!read_whole(path_, text, exists, error)) {
    store.restore({});
    return false;
  }
  bool bad = false;
  auto problem = [&](const std::string &file, size_t line_no, const std::string &message) {
    report->problems.push_back(file + ":" + std::to_string(line_no) + ": " + message);
    bad = true;
  };
  std::string_view rest = text;
  size_t line_no = 0;
  size_t binding_fields = kBindingFields;
  std::string aor;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (line_no == 1) {
      if (line == kHeaderV1) {
        binding_fields = kBindingFieldsV1;
      } else if (line != kHeader) {
        problem(path_, 1,
                "not a portier registrations file (version 1 or 2): nothing restored from it");
        break;
      }
      continue;
    }
    Binding b;
    std::string message;
    if (!parse_line(line, binding_fields, aor, b, message)) {
      problem(path_, line_no, message + ": record skipped");
      continue;
    }
    if (b.expires_at > now) records[aor].push_back(std::move(b));
  }
  // save() never leaves an empty file behind (it renames only a written, synced
  // one), so an empty file was truncated by something else.
  if (exists && line_no == 0) problem(path_, 1, "empty file");
  if (bad) {
    std::string copy = keep_copy(path_, text, now);
    if (!copy.empty()) report->kept.push_back(copy);
  }

  // The journal's records are newer than the snapshot: replay them in order.
  const std::string journal = journal_path();
  if (!read_whole(journal, text, exists, error)) {
    store.restore({});
    return false;
  }
  bad = false;
  rest = text;
  line_no = 0;
  std::vector<Binding> bindings;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      // A record whose write the crash cut: it was never synced, so its 200
      // was never sent. Nothing to report but its size.
      report->torn_bytes = rest.size();
      break;
    }
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    ++line_no;
    if (line.empty()) continue;  // ends a record a failed write cut (journal_write)
    std::string message;
    if (!parse_journal_line(line, aor, bindings, message)) {
      problem(journal, line_no, message + ": record skipped");
      continue;
    }
    ++report->journal_records;
    bindings.erase(std::remove_if(bindings.begin(), bindings.end(),
                                  [now](const Binding &x) { return x.expires_at <= now; }),
                   bindings.end());
    if (bindings.empty()) {
      records.erase(aor);
    } else {
      records[aor] = std::move(bindings);
    }
  }
  if (bad) {
    std::string copy = keep_copy(journal, text, now);
    if (!copy.empty()) report->kept.push_back(copy);
  }

  store.restore(std::move(records));
  // What is in the store now is what the snapshot holds (minus expired
  // bindings, which the next load drops again): no need to write it back.
  // Anything replayed or skipped calls for a new snapshot.
  if (report->problems.empty() && report->journal_records == 0 && report->torn_bytes == 0)
    written_generation_ = store.generation();
  return true;
}

bool LocationPersister::save(const LocationStore &store, std::string *error) {
  if (store.generation() == written_generation_) return true;
  return save_now(store, error);
}

bool LocationPersister::save_now(const LocationStore &store, std::string *error) {
  if (!write_file(serialize(store), error)) return false;
  written_generation_ = store.generation();
  ++writes_;
  return true;
}

std::string LocationPersister::serialize(const LocationStore &store) {
  std::string data;
  data.reserve(64 + store.binding_count() * 192);
  data += kHeader;
  data += '\n';
  for (const auto &[aor, bindings] : store.records()) {
    for (const Binding &b : bindings) {
      append_escaped(data, aor);
      data += '\t';
      append_binding(data, b);
      data += '\n';
    }
  }
  return data;
}

bool LocationPersister::write_file(const std::string &data, std::string *error) const {
  // A crash before the rename leaves the old file intact and a stray .tmp that
  // the next save truncates; a crash after it leaves the complete new file.
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (error) *error = errno_message(tmp, "open", errno);
    return false;
  }
  const char *failed = nullptr;
  if (!write_all(fd, data)) {
    failed = "write";
  } else if (::fsync(fd) != 0) {
    failed = "fsync";
  }
  int err = errno;
  if (::close(fd) != 0 && !failed) {
    failed = "close";
    err = errno;
  }
  if (!failed && ::rename(tmp.c_str(), path_.c_str()) != 0) {
    failed = "rename";
    err = errno;
  }
  if (failed) {
    ::unlink(tmp.c_str());
    if (error) *error = errno_message(tmp, failed, err);
    return false;
  }
  return sync_directory_of(path_, error);
}

std::string LocationPersister::journal_record(const std::string &aor,
                                              const std::vector<Binding> &bindings) {
  // The payload is written after room for its CRC, which is filled in last: one
  // string, no copy of the payload into the line.
  constexpr size_t kCrc = 8;
  std::string line(kCrc, '0');
  line.reserve(kCrc + 64 + bindings.size() * 192);
  line += '\t';
  append_escaped(line, aor);
  line += '\t';
  append_number(line, static_cast<int64_t>(bindings.size()));
  for (const Binding &b : bindings) {
    line += '\t';
    append_binding(line, b);
  }
  write_hex32(line.data(), crc32(std::string_view(line).substr(kCrc + 1)));
  line += '\n';
  return line;
}

uint64_t LocationPersister::append(std::string records) {
  journal_bytes_ += records.size();
  return enqueue(false, std::move(records));
}

uint64_t LocationPersister::compact_in_background(const LocationStore &store) {
  journal_bytes_ = 0;
  return enqueue(true, serialize(store));
}

bool LocationPersister::compact_now(const LocationStore &store, std::string *error) {
  drain();
  // The worker is idle and takes nothing until this thread queues again.
  if (!write_file(serialize(store), error) || !journal_truncate(error)) return false;
  written_generation_ = store.generation();
  ++writes_;
  journal_bytes_ = 0;
  return true;
}

uint64_t LocationPersister::enqueue(bool snapshot, std::string data) {
  uint64_t seq;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
    // The worker waits for the first task only; later ones join its commit
    // window (or the next batch) without a wake-up of their own.
    wake = queue_.empty() || snapshot;
    queue_.push_back({seq, snapshot, std::move(data), std::chrono::steady_clock::now()});
  }
  if (wake) cv_.notify_one();
  return seq;
}

std::vector<LocationPersister::Finished> LocationPersister::take_finished() {
  uint64_t count;
  while (::read(event_fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Finished> out;
  out.swap(finished_);
  return out;
}

void LocationPersister::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  hurry_ = true;
  cv_.notify_one();
  idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
  hurry_ = false;
}

void LocationPersister::worker() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return quit_ || !queue_.empty(); });
    if (queue_.empty()) break;  // quit_, with everything written
    if (!queue_.front().snapshot)
      cv_.wait_until(lock, queue_.front().queued + kGroupCommitWindow,
                     [this] { return quit_ || hurry_; });
    // Group commit: every append queued while the last sync ran goes out in
    // one write and one fdatasync. A snapshot runs alone, in its turn, so the
    // journal it empties holds nothing queued after it.
    std::vector<uint64_t> seqs;
    const bool snapshot = queue_.front().snapshot;
    std::string data;
    if (snapshot) {
      data = std::move(queue_.front().data);
      seqs.push_back(queue_.front().seq);
      queue_.pop_front();
    } else {
      while (!queue_.empty() && !queue_.front().snapshot) {
        data += queue_.front().data;
        seqs.push_back(queue_.front().seq);
        queue_.pop_front();
      }
    }
    busy_ = true;
    lock.unlock();
    std::string error;
    const bool ok = snapshot ? write_file(data, &error) && journal_truncate(&error)
                             : journal_write(data, &error);
    lock.lock();
    for (uint64_t seq : seqs) finished_.push_back({seq, ok, error});
    busy_ = false;
    idle_cv_.notify_all();
    const uint64_t one = 1;
    if (event_fd_ >= 0) (void)!::write(event_fd_, &one, sizeof one);
  }
}

bool LocationPersister::open_journal(std::string *error) {
  if (journal_fd_ >= 0) return true;
  const std::string journal = journal_path();
  journal_fd_ = ::open(journal.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (journal_fd_ < 0) {
    if (error) *error = errno_message(journal, "open", errno);
    return false;
  }
  // A crash, or a failed write (which closes the file), may have left part of
  // a record at its end: looked at once per opening, since from then on what
  // we write tells.
  char last = '\n';
  const off_t end = ::lseek(journal_fd_, 0, SEEK_END);
  if (end > 0 && ::pread(journal_fd_, &last, 1, end - 1) != 1) last = '\n';
  journal_cut_ = last != '\n';
  // A new journal's directory entry must be durable before its records count.
  return sync_directory_of(journal, error);
}

bool LocationPersister::journal_write(const std::string &data, std::string *error) {
  if (!open_journal(error)) return false;
  // A cut record's line is ended first, so the part is one bad record and this
  // batch stays whole.
  const char *failed = nullptr;
  if (journal_cut_ && !write_all(journal_fd_, "\n")) {
    failed = "write";
  } else if (!write_all(journal_fd_, data)) {
    failed = "write";
  } else if (::fdatasync(journal_fd_) != 0) {
    failed = "fdatasync";
  }
  if (failed) {
    // Reopen next time: after a failed write the file's end is unknown to us
    // (O_APPEND still puts the next record after whatever got there).
    if (error) *error = errno_message(journal_path(), failed, errno);
    ::close(journal_fd_);
    journal_fd_ = -1;
    return false;
  }
  if (!data.empty()) journal_cut_ = data.back() != '\n';
  return true;
}

bool LocationPersister::journal_truncate(std::string *error) {
  if (!open_journal(error)) return false;
  if (::ftruncate(journal_fd_, 0) != 0 || ::fsync(journal_fd_) != 0) {
    if (error) *error = errno_message(journal_path(), "truncate", errno);
    return false;
  }
  journal_cut_ = false;
  return true;
}

}  // namespace portier::proxy
