// Opening a GPIO chip and one of its lines through libgpiod v1, with the errors
// a user can act on. Shared by the lock actuator and the GPIO button.
#pragma once

#include <string>

struct gpiod_chip;
struct gpiod_line;

namespace portier::door {

// `chip` is what gpiod_chip_open_lookup takes: "gpiochip0", "/dev/gpiochip0", "0"
// or the chip's label. On success *chip_out and *line_out are set (the line not
// yet requested; the caller closes the chip). False with *error otherwise:
// "GPIO chip 'x' not found", "line 40 does not exist on GPIO chip 'gpiochip0' (32 lines)".
bool gpio_open_line(const std::string &chip, unsigned offset, gpiod_chip **chip_out,
                    gpiod_line **line_out, std::string *error);

}  // namespace portier::door
