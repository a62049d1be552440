// Who may talk to a device directly: its proxy, and nobody else.
//
// A door or monitor believes the identity in P-Asserted-Identity (RFC 3325)
// only because its proxy authenticated the caller and removed any identity
// the caller put in itself. That holds only for requests that came through
// the proxy: anyone else on the LAN can send an INVITE or MESSAGE straight
// to the device's contact, with any P-Asserted-Identity and From it likes
// (RFC 3325 §3: the header is trusted only from within the trust domain).
// So a device takes out-of-dialog requests only from its proxy's addresses.
#pragma once

#include <sofia-sip/nua.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace portier::sip {

// The Warning text of every request refused for not coming through the proxy.
inline constexpr char kNotThroughProxy[] = "requests are taken only through the proxy";

class TrustedHops {
 public:
  // A SIP URI ("sip:proxy.home:5060;transport=udp") or "host[:port]".
  // Host names are resolved now (a device starts once; the proxy does not
  // move). The port counts for every transport: over UDP the proxy sends
  // from the port it listens on, over TCP or TLS it reuses the connection the
  // device opened to that port; a bare host trusts any port. False, with
  // *error, when the host does not resolve.
  bool add(const std::string &uri_or_host, std::string *error);

  // Did a request from `from` (IPPROTO_UDP, IPPROTO_TCP...) come from a
  // trusted hop? With nothing added, nothing is trusted.
  bool trusts(const struct sockaddr *from, socklen_t len, int protocol) const;

  // The same for the request nua is reporting now (call it from the nua
  // event callback). *source gets the sender's address for the log.
  bool trusts_current_request(nua_t *nua, std::string *source) const;

  // For a request nua reports now (out of a dialog, or inside one, which
  // comes through the proxy's Record-Route): true when it came from a
  // trusted hop; otherwise it is answered 403 with a Warning naming `agent`
  // ("door", "monitor"), a warning is logged, and *source says where it came
  // from. The handle stays the caller's to release.
  bool admit(nua_t *nua, nua_handle_t *nh, const char *agent, const char *method,
             std::string *source) const;

  bool empty() const { return hops_.empty(); }
  std::string describe() const;  // "127.0.0.1:5060, ::1:5060" for logs

  // "10.0.0.2:40000" for logs.
  static std::string address_text(const struct sockaddr *sa, socklen_t len);

 private:
  struct Hop {
    std::string address;  // numeric, as inet_ntop writes it
    uint16_t port = 0;    // 0: any
  };
  std::vector<Hop> hops_;
};

}  // namespace portier::sip
