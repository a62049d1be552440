// The command line every portier program shares:
//   --config FILE    (default /etc/portier/PROGRAM.conf)
//   --dump-default   print the documented default config and exit
//   --check-config   load and validate the config, report, exit 0 or 1
#pragma once

#include <optional>
#include <string>

#include "common/config.h"

namespace portier::cli {

// Parses argv and loads the config into `config`. Prints errors and the
// --dump-default / --help text itself. `check` runs program-specific checks
// (files that must exist, cross-key rules); it returns "" when all is well.
// `warn`, with --check-config, returns "" or one line printed as a warning
// (the exit code stays 0).
// Returns nothing when the program should run, else the code it exits with
// now:  if (auto rc = cli::parse_and_load(...)) return *rc;
std::optional<int> parse_and_load(int argc, char **argv, const std::string &default_path,
                                  config::Config &config,
                                  std::string (*check)(const config::Config &),
                                  std::string (*warn)(const config::Config &) = nullptr);

}  // namespace portier::cli
