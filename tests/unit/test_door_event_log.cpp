// The door's event log and ring snapshots in a temporary directory: the JSON
// lines, one file per UTC day, and the retention limits.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/event_writer.h"
#include "door/event_log.h"
#include "door_test_util.h"

using door_test::read_file;
using door_test::TempDir;
using portier::door::DoorEvent;
using portier::door::EventKind;
using portier::door::EventLog;
using portier::door::EventLogOptions;

namespace {

constexpr int64_t kDay = 86400LL * 1000;
constexpr int64_t kMay1Noon = 1714564800123;  // 2024-05-01T12:00:00.123Z

// Today's 12:00:00.123 UTC: open() applies retention at the real time, so tests
// that reopen a log write near it.
int64_t today_noon() { return portier::clock::Stamp::now().wall_ms / kDay * kDay + kDay / 2 + 123; }

std::vector<std::string> files(const std::string &dir, const std::string &prefix) {
  std::vector<std::string> out;
  for (const auto &e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

EventLogOptions options(const std::string &dir) {
  EventLogOptions o;
  o.dir = dir;
  return o;
}

DoorEvent event(EventKind kind, const std::string &detail = "") {
  DoorEvent e;
  e.kind = kind;
  e.detail = detail;
  return e;
}

}  // namespace

TEST(DoorEventLog, TimeFormats) {
  EXPECT_EQ(portier::events::iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(portier::events::iso8601_utc(kMay1Noon), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(portier::events::file_stamp(kMay1Noon), "20240501T120000.123Z");
  portier::clock::Stamp now = portier::clock::Stamp::now();
  EXPECT_GT(now.wall_ms, kMay1Noon);
  EXPECT_GT(now.mono_ms, 0);
}

TEST(DoorEventLog, AVisitAsJsonLines) {
  TempDir dir;
  EventLog log;
  std::string error;
  ASSERT_TRUE(log.open(options(dir / "door"), &error)) << error;  // created
  const std::string ring = portier::events::file_stamp(kMay1Noon);
  DoorEvent e = event(EventKind::Ring);
  e.ring = ring;
  e.snapshot = "ring-" + ring + ".jpg";
  ASSERT_TRUE(log.write(e, {kMay1Noon, 5000}, &error)) << error;
  e = event(EventKind::Answered);
  e.ring = ring;
  e.who = "sip:alice@home.example";
  ASSERT_TRUE(log.write(e, {kMay1Noon + 4000, 9000}, &error));
  e = event(EventKind::Action, "pulse of 1500 ms");
  e.ring = ring;
  e.who = "sip:alice@home.example";
  e.action = "door";
  e.result = "started";
  ASSERT_TRUE(log.write(e, {kMay1Noon + 9000, 14000}, &error));
  e = event(EventKind::ActionRefused, "wrong code (1 of 3 before lock-out)");
  e.who = "sip:\"bob\"\n@home.example";  // a hostile identity stays on its line
  e.result = "wrong_code";
  ASSERT_TRUE(log.write(e, {kMay1Noon + 9500, 14500}, &error));
  ASSERT_TRUE(log.write(event(EventKind::Ended, "hangup"), {kMay1Noon + 20000, 25000}, &error));

  EXPECT_EQ(log.current_file(), "events-20240501T120000.123Z.jsonl");
  EXPECT_EQ(read_file(dir / "door/events-20240501T120000.123Z.jsonl"),
            "{\"event\":\"ring\",\"wall\":\"2024-05-01T12:00:00.123Z\",\"wall_ms\":1714564800123,"
            "\"mono_ms\":5000,"
            "\"ring\":\"20240501T120000.123Z\",\"snapshot\":\"ring-20240501T120000.123Z.jpg\"}\n"
            "{\"event\":\"answered\",\"wall\":\"2024-05-01T12:00:04.123Z\",\"wall_ms\":"
            "1714564804123,\"mono_ms\":9000,"
            "\"ring\":\"20240501T120000.123Z\",\"who\":\"sip:alice@home.example\"}\n"
            "{\"event\":\"action\",\"wall\":\"2024-05-01T12:00:09.123Z\",\"wall_ms\":1714564809123,"
            "\"mono_ms\":14000,"
            "\"ring\":\"20240501T120000.123Z\",\"who\":\"sip:alice@home.example\","
            "\"action\":\"door\",\"result\":\"started\",\"detail\":\"pulse of 1500 ms\"}\n"
            "{\"event\":\"action_refused\",\"wall\":\"2024-05-01T12:00:09.623Z\",\"wall_ms\":"
            "1714564809623,\"mono_ms\":14500,"
            "\"who\":\"sip:\\\"bob\\\"\\n@home.example\",\"result\":\"wrong_code\","
            "\"detail\":\"wrong code (1 of 3 before lock-out)\"}\n"
            "{\"event\":\"ended\",\"wall\":\"2024-05-01T12:00:20.123Z\",\"wall_ms\":1714564820123,"
            "\"mono_ms\":25000,"
            "\"detail\":\"hangup\"}\n");
  struct stat st;
  ASSERT_EQ(stat((dir / "door").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
}

TEST(DoorEventLog, OneFilePerUtcDayAndTodaysFileContinuesAfterARestart) {
  TempDir dir;
  std::string error;
  const int64_t before_midnight = today_noon() - kDay / 2 - 60000;  // yesterday 23:59:00.123
  const int64_t after_midnight = before_midnight + 120000;          // today 00:01:00.123
  {
    EventLog log;
    ASSERT_TRUE(log.open(options(dir.path()), &error)) << error;
    ASSERT_TRUE(log.write(event(EventKind::Ring), {before_midnight, 1}, &error));
    ASSERT_TRUE(log.write(event(EventKind::Ended), {after_midnight, 2}, &error));
  }
  const std::string today_file = "events-" + portier::events::file_stamp(after_midnight) + ".jsonl";
  EXPECT_EQ(files(dir.path(), "events-"),
            (std::vector<std::string>{
                "events-" + portier::events::file_stamp(before_midnight) + ".jsonl", today_file}));
  EventLog again;
  ASSERT_TRUE(again.open(options(dir.path()), &error));
  ASSERT_TRUE(again.write(event(EventKind::Ring), {after_midnight + 3600000, 3}, &error));
  EXPECT_EQ(again.current_file(), today_file);
  EXPECT_EQ(files(dir.path(), "events-").size(), 2u);
}

TEST(DoorEventLog, DaysBeyondKeepDaysAreDeleted) {
  TempDir dir;
  EventLog log;
  std::string error;
  EventLogOptions o = options(dir.path());
  o.keep_days = 30;
  ASSERT_TRUE(log.open(o, &error));
  const int64_t today = today_noon();
  for (int64_t age : {40, 35, 31, 29, 1, 0})
    ASSERT_TRUE(log.write(event(EventKind::Ring), {today - age * kDay, age}, &error));
  // The day that ended 30.5 days ago goes; the one that ended 29.5 days ago stays.
  auto left = files(dir.path(), "events-");
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left.back(), log.current_file());
  EXPECT_EQ(left[0], "events-" + portier::events::file_stamp(today - 29 * kDay) + ".jsonl");
}

TEST(DoorEventLog, SizeLimitDropsTheOldestChunksButNeverTheCurrentFile) {
  TempDir dir;
  EventLog log;
  std::string error;
  EventLogOptions o = options(dir.path());
  o.keep_bytes = 16 * 1024;  // chunks of 4 KiB
  ASSERT_TRUE(log.open(o, &error));
  const std::string detail(150, 'x');
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(log.write(event(EventKind::Ended, detail), {kMay1Noon + i, i}, &error));
  int64_t total = 0;
  auto left = files(dir.path(), "events-");
  for (const auto &f : left) total += std::filesystem::file_size(dir / f);
  EXPECT_LE(total, o.keep_bytes + 4096 + 512);
  EXPECT_GE(left.size(), 3u);
  EXPECT_EQ(left.back(), log.current_file());
  // The newest line is there.
  EXPECT_NE(read_file(dir / log.current_file()).find("\"mono_ms\":999,"), std::string::npos);
}

TEST(DoorEventLog, SnapshotsAreWrittenWholeAndOnlyTheNewestAreKept) {
  TempDir dir;
  EventLog log;
  std::string error;
  EventLogOptions o = options(dir.path());
  o.keep_rings = 3;
  door_test::write_file(dir / "ring-20240101T000000.000Z.tmp", "half");
  ASSERT_TRUE(log.open(o, &error));
  EXPECT_TRUE(files(dir.path(), "ring-").empty());  // a crash's half file is gone

  const std::string jpeg = std::string("\xff\xd8\xff\xe0", 4) + "fake jpeg" + "\xff\xd9";
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    std::string file;
    ASSERT_TRUE(
        log.save_snapshot({kMay1Noon + i * 60000, i}, jpeg.data(), jpeg.size(), &file, &error))
        << error;
    names.push_back(file);
  }
  EXPECT_EQ(names[0], "ring-20240501T120000.123Z.jpg");
  EXPECT_EQ(files(dir.path(), "ring-"), (std::vector<std::string>{names[2], names[3], names[4]}));
  EXPECT_EQ(read_file(dir / names[4]), jpeg);
  // Two rings in the same millisecond do not overwrite each other.
  std::string file;
  ASSERT_TRUE(log.save_snapshot({kMay1Noon + 4 * 60000, 9}, "x", 1, &file, &error));
  EXPECT_EQ(file, "ring-20240501T120400.123Z-2.jpg");
  EXPECT_EQ(files(dir.path(), "ring-").size(), 3u);
}

TEST(DoorEventLog, NoSnapshotsWhenKeepRingsIsZero) {
  TempDir dir;
  EventLog log;
  std::string error;
  EventLogOptions o = options(dir.path());
  o.keep_rings = 0;
  ASSERT_TRUE(log.open(o, &error));
  std::string file = "x";
  ASSERT_TRUE(log.save_snapshot({kMay1Noon, 1}, "jpeg", 4, &file, &error));
  EXPECT_EQ(file, "");
  EXPECT_TRUE(files(dir.path(), "ring-").empty());
}

TEST(DoorEventLog, UnusableDirectoryIsAClearError) {
  TempDir dir;
  door_test::write_file(dir / "file", "x");
  EventLog log;
  std::string error;
  EXPECT_FALSE(log.open(options(dir / "file"), &error));
  EXPECT_EQ(error, "the event directory '" + (dir / "file") + "' is not a writable directory");
  EXPECT_FALSE(log.open(options(dir / "missing/deeper"), &error));
  EXPECT_EQ(error, "cannot create the event directory '" + (dir / "missing/deeper") +
                       "': No such file or directory");
}
