#include "common/text_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace portier {

bool read_text_file(const std::string &path, const char *what, std::string *text,
                    std::string *error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error) *error = path + ": cannot open the " + what + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    if (error) *error = path + ": cannot read the " + what;
    return false;
  }
  *text = buffer.str();
  return true;
}

}  // namespace portier
