#include "proxy/call_observer.h"

namespace portier::proxy {

RefusalResponse refusal_response(CallObserver::Refusal why) {
  switch (why) {
    case CallObserver::Refusal::None:
      return {};
    case CallObserver::Refusal::BadSdp:
      return {488, "Not Acceptable Here", 0};
    case CallObserver::Refusal::NoPorts:
      return {503, "Media relay full", 30};
    case CallObserver::Refusal::UserLimit:
    case CallObserver::Refusal::SourceLimit:
      return {503, "Too many relayed calls", 30};
  }
  return {500, "Server Internal Error", 0};
}

const char *refusal_name(CallObserver::Refusal why) {
  switch (why) {
    case CallObserver::Refusal::None:
      return "none";
    case CallObserver::Refusal::BadSdp:
      return "bad SDP";
    case CallObserver::Refusal::NoPorts:
      return "no free ports";
    case CallObserver::Refusal::UserLimit:
      return "user limit";
    case CallObserver::Refusal::SourceLimit:
      return "source limit";
  }
  return "?";
}

}  // namespace portier::proxy
