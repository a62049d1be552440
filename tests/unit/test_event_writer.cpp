// The event writer of every daemon: one JSON object per milestone with both
// clocks, appended to the events file and kept for `portierctl events`.
#include <gtest/gtest.h>

#include "common/event_writer.h"
#include "door_test_util.h"

using EventSink = portier::events::Writer;
using EventTime = portier::clock::Stamp;
using portier::events::field;
using portier::events::file_stamp;
using portier::events::format_line;
using portier::events::iso8601_utc;

TEST(EventWriter, ALineHasBothClocksAndItsFields) {
  EventTime t;
  t.wall_ms = 1714564800123;  // 2024-05-01T12:00:00.123Z
  t.mono_ms = 81234567;
  EXPECT_EQ(format_line("first_frame",
                        {field("since_invite_ms", int64_t{142}), field("width", 640),
                         field("decoder", "vp8dec"), field("ok", true)},
                        t),
            "{\"event\":\"first_frame\",\"wall\":\"2024-05-01T12:00:00.123Z\","
            "\"wall_ms\":1714564800123,\"mono_ms\":81234567,\"since_invite_ms\":142,"
            "\"width\":640,\"decoder\":\"vp8dec\",\"ok\":true}");
}

TEST(EventWriter, FieldsAreEscapedAndCannotReplaceTheClocks) {
  EventTime t{0, 5};
  EXPECT_EQ(format_line("ended", {field("reason", "a \"quoted\"\nline"), field("mono_ms", 1)}, t),
            "{\"event\":\"ended\",\"wall\":\"1970-01-01T00:00:00.000Z\",\"wall_ms\":0,"
            "\"mono_ms\":5,\"reason\":\"a \\\"quoted\\\"\\nline\"}");
}

TEST(EventWriter, Iso8601) {
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(951782400999), "2000-02-29T00:00:00.999Z");
  // Before 1970 the milliseconds still count forward from the second.
  EXPECT_EQ(iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(file_stamp(1714564800123), "20240501T120000.123Z");
}

TEST(EventWriter, BothClocksOfOneMoment) {
  const EventTime a = EventTime::now();
  const EventTime b = EventTime::now();
  EXPECT_GT(a.wall_ms, 1700000000000);  // after 2023
  EXPECT_GE(b.mono_ms, a.mono_ms);
}

TEST(EventWriter, TheFileGetsOneLinePerEventAndTheRingKeepsTheLast) {
  door_test::TempDir dir;
  const std::string path = dir / "events.jsonl";
  {
    EventSink sink;
    std::string error;
    ASSERT_TRUE(sink.open(path, &error)) << error;
    sink.add("ringing", {field("from", "sip:door@home.example")});
    for (int i = 0; i < 300; ++i) sink.add("tick", {field("i", i)});
    EXPECT_EQ(sink.size(), 200u);
    const std::string arr = sink.json_array();
    EXPECT_EQ(arr.front(), '[');
    EXPECT_EQ(arr.back(), ']');
    EXPECT_EQ(arr.find("ringing"), std::string::npos);  // pushed out of the ring
    EXPECT_NE(arr.find("\"i\":299"), std::string::npos);
  }
  const std::string text = door_test::read_file(path);
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  EXPECT_EQ(lines, 301u);
  EXPECT_EQ(text.rfind("{\"event\":\"ringing\",", 0), 0u);
  // A second run appends.
  EventSink again;
  std::string error;
  ASSERT_TRUE(again.open(path, &error));
  again.add("registered");
  EXPECT_NE(door_test::read_file(path).find("\"event\":\"registered\""), std::string::npos);
}

TEST(EventWriter, AnUnwritableFileIsAnError) {
  EventSink sink;
  std::string error;
  EXPECT_FALSE(sink.open("/nonexistent-dir/events.jsonl", &error));
  EXPECT_NE(error.find("/nonexistent-dir/events.jsonl"), std::string::npos);
  EventSink none;
  EXPECT_TRUE(none.open("", &error));
  none.add("registered");
  EXPECT_EQ(none.size(), 1u);
}
