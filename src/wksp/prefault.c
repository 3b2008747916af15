/* Bulk pre-faulting of a workspace's mapping.  Design: wksp_private.h.
 *
 * MADV_POPULATE_* walks every page even when this process maps it already
 * (10-14 ms a GiB on the test machine: half the time of hashing those bytes
 * on two threads), and a process that checkpoints its own workspace again
 * and again maps all of it after the first time.  So a range is taken in
 * 2 MiB chunks and /proc/self/pagemap (bit 63: present) is asked about
 * three pages of each (first, middle, last): a chunk whose three pages this
 * process maps is left alone, the others are populated.  Three entries,
 * not the chunk's 512: a pagemap read costs about 2.5 us plus 25 ns an
 * entry (about 4 ms a GiB sampled, 8 ms whole), and a wrong guess costs
 * only speed (the chunk's other pages fault one by one at first touch).
 * The three catch the partial patterns that occur: a range's first page
 * touched (a header read), a chunk cut by an earlier range's end.  Pieces
 * under 256 KiB are populated without asking: that costs less than the
 * reads.  Without a readable pagemap everything is populated. */
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
    if ((e - c) / pg >= ASK_PAGES && page_present(pagemap, c, pg) && page_present(pagemap, mid, pg) &&
        page_present(pagemap, e - pg, pg)) {
      if (run) ok &= populate(run, c, write);
      run = 0;
    } else if (!run) {
      run = c;
    }
  }
  if (run) ok &= populate(run, b, write);
  return ok;
}

static int pagemap_open(void) { return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC); }

static void pagemap_close(int pagemap) {
  if (pagemap >= 0) close(pagemap);
}
#endif

int wksp_private_prefault(const wksp_t *w, uint64_t gaddr_lo, uint64_t gaddr_hi, int write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  int pagemap = pagemap_open(), ok = range_prefault(w, pagemap, gaddr_lo, gaddr_hi, write);
  pagemap_close(pagemap);
  return ok;
#else
  (void)w, (void)gaddr_lo, (void)gaddr_hi, (void)write;
  return 0;
#endif
}

void wksp_private_prefault_parts(const wksp_t *w, const wksp_part_t *parts, uint64_t cnt, int write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  int pagemap = pagemap_open();
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
  pagemap_close(pagemap);
#else
  (void)w, (void)parts, (void)cnt, (void)write;
#endif
}
