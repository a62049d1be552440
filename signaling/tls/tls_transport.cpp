#include "tls/tls_transport.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sofia-sip/su_wait.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>

#include "common/log.h"
#include "tls/one_record.h"

namespace portier::tls {

struct StackTask {
  su_task_r task;
  StackTask() { su_task_init(task); }
  ~StackTask() { su_task_deinit(task); }
  StackTask(const StackTask &) = delete;
  StackTask &operator=(const StackTask &) = delete;
};

namespace {

// The capture scope: process-wide because nua_create may run sofia's agent
// start on a thread of its own while the caller waits in su_clone_start.
std::mutex capture_mutex;
bool capture_open = false;
std::vector<SSL_CTX *> captured_contexts;
std::shared_ptr<StackTask> captured_stack;

using CtxNew = SSL_CTX *(*)(const SSL_METHOD *);

// Client contexts and the server name each must see (expect_server_name),
// the last refusal, the failure log's counters. nua runs its transports on a
// thread of its own (su_clone_start with threading on, sofia's default) while
// the device reads last_refusal() on the main loop: one mutex for all.
std::mutex state_mutex;
std::map<const SSL_CTX *, std::string> server_names;
std::string refusal;

CtxNew real_ctx_new() {
  static const CtxNew real = reinterpret_cast<CtxNew>(dlsym(RTLD_NEXT, "SSL_CTX_new"));
  return real;
}

std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  const char *r = e ? ERR_reason_error_string(e) : nullptr;
  return r ? r : "unknown reason";
}

using Cert = std::unique_ptr<X509, decltype(&X509_free)>;
using Ctx = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

Cert read_leaf(const std::string &path) {
  Cert c(nullptr, X509_free);
  if (FILE *f = std::fopen(path.c_str(), "r")) {
    c.reset(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
  }
  ERR_clear_error();
  return c;
}

std::string peer_of(const SSL *ssl) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int fd = SSL_get_fd(ssl);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (ss.ss_family == AF_INET) {
    const auto *a = reinterpret_cast<const sockaddr_in *>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  const auto *a = reinterpret_cast<const sockaddr_in6 *>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
  port = ntohs(a->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

// sofia logs a failed handshake as "TLS setup failed (error:00000001:lib(0)::
// reason(1))" (docs/TLS.md §8). The alert says what went wrong (RFC 8446 §6.2,
// RFC 5246 §7.2.2); a flood of them is summed up, not logged line by line.
// Called with state_mutex held.
void check_server(const SSL *ssl) {
  auto it = server_names.find(SSL_get_SSL_CTX(ssl));
  if (it == server_names.end()) return;
  std::string why;
  const long v = SSL_get_verify_result(ssl);
  X509 *cert = SSL_get1_peer_certificate(ssl);
  if (v != X509_V_OK) {
    why = X509_verify_cert_error_string(v);
  } else if (!cert || X509_check_host(cert, it->second.c_str(), 0, 0, nullptr) != 1) {
    why = "its certificate does not name " + it->second;
  }
  X509_free(cert);
  if (why.empty()) {
    refusal.clear();
    return;
  }
  refusal = peer_of(ssl) + ": " + why;
  PLOG_ERROR("tls: the server at %s is not trusted, nothing is sent to it: %s",
             peer_of(ssl).c_str(), why.c_str());
}

void on_info(const SSL *ssl, int where, int ret) {
  if (!(where & (SSL_CB_HANDSHAKE_DONE | SSL_CB_ALERT))) return;
  std::lock_guard<std::mutex> lock(state_mutex);
  if ((where & SSL_CB_HANDSHAKE_DONE) && !SSL_is_server(ssl)) check_server(ssl);
  if (!(where & SSL_CB_ALERT)) return;
  if (std::string(SSL_alert_type_string(ret)) != "F") return;  // close_notify and warnings
  static time_t window = 0;
  static unsigned lines = 0, quiet = 0;
  const time_t now = std::time(nullptr);
  if (now / 10 != window) {
    if (quiet) PLOG_WARN("tls: %u more failed handshake(s) not logged", quiet);
    window = now / 10, lines = 0, quiet = 0;
  }
  if (++lines > 20) {
    ++quiet;
    return;
  }
  const char *state = SSL_is_init_finished(ssl) ? "connection" : "handshake";
  PLOG_WARN("tls: %s with %s failed: %s alert '%s'%s", state, peer_of(ssl).c_str(),
            (where & SSL_CB_READ) ? "the peer sent" : "we sent", SSL_alert_desc_string_long(ret),
            (where & SSL_CB_READ) ? "" : " (the peer's TLS version, ciphers or certificate)");
}

bool harden(Transport *t, SSL_CTX *ctx, std::string *error) {
  // RFC 8996: TLS 1.0 and 1.1 are deprecated; RFC 5246/8446 from here up.
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx, t->settings.ciphers.c_str()) != 1) {
    *error = t->name + ": tls-ciphers '" + t->settings.ciphers + "': " + openssl_reason();
    return false;
  }
  // sofia never sets TLS 1.3's suites (docs/TLS.md §5): they are ours alone.
  if (SSL_CTX_set_ciphersuites(ctx, t->settings.ciphersuites.c_str()) != 1) {
    *error = t->name + ": tls-ciphersuites '" + t->settings.ciphersuites + "': " + openssl_reason();
    return false;
  }
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_info_callback(ctx, on_info);
  return true;
}

// The intermediates of the certificate file go out with the leaf
// (RFC 8446 §4.4.2: the sender's chain follows its certificate).
bool set_chain_from_file(SSL_CTX *ctx, const std::string &certificate_file, std::string *error) {
  Ctx scratch(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!scratch ||
      SSL_CTX_use_certificate_chain_file(scratch.get(), certificate_file.c_str()) != 1) {
    *error = certificate_file + ": " + openssl_reason();
    return false;
  }
  STACK_OF(X509) *chain = nullptr;
  SSL_CTX_get0_chain_certs(scratch.get(), &chain);
  if (!chain) return SSL_CTX_clear_chain_certs(ctx), true;
  return SSL_CTX_set1_chain(ctx, chain) == 1;
}

std::string serial_of(const X509 *x) {
  if (!x) return "none";
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr), BN_free);
  char *hex = bn ? BN_bn2hex(bn.get()) : nullptr;
  std::string s = hex ? hex : "?";
  OPENSSL_free(hex);
  return s;
}

std::string not_after_of(const X509 *x) {
  std::tm tm{};
  if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) return "?";
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

void set_process_floor() {
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr);
  // Our ssl_conf section replaces the one OPENSSL_CONF (or the system file)
  // set up, so a host configured down to TLS 1.0 still gets 1.2 from us.
  static const char text[] =
      "portier = portier_init\n"
      "[portier_init]\nssl_conf = portier_ssl\n"
      "[portier_ssl]\nsystem_default = portier_floor\n"
      "[portier_floor]\nMinProtocol = TLSv1.2\n";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(text, -1), BIO_free);
  std::unique_ptr<CONF, decltype(&NCONF_free)> conf(NCONF_new(nullptr), NCONF_free);
  long line = 0;
  if (!bio || !conf || NCONF_load_bio(conf.get(), bio.get(), &line) != 1 ||
      CONF_modules_load(conf.get(), "portier", 0) != 1)
    PLOG_ERROR("tls: cannot set the process-wide TLS 1.2 floor: %s", openssl_reason().c_str());
  ERR_clear_error();
}

Capture::Capture() {
  std::lock_guard<std::mutex> lock(capture_mutex);
  capture_open = true;
  captured_contexts.clear();
  captured_stack.reset();
}

Capture::~Capture() {
  std::lock_guard<std::mutex> lock(capture_mutex);
  capture_open = false;
  captured_contexts.clear();
  captured_stack.reset();
}

std::vector<SSL_CTX *> Capture::contexts() const {
  std::lock_guard<std::mutex> lock(capture_mutex);
  return captured_contexts;
}

std::shared_ptr<StackTask> Capture::stack() const {
  std::lock_guard<std::mutex> lock(capture_mutex);
  return captured_stack;
}

bool in_stack_thread(const Transport &t, const std::function<void()> &fn) {
  if (!t.stack) {
    fn();
    return true;
  }
  // su_task_execute runs it at once when this is the task's thread (nua on
  // the loop's, su_root_threading off); otherwise it posts it to the task's
  // port and waits until it has run there.
  auto run = [](void *arg) -> int {
    (*static_cast<const std::function<void()> *>(arg))();
    return 0;
  };
  return su_task_execute(t.stack->task, run, const_cast<std::function<void()> *>(&fn), nullptr) ==
         0;
}

bool prepare(Transport *t, std::string *error) {
  // Links the one-record interposer into every daemon that makes a TLS transport.
  (void)one_record_stats();
  std::string e;
  if (!check_tls_files(t->settings.files, &e, &t->certificate)) {
    *error = t->name + ": " + e;
    return false;
  }
  if (!check_tls_ciphers(t->settings, &e)) {
    *error = t->name + ": " + e;
    return false;
  }
  if (!write_sofia_tls_directory(t->settings.files, t->directory, &e)) {
    *error = t->name + ": " + e;
    return false;
  }
  return true;
}

bool adopt(Transport *t, const std::vector<SSL_CTX *> &captured, bool need_context,
           std::string *error) {
  t->contexts.clear();
  const TlsFiles &f = t->settings.files;
  if (!f.certificate_file.empty()) {
    Cert ours = read_leaf(f.certificate_file);
    for (SSL_CTX *c : captured) {
      const X509 *served = SSL_CTX_get0_certificate(c);
      if (ours && served && X509_cmp(served, ours.get()) == 0) t->contexts.push_back(c);
    }
  } else if (captured.size() == 1) {
    t->contexts.push_back(captured[0]);
  }
  if (t->contexts.empty()) {
    if (need_context) {
      *error = t->name +
               ": cannot reach sofia-sip's TLS context (not the sofia-sip build portier knows): "
               "tls-ciphers, tls-ciphersuites and certificate reload need it";
      return false;
    }
    PLOG_WARN(
        "%s: sofia-sip's TLS context is out of reach: sofia's cipher list, no reload (TLS 1.2 "
        "at least still holds)",
        t->name.c_str());
    return true;
  }
  for (SSL_CTX *c : t->contexts) {
    if (!harden(t, c, error)) return false;
    if (!f.certificate_file.empty() && !set_chain_from_file(c, f.certificate_file, error))
      return false;
  }
  return true;
}

void expect_server_name(const Transport &t, const std::string &host) {
  std::lock_guard<std::mutex> lock(state_mutex);
  if (!t.settings.verify_outgoing) return;
  for (SSL_CTX *c : t.contexts) server_names[c] = host;
}

std::string last_refusal() {
  std::lock_guard<std::mutex> lock(state_mutex);
  return refusal;
}

bool reload(Transport *t, const TlsFiles &files, std::string *report, std::string *error) {
  if (t->contexts.empty()) {
    *error = t->name + ": sofia-sip's TLS context is out of reach: cannot reload";
    return false;
  }
  TlsCertificateInfo info;
  std::string e;
  if (!check_tls_files(files, &e, &info)) {
    *error = t->name + ": " + e;
    return false;
  }
  // Everything is loaded where a failure costs nothing first.
  Ctx scratch(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (!scratch) {
    *error = t->name + ": " + openssl_reason();
    return false;
  }
  if (!files.certificate_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(scratch.get(), files.certificate_file.c_str()) != 1) {
      *error = t->name + ": " + files.certificate_file + ": " + openssl_reason();
      return false;
    }
    if (SSL_CTX_use_PrivateKey_file(scratch.get(), files.private_key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(scratch.get()) != 1) {
      *error = t->name + ": " + files.private_key_file + ": " + openssl_reason();
      return false;
    }
  }
  // The trust store and the CA names a CertificateRequest lists, one of each
  // per context (each context owns what it is given).
  using Store = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;
  using Names = std::unique_ptr<STACK_OF(X509_NAME), void (*)(STACK_OF(X509_NAME) *)>;
  auto free_names = [](STACK_OF(X509_NAME) * n) { sk_X509_NAME_pop_free(n, X509_NAME_free); };
  std::vector<Store> stores;
  std::vector<Names> names;
  if (!files.ca_file.empty()) {
    for (size_t i = 0; i < t->contexts.size(); ++i) {
      stores.emplace_back(X509_STORE_new(), X509_STORE_free);
      names.emplace_back(SSL_load_client_CA_file(files.ca_file.c_str()), free_names);
      if (!stores.back() || X509_STORE_load_file(stores.back().get(), files.ca_file.c_str()) != 1 ||
          !names.back()) {
        *error = t->name + ": " + files.ca_file + ": " + openssl_reason();
        return false;
      }
    }
  }
  // On the thread that makes connections from these contexts (SSL_new reads
  // what the setters below replace).
  bool applied = false;
  const auto apply = [&] {
    SSL_CTX *first = t->contexts.front();
    const std::string old_serial = serial_of(SSL_CTX_get0_certificate(first));
    const std::string old_after = not_after_of(SSL_CTX_get0_certificate(first));
    for (size_t i = 0; i < t->contexts.size(); ++i) {
      SSL_CTX *live = t->contexts[i];
      if (!files.certificate_file.empty()) {
        STACK_OF(X509) *chain = nullptr;
        SSL_CTX_get0_chain_certs(scratch.get(), &chain);
        X509 *leaf = SSL_CTX_get0_certificate(scratch.get());
        EVP_PKEY *key = SSL_CTX_get0_privatekey(scratch.get());
        // The key goes in after the certificate: OpenSSL drops a key that does
        // not match the certificate it is set beside.
        if (SSL_CTX_use_certificate(live, leaf) != 1 || SSL_CTX_use_PrivateKey(live, key) != 1 ||
            SSL_CTX_check_private_key(live) != 1 ||
            (chain ? SSL_CTX_set1_chain(live, chain) : SSL_CTX_clear_chain_certs(live)) != 1) {
          *error = t->name + ": the live context refused the new certificate: " + openssl_reason();
          return;
        }
      }
      if (!files.ca_file.empty()) {
        SSL_CTX_set_cert_store(live, stores[i].release());
        SSL_CTX_set_client_CA_list(live, names[i].release());
      }
    }
    *report = t->name;
    if (!files.certificate_file.empty() || old_serial != "none")
      *report += ": certificate serial " + old_serial + " (until " + old_after + ") -> " +
                 serial_of(SSL_CTX_get0_certificate(first)) + " (until " +
                 not_after_of(SSL_CTX_get0_certificate(first)) + ")";
    if (!files.ca_file.empty()) *report += ": CA file " + files.ca_file;
    applied = true;
  };
  if (!in_stack_thread(*t, apply)) {
    *error = t->name + ": the SIP stack's thread cannot be reached: cannot reload";
    return false;
  }
  if (!applied) return false;
  t->settings.files = files;
  t->certificate = info;
  ERR_clear_error();
  return true;
}

}  // namespace portier::tls

// sofia-sip's TLS transports call this (see tls_transport.h). Every context the
// process makes gets the TLS 1.2 floor, captured or not.
extern "C" __attribute__((visibility("default"))) SSL_CTX *SSL_CTX_new(const SSL_METHOD *method) {
  const portier::tls::CtxNew real = portier::tls::real_ctx_new();
  SSL_CTX *ctx = real ? real(method) : nullptr;
  if (!ctx) return ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  std::lock_guard<std::mutex> lock(portier::tls::capture_mutex);
  if (portier::tls::capture_open) portier::tls::captured_contexts.push_back(ctx);
  return ctx;
}

// nua_create starts its stack with this (nua.c), through sofia's PLT as
// SSL_CTX_new is called: within a Capture the clone's task is kept, so that
// what must run on nua's thread can be sent there (in_stack_thread).
extern "C" __attribute__((visibility("default"))) int su_clone_start(su_root_t *parent,
                                                                     su_clone_r clone,
                                                                     su_root_magic_t *magic,
                                                                     su_root_init_f init,
                                                                     su_root_deinit_f deinit) {
  using Start =
      int (*)(su_root_t *, su_clone_r, su_root_magic_t *, su_root_init_f, su_root_deinit_f);
  static const Start real = reinterpret_cast<Start>(dlsym(RTLD_NEXT, "su_clone_start"));
  if (!real) return errno = ENOSYS, -1;
  const int rc = real(parent, clone, magic, init, deinit);
  if (rc != 0) return rc;
  std::lock_guard<std::mutex> lock(portier::tls::capture_mutex);
  if (portier::tls::capture_open) {
    auto task = std::make_shared<portier::tls::StackTask>();
    su_task_copy(task->task, su_clone_task(clone));
    portier::tls::captured_stack = std::move(task);
  }
  return rc;
}
