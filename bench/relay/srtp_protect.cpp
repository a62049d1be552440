// srtp_protect: what one SRTP protect of a 1,000-byte RTP packet costs, per
// suite, in the relay's own SrtpContext (OpenSSL) and in Debian's libsrtp2 (on
// NSS), one after the other in one process (issue 13, item 3).
//
//   srtp_protect [PACKETS [SUITE]]   PACKETS protects per suite and side
//                              (200000), every suite or only SUITE: prints
//                              "SUITE ours NS libsrtp2 NS" (ns per packet)
//   srtp_protect --cold [CONTEXTS [SWEEP_MB]]   ours only, as the relay meets
//                              it: CONTEXTS outbound contexts (200: 50 calls x
//                              4 branches) protect one packet each in turn,
//                              400 rounds, and between rounds SWEEP_MB (8) of
//                              memory is written so the contexts are no longer
//                              in the caches (what the kernel's own work does
//                              between two batches): "SUITE cold NS"
//
// A CPU timing: run it on a quiet machine. Under valgrind --tool=callgrind
// with --toggle-collect='*SrtpContext::protect_rtp*' (ours) or
// --toggle-collect=srtp_protect (libsrtp2) and a small PACKETS it counts the
// instructions of one protect instead (divide by PACKETS, with a SUITE).
//
// Build (from the repository, after the CMake build):
//   g++ -O2 -std=c++17 -Isignaling -o /tmp/srtp_protect bench/relay/srtp_protect.cpp \
//     build/signaling/libportier_srtp_oracle.a build/signaling/libportier_relay.a \
//     build/signaling/libportier_proxy_core.a build/signaling/libportier_push_core.a \
//     build/signaling/libportier_sip.a build/signaling/libportier_common.a \
//     $(pkg-config --cflags --libs libcrypto libsrtp2)
#include <srtp2/srtp.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proxy/relay_srtp.h"
#include "sip/sdp/sdes.h"

namespace sdp = portier::sdp;
using portier::proxy::SrtpContext;

namespace {

constexpr size_t kPayload = 1000 - 12;

double now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

void fill(uint8_t *p, uint32_t i) {
  std::memset(p, 0, 12);
  p[0] = 0x80;
  p[1] = 96;
  p[2] = uint8_t(i >> 8);
  p[3] = uint8_t(i);
  p[11] = 1;
}

bool libsrtp_policy(sdp::SrtpSuite s, srtp_policy_t *p) {
  switch (s) {
    case sdp::SrtpSuite::AesCm128HmacSha1_80:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
      break;
    case sdp::SrtpSuite::AesCm128HmacSha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p->rtp);
      break;
    case sdp::SrtpSuite::Aes256CmHmacSha1_80:
      srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtp);
      break;
    case sdp::SrtpSuite::AeadAes128Gcm:
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
      break;
    case sdp::SrtpSuite::AeadAes256Gcm:
      srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtp);
      break;
  }
  p->rtcp = p->rtp;
  return true;
}

}  // namespace

int cold(int argc, char **argv) {
  const int contexts = argc > 2 ? std::atoi(argv[2]) : 200;
  const size_t sweep = size_t(argc > 3 ? std::atol(argv[3]) : 8) << 20;
  if (contexts <= 0 || contexts > 100000) return 2;
  std::vector<char> junk(sweep ? sweep : 1);
  alignas(8) uint8_t pkt[1100];
  std::string error;
  for (sdp::SrtpSuite s : sdp::kAllSrtpSuites) {
    std::vector<std::unique_ptr<SrtpContext>> ctx;
    for (int i = 0; i < contexts; ++i) {
      auto key = sdp::CryptoKey::generate(s);
      if (!key) return 1;
      ctx.push_back(SrtpContext::create(*key, SrtpContext::Direction::Outbound, &error));
      if (!ctx.back()) return 1;
    }
    double spent = 0;
    for (uint32_t round = 0; round < 400; ++round) {
      for (size_t i = 0; i < junk.size(); i += 64) junk[i] = char(junk[i] + 1);
      const double t0 = now();
      for (auto &c : ctx) {
        fill(pkt, round);
        size_t len = 12 + kPayload;
        if (!c->protect_rtp(pkt, &len)) return 1;
      }
      spent += now() - t0;
    }
    std::printf("%s cold %.0f\n", sdp::suite_name(s), spent / (400.0 * contexts) * 1e9);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !std::strcmp(argv[1], "--cold")) return cold(argc, argv);
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  if (n <= 0) return 2;
  std::string error;
  if (!SrtpContext::init_library(&error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  alignas(8) uint8_t pkt[1100];
  for (sdp::SrtpSuite s : sdp::kAllSrtpSuites) {
    if (argc > 2 && std::strcmp(argv[2], sdp::suite_name(s)) != 0) continue;
    auto key = sdp::CryptoKey::generate(s);
    if (!key) return 1;
    auto ours = SrtpContext::create(*key, SrtpContext::Direction::Outbound, &error);
    if (!ours) return 1;
    double t0 = now();
    for (long i = 0; i < n; ++i) {
      fill(pkt, uint32_t(i));
      size_t len = 12 + kPayload;
      if (!ours->protect_rtp(pkt, &len)) return 1;
    }
    const double t_ours = (now() - t0) / n * 1e9;

    srtp_policy_t p{};
    libsrtp_policy(s, &p);
    p.key = key->bytes.data();
    p.ssrc.type = ssrc_any_outbound;
    p.window_size = 1024;
    srtp_t lib = nullptr;
    if (srtp_create(&lib, &p) != srtp_err_status_ok) return 1;
    t0 = now();
    for (long i = 0; i < n; ++i) {
      fill(pkt, uint32_t(i));
      int len = 12 + kPayload;
      if (srtp_protect(lib, pkt, &len) != srtp_err_status_ok) return 1;
    }
    const double t_lib = (now() - t0) / n * 1e9;
    srtp_dealloc(lib);
    std::printf("%s ours %.0f libsrtp2 %.0f\n", sdp::suite_name(s), t_ours, t_lib);
  }
  return 0;
}
