// The registrations state file: round trip, corruption, crash safety, batching.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "proxy/location_persist.h"

namespace portier::proxy {
namespace {

constexpr int64_t kNow = 1700000000;

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
  ASSERT_EQ(store.apply(r).status, 200);
  ASSERT_EQ(store.apply(reg("sip:alice@home.example", "sip:alice@10.0.0.2", 900, "c2", 1)).status,
            200);
  ASSERT_EQ(store.apply(reg("sip:bob@flat.example", "sip:bob@10.0.0.3", 300, "c3", 7)).status, 200);

  LocationPersister writer(path_);
  std::string error;
  ASSERT_TRUE(writer.save(store, &error)) << error;
  EXPECT_EQ(writer.writes(), 1u);
  const std::string text = read_file(path_);
  EXPECT_EQ(text.rfind("portier-registrations 1\n", 0), 0u);
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

// What the proxy does every second: the write runs on a worker thread; what it
// wrote loads back, and an unchanged store starts no second write.
TEST_F(LocationPersistTest, BackgroundSaveWritesTheSameFile) {
  LocationStore store;
  ASSERT_EQ(store.apply(reg("sip:alice@home.example", "sip:alice@10.0.0.1", 300, "c1", 1)).status,
            200);
  LocationPersister writer(path_);
  std::string error;
  ASSERT_TRUE(writer.save_in_background(store, &error)) << error;
  ASSERT_TRUE(writer.flush(&error)) << error;
  EXPECT_EQ(writer.writes(), 1u);
  ASSERT_TRUE(writer.save_in_background(store, &error)) << error;
  ASSERT_TRUE(writer.flush(&error)) << error;
  EXPECT_EQ(writer.writes(), 1u);

  LocationStore loaded;
  LocationPersister reader(path_);
  ASSERT_TRUE(reader.load(loaded, kNow, &error)) << error;
  ASSERT_EQ(loaded.lookup("sip:alice@home.example", kNow).size(), 1u);
  EXPECT_EQ(loaded.lookup("sip:alice@home.example", kNow)[0].contact, "sip:alice@10.0.0.1");
}

TEST_F(LocationPersistTest, MissingFileIsAFirstStart) {
  LocationStore store;
  store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c", 1));
  LocationPersister persister(path_);
  std::string error;
  EXPECT_TRUE(persister.load(store, kNow, &error));
  EXPECT_EQ(store.binding_count(), 0u);
}

TEST_F(LocationPersistTest, CorruptFileIsAnErrorWithLineAndEmptyStore) {
  const std::string good =
      "sip:a@home.example\tsip:a@10.0.0.1\t\tcid\t1\t1000\t1700000600\tua\tudp:1.2.3.4:5060\n";
  struct Case {
    const char *name;
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"bad header", "portier-registrations 2\n" + good, ":1: "},
      {"empty file", "", ":1: "},
      {"missing field", "portier-registrations 1\n" + good + "sip:a@home.example\tsip:x\n",
       ":3: expected 9 fields, got 2"},
      {"extra field", "portier-registrations 1\n" + good.substr(0, good.size() - 1) + "\tx\n",
       ":2: too many fields"},
      {"bad cseq", "portier-registrations 1\nsip:a@h\tsip:a@1\t\tc\t-1\t1000\t1700000600\tu\tr\n",
       ":2: bad cseq"},
      {"bad q", "portier-registrations 1\nsip:a@h\tsip:a@1\t\tc\t1\t1001\t1700000600\tu\tr\n",
       ":2: bad q"},
      {"bad expiry", "portier-registrations 1\nsip:a@h\tsip:a@1\t\tc\t1\t1000\t17e8\tu\tr\n",
       ":2: bad expires-at"},
      {"bad escape",
       "portier-registrations 1\nsip:a@h\tsip:a@1\t\tc%4\t1\t1000\t1700000600\tu\tr\n",
       ":2: bad escape in call-id"},
      {"empty contact", "portier-registrations 1\nsip:a@h\t\t\tc\t1\t1000\t1700000600\tu\tr\n",
       ":2: empty contact"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    write_file(path_, c.text);
    LocationStore store;
    store.apply(reg("sip:a@home.example", "sip:a@10.0.0.1", 600, "c", 1));
    LocationPersister persister(path_);
    std::string error;
    EXPECT_FALSE(persister.load(store, kNow, &error));
    EXPECT_EQ(error.rfind(path_ + c.error, 0), 0u) << error;
    EXPECT_EQ(store.binding_count(), 0u);
  }
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
