// sofia-sip's callback context types for portier-proxy (RFC-free plumbing):
// every proxy header includes sofia-sip through this one, so the *_MAGIC_T
// macros are set once, before sofia's own headers see them.
#pragma once

#define SU_ROOT_MAGIC_T struct portier_proxy_root
#define NTA_LEG_MAGIC_T void
#define NTA_AGENT_MAGIC_T void
#define NTA_INCOMING_MAGIC_T void
#define NTA_OUTGOING_MAGIC_T void
#define SU_TIMER_ARG_T void

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su_wait.h>
