// The OpenSSL side of sofia-sip's TLS transports, shared by the three daemons.
//
// sofia-sip 1.12.11 keeps each TLS transport's SSL_CTX private and sets neither
// a version floor nor a sane cipher list on it (docs/TLS.md §1, §5). It calls
// OpenSSL through its PLT, so this library defines SSL_CTX_new itself: the
// executable's definition is the one sofia's calls bind to. It forwards to
// libssl's and, while a Capture is open around the sofia call that makes a TLS
// transport, records the contexts made, so the transport's context can be
// hardened and, later, reloaded in place (docs/TLS.md §6).
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/sip_transport.h"

namespace portier::tls {

// Loads our OpenSSL configuration (MinProtocol = TLSv1.2 for every context the
// process makes) over whatever OPENSSL_CONF says. Call first thing in main,
// before sofia makes a context: the floor then holds even where capture fails
// (another sofia build, a static link).
void set_process_floor();

// The sofia task (su_task_r) of a clone of the root: nua's stack, where its
// transports and their contexts live. Opaque here so that this header pulls
// in no sofia header before a daemon has set its magic types.
struct StackTask;

// Open around one sofia call that makes TLS transports (nta_agent_create,
// nta_agent_add_tport, nua_create). nua may make its agent on another thread
// (su_clone_start): the scope is process-wide, one at a time.
class Capture {
 public:
  Capture();
  ~Capture();
  Capture(const Capture &) = delete;
  Capture &operator=(const Capture &) = delete;
  // The contexts made since the scope opened.
  std::vector<SSL_CTX *> contexts() const;
  // The clone started since the scope opened (nua_create starts its stack in
  // one), else null. sofia gives no handle to nua's clone, so this library
  // defines su_clone_start as it does SSL_CTX_new and keeps the task.
  std::shared_ptr<StackTask> stack() const;
};

// One TLS transport of ours: its settings, sofia's directory for it, and its
// live context once found.
struct Transport {
  std::string name;  // for logs: "sips:127.0.0.1:5061"
  TlsSettings settings;
  std::string directory;  // what TPTAG_CERTIFICATE names
  // sofia's contexts for it, hardened: one per primary transport, so more
  // than one when the URI's host is a name with several addresses or "*"
  // (IPv4 and IPv6). Empty: not reachable.
  std::vector<SSL_CTX *> contexts;
  TlsCertificateInfo certificate;
  // The thread that makes connections from `contexts` when it is not the
  // caller's (nua's stack thread in door and monitor): what changes them runs
  // there (in_stack_thread). Null: the caller's (the proxy's loop). It holds
  // a reference to the task's port: reset it before the clone ends
  // (nua_destroy), which asserts that it drops the port's last one.
  std::shared_ptr<StackTask> stack;
};

// Runs `fn` on t's stack thread and waits for it, or runs it here when the
// transport has none or it is this thread. OpenSSL's SSL_CTX setters are not
// safe against an SSL_new from the same context on another thread, and sofia
// makes one per connection as it accepts or connects. False (`fn` not run)
// when that thread cannot be reached.
bool in_stack_thread(const Transport &t, const std::function<void()> &fn);

// Checks the files and writes sofia's directory for the transport (before the
// sofia call). False with *error naming the file.
bool prepare(Transport *t, std::string *error);

// After the sofia call: finds the transport's context among `captured` (the
// one serving our certificate, or the only one for a client without a
// certificate) and hardens it: TLS 1.2 at least, the transport's ciphers, the
// whole chain sent, unexpected EOFs quiet, buffers released when idle, failed
// handshakes logged with their alert and peer. When no context is found the
// transport runs on sofia's defaults under the process floor; that is refused
// (false, *error) when the config asked for what only the context gives
// (`need_context`: tls-ciphers or tls-ciphersuites set, or reload wanted).
bool adopt(Transport *t, const std::vector<SSL_CTX *> &captured, bool need_context,
           std::string *error);

// A client transport (door, monitor) talks to one server: `host`, the name its
// certificate must carry. A handshake whose certificate is not trusted or does
// not name it is logged in one line (sofia closes the connection without a
// word, and the REGISTER just times out: docs/TLS.md §3) and kept for
// last_refusal().
void expect_server_name(const Transport &t, const std::string &host);
// The last such refusal: "PEER: reason", "" when none since the last success.
std::string last_refusal();

// Loads `files` into a scratch context first, then into the live one:
// certificate, chain, key, trust store and client CA list. Connections made
// before keep what they had; new ones get the new certificate. On any failure
// the live context is untouched and *error names the file. *report: old and
// new serial and notAfter. Runs on the transport's stack thread.
bool reload(Transport *t, const TlsFiles &files, std::string *report, std::string *error);

}  // namespace portier::tls
