// The proxy's whole request policy, assembled in one place from the config.
#pragma once

#include <functional>
#include <string>

#include "common/auth/failure_limiter.h"
#include "common/auth/users_file.h"
#include "proxy/chain/dialog_validator.h"
#include "proxy/chain/digest_auth.h"
#include "proxy/chain/fork.h"
#include "proxy/chain/processor.h"
#include "proxy/chain/registrar.h"
#include "proxy/chain/source_limiter.h"
#include "proxy/local_names.h"
#include "proxy/location_store.h"
#include "proxy/proxy_config.h"
#include "proxy/static_records.h"

namespace portier::proxy::chain {

// What the processors work with; everything outlives the chain.
struct ChainParts {
  const ProxySettings &settings;
  const LocalNames &names;
  const std::string &stateless_tag;  // see Reply::set_stateless_tag
  auth::FailureLimiter *bans;        // null: authentication is off
  ConnectionActivity *connections;   // may be null
  const RouteSigner &route_signer;
  DialogRouter &dialogs;
  Registrar &registrar;
  DigestAuth *digest_auth;  // null: authentication is off
  const LocationStore &locations;
  const StaticRecords &static_records;
  const auth::UsersFile &users;
  Forker &router;
  HouseDomains *house_domains = nullptr;  // null: no domain registrations
  // TargetResolver::set_cloud_flow (empty: this proxy registers no domain).
  std::function<std::string(const std::string &domain)> cloud_flow = nullptr;
};

Chain build_chain(const ChainParts &parts);

}  // namespace portier::proxy::chain
