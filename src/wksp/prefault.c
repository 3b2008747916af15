/* Bulk pre-faulting of a workspace's mapping.  Design: wksp_private.h.
 *
 * MADV_POPULATE_* walks every page even when this process maps it already
 * (10-14 ms a GiB on the test machine: half the time of hashing those bytes
 * on two threads), and a process that checkpoints its own workspace again
 * and again maps all of it after the first time.  So a range is taken in
 * 2 MiB chunks and /proc/self/pagemap (bit 63: present) is asked about the
 * middle page of each: a chunk whose middle page this process maps is left
 * alone, the others are populated.  One entry, not the chunk's 512: a
 * pagemap read is a system call (2.5-6 us on the test machine, whose
 * system calls are slow) plus 25 ns an entry, and a wrong guess costs only
 * speed (the chunk's other pages fault at first touch).  The middle page
 * catches the partial patterns that occur: a range's first page touched (a
 * header read), a chunk cut by an earlier range's end.  Three samples (the
 * first, middle and last pages) were tried: each pread costs about 1% of
 * an unchanged delta's time (bench_delta (c): 1.13x -> 1.09x of hashing
 * with one).  Pieces under 256 KiB are populated without asking: that
 * costs less than the read.  Without a readable pagemap everything is
 * populated.  A caller that pre-faults piece by piece on several threads
 * (the delta writer) keeps one pagemap descriptor for its call. */
#include "wksp/wksp_private.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

enum { CHUNK_PAGES = 512, ASK_PAGES = 64 };
#define PAGEMAP_PRESENT (1ull << 63)

/* Gaps up to this are populated with their neighbours: one call instead of
 * two, at the cost of a few pages that may be free space. */
#define GAP_MAX (64u << 10)

#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
/* Whether this process's page table maps the page at a; 0 when pagemap
 * cannot say. */
static int page_present(int pagemap, uintptr_t a, uintptr_t pg) {
  uint64_t e;
  if (pagemap < 0 || pread(pagemap, &e, sizeof e, (off_t)(a / pg * sizeof e)) != (ssize_t)sizeof e) return 0;
  return (e & PAGEMAP_PRESENT) != 0;
}

static int populate(uintptr_t a, uintptr_t b, int write) {
  return madvise((void *)a, b - a, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0;
}

/* [gaddr_lo, gaddr_hi) of w: 1 when its pages are mapped now, 0 when the
 * range is empty or a populate call failed. */
static int range_prefault(const wksp_t *w, int pagemap, uint64_t gaddr_lo, uint64_t gaddr_hi, int write) {
  uint64_t end = wksp_gaddr_hi(w);
  if (gaddr_hi > end) gaddr_hi = end;
  if (gaddr_lo >= gaddr_hi) return 0;
  /* Whole pages holding mapped bytes are mapped, so rounding outward stays
   * inside the mapping. */
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), base = (uintptr_t)w, span = CHUNK_PAGES * pg;
  uintptr_t a = (base + gaddr_lo) & ~(pg - 1), b = (base + gaddr_hi + pg - 1) & ~(pg - 1);
  uintptr_t run = 0; /* start of the chunks to populate, 0: none */
  int ok = 1;
  for (uintptr_t c = a, e; c < b; c = e) {
    e = (c / span + 1) * span < b ? (c / span + 1) * span : b;
    uintptr_t mid = c + (e - c) / pg / 2 * pg;
    if ((e - c) / pg >= ASK_PAGES && page_present(pagemap, mid, pg)) {
      if (run) ok &= populate(run, c, write);
      run = 0;
    } else if (!run) {
      run = c;
    }
  }
  if (run) ok &= populate(run, b, write);
  return ok;
}

#endif

int wksp_private_prefault_open(void) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
#else
  return -1;
#endif
}

void wksp_private_prefault_close(int pagemap) {
  if (pagemap >= 0) close(pagemap);
}

int wksp_private_prefault(const wksp_t *w, uint64_t gaddr_lo, uint64_t gaddr_hi, int write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  int pagemap = wksp_private_prefault_open(), ok = range_prefault(w, pagemap, gaddr_lo, gaddr_hi, write);
  wksp_private_prefault_close(pagemap);
  return ok;
#else
  (void)w, (void)gaddr_lo, (void)gaddr_hi, (void)write;
  return 0;
#endif
}

void wksp_private_prefault_parts_with(const wksp_t *w, int pagemap, const wksp_part_t *parts, uint64_t cnt,
                                      int write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  uint64_t lo = 0, hi = 0;
  for (uint64_t k = 0; k < cnt; k++) {
    if (hi && parts[k].gaddr_lo - hi <= GAP_MAX && parts[k].gaddr_lo >= hi) {
      hi = parts[k].gaddr_hi;
      continue;
    }
    if (hi) range_prefault(w, pagemap, lo, hi, write);
    lo = parts[k].gaddr_lo;
    hi = parts[k].gaddr_hi;
  }
  if (hi) range_prefault(w, pagemap, lo, hi, write);
#else
  (void)w, (void)pagemap, (void)parts, (void)cnt, (void)write;
#endif
}

void wksp_private_prefault_parts(const wksp_t *w, const wksp_part_t *parts, uint64_t cnt, int write) {
  int pagemap = wksp_private_prefault_open();
  wksp_private_prefault_parts_with(w, pagemap, parts, cnt, write);
  wksp_private_prefault_close(pagemap);
}
