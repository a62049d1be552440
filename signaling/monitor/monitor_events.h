// The monitor's milestones (registered, ringing, first RTP, first decoded frame,
// answered, action sent, ended with its reason) are lines of the common event
// writer (common/event_writer.h), written to the log, to `events-file` and to
// the ring that `portierctl events` returns. These are its names in the
// monitor's code.
#pragma once

#include "common/event_writer.h"

namespace portier::monitor {

using EventSink = events::Writer;
using EventField = events::Field;
using EventTime = clock::Stamp;
using events::field;
using events::iso8601_utc;

}  // namespace portier::monitor
