#include "push/http2_client.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace portier::push {

std::string HttpResponse::header(const std::string &lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

namespace {

constexpr size_t kMaxBody = 64 * 1024;

struct Transfer {
  CURL *easy = nullptr;
  curl_slist *headers = nullptr;
  HttpRequest request;
  HttpResponse response;
  Http2Client::Done done;
  bool resent = false;
  char error[CURL_ERROR_SIZE] = "";
  ~Transfer() {
    curl_slist_free_all(headers);
    if (easy) curl_easy_cleanup(easy);
  }
};

size_t on_body(char *data, size_t size, size_t n, void *user) {
  auto *t = static_cast<Transfer *>(user);
  // A provider's answer is at most a few kilobytes; 64 KiB is a broken or
  // hostile server, and the transfer fails instead of growing without end.
  if (t->response.body.size() + size * n > kMaxBody) return 0;
  t->response.body.append(data, size * n);
  return size * n;
}

size_t on_header(char *data, size_t size, size_t n, void *user) {
  auto *t = static_cast<Transfer *>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.compare(0, 5, "HTTP/") == 0) {
    t->response.headers.clear();  // a new response (after a 1xx)
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos || t->response.headers.size() >= 100) return size * n;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  size_t v = colon + 1;
  while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
  t->response.headers[name] = line.substr(v);
  return size * n;
}

// The system's CAs (curl loads its default bundle) plus the configured file.
CURLcode add_ca_file(CURL *, void *ssl_ctx, void *user) {
  const auto *ca_file = static_cast<const std::string *>(user);
  X509_STORE *store = SSL_CTX_get_cert_store(static_cast<SSL_CTX *>(ssl_ctx));
  return X509_STORE_load_file(store, ca_file->c_str()) == 1 ? CURLE_OK : CURLE_SSL_CACERT_BADFILE;
}

}  // namespace

struct Http2Client::Impl {
  su_root_t *root;
  std::string ca_file;
  CURLM *multi = nullptr;
  su_timer_t *timer = nullptr;
  std::map<curl_socket_t, int> registered;  // curl's socket -> the root's index
  std::map<CURL *, std::unique_ptr<Transfer>> transfers;

  // CURLMOPT_SOCKETFUNCTION: curl says which events it wants on a socket.
  static int on_socket(CURL *, curl_socket_t s, int what, void *user, void *) {
    auto *self = static_cast<Impl *>(user);
    auto it = self->registered.find(s);
    if (what == CURL_POLL_REMOVE) {
      if (it != self->registered.end()) {
        su_root_deregister(self->root, it->second);
        self->registered.erase(it);
      }
      return 0;
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= SU_WAIT_IN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= SU_WAIT_OUT;
    if (it != self->registered.end()) {
      su_root_eventmask(self->root, it->second, s, events);
      return 0;
    }
    su_wait_t wait[1];
    if (su_wait_create(wait, s, events) != 0) return -1;
    const int index = su_root_register(self->root, wait, on_ready, self, 0);
    if (index < 0) {
      su_wait_destroy(wait);
      return -1;
    }
    self->registered[s] = index;
    return 0;
  }

  // The root found a socket ready.
  static int on_ready(su_root_magic_t *, su_wait_t *wait, su_wakeup_arg_t *arg) {
    auto *self = static_cast<Impl *>(arg);
    const su_socket_t s = su_wait_socket(wait);
    const int revents = su_wait_events(wait, s);
    int flags = 0;
    if (revents & SU_WAIT_IN) flags |= CURL_CSELECT_IN;
    if (revents & SU_WAIT_OUT) flags |= CURL_CSELECT_OUT;
    if (revents & (SU_WAIT_ERR | SU_WAIT_HUP)) flags |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(self->multi, s, flags, &running);
    self->finish_done();
    return 0;
  }

  // CURLMOPT_TIMERFUNCTION: curl wants to be called after timeout_ms (-1:
  // never). curl must not be called from inside its own callback, so even 0
  // goes through the timer.
  static int on_timer(CURLM *, long timeout_ms, void *user) {
    auto *self = static_cast<Impl *>(user);
    if (timeout_ms < 0) {
      su_timer_reset(self->timer);
      return 0;
    }
    su_timer_set_interval(self->timer, on_timeout, self, static_cast<su_duration_t>(timeout_ms));
    return 0;
  }

  static void on_timeout(su_root_magic_t *, su_timer_t *, su_timer_arg_t *arg) {
    auto *self = static_cast<Impl *>(arg);
    int running = 0;
    curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    self->finish_done();
  }

  // A provider closes a connection it no longer wants with GOAWAY (RFC 9113
  // §6.8; Google's front ends after an hour), and curl does not read an idle
  // connection: a request can go out on a connection that is already closing
  // and fail without the server having seen it. Such a request, sent on a
  // reused connection, is sent once more on a new one.
  bool resend_on_new_connection(Transfer *t, CURLcode result) {
    long connects = 0;
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    const bool connection_lost = result == CURLE_HTTP2 || result == CURLE_HTTP2_STREAM ||
                                 result == CURLE_SEND_ERROR || result == CURLE_RECV_ERROR ||
                                 result == CURLE_GOT_NOTHING;
    if (t->resent || connects > 0 || !connection_lost) return false;
    t->resent = true;
    t->response = HttpResponse{};
    t->error[0] = '\0';
    curl_easy_setopt(t->easy, CURLOPT_FRESH_CONNECT, 1L);
    return curl_multi_add_handle(multi, t->easy) == CURLM_OK;
  }

  // Hands every finished transfer to its callback, curl's hold on it released
  // first so the callback may start the next request.
  void finish_done() {
    int left = 0;
    while (CURLMsg *msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *easy = msg->easy_handle;
      const CURLcode result = msg->data.result;
      auto it = transfers.find(easy);
      if (it == transfers.end()) continue;
      curl_multi_remove_handle(multi, easy);
      if (result != CURLE_OK && resend_on_new_connection(it->second.get(), result)) continue;
      std::unique_ptr<Transfer> t = std::move(it->second);
      transfers.erase(it);
      if (result == CURLE_OK) {
        long code = 0, version = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
        t->response.status = static_cast<int>(code);
        t->response.http_version = version == CURL_HTTP_VERSION_2_0   ? "2"
                                   : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                                                                      : "other";
      } else {
        t->response.status = 0;
        t->response.error = result == CURLE_WRITE_ERROR ? "an answer larger than 64 KiB"
                            : t->error[0]               ? t->error
                                                        : curl_easy_strerror(result);
      }
      Done done = std::move(t->done);
      HttpResponse response = std::move(t->response);
      t.reset();
      if (done) done(response);
    }
  }
};

Http2Client::Http2Client(su_root_t *root, std::string ca_file) : impl_(new Impl) {
  static std::once_flag global;
  std::call_once(global, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->root = root;
  impl_->ca_file = std::move(ca_file);
  impl_->multi = curl_multi_init();
  impl_->timer = su_timer_create(su_root_task(root), 0);
  curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETFUNCTION, Impl::on_socket);
  curl_multi_setopt(impl_->multi, CURLMOPT_SOCKETDATA, impl_.get());
  curl_multi_setopt(impl_->multi, CURLMOPT_TIMERFUNCTION, Impl::on_timer);
  curl_multi_setopt(impl_->multi, CURLMOPT_TIMERDATA, impl_.get());
  curl_multi_setopt(impl_->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  // curl's cache keeps four connections per transfer in flight; between calls
  // none are in flight. Enough for every provider, so none is closed for lack
  // of room and set up again (TCP and TLS) when the next call rings.
  curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, 16L);
}

Http2Client::~Http2Client() {
  for (auto &[easy, t] : impl_->transfers) curl_multi_remove_handle(impl_->multi, easy);
  impl_->transfers.clear();
  // Closes the kept connections; their sockets leave the root through on_socket.
  curl_multi_cleanup(impl_->multi);
  for (auto &[s, index] : impl_->registered) su_root_deregister(impl_->root, index);
  su_timer_destroy(impl_->timer);
}

size_t Http2Client::in_flight() const { return impl_->transfers.size(); }

void Http2Client::post(HttpRequest request, Done done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  CURL *e = t->easy = curl_easy_init();
  if (!e) {
    HttpResponse r;
    r.error = "out of memory";
    if (t->done) t->done(r);
    return;
  }
  const HttpRequest &rq = t->request;
  for (const auto &h : rq.headers) t->headers = curl_slist_append(t->headers, h.c_str());
  // curl adds "Expect: 100-continue" to larger POSTs; HTTP/2 has no use for it.
  t->headers = curl_slist_append(t->headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, rq.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  // An idle kept connection whose peer vanished (NAT timeout, provider
  // restart) is found by TCP keepalive rather than by the next push.
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 60L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 30L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(rq.body.size()));
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq.body.data());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, std::max(1L, rq.timeout_ms));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::max(1L, std::min(rq.timeout_ms, 10000L)));
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  if (!impl_->ca_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, add_ca_file);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, &impl_->ca_file);
  }
  if (!rq.client_certificate.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, rq.client_certificate.c_str());
    curl_easy_setopt(e, CURLOPT_SSLKEY, rq.client_certificate.c_str());
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  Transfer *raw = t.get();
  impl_->transfers[e] = std::move(t);
  if (curl_multi_add_handle(impl_->multi, e) != CURLM_OK) {
    auto t2 = std::move(impl_->transfers[e]);
    impl_->transfers.erase(e);
    HttpResponse r;
    r.error = "curl refused the request";
    if (raw->done) raw->done(r);
  }
}

}  // namespace portier::push
