/* Restore from pipes (src/checkpt/stream.c): a large pipe spooled for
 * verify_first, the pipelined reader with frames of every size. */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../lib/ckpt_test.h"
#include "../../src/checkpt/checkpt_private.h"
#include "../../src/wksp/wksp_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char dir[256]; /* scratch directory */

/* A pipe spooled to a temporary file (verify_first) with several MiB of
 * incompressible data: the spool buffer grows from 64 KiB to 1 MiB on the
 * way, and every byte must still come out right. */
static void test_spool_large_pipe(void) {
  uint64_t rng = test_seed() + 5;
  wksp_t *src = ws_new("src", 1, 256, 8 << 20);
  CHECK(src);
  ws_fill(src, 40, 300000, 0, &rng);
  wksp_t *dst = ws_new("dst", 9, 256, 8 << 20);
  CHECK(dst);
  int crc;
  wksp_restore_opts_t ro = {.seed = 5, .verify_first = 1};
  CHECK_OK(ws_pipe_copy(src, &(wksp_checkpt_opts_t){.style = 2}, dst, &ro, &crc));
  CHECK_OK(crc);
  CHECK_OK(wksp_verify(dst));
  CHECK(ws_same(src, dst));
  ws_free(dst);
  ws_free(src);
}


/* Pipes: a checkpoint written to a pipe by 3 threads restores identically. */
static void test_parallel_pipe(void) {
  uint64_t rng = 3;
  wksp_t *w = ws_new("par", 1, 2048, 8 << 20);
  CHECK(w);
  ws_fill(w, 500, 40000, 1, &rng);
  wksp_t *d = ws_new("dst", 1, 2048, 8 << 20);
  int crc;
  CHECK_OK(ws_pipe_copy(w, &(wksp_checkpt_opts_t){.style = 3, .threads = 3}, d, NULL, &crc));
  CHECK_OK(crc);
  CHECK(ws_same(w, d));
  ws_free(d);
  ws_free(w);
}

/* Pipes with frames larger than the pipelined reader's buffer limit
 * (lowered from 64 MiB to 64 KiB, and to 1 byte): those frames are decoded
 * as they are read; the result is the same for 1-3 threads, v2 and v3.  A
 * stream cut inside such a frame is CORRUPT with the target reset. */
static void pipe_big_frames(wksp_t *d) {
  uint64_t rng = 4;
  wksp_t *w = ws_new("par", 1, 2048, 16 << 20);
  CHECK(w);
  ws_fill(w, 400, 120000, 1, &rng);
  uint8_t a[32], c[32];
  ws_digest(w, a);
  uint64_t old = wksp_private_checkpt_tuning.pipe_frame_max;
  char p[512];
  snprintf(p, sizeof p, "%s/big.ckpt", dir);
  for (int style = 2; style <= 3; style++) {
    unlink(p);
    CHECK_OK(wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = style, .threads = 2}));
    size_t n = 0;
    uint8_t *b = (uint8_t *)vec_slurp(p, &n);
    CHECK(b);
    for (int k = 0; k < 4; k++) {
      wksp_private_checkpt_tuning.pipe_frame_max = k % 2 ? 1 : 65536;
      size_t len = k < 2 ? n : n / 2; /* k >= 2: cut inside a large frame */
      for (uint32_t t = 1; t <= 3; t++) {
        int rc = restore_piped(d, b, len, "pipe", &(wksp_restore_opts_t){.seed = 2, .threads = t});
        if (k < 2) {
          CHECK_OK(rc);
          ws_digest(d, c);
          CHECK(!memcmp(a, c, 32));
        } else {
          CHECK_ERR(rc, WKSP_ERR_CORRUPT);
          CHECK(strstr(wksp_errmsg(), "(target reset to empty)"));
          wksp_usage_t u;
          CHECK_OK(wksp_usage(d, NULL, 0, &u));
          CHECK_EQ(u.used_sz, 0);
        }
      }
    }
    free(b);
  }
  wksp_private_checkpt_tuning.pipe_frame_max = old;
  unlink(p);
  ws_free(w);
}

static void test_parallel_pipe_big_frames(void) {
  wksp_t *d = ws_new("dst", 1, 2048, 16 << 20);
  CHECK(d);
  pipe_big_frames(d);
  ws_free(d);
}

/* fn(d) with d a named workspace (in a private WKSP_SHMEM_DIR) whose bytes
 * go through its region file (what a CLI process does:
 * wksp_private_bytes_route, forced). */
static void with_named_dst(void (*fn)(wksp_t *d)) {
  char shm[300];
  snprintf(shm, sizeof shm, "%s-shm-XXXXXX", dir);
  CHECK(mkdtemp(shm));
  setenv("WKSP_SHMEM_DIR", shm, 1);
  wksp_t *d = NULL;
  CHECK_OK(wksp_new_named_exact("dst", 2048, 16 << 20, WKSP_PAGE_NORMAL, 0600, 1));
  CHECK_OK(wksp_attach("dst", 0, &d));
  wksp_private_bytes_route_force = 1;
  fn(d);
  wksp_private_bytes_route_force = 0;
  wksp_detach(d);
  wksp_delete_named("dst");
  unsetenv("WKSP_SHMEM_DIR");
  test_rmdir(shm);
}

/* The same into a named workspace through its region file, sequential and
 * pipelined. */
static void test_parallel_pipe_region_file(void) { with_named_dst(pipe_big_frames); }

/* Sealed checkpoints into a named workspace through its region file (what
 * a CLI process does): the digest is computed from the file read back, not
 * from the mapping (the target's data pages are PROT_NONE: a read or write
 * through the mapping would crash the test), from a file and from a pipe
 * (sequential and pipelined readers); a v2 file with one data byte flipped
 * (the format has no checksum, only the seal sees it) is CORRUPT and the
 * target reset. */
static void sealed_region_file(wksp_t *d) {
  uint64_t rng = 9;
  wksp_t *w = ws_new("par", 1, 2048, 16 << 20);
  CHECK(w);
  ws_fill(w, 300, 120000, 1, &rng);
  uint8_t a[32], c[32];
  ws_digest(w, a);
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = ((uintptr_t)wksp_laddr(d, wksp_gaddr_lo(d)) + pg - 1) & ~(pg - 1);
  uintptr_t hi = (uintptr_t)wksp_laddr(d, wksp_gaddr_hi(d)) & ~(pg - 1);
  char p[512], bad[520];
  snprintf(p, sizeof p, "%s/sealed.ckpt", dir);
  snprintf(bad, sizeof bad, "%s/sealed-bad.ckpt", dir);
  for (int style = 2; style <= 3; style++) {
    unlink(p);
    CHECK_OK(wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = style, .threads = 2, .verify = 1}));
    size_t n = 0;
    uint8_t *b = (uint8_t *)vec_slurp(p, &n);
    CHECK(b);
    for (int k = 0; k < 5; k++) {
      wksp_restore_opts_t o = {.seed = 2, .threads = 1 + (uint32_t)k % 3};
      CHECK(!mprotect((void *)lo, hi - lo, PROT_NONE));
      int rc = k < 2 ? wksp_restore(d, p, &o) : restore_piped(d, b, n, "pipe", &o);
      CHECK(!mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE));
      CHECK_OK(rc);
      ws_digest(d, c);
      CHECK(!memcmp(a, c, 32));
    }
    if (style == 2) { /* a byte of the first allocation's data, found in the file */
      wksp_part_t *parts = NULL;
      uint64_t cnt = 0;
      parts = ws_allocs(w, &cnt);
      CHECK(parts && cnt);
      uint8_t *at = memmem(b, n, wksp_laddr(w, parts[0].gaddr_lo), 64);
      CHECK(at);
      at[7] ^= 0x10;
      free(parts);
      FILE *f = fopen(bad, "wb");
      CHECK(f && fwrite(b, 1, n, f) == n);
      fclose(f);
      for (int k = 0; k < 2; k++) {
        wksp_restore_opts_t o = {.seed = 2, .threads = 2};
        CHECK(!mprotect((void *)lo, hi - lo, PROT_NONE));
        int rc = k ? restore_piped(d, b, n, "pipe", &o) : wksp_restore(d, bad, &o);
        CHECK(!mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE));
        CHECK_ERR(rc, WKSP_ERR_CORRUPT);
        CHECK(strstr(wksp_errmsg(), "digest"));
        CHECK(strstr(wksp_errmsg(), "(target reset to empty)"));
        wksp_usage_t u;
        CHECK_OK(wksp_usage(d, NULL, 0, &u));
        CHECK_EQ(u.used_sz, 0);
      }
      unlink(bad);
    }
    free(b);
  }
  unlink(p);
  ws_free(w);
}

static void test_sealed_region_file(void) { with_named_dst(sealed_region_file); }

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* readers that stop early close their pipe */
  ckpt_test_dir(dir, sizeof dir);
  TEST_RUN(test_spool_large_pipe);
  TEST_RUN(test_parallel_pipe);
  TEST_RUN(test_parallel_pipe_big_frames);
  TEST_RUN(test_parallel_pipe_region_file);
  TEST_RUN(test_sealed_region_file);
  test_rmdir(dir);
  return test_done();
}
