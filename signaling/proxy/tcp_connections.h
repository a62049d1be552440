// The sofia-sip and kernel side of ConnectionLimits (connection_limits.h says
// what sofia-sip's tport does itself and what it leaves to us): lists the
// connections the proxy accepted, closes the ones ConnectionLimits picks, and
// holds a tport reference on each connection that carries a live registration,
// so that sofia's idle rule (TPTAG_IDLE) leaves a device's flow alone.
#pragma once

#include <map>
#include <set>
#include <string>

// proxy.h sets sofia-sip's magic types; this header comes after it.
#include <sofia-sip/msg.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/tport.h>

#include "proxy/chain/source_limiter.h"
#include "proxy/connection_limits.h"
#include "proxy/location_store.h"

namespace portier::proxy {

class TcpConnections : public chain::ConnectionActivity {
 public:
  TcpConnections(nta_agent_t *agent, ConnectionLimits::Settings settings);
  ~TcpConnections() override;
  TcpConnections(const TcpConnections &) = delete;
  TcpConnections &operator=(const TcpConnections &) = delete;

  // For each request, from on_message: the connection is in use. A
  // REGISTER's connection is held until the next review, which keeps it while
  // the binding lives.
  void note_request(msg_t *msg, bool is_register) override;

  // Once a second: lets go of connections whose binding is gone, closes what
  // is over the limits or idle.
  void review(const LocationStore &locations, int64_t now_s);

  size_t flows() const { return flows_.size(); }

 private:
  // Lets go of flows whose binding is gone, then review_now.
  void review_connections(const LocationStore &locations, int64_t now_s);
  void review_now(int64_t now_ms);

  nta_agent_t *agent_;
  ConnectionLimits limits_;
  size_t max_per_source_;
  // Peers ("host:port") whose REGISTER came over a connection, and our
  // reference on that connection.
  std::map<std::string, tport_t *> flows_;
  // Peers ("host:port", no brackets) with a live binding received over TCP/TLS.
  std::set<std::string> registered_;
  // Connections closed per source for the limit since the last log line.
  std::map<std::string, size_t> over_limit_;
  size_t no_descriptors_ = 0;
  // The last walk found accepted connections (review looks again).
  bool connections_seen_ = false;
};

}  // namespace portier::proxy
