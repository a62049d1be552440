// The monitor's event lines: one JSON object per milestone with both clocks,
// appended to the events file and kept for `portierctl events`.
#include <gtest/gtest.h>

#include "door_test_util.h"
#include "monitor/monitor_events.h"

using portier::monitor::EventSink;
using portier::monitor::EventTime;
using portier::monitor::field;
using portier::monitor::format_event;
using portier::monitor::iso8601_utc;

TEST(MonitorEvents, ALineHasBothClocksAndItsFields) {
  EventTime t;
  t.wall_ms = 1714564800123;  // 2024-05-01T12:00:00.123Z
  t.mono_ms = 81234567;
  EXPECT_EQ(format_event("first_frame",
                         {field("since_invite_ms", int64_t{142}), field("width", 640),
                          field("decoder", "vp8dec"), field("ok", true)},
                         t),
            "{\"event\":\"first_frame\",\"wall\":\"2024-05-01T12:00:00.123Z\","
            "\"wall_ms\":1714564800123,\"mono_ms\":81234567,\"since_invite_ms\":142,"
            "\"width\":640,\"decoder\":\"vp8dec\",\"ok\":true}");
}

TEST(MonitorEvents, FieldsAreEscapedAndCannotReplaceTheClocks) {
  EventTime t{0, 5};
  EXPECT_EQ(format_event("ended", {field("reason", "a \"quoted\"\nline"), field("mono_ms", 1)}, t),
            "{\"event\":\"ended\",\"wall\":\"1970-01-01T00:00:00.000Z\",\"wall_ms\":0,"
            "\"mono_ms\":5,\"reason\":\"a \\\"quoted\\\"\\nline\"}");
}

TEST(MonitorEvents, Iso8601) {
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(951782400999), "2000-02-29T00:00:00.999Z");
}

TEST(MonitorEvents, TheFileGetsOneLinePerEventAndTheRingKeepsTheLast) {
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

TEST(MonitorEvents, AnUnwritableFileIsAnError) {
  EventSink sink;
  std::string error;
  EXPECT_FALSE(sink.open("/nonexistent-dir/events.jsonl", &error));
  EXPECT_NE(error.find("/nonexistent-dir/events.jsonl"), std::string::npos);
  EventSink none;
  EXPECT_TRUE(none.open("", &error));
  none.add("registered");
  EXPECT_EQ(none.size(), 1u);
}
