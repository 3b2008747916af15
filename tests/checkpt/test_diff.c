/* Comparing checkpoints with workspaces (wksp_checkpt_diff) and the verify
 * option of wksp_checkpt: identical states, every kind of difference, the
 * reference vectors, pipes, and torn snapshots caught before publishing. */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../../src/checkpt/checkpt_private.h"
#include "../../src/wksp/wksp_private.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_HAS_TSAN 1
#endif
#endif
#ifndef TEST_HAS_TSAN
#define TEST_HAS_TSAN 0
#endif


/* The layer's test seam (checkpt_private.h): at CHECKPT_HOOK_VERIFY. */
static void (*g_verify)(wksp_t *w);

static int test_hook(int point, const checkpt_hook_t *h) {
  if (point == CHECKPT_HOOK_VERIFY && g_verify) g_verify(h->w);
  return 0;
}

static char dir[256], path[512];

static void mkdir_tmp(void) {
  snprintf(dir, sizeof dir, "/tmp/wksp-test-diff.XXXXXX");
  if (!mkdtemp(dir)) abort();
  snprintf(path, sizeof path, "%s/d.ckpt", dir);
}

static int path_exists(void) {
  struct stat st;
  return !stat(path, &st);
}

static int checkpt_to_path(wksp_t *w, int style, uint32_t threads, int verify) {
  unlink(path);
  wksp_checkpt_opts_t o = {.style = style, .threads = threads, .verify = verify};
  return wksp_checkpt(w, path, &o);
}

/* A filled workspace and its checkpoint at path. */
static wksp_t *filled(int style, uint64_t seed) {
  wksp_t *w = ws_new("diff", 1, 1024, 8 << 20);
  if (!w) return NULL;
  uint64_t rng = seed;
  ws_fill(w, 300, 60000, 1, &rng);
  if (checkpt_to_path(w, style, 2, 0)) {
    fprintf(stderr, "checkpt: %s\n", wksp_errmsg());
    ws_free(w);
    return NULL;
  }
  return w;
}

static void test_diff_identical(void) {
  for (int style = 2; style <= 3; style++) {
    wksp_t *w = filled(style, 7);
    CHECK(w);
    uint64_t cnt = 0;
    free(ws_allocs(w, &cnt));
    CHECK(cnt > 100);
    for (uint32_t t = 1; t <= 4; t *= 2) {
      wksp_checkpt_diff_t d;
      CHECK_OK(wksp_checkpt_diff(w, path, &(wksp_diff_opts_t){.threads = t}, &d));
      CHECK_EQ(d.same, cnt);
      CHECK_EQ(d.bytes + d.tag + d.only_ckpt + d.only_wksp, 0);
      CHECK_EQ(d.first_kind, WKSP_DIFF_NONE);
    }
    /* Read from a pipe (spooled). */
    size_t sz;
    uint8_t *b = (uint8_t *)vec_slurp(path, &sz);
    CHECK(b);
    int p[2];
    CHECK(!pipe(p));
    pump_t pu = {.fd = p[1], .b = b, .sz = sz};
    pthread_t th;
    CHECK(!pthread_create(&th, NULL, pump_main, &pu));
    wksp_checkpt_diff_t d;
    int rc = wksp_checkpt_diff_fd(w, p[0], NULL, &(wksp_diff_opts_t){.threads = 2}, &d);
    close(p[0]);
    pthread_join(th, NULL);
    free(b);
    CHECK_OK(rc);
    CHECK_EQ(d.same, cnt);
    CHECK_EQ(d.first_kind, WKSP_DIFF_NONE);
    ws_free(w);
  }
}

/* A fresh copy of the checkpoint at path, to change and compare. */
static wksp_t *copy_of_path(void) {
  wksp_t *d = ws_new("copy", 1, 1024, 8 << 20);
  if (d && wksp_restore(d, path, &(wksp_restore_opts_t){.seed = 1, .threads = 2})) {
    fprintf(stderr, "restore: %s\n", wksp_errmsg());
    ws_free(d);
    return NULL;
  }
  return d;
}

typedef struct {
  int n, kind[4];
  uint64_t lo[4], off[4];
} seen_t;

static void note_each(int kind, const wksp_part_t *c, const wksp_part_t *w, uint64_t off,
                      void *ctx) {
  seen_t *s = ctx;
  if (s->n < 4) {
    s->kind[s->n] = kind;
    s->lo[s->n] = c->gaddr_lo ? c->gaddr_lo : w->gaddr_lo;
    s->off[s->n] = off;
  }
  s->n++;
}

static void test_diff_each_kind(void) {
  for (int style = 2; style <= 3; style++) {
    wksp_t *w = filled(style, 11);
    CHECK(w);
    uint64_t cnt = 0;
    wksp_part_t *a = ws_allocs(w, &cnt);
    CHECK(a && cnt > 100);
    wksp_checkpt_diff_t d;

    /* bytes: one byte of one allocation */
    wksp_t *c = copy_of_path();
    CHECK(c);
    const wksp_part_t *x = &a[cnt / 2];
    uint64_t off = (x->gaddr_hi - x->gaddr_lo) / 3;
    ((uint8_t *)wksp_laddr(c, x->gaddr_lo))[off] ^= 0x20;
    CHECK_OK(wksp_checkpt_diff(c, path, &(wksp_diff_opts_t){.threads = 3}, &d));
    CHECK_EQ(d.bytes, 1);
    CHECK_EQ(d.same, cnt - 1);
    CHECK_EQ(d.first_kind, WKSP_DIFF_BYTES);
    CHECK_EQ(d.first_ckpt.gaddr_lo, x->gaddr_lo);
    CHECK_EQ(d.first_wksp.gaddr_hi, x->gaddr_hi);
    CHECK_EQ(d.first_off, off);

    /* only in the checkpoint: a freed allocation, lower than the changed
     * one; the callback hears of both, in address order */
    CHECK_OK(wksp_free(c, a[3].gaddr_lo));
    seen_t seen = {0};
    CHECK_OK(wksp_checkpt_diff(c, path, &(wksp_diff_opts_t){.threads = 1, .each = note_each, .each_ctx = &seen}, &d));
    CHECK_EQ(d.only_ckpt, 1);
    CHECK_EQ(d.bytes, 1);
    CHECK_EQ(d.only_wksp + d.tag, 0);
    CHECK_EQ(d.first_kind, WKSP_DIFF_ONLY_CKPT);
    CHECK_EQ(d.first_ckpt.gaddr_lo, a[3].gaddr_lo);
    CHECK_EQ(d.first_wksp.gaddr_lo, 0);
    CHECK_EQ(seen.n, 2);
    CHECK_EQ(seen.kind[0], WKSP_DIFF_ONLY_CKPT);
    CHECK_EQ(seen.lo[0], a[3].gaddr_lo);
    CHECK_EQ(seen.kind[1], WKSP_DIFF_BYTES);
    CHECK_EQ(seen.lo[1], x->gaddr_lo);
    CHECK_EQ(seen.off[1], off);
    ws_free(c);

    /* only in the workspace: a new allocation */
    c = copy_of_path();
    CHECK(c);
    uint64_t g = 0;
    CHECK_OK(wksp_alloc(c, 0, 5000, 77, &g));
    CHECK_OK(wksp_checkpt_diff(c, path, &(wksp_diff_opts_t){.threads = 2}, &d));
    CHECK_EQ(d.only_wksp, 1);
    CHECK_EQ(d.same, cnt);
    CHECK_EQ(d.first_kind, WKSP_DIFF_ONLY_WKSP);
    CHECK(d.first_wksp.gaddr_lo <= g && g < d.first_wksp.gaddr_hi);
    CHECK_EQ(d.first_wksp.tag, 77);
    ws_free(c);

    /* tag: one allocation retagged in place (the bytes are then not compared) */
    c = copy_of_path();
    CHECK(c);
    wksp_part_t *t = calloc(cnt, sizeof *t);
    CHECK(t);
    memcpy(t, a, cnt * sizeof *t);
    t[5].tag = t[5].tag == 9 ? 10 : 9;
    CHECK_OK(wksp_private_lock(c));
    int rc = wksp_private_replace(c, t, cnt, 1);
    wksp_private_unlock(c);
    CHECK_OK(rc);
    CHECK_OK(wksp_checkpt_diff(c, path, &(wksp_diff_opts_t){.threads = 2}, &d));
    CHECK_EQ(d.tag, 1);
    CHECK_EQ(d.same, cnt - 1);
    CHECK_EQ(d.first_kind, WKSP_DIFF_TAG);
    CHECK_EQ(d.first_ckpt.tag, a[5].tag);
    CHECK_EQ(d.first_wksp.tag, t[5].tag);
    free(t);
    ws_free(c);
    free(a);
    ws_free(w);
  }
}

static void test_diff_vectors(void) {
  for (size_t i = 0; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    wksp_t *w = ws_new("target", 5, v.part_max, v.data_max);
    CHECK(w);
    CHECK_OK(wksp_restore(w, v.ckpt, &(wksp_restore_opts_t){.seed = 3}));
    wksp_checkpt_diff_t d;
    CHECK_OK(wksp_checkpt_diff(w, v.ckpt, &(wksp_diff_opts_t){.threads = 2}, &d));
    CHECK_EQ(d.first_kind, WKSP_DIFF_NONE);
    CHECK_EQ(d.same, v.alloc_cnt);
    ws_free(w);
  }
}

static void test_diff_bad_input(void) {
  wksp_checkpt_diff_t d;
  wksp_t *w = ws_new("diff", 1, 64, 1 << 20);
  CHECK(w);
  CHECK_ERR(wksp_checkpt_diff(NULL, path, &(wksp_diff_opts_t){.threads = 1}, &d), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_diff(w, path, &(wksp_diff_opts_t){.threads = 1}, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_diff(w, NULL, NULL, &d), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_diff_fd(w, -1, NULL, NULL, &d), WKSP_ERR_INVAL);
  char missing[600];
  snprintf(missing, sizeof missing, "%s/missing.ckpt", dir);
  CHECK_ERR(wksp_checkpt_diff(w, missing, &(wksp_diff_opts_t){.threads = 1}, &d), WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "missing.ckpt"));
  /* a truncated checkpoint: CORRUPT, *out zeroed */
  wksp_t *f = filled(3, 5);
  CHECK(f);
  struct stat st;
  CHECK(!stat(path, &st));
  CHECK(!truncate(path, st.st_size - 100));
  d.same = 99;
  CHECK_ERR(wksp_checkpt_diff(f, path, &(wksp_diff_opts_t){.threads = 2}, &d), WKSP_ERR_CORRUPT);
  CHECK_EQ(d.same, 0);
  ws_free(f);
  ws_free(w);
}

/* ---- verify ------------------------------------------------------------------------- */

static uint64_t g_flip_gaddr;

static void flip_hook(wksp_t *w) { ((uint8_t *)wksp_laddr(w, g_flip_gaddr))[1] ^= 1; }

static void test_verify_catches_change(void) {
  for (int style = 2; style <= 3; style++) {
    for (uint32_t t = 1; t <= 3; t += 2) {
      wksp_t *w = filled(style, 13);
      CHECK(w);
      CHECK_OK(checkpt_to_path(w, style, t, 1)); /* nothing changes: published */
      CHECK(path_exists());
      uint64_t cnt = 0;
      wksp_part_t *a = ws_allocs(w, &cnt);
      CHECK(a);
      g_flip_gaddr = a[cnt - 1].gaddr_lo;
      g_verify = flip_hook;
      int rc = checkpt_to_path(w, style, t, 1);
      g_verify = NULL;
      CHECK_ERR(rc, WKSP_ERR_AGAIN);
      CHECK(strstr(wksp_errmsg(), "changed while the checkpoint was written"));
      CHECK(strstr(wksp_errmsg(), "at byte 1"));
      CHECK(!path_exists());
      /* without verify the same change is published unnoticed */
      g_verify = flip_hook;
      rc = checkpt_to_path(w, style, t, 0);
      g_verify = NULL;
      CHECK_OK(rc);
      CHECK(path_exists());
      free(a);
      ws_free(w);
    }
  }
  /* fd targets cannot be read back */
  wksp_t *w = ws_new("diff", 1, 64, 1 << 20);
  CHECK(w);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK_ERR(wksp_checkpt_fd(w, fd, "x", &(wksp_checkpt_opts_t){.verify = 1}), WKSP_ERR_INVAL);
  close(fd);
  ws_free(w);
}

/* A process that does not map the workspace's bytes (the CLI) compares
 * them read from the region's file (wksp_private_bytes_route): a named
 * workspace whose data pages are PROT_NONE here (a read through the mapping
 * would crash the test) is checkpointed with verify, found equal to the
 * file, then found different at the byte the test changed; a change made
 * while the checkpoint is written (the hook opens the pages for the write
 * only) is caught by verify. */
static uintptr_t g_lo, g_hi;

static void prot(int on) { CHECK(!mprotect((void *)g_lo, g_hi - g_lo, on ? PROT_READ | PROT_WRITE : PROT_NONE)); }

static void flip_prot_hook(wksp_t *w) {
  prot(1);
  flip_hook(w);
  prot(0);
}

/* The region-file tests' workspace: named, in a directory of its own
 * (WKSP_SHMEM_DIR), its whole data pages in [g_lo, g_hi) for prot(), and
 * the file route forced until region_close. */
typedef struct {
  char shm[300];
  const char *name;
  wksp_t *w;
} region_t;

static void region_open(region_t *r, const char *name, uint64_t part_max, uint64_t data_max) {
  r->w = NULL; /* stays NULL when a step fails: the caller stops */
  snprintf(r->shm, sizeof r->shm, "%s/shm-%s", dir, name);
  CHECK(!mkdir(r->shm, 0700));
  setenv("WKSP_SHMEM_DIR", r->shm, 1);
  r->name = name;
  CHECK_OK(wksp_new_named_exact(name, part_max, data_max, WKSP_PAGE_NORMAL, 0600, 1));
  CHECK_OK(wksp_attach(name, 0, &r->w));
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
  g_lo = ((uintptr_t)wksp_laddr(r->w, wksp_gaddr_lo(r->w)) + pg - 1) & ~(pg - 1);
  g_hi = (uintptr_t)wksp_laddr(r->w, wksp_gaddr_hi(r->w)) & ~(pg - 1);
  wksp_private_bytes_route_force = 1;
}

static void region_close(region_t *r) {
  wksp_private_bytes_route_force = 0;
  wksp_detach(r->w);
  wksp_delete_named(r->name);
  unsetenv("WKSP_SHMEM_DIR");
  rmdir(r->shm);
}

static void test_region_file(void) {
  region_t r;
  region_open(&r, "rdiff", 1024, 8 << 20);
  wksp_t *w = r.w;
  if (!w) return;
  uint64_t rng = 17, cnt = 0;
  ws_fill(w, 300, 60000, 1, &rng);
  wksp_part_t *a = ws_allocs(w, &cnt);
  CHECK(a && cnt > 100);
  g_flip_gaddr = a[cnt - 1].gaddr_lo;
  for (int style = 2; style <= 3; style++)
    for (uint32_t t = 1; t <= 2; t++) {
      prot(0);
      int rc = checkpt_to_path(w, style, t, 1);
      wksp_checkpt_diff_t d;
      int rc2 = wksp_checkpt_diff(w, path, &(wksp_diff_opts_t){.threads = t}, &d);
      prot(1);
      CHECK_OK(rc);
      CHECK_OK(rc2);
      CHECK_EQ(d.same, cnt);
      CHECK_EQ(d.first_kind, WKSP_DIFF_NONE);
      flip_hook(w); /* one byte changed since the checkpoint */
      prot(0);
      rc = wksp_checkpt_diff(w, path, &(wksp_diff_opts_t){.threads = t}, &d);
      prot(1);
      flip_hook(w);
      CHECK_OK(rc);
      CHECK_EQ(d.bytes, 1);
      CHECK_EQ(d.first_kind, WKSP_DIFF_BYTES);
      CHECK_EQ(d.first_off, 1);
      CHECK_EQ(d.first_ckpt.gaddr_lo, g_flip_gaddr);
      g_verify = flip_prot_hook; /* changed while written: verify sees it in the file read back */
      prot(0);
      rc = checkpt_to_path(w, style, t, 1);
      prot(1);
      g_verify = NULL;
      flip_hook(w);
      CHECK_ERR(rc, WKSP_ERR_AGAIN);
      CHECK(strstr(wksp_errmsg(), "at byte 1"));
      CHECK(!path_exists());
    }
  free(a);
  region_close(&r);
}

/* The file route reads 1 MiB of an allocation at a time per thread: a
 * difference past the first window, in a window cut short by the
 * allocation's end, and in the last (partial) piece is found at its own
 * offset, for both styles and 1 and 2 threads (the data pages PROT_NONE
 * here, as above). */
static void test_region_file_windows(void) {
  region_t r;
  region_open(&r, "rwin", 64, 16 << 20);
  wksp_t *w = r.w;
  if (!w) return;
  uint64_t sz = (5u << 19) + 777, g[3], rng = 5; /* 2.5 MiB + 777: three windows, the last short */
  for (int k = 0; k < 3; k++) {
    CHECK_OK(wksp_alloc(w, 4096, sz, 9 + (uint64_t)k, &g[k]));
    uint8_t *b = wksp_laddr(w, g[k]);
    for (uint64_t i = 0; i < sz; i++) b[i] = (uint8_t)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 56);
  }
  const uint64_t where[3] = {(1u << 20) + 3 * 65536 + 5, (2u << 20) + 100, sz - 1}; /* per allocation */
  for (int style = 2; style <= 3; style++)
    for (uint32_t t = 1; t <= 2; t++) {
      prot(0);
      int rc = checkpt_to_path(w, style, t, 1);
      prot(1);
      CHECK_OK(rc);
      for (int k = 0; k < 3; k++) { /* each change undone before the next */
        uint8_t *b = wksp_laddr(w, g[k]);
        b[where[k]] ^= 0x40;
        wksp_checkpt_diff_t d;
        prot(0);
        rc = wksp_checkpt_diff(w, path, &(wksp_diff_opts_t){.threads = t}, &d);
        prot(1);
        b[where[k]] ^= 0x40;
        CHECK_OK(rc);
        CHECK_EQ(d.same, 2);
        CHECK_EQ(d.bytes, 1);
        CHECK_EQ(d.first_ckpt.gaddr_lo, g[k]);
        CHECK_EQ(d.first_off, where[k]);
      }
    }
  region_close(&r);
}

/* An application thread keeps two far-apart words equal: it writes v to the
 * first, then v to the second, v = 1, 2, ...  At every moment first ==
 * second or first == second + 1.  A checkpoint that captures them at
 * different moments can hold any pair; one published with verify holds a
 * pair that existed. */
typedef struct {
  volatile uint64_t *first, *second;
  atomic_int stop;
} app_t;

static void *app_main(void *arg) {
  app_t *a = arg;
  for (uint64_t v = 1; !atomic_load_explicit(&a->stop, memory_order_relaxed); v++) {
    *a->first = v;
    atomic_thread_fence(memory_order_release); /* first is visible before second */
    *a->second = v;
  }
  return NULL;
}

static void test_verify_torn_snapshots(void) {
  wksp_t *w = ws_new("torn", 1, 256, 24 << 20);
  CHECK(w);
  uint64_t rng = 3;
  ws_fill(w, 40, 400000, 1, &rng);
  uint64_t g1 = 0, g2 = 0;
  CHECK_OK(wksp_alloc(w, 0, 4 << 20, 5, &g1));
  CHECK_OK(wksp_alloc(w, 0, 4 << 20, 6, &g2));
  app_t app = {.first = wksp_laddr(w, g1), .second = wksp_laddr(w, g2 + (4 << 20) - 8)};
  atomic_init(&app.stop, 0);
  pthread_t th;
  CHECK(!pthread_create(&th, NULL, app_main, &app));
  int again = 0, ok = 0, bad_pairs = 0;
  for (int k = 0; k < 40 && (!again || ok < 3); k++) {
    int rc = checkpt_to_path(w, 3, 2, 1);
    if (rc == WKSP_ERR_AGAIN) {
      again++;
      continue;
    }
    CHECK_OK(rc);
    ok++;
    wksp_t *c = ws_new("torn", 1, 256, 24 << 20);
    CHECK(c);
    CHECK_OK(wksp_restore(c, path, NULL));
    uint64_t f = *(uint64_t *)wksp_laddr(c, g1), s = *(uint64_t *)wksp_laddr(c, g2 + (4 << 20) - 8);
    bad_pairs += !(f == s || f == s + 1);
    ws_free(c);
  }
  atomic_store(&app.stop, 1);
  pthread_join(th, NULL);
  fprintf(stderr, "verify with a writing application: %d refused (AGAIN), %d published, %d torn\n",
          again, ok, bad_pairs);
  CHECK_EQ(bad_pairs, 0);
  CHECK(again > 0);
  ws_free(w);
}

int main(void) {
  wksp_private_checkpt_test_hook = test_hook;
  signal(SIGPIPE, SIG_IGN); /* restores that stop early close their pipe */
  mkdir_tmp();
  TEST_RUN(test_diff_identical);
  TEST_RUN(test_diff_each_kind);
  TEST_RUN(test_diff_vectors);
  TEST_RUN(test_diff_bad_input);
  TEST_RUN(test_verify_catches_change);
  TEST_RUN(test_region_file);
  TEST_RUN(test_region_file_windows);
  /* The application thread there races with the checkpoint on purpose:
   * ThreadSanitizer runs (scripts/tsan.sh) leave it out. */
#if !defined(__SANITIZE_THREAD__) && !TEST_HAS_TSAN
  TEST_RUN(test_verify_torn_snapshots);
#endif
  unlink(path);
  rmdir(dir);
  return test_done();
}
