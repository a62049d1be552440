#include "common/cli.h"

#include <cstdio>
#include <cstring>

namespace portier::cli {

std::optional<int> parse_and_load(int argc, char **argv, const std::string &default_path,
                                  config::Config &config,
                                  std::string (*check)(const config::Config &),
                                  std::string (*warn)(const config::Config &)) {
  std::string path = default_path;
  bool check_only = false;
  const char *prog = argc > 0 ? argv[0] : "portier";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--config") && i + 1 < argc) {
      path = argv[++i];
    } else if (!std::strncmp(argv[i], "--config=", 9)) {
      path = argv[i] + 9;
    } else if (!std::strcmp(argv[i], "--dump-default")) {
      // The schema is the Config's; a default Config dumps it.
      std::fputs(config::dump_default(*config.schema()).c_str(), stdout);
      return 0;
    } else if (!std::strcmp(argv[i], "--check-config")) {
      check_only = true;
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf(
          "usage: %s [--config FILE] [--check-config] [--dump-default]\n"
          "  --config FILE   configuration file (default %s)\n"
          "  --check-config  validate the configuration and exit\n"
          "  --dump-default  print the documented default configuration and exit\n",
          prog, default_path.c_str());
      return 0;
    } else {
      std::fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", prog, argv[i]);
      return 1;
    }
  }
  std::string error;
  if (!config.load_file(path, &error)) {
    std::fprintf(stderr, "%s: config error: %s\n", prog, error.c_str());
    return 1;
  }
  if (check) {
    std::string problem = check(config);
    if (!problem.empty()) {
      std::fprintf(stderr, "%s: config error: %s\n", prog, problem.c_str());
      return 1;
    }
  }
  if (check_only) {
    const std::string warning = warn ? warn(config) : "";
    if (!warning.empty()) std::fprintf(stderr, "%s: warning: %s\n", prog, warning.c_str());
    std::printf("%s: configuration %s is valid\n", prog, path.c_str());
    return 0;
  }
  return std::nullopt;
}

}  // namespace portier::cli
