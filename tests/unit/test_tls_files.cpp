// The TLS start-up checks (docs/TLS.md §2: sofia-sip starts and listens with
// a missing or mismatched certificate, so each case must be refused before it,
// the file named) and the transport URIs (docs/TLS.md §7).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "common/sip_transport.h"
#include "common/tls_files.h"
#include "door_test_util.h"
#include "tls/tls_transport.h"

using portier::check_tls_files;
using portier::parse_transport_uri;
using portier::TlsFiles;
using portier::TlsSettings;
using portier::TransportUri;

namespace {

struct Issued {
  EVP_PKEY *key = nullptr;
  X509 *cert = nullptr;
  ~Issued() {
    EVP_PKEY_free(key);
    X509_free(cert);
  }
};

// A certificate for `cn`, signed by `issuer` (self-signed when null), valid
// from `from` to `to` seconds from now.
void issue(Issued *out, const char *cn, const Issued *issuer, long from = -60, long to = 3600,
           long serial = 1) {
  out->key = EVP_EC_gen("P-256");
  out->cert = X509_new();
  X509_set_version(out->cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(out->cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(out->cert), from);
  X509_gmtime_adj(X509_getm_notAfter(out->cert), to);
  X509_set_pubkey(out->cert, out->key);
  X509_NAME *name = X509_get_subject_name(out->cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char *>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(out->cert, issuer ? X509_get_subject_name(issuer->cert) : name);
  if (!issuer) {
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "CA:TRUE");
    X509_add_ext(out->cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(out->cert, issuer ? issuer->key : out->key, EVP_sha256());
}

void write_certs(const std::string &path, std::initializer_list<const Issued *> certs) {
  FILE *f = std::fopen(path.c_str(), "w");
  for (const Issued *c : certs) PEM_write_X509(f, c->cert);
  std::fclose(f);
}

void write_key(const std::string &path, const Issued &c, const char *passphrase = nullptr) {
  FILE *f = std::fopen(path.c_str(), "w");
  if (passphrase)
    PEM_write_PrivateKey(f, c.key, EVP_aes_128_cbc(), nullptr, 0, nullptr,
                         const_cast<char *>(passphrase));
  else
    PEM_write_PrivateKey(f, c.key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    issue(&ca, "Test Root", nullptr);
    issue(&mid, "Test Intermediate", &ca);
    issue(&leaf, "proxy.test", &mid);
    issue(&other, "other.test", &ca);
    issue(&expired, "proxy.test", &ca, -7200, -3600);
    write_certs(dir / "fullchain.pem", {&leaf, &mid});
    write_key(dir / "leaf.key", leaf);
    write_key(dir / "other.key", other);
    write_certs(dir / "expired.pem", {&expired});
    write_key(dir / "expired.key", expired);
    write_key(dir / "encrypted.key", leaf, "secret");
    write_certs(dir / "ca.pem", {&ca});
    door_test::write_file(dir / "junk.pem", "not a certificate\n");
    good = {dir / "fullchain.pem", dir / "leaf.key", dir / "ca.pem"};
  }
  std::string check(const TlsFiles &f) {
    std::string error;
    return check_tls_files(f, &error) ? "" : error;
  }
  door_test::TempDir dir;
  Issued ca, mid, leaf, other, expired;
  TlsFiles good;
};

}  // namespace

TEST_F(TlsFilesTest, AGoodChainKeyAndCaFilePass) {
  portier::TlsCertificateInfo info;
  std::string error;
  ASSERT_TRUE(check_tls_files(good, &error, &info)) << error;
  EXPECT_EQ(info.intermediates, 1u);
  EXPECT_EQ(info.ca_certificates, 1u);
  EXPECT_EQ(info.serial, "01");
  EXPECT_NE(info.subject.find("CN=proxy.test"), std::string::npos);
}

// docs/TLS.md §2's table, one row each: sofia listens with all of these.
TEST_F(TlsFilesTest, MissingCertificateIsNamed) {
  TlsFiles f = good;
  f.certificate_file = dir / "none.pem";
  EXPECT_EQ(check(f),
            dir / "none.pem" + ": cannot open the TLS certificate: No such file or directory");
}

// Unreadable: a daemon's own user may not read it (mode 000 does not stop
// root, who runs this test): a directory where the file should be fails the
// same way, on the first read.
TEST_F(TlsFilesTest, UnreadableCertificateIsNamed) {
  TlsFiles f = good;
  f.certificate_file = dir.path();
  EXPECT_EQ(check(f), dir.path() + ": cannot open the TLS certificate: Is a directory");
}

TEST_F(TlsFilesTest, CertificateFileWithoutCertificateIsNamed) {
  TlsFiles f = good;
  f.certificate_file = dir / "leaf.key";
  EXPECT_EQ(check(f), dir / "leaf.key" + ": no PEM certificate in it");
}

TEST_F(TlsFilesTest, MissingKeyIsNamed) {
  TlsFiles f = good;
  f.private_key_file = dir / "none.key";
  EXPECT_EQ(check(f),
            dir / "none.key" + ": cannot open the TLS private key: No such file or directory");
}

TEST_F(TlsFilesTest, KeyFileWithoutKeyIsNamed) {
  TlsFiles f = good;
  f.private_key_file = dir / "fullchain.pem";
  EXPECT_EQ(check(f), dir / "fullchain.pem" + ": no unencrypted PEM private key in it");
}

TEST_F(TlsFilesTest, KeyOfAnotherCertificateIsNamed) {
  TlsFiles f = good;
  f.private_key_file = dir / "other.key";
  EXPECT_EQ(check(f), dir / "other.key" +
                          ": this private key does not belong to the certificate in " +
                          (dir / "fullchain.pem"));
}

TEST_F(TlsFilesTest, EncryptedKeyIsNamedAsSuch) {
  TlsFiles f = good;
  f.private_key_file = dir / "encrypted.key";
  EXPECT_EQ(check(f).rfind(dir / "encrypted.key" + ": the private key is encrypted", 0), 0u)
      << check(f);
}

TEST_F(TlsFilesTest, ExpiredCertificateIsNamed) {
  TlsFiles f{dir / "expired.pem", dir / "expired.key", ""};
  EXPECT_EQ(check(f).rfind(dir / "expired.pem" + ": the certificate expired on ", 0), 0u)
      << check(f);
}

TEST_F(TlsFilesTest, CaFileThatIsNotPemIsNamed) {
  TlsFiles f = good;
  f.ca_file = dir / "junk.pem";
  EXPECT_EQ(check(f).rfind(dir / "junk.pem" + ": no PEM CA certificate in it", 0), 0u) << check(f);
  f.ca_file = dir / "none.pem";
  EXPECT_EQ(check(f),
            dir / "none.pem" + ": cannot open the TLS CA file: No such file or directory");
}

TEST_F(TlsFilesTest, CertificateAndKeyGoTogether) {
  EXPECT_EQ(check({good.certificate_file, "", ""}),
            good.certificate_file + ": a certificate without tls-certificates-private-key");
  EXPECT_EQ(check({"", good.private_key_file, ""}),
            good.private_key_file + ": a private key without tls-certificates-file");
  EXPECT_EQ(check({"", "", good.ca_file}), "");  // a client that only verifies
}

// sofia serves only agent.pem's first certificate and builds the chain from
// cafile.pem (docs/TLS.md §2).
TEST_F(TlsFilesTest, SofiaDirectoryHoldsLeafAndKeyAndTheChainInTheCaFile) {
  const std::string sofia = dir / "sofia";
  ASSERT_EQ(::mkdir(sofia.c_str(), 0755), 0);
  door_test::write_file(sofia + "/stale.0", "left over\n");
  std::string error;
  ASSERT_TRUE(portier::write_sofia_tls_directory(good, sofia, &error)) << error;
  struct stat st {};
  ASSERT_EQ(::stat(sofia.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((sofia + "/agent.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(::stat((sofia + "/stale.0").c_str(), &st), 0);
  // agent.pem: the leaf, then its key; it still passes as a pair.
  EXPECT_TRUE(portier::check_tls_key_pair(sofia + "/agent.pem", sofia + "/agent.pem", &error))
      << error;
  const std::string agent = door_test::read_file(sofia + "/agent.pem");
  EXPECT_EQ(agent.find("BEGIN CERTIFICATE"), agent.rfind("BEGIN CERTIFICATE"));
  portier::TlsCertificateInfo info;
  ASSERT_TRUE(check_tls_files({"", "", sofia + "/cafile.pem"}, &error, &info)) << error;
  EXPECT_EQ(info.ca_certificates, 2u);  // the root and the intermediate
}

TEST(TransportUri, SipsAndTransportTlsAreTheSameTransport) {
  TlsSettings defaults;
  defaults.files = {"/etc/cert.pem", "/etc/key.pem", ""};
  TransportUri u;
  std::string error;
  ASSERT_TRUE(parse_transport_uri("sips:127.0.0.1:5061", defaults, &u, &error)) << error;
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.sofia_url, "sips:127.0.0.1:5061");
  EXPECT_EQ(u.tls_settings.files.certificate_file, "/etc/cert.pem");
  EXPECT_EQ(u.tls_settings.ciphers, portier::kDefaultTlsCiphers);
  ASSERT_TRUE(parse_transport_uri("sip:127.0.0.1:5061;transport=TLS", defaults, &u, &error));
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.sofia_url, "sips:127.0.0.1:5061");
}

TEST(TransportUri, OurParametersAreTakenAndStripped) {
  TransportUri u;
  std::string error;
  ASSERT_TRUE(parse_transport_uri(
      "sips:[::1]:5061;tls-certificates-file=/c.pem;tls-certificates-private-key=/k.pem;"
      "tls-certificates-ca-file=/ca.pem;tls-verify-incoming=1;tls-verify-outgoing=true;"
      "tls-ciphers=ECDHE+AESGCM;tls-ciphersuites=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384;"
      "maddr=::1",
      TlsSettings{}, &u, &error))
      << error;
  EXPECT_EQ(u.sofia_url, "sips:[::1]:5061;maddr=::1");
  EXPECT_EQ(u.tls_settings.files, (TlsFiles{"/c.pem", "/k.pem", "/ca.pem"}));
  EXPECT_TRUE(u.tls_settings.verify_incoming);
  EXPECT_TRUE(u.tls_settings.verify_outgoing);
  EXPECT_EQ(u.tls_settings.ciphers, "ECDHE+AESGCM");
  EXPECT_EQ(u.tls_settings.ciphersuites, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
}

// RFC 8446 §B.4 names the TLS 1.3 suites; OpenSSL skips one it does not know
// when another in the list matches, so a typo would pass unseen: refused here.
TEST(TlsCiphers, EachTls13SuiteMustBeKnown) {
  TlsSettings s;
  std::string error;
  EXPECT_TRUE(check_tls_ciphers(s, &error)) << error;
  s.ciphersuites = "TLS_AES_128_GCM_SHA256";
  EXPECT_TRUE(check_tls_ciphers(s, &error)) << error;
  s.ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_128_GCM_SHA384";
  EXPECT_FALSE(check_tls_ciphers(s, &error));
  EXPECT_NE(error.find("tls-ciphersuites"), std::string::npos) << error;
  EXPECT_NE(error.find("'TLS_AES_128_GCM_SHA384' is not"), std::string::npos) << error;
  s.ciphersuites = "";
  EXPECT_FALSE(check_tls_ciphers(s, &error));
  EXPECT_NE(error.find("tls-ciphersuites"), std::string::npos) << error;
  s = TlsSettings{};
  s.ciphers = "NOSUCHCIPHER";
  EXPECT_FALSE(check_tls_ciphers(s, &error));
  EXPECT_EQ(error.rfind("tls-ciphers 'NOSUCHCIPHER'", 0), 0u) << error;
}

TEST(TransportUri, PlainTransportsPassUnchanged) {
  TransportUri u;
  std::string error;
  ASSERT_TRUE(parse_transport_uri("sip:127.0.0.1:5060;transport=tcp", TlsSettings{}, &u, &error));
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.sofia_url, "sip:127.0.0.1:5060;transport=tcp");
  ASSERT_TRUE(parse_transport_uri("sip:127.0.0.1:5060", TlsSettings{}, &u, &error));
  EXPECT_EQ(u.sofia_url, "sip:127.0.0.1:5060");
}

TEST(TransportUri, RefusedForms) {
  TransportUri u;
  std::string error;
  // RFC 3261 §26.2.2: sips: is TLS on every hop.
  EXPECT_FALSE(parse_transport_uri("sips:127.0.0.1:5061;transport=tcp", TlsSettings{}, &u, &error));
  EXPECT_NE(error.find("sips: cannot be transport=tcp"), std::string::npos) << error;
  EXPECT_FALSE(parse_transport_uri("sips:127.0.0.1:5061;transport=udp", TlsSettings{}, &u, &error));
  EXPECT_FALSE(parse_transport_uri("sip:127.0.0.1:5060;tls-certificates-file=/c.pem", TlsSettings{},
                                   &u, &error));
  EXPECT_NE(error.find("tls-certificates-file is for TLS transports"), std::string::npos) << error;
  EXPECT_FALSE(
      parse_transport_uri("sips:127.0.0.1:5061;tls-certificate=/c.pem", TlsSettings{}, &u, &error));
  EXPECT_NE(error.find("unknown parameter tls-certificate"), std::string::npos) << error;
  EXPECT_FALSE(parse_transport_uri("sips:127.0.0.1:5061;tls-verify-incoming=maybe", TlsSettings{},
                                   &u, &error));
  EXPECT_NE(error.find("tls-verify-incoming=maybe"), std::string::npos) << error;
  EXPECT_FALSE(parse_transport_uri("tcp:127.0.0.1:5060", TlsSettings{}, &u, &error));
  EXPECT_FALSE(parse_transport_uri("sips:;maddr=1.2.3.4", TlsSettings{}, &u, &error));
}

// docs/TLS.md §1: the process-wide floor holds for a context our SSL_CTX_new
// never sees (SSL_CTX_new_ex is another symbol): what stays when capture fails.
TEST(TlsProcessFloor, ContextsMadeAnywhereStartAtTls12) {
  portier::tls::set_process_floor();
  SSL_CTX *ctx = SSL_CTX_new_ex(nullptr, nullptr, TLS_method());
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  SSL_CTX_free(ctx);
}
