// The libgpiod v1 stand-in (see fake_gpiod.h). Its gpiod_* functions follow the
// documented behaviour of the real ones that the door relies on: lookup by name,
// path, number or label; NULL/-1 with errno on failure; EBUSY for a line in use;
// an event descriptor that is readable when edges are pending. set_value only
// makes async-signal-safe calls, as the real one does (one ioctl), since the door
// calls it in a forked child.
#include "fake_gpiod.h"

#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

struct gpiod_line {
  gpiod_chip *chip = nullptr;
  unsigned offset = 0;
  enum { Free, Output, Events } state = Free;
  int event_type = 0;  // GPIOD_LINE_REQUEST_EVENT_* for Events
  int value = 0;
  int pipe_read = -1, pipe_write = -1;
};

struct gpiod_chip {
  const char *name;
  const char *path;
  const char *label;
  unsigned num_lines;
  gpiod_line lines[64];
};

namespace {

struct ChipInfo {
  const char *name, *path, *label;
  unsigned num_lines;
};
const ChipInfo kChips[] = {{"gpiochip0", "/dev/gpiochip0", "fake-soc", 54},
                           {"gpiochip1", "/dev/gpiochip1", "fake-expander", 8}};

char g_record_path[512];

struct Busy {
  std::string chip;
  unsigned offset;
};
std::vector<Busy> g_busy;
std::vector<gpiod_chip *> g_open_chips;

bool is_busy(const gpiod_line *line) {
  for (const auto &b : g_busy)
    if (b.chip == line->chip->name && b.offset == line->offset) return true;
  return false;
}

// Formats and appends one record with async-signal-safe calls only.
void record(const gpiod_line *line, int value) {
  if (!g_record_path[0]) return;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char buf[160];
  size_t n = 0;
  auto put = [&](const char *s) {
    while (*s && n < sizeof buf - 1) buf[n++] = *s++;
  };
  auto put_num = [&](unsigned long long v) {
    char digits[24];
    int d = 0;
    do {
      digits[d++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    while (d && n < sizeof buf - 1) buf[n++] = digits[--d];
  };
  put(line->chip->name);
  put(" ");
  put_num(line->offset);
  put(" ");
  put_num(static_cast<unsigned>(value));
  put(" ");
  put_num(static_cast<unsigned long long>(ts.tv_sec) * 1000000000ULL +
          static_cast<unsigned long long>(ts.tv_nsec));
  put(" ");
  put_num(static_cast<unsigned long long>(getpid()));
  put("\n");
  int fd = open(g_record_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t ignored = write(fd, buf, n);
  (void)ignored;
  close(fd);
}

void release(gpiod_line *line) {
  if (line->pipe_read >= 0) close(line->pipe_read);
  if (line->pipe_write >= 0) close(line->pipe_write);
  line->pipe_read = line->pipe_write = -1;
  line->state = gpiod_line::Free;
}

int request_events(gpiod_line *line, int type) {
  if (!line) {
    errno = EINVAL;
    return -1;
  }
  if (line->state != gpiod_line::Free || is_busy(line)) {
    errno = EBUSY;
    return -1;
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  // The writer side must never block a test; the reader side blocks like the
  // kernel's event descriptor.
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  line->pipe_read = fds[0];
  line->pipe_write = fds[1];
  line->state = gpiod_line::Events;
  line->event_type = type;
  return 0;
}

}  // namespace

namespace fake_gpiod {

void set_record_file(const std::string &path) {
  snprintf(g_record_path, sizeof g_record_path, "%s", path.c_str());
}

void set_busy(const std::string &chip, unsigned offset, bool busy) {
  for (auto it = g_busy.begin(); it != g_busy.end(); ++it)
    if (it->chip == chip && it->offset == offset) {
      g_busy.erase(it);
      break;
    }
  if (busy) g_busy.push_back({chip, offset});
}

bool inject_edge(const std::string &chip, unsigned offset, bool rising, timespec when) {
  for (gpiod_chip *c : g_open_chips) {
    if (chip != c->name || offset >= c->num_lines) continue;
    gpiod_line *line = &c->lines[offset];
    if (line->state != gpiod_line::Events) return false;
    const bool wanted = line->event_type == GPIOD_LINE_REQUEST_EVENT_BOTH_EDGES ||
                        (rising && line->event_type == GPIOD_LINE_REQUEST_EVENT_RISING_EDGE) ||
                        (!rising && line->event_type == GPIOD_LINE_REQUEST_EVENT_FALLING_EDGE);
    if (!wanted) return false;
    gpiod_line_event ev;
    memset(&ev, 0, sizeof ev);
    ev.ts = when;
    ev.event_type = rising ? GPIOD_LINE_EVENT_RISING_EDGE : GPIOD_LINE_EVENT_FALLING_EDGE;
    return write(line->pipe_write, &ev, sizeof ev) == static_cast<ssize_t>(sizeof ev);
  }
  return false;
}

std::vector<Record> read_records(const std::string &path) {
  std::vector<Record> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Record r;
    if (fields >> r.chip >> r.offset >> r.value >> r.mono_ns >> r.pid) out.push_back(r);
  }
  return out;
}

}  // namespace fake_gpiod

extern "C" {

struct gpiod_chip *gpiod_chip_open_lookup(const char *descr) {
  if (!descr) {
    errno = EINVAL;
    return nullptr;
  }
  const std::string d = descr;
  for (const auto &info : kChips) {
    const std::string number = std::string(info.name).substr(8);
    if (d == info.name || d == info.path || d == info.label || d == number) {
      auto *chip = new gpiod_chip();
      chip->name = info.name;
      chip->path = info.path;
      chip->label = info.label;
      chip->num_lines = info.num_lines;
      for (unsigned i = 0; i < info.num_lines; ++i) {
        chip->lines[i].chip = chip;
        chip->lines[i].offset = i;
      }
      g_open_chips.push_back(chip);
      return chip;
    }
  }
  errno = ENOENT;
  return nullptr;
}

void gpiod_chip_close(struct gpiod_chip *chip) {
  if (!chip) return;
  for (unsigned i = 0; i < chip->num_lines; ++i) release(&chip->lines[i]);
  for (auto it = g_open_chips.begin(); it != g_open_chips.end(); ++it)
    if (*it == chip) {
      g_open_chips.erase(it);
      break;
    }
  delete chip;
}

const char *gpiod_chip_name(struct gpiod_chip *chip) { return chip->name; }
const char *gpiod_chip_label(struct gpiod_chip *chip) { return chip->label; }
unsigned int gpiod_chip_num_lines(struct gpiod_chip *chip) { return chip->num_lines; }

struct gpiod_line *gpiod_chip_get_line(struct gpiod_chip *chip, unsigned int offset) {
  if (!chip || offset >= chip->num_lines) {
    errno = EINVAL;
    return nullptr;
  }
  return &chip->lines[offset];
}

int gpiod_line_request_output(struct gpiod_line *line, const char *consumer, int default_val) {
  if (!line) {
    errno = EINVAL;
    return -1;
  }
  if (line->state != gpiod_line::Free || is_busy(line)) {
    errno = EBUSY;
    return -1;
  }
  line->state = gpiod_line::Output;
  line->value = default_val ? 1 : 0;
  record(line, line->value);
  return 0;
}

int gpiod_line_set_value(struct gpiod_line *line, int value) {
  if (!line || line->state != gpiod_line::Output) {
    errno = EPERM;
    return -1;
  }
  line->value = value ? 1 : 0;
  record(line, line->value);
  return 0;
}

int gpiod_line_request_rising_edge_events(struct gpiod_line *line, const char *consumer) {
  return request_events(line, GPIOD_LINE_REQUEST_EVENT_RISING_EDGE);
}

int gpiod_line_request_falling_edge_events(struct gpiod_line *line, const char *consumer) {
  return request_events(line, GPIOD_LINE_REQUEST_EVENT_FALLING_EDGE);
}

int gpiod_line_request_both_edges_events(struct gpiod_line *line, const char *consumer) {
  return request_events(line, GPIOD_LINE_REQUEST_EVENT_BOTH_EDGES);
}

int gpiod_line_event_get_fd(struct gpiod_line *line) {
  if (!line || line->state != gpiod_line::Events) {
    errno = EPERM;
    return -1;
  }
  return line->pipe_read;
}

int gpiod_line_event_read(struct gpiod_line *line, struct gpiod_line_event *event) {
  if (!line || line->state != gpiod_line::Events) {
    errno = EPERM;
    return -1;
  }
  ssize_t n = read(line->pipe_read, event, sizeof *event);
  if (n != static_cast<ssize_t>(sizeof *event)) {
    if (n >= 0) errno = EIO;
    return -1;
  }
  return 0;
}

void gpiod_line_release(struct gpiod_line *line) {
  if (line) release(line);
}

}  // extern "C"
