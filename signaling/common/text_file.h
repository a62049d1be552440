// Reading a whole configuration-like file (config, users, static records) with
// one kind of error message: "PATH: cannot open the WHAT: REASON".
#pragma once

#include <string>

namespace portier {

bool read_text_file(const std::string &path, const char *what, std::string *text,
                    std::string *error);

}  // namespace portier
