#include "proxy/location_persist.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace portier::proxy {
namespace {

constexpr std::string_view kHeader = "portier-registrations 1";
constexpr size_t kFields = 9;  // the AOR, then every field of Binding

// Tab and newline separate fields and records, so they and '%' itself are
// escaped; so is every other control byte, so the file stays one record per line
// whatever a User-Agent header contained.
void append_escaped(std::string &out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    } else {
      out += ch;
    }
  }
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

// One record line: "aor contact instance call_id cseq q_milli expires_at
// user_agent received", tab-separated.
bool parse_line(std::string_view line, int64_t now, std::string &aor, Binding &b, bool &keep,
                std::string &message) {
  std::string_view fields[kFields];
  size_t n = 0;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    if (n == kFields) {
      message = "too many fields (expected " + std::to_string(kFields) + ")";
      return false;
    }
    fields[n++] = line.substr(start, tab == std::string_view::npos ? tab : tab - start);
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  if (n != kFields) {
    message = "expected " + std::to_string(kFields) + " fields, got " + std::to_string(n);
    return false;
  }
  static const char *const kNames[kFields] = {"aor", "contact",    "instance",   "call-id", "cseq",
                                              "q",   "expires-at", "user-agent", "received"};
  std::string *text[kFields] = {&aor,    &b.contact, &b.instance,   &b.call_id, nullptr,
                                nullptr, nullptr,    &b.user_agent, &b.received};
  for (size_t i = 0; i < kFields; ++i) {
    if (text[i] && !unescape(fields[i], *text[i])) {
      message = std::string("bad escape in ") + kNames[i];
      return false;
    }
  }
  if (aor.empty() || b.contact.empty()) {
    message = aor.empty() ? "empty aor" : "empty contact";
    return false;
  }
  if (!parse_number(fields[4], b.cseq)) {
    message = "bad cseq";
    return false;
  }
  if (!parse_number(fields[5], b.q_milli) || b.q_milli < 0 || b.q_milli > 1000) {
    message = "bad q";
    return false;
  }
  if (!parse_number(fields[6], b.expires_at)) {
    message = "bad expires-at";
    return false;
  }
  keep = b.expires_at > now;
  return true;
}

}  // namespace

bool LocationPersister::load(LocationStore &store, int64_t now, std::string *error) {
  std::string text;
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    store.restore({});
    if (err == ENOENT) return true;  // first start
    if (error) *error = errno_message(path_, "open", err);
    return false;
  }
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      store.restore({});
      if (error) *error = errno_message(path_, "read", err);
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);

  std::map<std::string, std::vector<Binding>> records;
  auto fail = [&](size_t line_no, const std::string &message) {
    store.restore({});
    if (error) *error = path_ + ":" + std::to_string(line_no) + ": " + message;
    return false;
  };

  std::string_view rest = text;
  size_t line_no = 0;
  std::string aor;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (line_no == 1) {
      if (line != kHeader) return fail(1, "not a portier registrations file (version 1)");
      continue;
    }
    Binding b;
    bool keep = false;
    std::string message;
    if (!parse_line(line, now, aor, b, keep, message)) return fail(line_no, message);
    if (keep) records[aor].push_back(std::move(b));
  }
  // save() never leaves an empty file behind (it renames only a written, synced
  // one), so an empty file was truncated by something else: do not trust it.
  if (line_no == 0) return fail(1, "empty file");

  store.restore(std::move(records));
  // What is in the store now is what the file holds (minus expired bindings,
  // which the next load drops again): no need to write it back.
  written_generation_ = store.generation();
  return true;
}

bool LocationPersister::save(const LocationStore &store, std::string *error) {
  if (store.generation() == written_generation_) return true;
  return save_now(store, error);
}

bool LocationPersister::save_now(const LocationStore &store, std::string *error) {
  if (!flush(error)) return false;
  if (!write_file(serialize(store), error)) return false;
  written_generation_ = store.generation();
  ++writes_;
  return true;
}

bool LocationPersister::save_in_background(const LocationStore &store, std::string *error) {
  const bool previous_ok = collect(false, error);
  // One write at a time: while one runs, changes wait for the next call.
  if (pending_.valid() || store.generation() == written_generation_) return previous_ok;
  pending_generation_ = store.generation();
  pending_ = std::async(std::launch::async, [this, data = serialize(store)] {
    std::string e;
    bool ok = write_file(data, &e);
    return std::make_pair(ok, e);
  });
  return previous_ok;
}

bool LocationPersister::flush(std::string *error) { return collect(true, error); }

bool LocationPersister::collect(bool wait, std::string *error) {
  if (!pending_.valid()) return true;
  if (!wait && pending_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return true;
  auto [ok, message] = pending_.get();
  if (ok) {
    written_generation_ = pending_generation_;
    ++writes_;
  } else if (error) {
    *error = message;
  }
  return ok;
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
      append_escaped(data, b.contact);
      data += '\t';
      append_escaped(data, b.instance);
      data += '\t';
      append_escaped(data, b.call_id);
      data += '\t';
      append_number(data, b.cseq);
      data += '\t';
      append_number(data, b.q_milli);
      data += '\t';
      append_number(data, b.expires_at);
      data += '\t';
      append_escaped(data, b.user_agent);
      data += '\t';
      append_escaped(data, b.received);
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

}  // namespace portier::proxy
