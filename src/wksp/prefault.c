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
 * (the delta writer) keeps one pagemap descriptor for its call.
 *
 * Even one read per chunk adds up: 512 reads a GiB cost an unchanged
 * delta about 4% of its time (bench_delta (c)).  The two cases that occur
 * are all or nothing: a process that works on its own workspace maps all
 * of it, a fresh CLI process none of it.  So a caller with the whole list
 * in hand first surveys it (16 pages spread over its bytes): all mapped,
 * nothing is done; none mapped, everything is populated without asking;
 * a mix, each chunk is asked as above. */
#include "wksp/wksp_private.h"
#include "shmem/shmem_private.h"
#include "util/err.h"
#include "util/io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

enum { CHUNK_PAGES = 512, ASK_PAGES = 64, SURVEY_PAGES = 16 };
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

void wksp_private_prefault_open(wksp_prefault_t *pf) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  pf->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
#else
  pf->pagemap = -1;
#endif
  pf->mode = WKSP_PREFAULT_ASK;
}

void wksp_private_prefault_close(wksp_prefault_t *pf) {
  if (pf->pagemap >= 0) close(pf->pagemap);
  pf->pagemap = -1;
}

void wksp_private_prefault_survey(wksp_prefault_t *pf, const wksp_t *w, const wksp_part_t *parts, uint64_t cnt) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  uint64_t total = 0, at = 0, k = 0, present = 0, asked = 0;
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (uint64_t i = 0; i < cnt; i++) total += parts[i].gaddr_hi - parts[i].gaddr_lo;
  if (pf->pagemap < 0 || !total) return;
  /* sample j at byte (2j + 1) / 2S of the bytes, counted across the list */
  for (uint64_t j = 0; j < SURVEY_PAGES; j++) {
    uint64_t x = total / (2 * SURVEY_PAGES) * (2 * j + 1);
    while (x >= at + (parts[k].gaddr_hi - parts[k].gaddr_lo)) at += parts[k].gaddr_hi - parts[k].gaddr_lo, k++;
    present += page_present(pf->pagemap, (uintptr_t)w + parts[k].gaddr_lo + (x - at), pg);
    asked++;
  }
  pf->mode = present == asked ? WKSP_PREFAULT_SKIP : !present ? WKSP_PREFAULT_ALL : WKSP_PREFAULT_ASK;
#else
  (void)pf, (void)w, (void)parts, (void)cnt;
#endif
}

int wksp_private_prefault(const wksp_t *w, uint64_t gaddr_lo, uint64_t gaddr_hi, int write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  wksp_prefault_t pf;
  wksp_private_prefault_open(&pf);
  int ok = range_prefault(w, pf.pagemap, gaddr_lo, gaddr_hi, write);
  wksp_private_prefault_close(&pf);
  return ok;
#else
  (void)w, (void)gaddr_lo, (void)gaddr_hi, (void)write;
  return 0;
#endif
}

void wksp_private_prefault_parts_with(const wksp_t *w, const wksp_prefault_t *pf, const wksp_part_t *parts,
                                      uint64_t cnt, int write) {
#if defined(MADV_POPULATE_READ) && defined(MADV_POPULATE_WRITE)
  if (pf->mode == WKSP_PREFAULT_SKIP) return;
  int pagemap = pf->mode == WKSP_PREFAULT_ALL ? -1 : pf->pagemap; /* -1: nothing asked, all populated */
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
  (void)w, (void)pf, (void)parts, (void)cnt, (void)write;
#endif
}

void wksp_private_prefault_parts(const wksp_t *w, const wksp_part_t *parts, uint64_t cnt, int write) {
  wksp_prefault_t pf;
  wksp_private_prefault_open(&pf);
  wksp_private_prefault_survey(&pf, w, parts, cnt);
  wksp_private_prefault_parts_with(w, &pf, parts, cnt, write);
  wksp_private_prefault_close(&pf);
}

/* ---- the route: the mapping or the file ---------------------------------- */

int wksp_private_bytes_route_force;

int wksp_private_bytes_route_with(const wksp_t *w, const wksp_prefault_t *pf, int file_ok, int *fd, uint64_t *off0) {
  int force = wksp_private_bytes_route_force;
  *fd = -1;
  return file_ok && force >= 0 && (force > 0 || pf->mode != WKSP_PREFAULT_SKIP) &&
         wksp_private_shmem_file(w, fd, off0) == WKSP_SUCCESS;
}

int wksp_private_bytes_route(const wksp_t *w, const wksp_part_t *parts, uint64_t cnt, int write, int file_ok, int *fd,
                             uint64_t *off0) {
  wksp_prefault_t pf;
  wksp_private_prefault_open(&pf);
  wksp_private_prefault_survey(&pf, w, parts, cnt);
  int file = wksp_private_bytes_route_with(w, &pf, file_ok, fd, off0);
  if (!file) wksp_private_prefault_parts_with(w, &pf, parts, cnt, write);
  wksp_private_prefault_close(&pf);
  return file;
}

int wksp_private_region_get(int fd, uint64_t off, void *b, uint64_t n) {
  long got = wksp_private_pread_full(fd, b, n, off);
  if (got == (long)n) return WKSP_SUCCESS;
  return wksp_err(WKSP_ERR_FAIL, got < 0 ? errno : EIO,
                  "reading %" PRIu64 " bytes of the workspace's file at offset %" PRIu64, n, off);
}

int wksp_private_region_put(int fd, uint64_t off, const void *b, uint64_t n) {
  if (!wksp_private_pwrite_full(fd, b, n, off)) return WKSP_SUCCESS;
  return wksp_err(WKSP_ERR_FAIL, errno, "writing %" PRIu64 " bytes into the workspace's file at offset %" PRIu64, n,
                  off);
}
