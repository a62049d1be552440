// The registrations state file: round trip, corruption, crash safety, batching.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>

#include "proxy/location_persist.h"

namespace portier::proxy {
namespace {

constexpr int64_t kNow = 1700000000;

using Records = std::map<std::string, std::vector<Binding>>;
bool same_records(const Records &a, const Records &b) {
  auto key = [](const Binding &x) {
    return std::tie(x.contact, x.instance, x.call_id, x.cseq, x.q_milli, x.expires_at, x.user_agent,
                    x.received, x.push.provider, x.push.prid, x.push.param);
  };
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second.size() != ib->second.size()) return false;
    for (size_t i = 0; i < ia->second.size(); ++i)
      if (key(ia->second[i]) != key(ib->second[i])) return false;
  }
  return true;
}

class LocationPersistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/portier-persist-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/registrations";
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void write_file(const std::string &path, const std::string &text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  static RegisterRequest reg(const std::string &aor, const std::string &uri, int expires,
                             const std::string &call_id, uint32_t cseq) {
    RegisterRequest r;
    r.aor = aor;
    ContactSpec c;
    c.uri = uri;
    c.expires = expires;
    r.contacts.push_back(c);
    r.call_id = call_id;
    r.cseq = cseq;
    r.now = kNow;
    r.user_agent = "ua";
    r.received = "udp:127.0.0.1:5070";
    return r;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(LocationPersistTest, RoundTripKeepsEveryFieldAndOrder) {
  LocationStore store;
  RegisterRequest r = reg("sip:alice@home.example", "sip:alice@10.0.0.1:5070;transport=tcp", 600,
                          "call\tid\nwith%odd bytes", 42);
  r.contacts[0].instance = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";
  r.contacts[0].q_milli = 700;
  r.user_agent = "Linphone 5.2\r\n% tab\there";
  r.received = "tls:[2001:db8::1]:5061";
  r.contacts[0].push = {"apns.dev", "0a1b2c:voip&3d4e5f:remote", "ABCD1234.org.example.app.voip"};
  ASSERT_EQ(store.apply(r).status, 200);
  ASSERT_EQ(store.apply(reg("sip:alice@home.example", "sip:alice@10.0.0.2", 900, "c2", 1)).status,
            200);
  ASSERT_EQ(store.apply(reg("sip:bob@flat.example", "sip:bob@10.0.0.3", 300, "c3", 7)).status, 200);

  LocationPersister writer(path_);
  std::string error;
  ASSERT_TRUE(writer.save(store, &error)) << error;
  EXPECT_EQ(writer.writes(), 1u);
  const std::string text = read_file(path_);
  EXPECT_EQ(text.rfind("portier-registrations 2\n", 0), 0u);
  EXPECT_NE(text.find("call%09id%0Awith%25odd bytes"), std::string::npos);
  EXPECT_NE(text.find("Linphone 5.2%0D%0A%25 tab%09here"), std::string::npos);

  LocationStore loaded;
  LocationPersister reader(path_);
  ASSERT_TRUE(reader.load(loaded, kNow, &error)) << error;
  ASSERT_EQ(loaded.records().size(), store.records().size());
  for (const auto &[aor, bindings] : store.records()) {
    SCOPED_TRACE(aor);
    const std::vector<Binding> &got = loaded.records().at(aor);
    ASSERT_EQ(got.size(), bindings.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].contact, bindings[i].contact);
      EXPECT_EQ(got[i].instance, bindings[i].instance);
      EXPECT_EQ(got[i].call_id, bindings[i].call_id);
      EXPECT_EQ(got[i].cseq, bindings[i].cseq);
      EXPECT_EQ(got[i].q_milli, bindings[i].q_milli);
      EXPECT_EQ(got[i].expires_at, bindings[i].expires_at);
      EXPECT_EQ(got[i].user_agent, bindings[i].user_agent);
      EXPECT_EQ(got[i].received, bindings[i].received);
      EXPECT_TRUE(got[i].push == bindings[i].push);
    }
  }
  // Recency order survived: the later registration is still looked up first.
  EXPECT_EQ(loaded.lookup("sip:alice@home.example", kNow)[0].contact, "sip:alice@10.0.0.2");
  EXPECT_EQ(loaded.aors_in_domain("flat.example", kNow),
            (std::vector<std::string>{"sip:bob@flat.example"}));
  // The loaded state is what the file holds: nothing to write back.
  ASSERT_TRUE(reader.save(loaded, &error));
  EXPECT_EQ(reader.writes(), 0u);
  // A refresh after the restart is still ordered against the stored CSeq (7):
  // an older one is refused.
  EXPECT_EQ(loaded.apply(reg("sip:bob@flat.example", "sip:bob@10.0.0.3", 300, "c3", 6)).status,
            500);
}

// Every byte value at every position of a field, in fields longer and shorter
// than the eight bytes the writer scans at a time, comes back as it was; the
// escaped ones (controls, DEL, '%') never reach the file raw.
TEST_F(LocationPersistTest, EveryByteAtEveryPositionRoundTrips) {
  LocationStore store;
  std::vector<std::string> agents;
  for (int c = 1; c < 256; ++c) {
    const size_t len = 1 + static_cast<size_t>(c) % 19;
    std::string ua(len, 'a');
    ua[static_cast<size_t>(c) % len] = static_cast<char>(c);
    if (c % 3 == 0) ua += static_cast<char>(c);
    agents.push_back(ua);
  }
  for (size_t i = 0; i < agents.size(); ++i) {
    RegisterRequest r =
        reg("sip:u" + std::to_string(i) + "@home.example", "sip:u@10.0.0.1", 600, "c", 1);
    r.user_agent = agents[i];
    ASSERT_EQ(store.apply(r).status, 200);
  }
  LocationPersister writer(path_);
  std::string error;
  ASSERT_TRUE(writer.save(store, &error)) << error;
  const std::string text = read_file(path_);
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    EXPECT_TRUE(b >= 0x20 || c == '\t' || c == '\n') << int(b);
    EXPECT_NE(b, 0x7f);
  }
  LocationStore loaded;
  LocationPersister reader(path_);
  ASSERT_TRUE(reader.load(loaded, kNow, &error)) << error;
  for (size_t i = 0; i < agents.size(); ++i) {
    const auto &got = loaded.records().at("sip:u" + std::to_string(i) + "@home.example");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].user_agent, agents[i]) << i;
  }
}

TEST_F(LocationPersistTest, MissingFileIsAFirstStart) {
  LocationStore store;
  store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c", 1));
  LocationPersister persister(path_);
  std::string error;
  EXPECT_TRUE(persister.load(store, kNow, &error));
  EXPECT_EQ(store.binding_count(), 0u);
}

// A bad record costs that record, never the start (one REGISTER must not keep
// the intercom down after a reboot): the good records load, every bad one is
// reported with file:line and why, and the file as it was is kept for the admin.
TEST_F(LocationPersistTest, BadRecordsAreSkippedReportedAndTheFileKept) {
  const std::string good =
      "sip:a@home.example\tsip:a@10.0.0.1\t\tcid\t1\t1000\t1700000600\tua\tudp:1.2.3.4:5060\n";
  struct Case {
    const char *name;
    std::string text;
    std::string problem;
    size_t kept_bindings;
  };
  const Case cases[] = {
      {"bad header", "portier-registrations 3\n" + good, ":1: not a portier", 0},
      {"empty file", "", ":1: empty file", 0},
      {"missing field", "portier-registrations 1\n" + good + "sip:a@home.example\tsip:x\n",
       ":3: expected 9 fields, got 2", 1},
      {"extra field", "portier-registrations 1\n" + good.substr(0, good.size() - 1) + "\tx\n",
       ":2: too many fields", 0},
      {"bad cseq",
       "portier-registrations 1\n" + good + "sip:a@h\tsip:a@1\t\tc\t-1\t1000\t1700000600\tu\tr\n",
       ":3: bad cseq", 1},
      // What an older version stored for ";q=2", then refused at every start.
      {"bad q",
       "portier-registrations 1\nsip:a@h\tsip:a@1\t\tc\t1\t2000\t1700000600\tu\tr\n" + good,
       ":2: bad q", 1},
      {"bad expiry", "portier-registrations 1\nsip:a@h\tsip:a@1\t\tc\t1\t1000\t17e8\tu\tr\n",
       ":2: bad expires-at", 0},
      {"bad escape",
       "portier-registrations 1\nsip:a@h\tsip:a@1\t\tc%4\t1\t1000\t1700000600\tu\tr\n",
       ":2: bad escape in call-id", 0},
      {"empty contact", "portier-registrations 1\nsip:a@h\t\t\tc\t1\t1000\t1700000600\tu\tr\n",
       ":2: empty contact", 0},
      {"binary contact",
       "portier-registrations 1\nsip:a@h\tsip:%01%FF@h\t\tc\t1\t1000\t1700000600\tu\tr\n" + good,
       ":2: bad contact", 1},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directory(dir_);
    write_file(path_, c.text);
    LocationStore store;
    store.apply(reg("sip:a@home.example", "sip:a@10.0.0.9", 600, "c", 1));
    LocationPersister persister(path_);
    std::string error;
    LocationPersister::LoadReport report;
    ASSERT_TRUE(persister.load(store, kNow, &error, &report)) << error;
    ASSERT_EQ(report.problems.size(), 1u);
    EXPECT_EQ(report.problems[0].rfind(path_ + c.problem, 0), 0u) << report.problems[0];
    EXPECT_EQ(store.binding_count(), c.kept_bindings);
    ASSERT_EQ(report.kept.size(), 1u);
    EXPECT_EQ(read_file(report.kept[0]), c.text);
    // The next compaction writes only what loaded; the copy stays.
    ASSERT_TRUE(persister.compact_now(store, &error)) << error;
    LocationStore again;
    ASSERT_TRUE(LocationPersister(path_).load(again, kNow, &error, &report)) << error;
    EXPECT_TRUE(report.problems.empty());
    EXPECT_EQ(again.binding_count(), c.kept_bindings);
  }
}

TEST_F(LocationPersistTest, UnreadableFileIsAnError) {
  std::filesystem::create_directory(path_);  // read(2) on a directory: EISDIR
  LocationStore store;
  LocationPersister persister(path_);
  std::string error;
  EXPECT_FALSE(persister.load(store, kNow, &error));
  EXPECT_NE(error.find(path_), std::string::npos) << error;
}

// The journal: what append() queued is on disk once its sequence number is
// finished, and a restart replays it over the snapshot, in order.
TEST_F(LocationPersistTest, JournalRecordsAreReplayedOverTheSnapshot) {
  LocationStore store;
  LocationPersister persister(path_);
  std::string error;
  ASSERT_TRUE(persister.compact_now(store, &error)) << error;
  auto change = [&](const RegisterRequest &r) {
    EXPECT_EQ(store.apply(r).status, 200);
    auto it = store.records().find(r.aor);
    return persister.append(LocationPersister::journal_record(
        r.aor, it == store.records().end() ? std::vector<Binding>{} : it->second));
  };
  change(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c1", 1));
  change(reg("sip:a@home.example", "sip:a@10.0.0.2", 600, "c2", 1));
  change(reg("sip:b@home.example", "sip:b@10.0.0.3", 600, "c3", 1));
  change(reg("sip:a@home.example", "sip:a@10.0.0.1", 0, "c1", 2));  // removal
  RegisterRequest odd = reg("sip:c@home.example", "sip:c@10.0.0.4", 600, "tab\there", 9);
  odd.user_agent = "ua\nwith\tcontrols %";
  odd.contacts[0].q_milli = 250;
  const uint64_t last = change(odd);
  persister.drain();
  std::vector<LocationPersister::Finished> done = persister.take_finished();
  ASSERT_FALSE(done.empty());
  EXPECT_EQ(done.back().seq, last);
  for (const auto &f : done) EXPECT_TRUE(f.ok) << f.error;
  // The snapshot is still empty: everything is in the journal.
  EXPECT_EQ(read_file(path_), "portier-registrations 2\n");

  LocationStore loaded;
  LocationPersister::LoadReport report;
  ASSERT_TRUE(LocationPersister(path_).load(loaded, kNow, &error, &report)) << error;
  EXPECT_EQ(report.journal_records, 5u);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.torn_bytes, 0u);
  ASSERT_TRUE(same_records(loaded.records(), store.records()));
  const Binding &c = loaded.records().at("sip:c@home.example")[0];
  EXPECT_EQ(c.call_id, "tab\there");
  EXPECT_EQ(c.user_agent, "ua\nwith\tcontrols %");
  EXPECT_EQ(c.q_milli, 250);
}

// CRC-32 (IEEE), as the journal's writer computes it, to forge an older
// proxy's journal record.
uint32_t test_crc32(const std::string &data) {
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) {
    c ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

// An older proxy (version 1: no push fields) left its state file and journal:
// an upgrade restores every binding, without push, and the next write is
// version 2 with the push parameters.
TEST_F(LocationPersistTest, VersionOneFileAndJournalStillLoad) {
  write_file(
      path_,
      "portier-registrations 1\n"
      "sip:a@home.example\tsip:a@10.0.0.1\t\tcid\t1\t1000\t1700000600\tua\tudp:1.2.3.4:5060\n");
  const std::string payload =
      "sip:b@home.example\t1\tsip:b@10.0.0.2\t\tc2\t3\t500\t1700000700\tua\tudp:1.2.3.5:5060";
  char crc[9];
  snprintf(crc, sizeof crc, "%08x", test_crc32(payload));
  write_file(path_ + ".journal", std::string(crc) + "\t" + payload + "\n");

  LocationStore loaded;
  LocationPersister::LoadReport report;
  std::string error;
  ASSERT_TRUE(LocationPersister(path_).load(loaded, kNow, &error, &report)) << error;
  EXPECT_TRUE(report.problems.empty()) << report.problems[0];
  EXPECT_EQ(report.journal_records, 1u);
  ASSERT_EQ(loaded.binding_count(), 2u);
  EXPECT_TRUE(loaded.records().at("sip:a@home.example")[0].push.empty());
  EXPECT_EQ(loaded.records().at("sip:b@home.example")[0].q_milli, 500);

  RegisterRequest r = reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "cid", 2);
  r.contacts[0].push = {"fcm", "tok:en-1_x", "my-project"};
  ASSERT_EQ(loaded.apply(r).status, 200);
  LocationPersister writer(path_);
  ASSERT_TRUE(writer.compact_now(loaded, &error)) << error;
  const std::string text = read_file(path_);
  EXPECT_EQ(text.rfind("portier-registrations 2\n", 0), 0u);
  EXPECT_NE(text.find("\tfcm\ttok:en-1_x\tmy-project\n"), std::string::npos) << text;
  LocationStore again;
  ASSERT_TRUE(LocationPersister(path_).load(again, kNow, &error)) << error;
  EXPECT_TRUE(same_records(again.records(), loaded.records()));
}

// Push fields a REGISTER could not have stored (a provider without a device
// token, a token without a provider) are refused like any other bad field.
TEST_F(LocationPersistTest, InconsistentPushFieldsAreRefused) {
  const std::string head =
      "portier-registrations 2\nsip:a@h\tsip:a@1\t\tc\t1\t1000\t1700000600\tu\tr";
  const std::pair<std::string, std::string> cases[] = {
      {head + "\tfcm\t\tproj\n", ":2: pn-provider without pn-prid"},
      {head + "\t\ttoken\t\n", ":2: pn-prid or pn-param without pn-provider"},
  };
  for (const auto &[text, problem] : cases) {
    SCOPED_TRACE(problem);
    write_file(path_, text);
    LocationStore store;
    LocationPersister::LoadReport report;
    std::string error;
    ASSERT_TRUE(LocationPersister(path_).load(store, kNow, &error, &report)) << error;
    ASSERT_EQ(report.problems.size(), 1u);
    EXPECT_NE(report.problems[0].find(problem), std::string::npos) << report.problems[0];
    EXPECT_EQ(store.binding_count(), 0u);
  }
}

// A crash in the middle of a journal write leaves part of a record at the end:
// it was never synced, so its 200 was never sent. It is dropped quietly (only
// its size is reported); everything before it loads.
TEST_F(LocationPersistTest, TornLastJournalRecordIsDropped) {
  LocationStore store;
  ASSERT_EQ(store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c1", 1)).status, 200);
  const std::string whole = LocationPersister::journal_record(
      "sip:a@home.example", store.records().at("sip:a@home.example"));
  ASSERT_EQ(store.apply(reg("sip:b@home.example", "sip:b@10.0.0.2", 600, "c2", 1)).status, 200);
  const std::string next = LocationPersister::journal_record(
      "sip:b@home.example", store.records().at("sip:b@home.example"));
  for (size_t cut : {size_t{1}, next.size() / 2, next.size() - 1}) {
    SCOPED_TRACE(cut);
    write_file(path_ + ".journal", whole + next.substr(0, cut));
    LocationStore loaded;
    std::string error;
    LocationPersister::LoadReport report;
    LocationPersister persister(path_);
    ASSERT_TRUE(persister.load(loaded, kNow, &error, &report)) << error;
    EXPECT_EQ(report.journal_records, 1u);
    EXPECT_EQ(report.torn_bytes, cut);
    EXPECT_TRUE(report.problems.empty());
    EXPECT_TRUE(report.kept.empty());
    EXPECT_EQ(loaded.binding_count(), 1u);
    EXPECT_EQ(loaded.records().count("sip:a@home.example"), 1u);
    // Appending after the torn part (had the start not compacted) still keeps
    // the new record whole: the torn line is ended first.
    ASSERT_EQ(loaded.apply(reg("sip:c@home.example", "sip:c@10.0.0.3", 600, "c3", 1)).status, 200);
    persister.append(LocationPersister::journal_record("sip:c@home.example",
                                                       loaded.records().at("sip:c@home.example")));
    persister.drain();
    LocationStore again;
    ASSERT_TRUE(LocationPersister(path_).load(again, kNow, &error, &report)) << error;
    EXPECT_EQ(again.records().count("sip:c@home.example"), 1u);
    // The torn line, now ended, is one bad record (skipped, reported); cut
    // only before its newline it is whole and replays: a change applied but
    // never answered, which a device's retry makes again anyway.
    const bool whole_but_newline = cut == next.size() - 1;
    EXPECT_EQ(report.problems.size(), whole_but_newline ? 0u : 1u);
    EXPECT_EQ(again.records().count("sip:b@home.example"), whole_but_newline ? 1u : 0u);
  }
}

// A record changed on disk (a bit flip, a hand edit) fails its CRC: skipped and
// reported, the records after it still replay, the journal is kept for the admin.
TEST_F(LocationPersistTest, CorruptJournalRecordIsSkippedAndTheRestReplayed) {
  LocationStore store;
  std::string journal;
  for (const char *user : {"a", "b", "c"}) {
    std::string aor = std::string("sip:") + user + "@home.example";
    ASSERT_EQ(store.apply(reg(aor, "sip:" + std::string(user) + "@10.0.0.1", 600, user, 1)).status,
              200);
    journal += LocationPersister::journal_record(aor, store.records().at(aor));
  }
  std::string bad = journal;
  bad[journal.find("sip:b@10.0.0.1") + 6] = 'X';
  write_file(path_ + ".journal", bad);
  LocationStore loaded;
  std::string error;
  LocationPersister::LoadReport report;
  ASSERT_TRUE(LocationPersister(path_).load(loaded, kNow, &error, &report)) << error;
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].rfind(path_ + ".journal:2: checksum mismatch", 0), 0u)
      << report.problems[0];
  EXPECT_EQ(loaded.binding_count(), 2u);
  EXPECT_EQ(loaded.records().count("sip:b@home.example"), 0u);
  ASSERT_EQ(report.kept.size(), 1u);
  EXPECT_EQ(read_file(report.kept[0]), bad);
}

// Compaction: the snapshot takes over what the journal held, the journal
// empties, and appends queued after the compaction land in the new journal.
TEST_F(LocationPersistTest, CompactionMovesTheJournalIntoTheSnapshot) {
  LocationStore store;
  LocationPersister persister(path_);
  std::string error;
  ASSERT_EQ(store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c1", 1)).status, 200);
  persister.append(LocationPersister::journal_record("sip:a@home.example",
                                                     store.records().at("sip:a@home.example")));
  EXPECT_GT(persister.journal_bytes(), 0u);
  persister.compact_in_background(store);
  EXPECT_EQ(persister.journal_bytes(), 0u);
  ASSERT_EQ(store.apply(reg("sip:b@home.example", "sip:b@10.0.0.2", 600, "c2", 1)).status, 200);
  const uint64_t last = persister.append(LocationPersister::journal_record(
      "sip:b@home.example", store.records().at("sip:b@home.example")));
  persister.drain();
  auto done = persister.take_finished();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done.back().seq, last);
  EXPECT_NE(read_file(path_).find("sip:a@10.0.0.1"), std::string::npos);
  const std::string journal = read_file(path_ + ".journal");
  EXPECT_EQ(journal.find("sip:a@10.0.0.1"), std::string::npos);
  EXPECT_NE(journal.find("sip:b@10.0.0.2"), std::string::npos);
  LocationStore loaded;
  ASSERT_TRUE(LocationPersister(path_).load(loaded, kNow, &error)) << error;
  EXPECT_TRUE(same_records(loaded.records(), store.records()));
}

// A failed write is reported per sequence number, so the proxy answers those
// REGISTERs with an error instead of a 200 it cannot keep.
TEST_F(LocationPersistTest, FailedJournalWriteIsReported) {
  LocationPersister persister(dir_ + "/missing/registrations");
  const uint64_t seq = persister.append("x\n");
  persister.drain();
  auto done = persister.take_finished();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].seq, seq);
  EXPECT_FALSE(done[0].ok);
  EXPECT_NE(done[0].error.find("missing/registrations.journal: open:"), std::string::npos)
      << done[0].error;
}

TEST_F(LocationPersistTest, LeftoverTempFileFromACrashIsIgnoredAndReplaced) {
  LocationStore store;
  store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c", 1));
  LocationPersister persister(path_);
  std::string error;
  ASSERT_TRUE(persister.save(store, &error)) << error;
  const std::string saved = read_file(path_);
  // The process died while writing the next state: a torn temporary file.
  write_file(path_ + ".tmp", "portier-registrations 1\nsip:a@home.exa");

  LocationStore loaded;
  LocationPersister after_restart(path_);
  ASSERT_TRUE(after_restart.load(loaded, kNow, &error)) << error;
  EXPECT_EQ(loaded.binding_count(), 1u);
  EXPECT_EQ(read_file(path_), saved);

  loaded.apply(reg("sip:b@home.example", "sip:b@10.0.0.2", 600, "c", 1));
  ASSERT_TRUE(after_restart.save(loaded, &error)) << error;
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  LocationStore again;
  ASSERT_TRUE(LocationPersister(path_).load(again, kNow, &error)) << error;
  EXPECT_EQ(again.binding_count(), 2u);
}

TEST_F(LocationPersistTest, ExpiredBindingsAreDroppedAtLoad) {
  LocationStore store;
  store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 60, "c", 1));
  store.apply(reg("sip:a@home.example", "sip:a@10.0.0.2", 600, "c2", 1));
  store.apply(reg("sip:b@home.example", "sip:b@10.0.0.3", 60, "c3", 1));
  LocationPersister persister(path_);
  std::string error;
  ASSERT_TRUE(persister.save(store, &error)) << error;

  LocationStore loaded;
  ASSERT_TRUE(LocationPersister(path_).load(loaded, kNow + 60, &error)) << error;
  EXPECT_EQ(loaded.binding_count(), 1u);
  EXPECT_EQ(loaded.records().count("sip:b@home.example"), 0u);
  ASSERT_EQ(loaded.records().count("sip:a@home.example"), 1u);
  EXPECT_EQ(loaded.records().at("sip:a@home.example")[0].contact, "sip:a@10.0.0.2");
}

TEST_F(LocationPersistTest, SaveWritesOnlyWhenTheGenerationMoved) {
  LocationStore store;
  store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c", 1));
  LocationPersister persister(path_);
  std::string error;
  ASSERT_TRUE(persister.save(store, &error));
  ASSERT_TRUE(persister.save(store, &error));
  EXPECT_EQ(persister.writes(), 1u);
  store.apply({});  // a fetch of an unknown AOR: no change
  ASSERT_TRUE(persister.save(store, &error));
  EXPECT_EQ(persister.writes(), 1u);
  store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c", 2));
  ASSERT_TRUE(persister.save(store, &error));
  EXPECT_EQ(persister.writes(), 2u);
  ASSERT_TRUE(persister.save_now(store, &error));
  EXPECT_EQ(persister.writes(), 3u);
}

TEST_F(LocationPersistTest, UnwritableDirectoryIsAnError) {
  LocationStore store;
  LocationPersister persister(dir_ + "/missing/registrations");
  std::string error;
  EXPECT_FALSE(persister.save_now(store, &error));
  EXPECT_NE(error.find("missing/registrations.tmp: open:"), std::string::npos) << error;
  EXPECT_EQ(persister.writes(), 0u);
}

TEST_F(LocationPersistTest, FileIsPrivate) {
  LocationStore store;
  LocationPersister persister(path_);
  std::string error;
  ASSERT_TRUE(persister.save_now(store, &error)) << error;
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // contact addresses are the users' whereabouts
}

}  // namespace
}  // namespace portier::proxy
