#include "door/gpio_open.h"

#include <errno.h>
#include <gpiod.h>
#include <string.h>

namespace portier::door {

bool gpio_open_line(const std::string &chip, unsigned offset, gpiod_chip **chip_out,
                    gpiod_line **line_out, std::string *error) {
  errno = 0;
  gpiod_chip *c = gpiod_chip_open_lookup(chip.c_str());
  if (!c) {
    const int err = errno;
    // The lookup reports a chip that is nowhere as ENOENT (or ENODEV for a path
    // that is not a GPIO chip); anything else is worth its own words.
    if (err == 0 || err == ENOENT || err == ENODEV || err == ENOTTY)
      *error = "GPIO chip '" + chip + "' not found (try gpiodetect)";
    else
      *error = "cannot open GPIO chip '" + chip + "': " + strerror(err);
    return false;
  }
  const unsigned lines = gpiod_chip_num_lines(c);
  if (offset >= lines) {
    *error = "line " + std::to_string(offset) + " does not exist on GPIO chip '" + chip + "' (" +
             std::to_string(lines) + " lines, 0-" + std::to_string(lines ? lines - 1 : 0) + ")";
    gpiod_chip_close(c);
    return false;
  }
  gpiod_line *l = gpiod_chip_get_line(c, offset);
  if (!l) {
    *error = "cannot get line " + std::to_string(offset) + " of GPIO chip '" + chip +
             "': " + strerror(errno);
    gpiod_chip_close(c);
    return false;
  }
  *chip_out = c;
  *line_out = l;
  return true;
}

}  // namespace portier::door
