// HTTPS requests over HTTP/2 (RFC 9113) with libcurl's multi interface, driven
// by a sofia-sip root: curl's sockets are registered with the root
// (CURLMOPT_SOCKETFUNCTION) and its timeout is a root timer
// (CURLMOPT_TIMERFUNCTION), so nothing ever blocks the loop. Requests to one
// host share one connection, multiplexed (CURLPIPE_MULTIPLEX; a request made
// while the connection is being set up waits for it, CURLOPT_PIPEWAIT), and the
// connection stays open for the next ones. Servers are verified against the
// system's CAs plus ca_file.
//
// One thread: the root's. Callbacks run on it, after curl has let go of the
// request, so a callback may start new requests. Destroying the client drops
// the requests in flight without calling them back.
#pragma once

#include <sofia-sip/su_wait.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace portier::push {

struct HttpRequest {
  std::string url;                   // https only
  std::vector<std::string> headers;  // "name: value"
  std::string body;                  // POSTed
  std::string client_certificate;    // PEM certificate and key in one file, or ""
  long timeout_ms = 10000;           // the whole exchange
};

struct HttpResponse {
  int status = 0;                              // 0: no answer (connection failed, timed out)
  std::string error;                           // curl's words when status is 0
  std::string http_version;                    // "2" when it went over HTTP/2
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string &lower_name) const;
};

class Http2Client {
 public:
  using Done = std::function<void(const HttpResponse &)>;

  Http2Client(su_root_t *root, std::string ca_file);
  ~Http2Client();
  Http2Client(const Http2Client &) = delete;
  Http2Client &operator=(const Http2Client &) = delete;

  void post(HttpRequest request, Done done);
  size_t in_flight() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace portier::push
