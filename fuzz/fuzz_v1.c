/* libFuzzer target: the legacy v1 reader in isolation.  Every input is
 * made a v1 checkpoint by prefixing the v1 magic and style (SVW-encoded,
 * 10 bytes), so all the fuzzing effort goes into the v1 stream after them:
 * the remaining header integers, the nine strings, the allocation records
 * and the terminator (docs/FORMAT.md 5).
 *
 * Each input goes through wksp_preview_mem, wksp_checkpt_info,
 * wksp_checkpt_print (level 4) and wksp_restore_fd on a memfd (file
 * path) and, for one small input in 4 (by fuzz_hash), through a pipe.  A v1
 * pipe is always spooled to a temporary file and then restored by the very
 * code of the file path (only the seed and the starting state differ), so
 * running it for every input would double that cost for the spool alone.
 *
 * Checked beyond memory safety: the target verifies after every restore;
 * a successful restore gives exactly the allocations wksp_checkpt_info
 * lists (info must then succeed too); a failed one leaves the target as it
 * was, or empty with a message saying it was reset. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wksp/checkpt.h"
#include "wksp/wksp.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The v1 target's shape is that of the seed files' source (fuzz/corpus/v1). */
enum { PART_MAX = 64, DATA_MAX = 1 << 20, LIST_MAX = 256 };

/* SVW(magic 0xF17EDA2C3731C591) then SVW(1) (docs/FORMAT.md 5.1). */
static const uint8_t prefix[10] = {0x1f, 0x59, 0x1c, 0x73, 0xc3, 0xa2, 0xed, 0x17, 0xff, 0x02};

/* The allocations of w and a hash of their bytes. */
typedef struct {
  wksp_part_t p[LIST_MAX];
  size_t n;
  uint64_t hash;
} state_t;

static void state_get(wksp_t *w, state_t *s) {
  wksp_part_t all[2 * PART_MAX + 2];
  size_t n = 0;
  if (wksp_part_list(w, all, sizeof all / sizeof all[0], &n)) abort();
  s->n = 0;
  s->hash = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) {
    if (!all[i].tag) continue;
    s->p[s->n++] = all[i];
    const uint8_t *b = wksp_laddr(w, all[i].gaddr_lo);
    for (uint64_t k = 0; k < all[i].gaddr_hi - all[i].gaddr_lo; k++) s->hash = (s->hash ^ b[k]) * 1099511628211ull;
  }
}

static int state_eq(const state_t *a, const state_t *b) {
  return a->n == b->n && a->hash == b->hash && !memcmp(a->p, b->p, a->n * sizeof a->p[0]);
}

/* Checks the outcome of one restore against the state before and the
 * info listing. */
static void check(wksp_t *w, int rc, const state_t *before, const wksp_checkpt_info_t *info, int info_rc) {
  if (wksp_verify(w)) abort();
  state_t after;
  state_get(w, &after);
  if (!rc) {
    if (info_rc || info->alloc_cnt != after.n) abort();
    for (size_t i = 0; i < after.n; i++)
      if (memcmp(&info->parts[i], &after.p[i], sizeof after.p[i])) abort();
  } else if (!state_eq(before, &after)) {
    if (after.n || !strstr(wksp_errmsg(), "(target reset to empty)")) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wksp_t *w = fuzz_target("fuzzv1", PART_MAX, DATA_MAX);
  uint8_t *whole = malloc(size + sizeof prefix);
  if (!whole) abort();
  memcpy(whole, prefix, sizeof prefix);
  memcpy(whole + sizeof prefix, data, size);
  wksp_preview_t pv;
  if (!wksp_preview_mem(whole, size + sizeof prefix, &pv) && pv.style != 1) abort();

  int fd = fuzz_mem_fd(prefix, sizeof prefix, data, size);
  wksp_checkpt_info_t info;
  int info_rc = wksp_checkpt_info_fd(fd, NULL, &info);
  lseek(fd, 0, SEEK_SET);
  wksp_checkpt_print_fd(fuzz_null_fd(), fd, "fuzz-v1", 4);

  state_t before;
  state_get(w, &before);
  lseek(fd, 0, SEEK_SET);
  int rc = wksp_restore_fd(w, fd, "fuzz-v1", &(wksp_restore_opts_t){.seed = 2, .threads = 1});
  check(w, rc, &before, &info, info_rc);

  int p[2];
  if ((fuzz_hash(data, size) & 3) == 0 && size + sizeof prefix <= 60000 && !pipe(p)) {
    if (write(p[1], whole, size + sizeof prefix) != (ssize_t)(size + sizeof prefix)) abort();
    close(p[1]);
    state_get(w, &before);
    rc = wksp_restore_fd(w, p[0], "fuzz-v1-pipe", &(wksp_restore_opts_t){.seed = 3});
    close(p[0]);
    check(w, rc, &before, &info, info_rc);
  }
  if (!info_rc) wksp_checkpt_info_free(&info);
  free(whole);
  return 0;
}
