// portier-proxy allocates through jemalloc, with transparent huge pages.
//
// Why: every forked call leaves its transactions with nta for 32 s (timers D,
// J and K absorb retransmissions, RFC 3261 §17), about 37 KB per call, so under
// steady load the heap keeps growing into fresh memory, and each fresh 4 KB
// page costs a page fault: 12.5 per call with glibc's malloc. On a virtual
// machine a fault is dear (on the benchmark VM the faults were a quarter of a
// call's CPU). jemalloc maps its memory with MADV_HUGEPAGE ("thp:always" in
// allocator.cpp): one fault per 2 MB, 0.3 per call. Where the kernel has
// transparent huge pages off, the setting does nothing. jemalloc also hands
// freed pages back to the kernel by itself, a few seconds after they fall free.
#pragma once

#include <cstddef>

namespace portier::proxy::allocator {

struct Usage {
  size_t allocated = 0;  // bytes the program holds
  size_t resident = 0;   // bytes of memory mapped in, the allocator's own included
};
Usage usage();

// Hands every free page back to the kernel now, rather than when jemalloc's
// decay would (after a burst of calls, once their transactions are gone).
void give_back_free_pages();

}  // namespace portier::proxy::allocator
