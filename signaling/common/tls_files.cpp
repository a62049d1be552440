#include "common/tls_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>

namespace portier {

namespace {

struct FileCloser {
  void operator()(FILE *f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;
using Cert = std::unique_ptr<X509, decltype(&X509_free)>;
using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// A daemon has no one to ask for a passphrase: OpenSSL's default callback would
// wait on the terminal.
int no_passphrase(char *, int, int, void *) { return 0; }

bool open_file(const std::string &path, const char *what, File *out, std::string *error) {
  out->reset(std::fopen(path.c_str(), "r"));
  if (!*out) {
    *error = path + ": cannot open the " + what + ": " + std::strerror(errno);
    return false;
  }
  // fopen opens a directory for reading; only the first read fails.
  struct stat st {};
  if (::fstat(::fileno(out->get()), &st) == 0 && S_ISDIR(st.st_mode)) {
    *error = path + ": cannot open the " + what + ": " + std::strerror(EISDIR);
    out->reset();
    return false;
  }
  return true;
}

// OpenSSL's reason for the last failure, and its error queue emptied.
std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (!e) return "";
  const char *r = ERR_reason_error_string(e);
  return r ? r : "";
}

// Every PEM certificate in the file, in order. A file with something that is
// not PEM after the certificates ends the list there, as OpenSSL's own chain
// loader does.
std::vector<Cert> read_certificates(FILE *f) {
  std::vector<Cert> out;
  while (X509 *x = PEM_read_X509(f, nullptr, no_passphrase, nullptr))
    out.emplace_back(x, X509_free);
  ERR_clear_error();
  return out;
}

bool file_mentions(const std::string &path, const char *word) {
  File f(std::fopen(path.c_str(), "r"));
  if (!f) return false;
  char buf[4096];
  std::string text;
  size_t n;
  while (text.size() < (1u << 20) && (n = std::fread(buf, 1, sizeof buf, f.get())) > 0)
    text.append(buf, n);
  return text.find(word) != std::string::npos;
}

std::string time_text(const ASN1_TIME *t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string serial_text(const X509 *x) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr), BN_free);
  if (!bn) return "?";
  char *hex = BN_bn2hex(bn.get());
  std::string s = hex ? hex : "?";
  OPENSSL_free(hex);
  return s;
}

bool read_chain(const std::string &path, std::vector<Cert> *chain, std::string *error) {
  File f;
  if (!open_file(path, "TLS certificate", &f, error)) return false;
  *chain = read_certificates(f.get());
  if (chain->empty()) {
    *error = path + ": no PEM certificate in it";
    return false;
  }
  return true;
}

bool read_key(const std::string &path, Key *key, std::string *error) {
  File f;
  if (!open_file(path, "TLS private key", &f, error)) return false;
  key->reset(PEM_read_PrivateKey(f.get(), nullptr, no_passphrase, nullptr));
  if (!*key) {
    ERR_clear_error();
    *error = file_mentions(path, "ENCRYPTED")
                 ? path +
                       ": the private key is encrypted; a daemon has no one to ask for the "
                       "passphrase: decrypt it (openssl pkey -in KEY -out KEY.plain) and keep "
                       "the file readable by the daemon only"
                 : path + ": no unencrypted PEM private key in it";
    return false;
  }
  return true;
}

}  // namespace

bool check_tls_key_pair(const std::string &certificate_file, const std::string &private_key_file,
                        std::string *error) {
  std::vector<Cert> chain;
  if (!read_chain(certificate_file, &chain, error)) return false;
  Key key(nullptr, EVP_PKEY_free);
  if (!read_key(private_key_file, &key, error)) return false;
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    *error = private_key_file + ": this private key does not belong to the certificate in " +
             certificate_file;
    return false;
  }
  return true;
}

bool check_tls_files(const TlsFiles &files, std::string *error, TlsCertificateInfo *info) {
  TlsCertificateInfo local;
  if (!info) info = &local;
  *info = TlsCertificateInfo{};
  if (files.certificate_file.empty() != files.private_key_file.empty()) {
    *error = files.certificate_file.empty()
                 ? files.private_key_file + ": a private key without tls-certificates-file"
                 : files.certificate_file + ": a certificate without tls-certificates-private-key";
    return false;
  }
  if (!files.certificate_file.empty()) {
    if (!check_tls_key_pair(files.certificate_file, files.private_key_file, error)) return false;
    std::vector<Cert> chain;
    if (!read_chain(files.certificate_file, &chain, error)) return false;
    const X509 *leaf = chain[0].get();
    // RFC 5280 §4.1.2.5: outside its validity period no peer accepts it; a
    // daemon that starts with it serves nothing but failed handshakes.
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
      *error = files.certificate_file + ": the certificate expired on " +
               time_text(X509_get0_notAfter(leaf));
      return false;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
      *error = files.certificate_file + ": the certificate is not valid before " +
               time_text(X509_get0_notBefore(leaf));
      return false;
    }
    char name[256];
    X509_NAME_oneline(X509_get_subject_name(leaf), name, sizeof name);
    info->subject = name;
    info->serial = serial_text(leaf);
    info->not_after = time_text(X509_get0_notAfter(leaf));
    info->intermediates = chain.size() - 1;
  }
  if (!files.ca_file.empty()) {
    File f;
    if (!open_file(files.ca_file, "TLS CA file", &f, error)) return false;
    const size_t n = read_certificates(f.get()).size();
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(),
                                                                  X509_STORE_free);
    if (n == 0 || X509_STORE_load_file(store.get(), files.ca_file.c_str()) != 1) {
      const std::string reason = openssl_reason();
      *error = files.ca_file + ": no PEM CA certificate in it" +
               (reason.empty() ? "" : " (" + reason + ")");
      return false;
    }
    info->ca_certificates = n;
  }
  return true;
}

namespace {

bool write_pem_file(const std::string &path, mode_t mode, const std::function<bool(FILE *)> &write,
                    std::string *error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    *error = path + ": cannot write: " + std::strerror(errno);
    return false;
  }
  File f(fdopen(fd, "w"));
  if (!f) {
    ::close(fd);
    *error = path + ": cannot write: " + std::strerror(errno);
    return false;
  }
  const bool ok = write(f.get()) && std::fflush(f.get()) == 0;
  if (!ok) *error = path + ": cannot write: " + std::strerror(errno ? errno : EIO);
  ERR_clear_error();
  return ok;
}

}  // namespace

bool write_sofia_tls_directory(const TlsFiles &files, const std::string &dir, std::string *error) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    *error = dir + ": cannot make the TLS directory: " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
      ::chmod(dir.c_str(), 0700) != 0) {
    *error = dir + ": not a directory of ours for the TLS files";
    return false;
  }
  if (DIR *d = ::opendir(dir.c_str())) {
    while (dirent *e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        ::unlink((dir + "/" + e->d_name).c_str());
    ::closedir(d);
  }
  std::vector<Cert> chain;
  if (!files.certificate_file.empty()) {
    Key key(nullptr, EVP_PKEY_free);
    if (!read_chain(files.certificate_file, &chain, error) ||
        !read_key(files.private_key_file, &key, error))
      return false;
    if (!write_pem_file(
            dir + "/agent.pem", 0600,
            [&](FILE *f) {
              return PEM_write_X509(f, chain[0].get()) == 1 &&
                     PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
            },
            error))
      return false;
  }
  std::vector<Cert> anchors;
  if (!files.ca_file.empty()) {
    File f;
    if (!open_file(files.ca_file, "TLS CA file", &f, error)) return false;
    anchors = read_certificates(f.get());
  }
  if (anchors.empty() && chain.size() < 2) return true;
  return write_pem_file(
      dir + "/cafile.pem", 0600,
      [&](FILE *f) {
        for (const Cert &c : anchors)
          if (PEM_write_X509(f, c.get()) != 1) return false;
        for (size_t i = 1; i < chain.size(); ++i)
          if (PEM_write_X509(f, chain[i].get()) != 1) return false;
        return true;
      },
      error);
}

}  // namespace portier
