/* Bulk pre-faulting of a workspace's mapping.  Design: wksp_private.h. */
#include "wksp/wksp_private.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

int wksp_private_prefault(const wksp_t *w, uint64_t gaddr_lo, uint64_t gaddr_hi, int write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  uint64_t end = wksp_gaddr_hi(w);
  if (gaddr_hi > end) gaddr_hi = end;
  if (gaddr_lo >= gaddr_hi) return 0;
  /* Whole pages holding mapped bytes are mapped, so rounding outward stays
   * inside the mapping. */
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), base = (uintptr_t)w;
  uintptr_t a = (base + gaddr_lo) & ~(pg - 1), b = (base + gaddr_hi + pg - 1) & ~(pg - 1);
  return madvise((void *)a, b - a, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0;
#else
  (void)w, (void)gaddr_lo, (void)gaddr_hi, (void)write;
  return 0;
#endif
}
