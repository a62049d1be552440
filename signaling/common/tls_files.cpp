#include "common/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace portier {

namespace {

struct FileCloser {
  void operator()(FILE *f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

// A daemon has no one to ask for a passphrase: OpenSSL's default callback would
// wait on the terminal.
int no_passphrase(char *, int, int, void *) { return 0; }

bool open_file(const std::string &path, const char *what, File *out, std::string *error) {
  out->reset(std::fopen(path.c_str(), "r"));
  if (!*out) *error = path + ": cannot open the " + what + ": " + std::strerror(errno);
  return static_cast<bool>(*out);
}

}  // namespace

bool check_tls_key_pair(const std::string &certificate_file, const std::string &private_key_file,
                        std::string *error) {
  File f;
  if (!open_file(certificate_file, "TLS certificate", &f, error)) return false;
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_X509(f.get(), nullptr, no_passphrase, nullptr), X509_free);
  if (!cert) {
    ERR_clear_error();
    *error = certificate_file + ": no PEM certificate in it";
    return false;
  }
  if (!open_file(private_key_file, "TLS private key", &f, error)) return false;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_PrivateKey(f.get(), nullptr, no_passphrase, nullptr), EVP_PKEY_free);
  if (!key) {
    ERR_clear_error();
    *error = private_key_file + ": no unencrypted PEM private key in it";
    return false;
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    *error = private_key_file + ": this private key does not belong to the certificate in " +
             certificate_file;
    return false;
  }
  return true;
}

}  // namespace portier
