// Helpers shared by the door's unit tests: a temporary directory that cleans up
// after itself, whole-file reads, and waiting on a descriptor.
#pragma once

#include <poll.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace door_test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/portier-door-XXXXXX";
    if (mkdtemp(tmpl)) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }
  std::string operator/(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_file(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// True when `fd` became readable. The bound only keeps a broken build from
// hanging the test run; no test asserts how fast anything is.
inline bool wait_readable(int fd, int guard_ms = 60000) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, guard_ms) == 1;
}

}  // namespace door_test
