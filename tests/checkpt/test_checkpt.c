/* Checkpoint / restore: round trips, reference vectors, byte identity,
 * publication (EXIST, overwrite, mode, SIGKILL), writer validation. */
#include "ws.h"
#include "vec.h"
#include "../../src/checkpt/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char dir[256];

static void mkdir_tmp(void) {
  snprintf(dir, sizeof dir, "/tmp/wksp-test-checkpt.XXXXXX");
  if (!mkdtemp(dir)) abort();
}

static void rm_dir(const char *d) {
  DIR *h = opendir(d);
  struct dirent *e;
  char p[512];
  while (h && (e = readdir(h)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", d, e->d_name);
      unlink(p);
    }
  if (h) closedir(h);
}

/* Entries in dir other than . and .. */
static int dir_count(void) {
  DIR *h = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (h && (e = readdir(h))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  if (h) closedir(h);
  return n;
}

/* ---- round trips ------------------------------------------------------------------------- */

typedef struct {
  wksp_t *w;
  int fd;
  wksp_checkpt_opts_t o;
  int rc;
} writer_t;

static void *writer_main(void *arg) {
  writer_t *x = arg;
  x->rc = wksp_checkpt_fd(x->w, x->fd, "pipe", &x->o);
  close(x->fd);
  return NULL;
}

/* Restores src's checkpoint into a fresh workspace (holding unrelated
 * allocations) through a file and through a pipe written concurrently, with
 * 1, 2 and 4 threads; every result must equal src. */
static void roundtrip(uint64_t part_max, uint64_t data_max, uint64_t n, uint64_t max_sz) {
  uint64_t rng = test_seed() + n;
  wksp_t *src = ws_new("src", 1, part_max, data_max);
  CHECK(src);
  ws_fill(src, n, max_sz, (int)(n & 1), &rng);
  uint64_t cnt = 0;
  free(ws_allocs(src, &cnt));
  if (n) CHECK(cnt > 0);
  uint8_t want[32], got[32];
  ws_digest(src, want);
  for (int style = 2; style <= 3; style++) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt-%d.ckpt", dir, style);
    wksp_checkpt_opts_t o = {.style = style, .uinfo = "round trip"};
    CHECK_OK(wksp_checkpt(src, path, &o));
    wksp_checkpt_info_t I;
    CHECK_OK(wksp_checkpt_info(path, -1, &I));
    CHECK_EQ(I.alloc_cnt, cnt);
    CHECK_EQ(I.cgroup_cnt, ckpt_cgroup_cnt(cnt));
    CHECK_EQ(I.pv.frame_style, style == 2 ? 1 : 2);
    wksp_checkpt_info_free(&I);
    for (uint32_t t = 1; t <= 4; t *= 2) {
      for (int pipe_mode = 0; pipe_mode < 2; pipe_mode++) {
        wksp_t *dst = ws_new("dst", 9, part_max, data_max);
        CHECK(dst);
        uint64_t r2 = rng ^ t;
        ws_fill(dst, 20, 5000, 0, &r2);
        wksp_restore_opts_t ro = {.seed = 77 + t, .threads = t};
        if (!pipe_mode) {
          CHECK_OK(wksp_restore(dst, path, &ro));
        } else {
          int pfd[2];
          CHECK(!pipe(pfd));
          writer_t x = {.w = src, .fd = pfd[1], .o = o};
          pthread_t th;
          CHECK(!pthread_create(&th, NULL, writer_main, &x));
          int rc = wksp_restore_fd(dst, pfd[0], "pipe", &ro);
          close(pfd[0]);
          pthread_join(th, NULL);
          CHECK_OK(x.rc);
          CHECK_OK(rc);
        }
        CHECK_OK(wksp_verify(dst));
        CHECK_EQ(wksp_seed(dst), 77 + t);
        ws_digest(dst, got);
        CHECK(!memcmp(want, got, 32));
        ws_free(dst);
      }
    }
    unlink(path);
  }
  ws_free(src);
}

static void test_roundtrip_empty(void) { roundtrip(64, 1 << 20, 0, 1); }
static void test_roundtrip_one(void) { roundtrip(64, 1 << 20, 1, 200000); }
static void test_roundtrip_hundreds(void) { roundtrip(2048, 8 << 20, 400, 40000); }
/* Above the 1024-cgroup cap: 40000+ allocations, small in bytes. */
static void test_roundtrip_cap(void) { roundtrip(131072, 8 << 20, 62000, 48); }

/* ---- reference vectors --------------------------------------------------------------------- */

/* Exactly the manifest's partitions with their hashes, nothing else. */
static int check_manifest(wksp_t *w, const vec_t *v) {
  uint64_t n = 0;
  wksp_part_t *p = ws_allocs(w, &n);
  int ok = p && n == v->alloc_cnt && !wksp_verify(w);
  for (uint64_t k = 0; ok && k < n; k++) {
    char hex[65];
    sha256_hex(wksp_laddr(w, p[k].gaddr_lo), p[k].gaddr_hi - p[k].gaddr_lo, hex);
    ok = p[k].tag == v->part[k].tag && p[k].gaddr_lo == v->part[k].lo &&
         p[k].gaddr_hi == v->part[k].hi && !strcmp(hex, v->part[k].sha);
    if (!ok) fprintf(stderr, "%s: partition %llu differs\n", v->name, (unsigned long long)k);
  }
  free(p);
  return ok;
}

static void test_vectors_restore(void) {
  for (size_t i = 0; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    /* Same geometry, smaller part_max (shifted data region), larger data. */
    uint64_t P2 = v.part_max / 2, D2 = v.data_max + 64 * (v.part_max - P2);
    uint64_t geo[3][2] = {{v.part_max, v.data_max}, {P2, D2}, {v.part_max, 2 * v.data_max}};
    for (int g = 0; g < 3; g++) {
      for (uint32_t t = 1; t <= 2; t++) {
        wksp_t *w = ws_new("target", 5, geo[g][0], geo[g][1]);
        CHECK(w);
        uint64_t rng = 42 + i;
        ws_fill(w, 10, 3000, 1, &rng);
        wksp_restore_opts_t ro = {.seed = 3, .threads = t};
        CHECK_OK(wksp_restore(w, v.ckpt, &ro));
        CHECK(check_manifest(w, &v));
        ws_free(w);
      }
    }
    /* Through a pipe (the stream path for v2, spooled for v1). */
    wksp_t *w = ws_new("target", 5, v.part_max, v.data_max);
    size_t sz;
    uint8_t *b = (uint8_t *)vec_slurp(v.ckpt, &sz);
    int pfd[2];
    CHECK(b && !pipe(pfd));
    pump_t pm = {.fd = pfd[1], .b = b, .sz = sz};
    pthread_t th;
    CHECK(!pthread_create(&th, NULL, pump_main, &pm));
    wksp_restore_opts_t ro = {.seed = 3};
    int rc = wksp_restore_fd(w, pfd[0], v.name, &ro);
    close(pfd[0]);
    pthread_join(th, NULL);
    CHECK_OK(rc);
    CHECK(check_manifest(w, &v));
    ws_free(w);
    free(b);
  }
}

/* A target whose data region misses the lowest addresses: FULL naming a
 * geometry that works, target untouched. */
static void test_vectors_target_too_small(void) {
  vec_t v;
  CHECK(!vec_load(&v, 5)); /* v3-text */
  wksp_t *w = ws_new("target", 5, 2 * v.part_max, v.data_max);
  CHECK(w);
  uint64_t rng = 1;
  ws_fill(w, 10, 3000, 1, &rng);
  uint8_t before[32], after[32];
  ws_digest(w, before);
  CHECK_ERR(wksp_restore(w, v.ckpt, NULL), WKSP_ERR_FULL);
  CHECK(strstr(wksp_errmsg(), "part_max <="));
  ws_digest(w, after);
  CHECK(!memcmp(before, after, 32));
  /* Through a pipe too (spooled because the source region does not fit). */
  size_t sz;
  uint8_t *b = (uint8_t *)vec_slurp(v.ckpt, &sz);
  int pfd[2];
  CHECK(b && !pipe(pfd));
  pump_t pm = {.fd = pfd[1], .b = b, .sz = sz};
  pthread_t th;
  CHECK(!pthread_create(&th, NULL, pump_main, &pm));
  int rc = wksp_restore_fd(w, pfd[0], "pipe", NULL);
  close(pfd[0]);
  pthread_join(th, NULL);
  CHECK_ERR(rc, WKSP_ERR_FULL);
  ws_digest(w, after);
  CHECK(!memcmp(before, after, 32));
  free(b);
  /* Too few partition records for the allocations: FULL. */
  wksp_t *w2 = ws_new("tiny", 5, 8, v.data_max + 64 * (v.part_max - 8));
  CHECK(w2);
  CHECK_ERR(wksp_restore(w2, v.ckpt, NULL), WKSP_ERR_FULL);
  ws_free(w2);
  ws_free(w);
}

/* v1 fix of FORMAT.md 5.3: a first allocation that does not fit is an
 * error (the reference returned success without restoring). */
static void test_v1_first_alloc_not_fitting(void) {
  vec_t v;
  CHECK(!vec_load(&v, 0));
  wksp_t *w = ws_new("target", 5, v.part_max * 4, v.data_max);
  CHECK(w);
  CHECK_ERR(wksp_restore(w, v.ckpt, NULL), WKSP_ERR_FULL);
  uint64_t n = 0;
  free(ws_allocs(w, &n));
  CHECK_EQ(n, 0);
  ws_free(w);
}

/* ---- byte identity --------------------------------------------------------------------------- */

static void test_byte_identity(void) {
  for (size_t i = 1; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    wksp_t *w = ws_new(v.wname, (uint32_t)v.seed, v.part_max, v.data_max);
    CHECK(w);
    wksp_restore_opts_t ro = {.seed = (uint32_t)v.seed};
    CHECK_OK(wksp_restore(w, v.ckpt, &ro));
    char path[512];
    snprintf(path, sizeof path, "%s/%s.ckpt", dir, v.name);
    wksp_checkpt_opts_t o = {.style = v.fsc == 1 ? 2 : 3, .mode = 0644, .uinfo = "again"};
    CHECK_OK(wksp_checkpt(w, path, &o));
    size_t asz = 0, bsz = 0;
    uint8_t *a = (uint8_t *)vec_slurp(v.ckpt, &asz), *b = (uint8_t *)vec_slurp(path, &bsz);
    CHECK(a && b);
    CHECK(!memcmp(a, b, CKPT_HDR_SZ));
    wksp_checkpt_info_t I;
    CHECK_OK(wksp_checkpt_info(path, -1, &I));
    CHECK_EQ(I.cgroup_cnt, v.cgroup_cnt);
    uint64_t delta = I.cgroup_cnt ? I.cgroups[0].off - v.cg_off[0] : 0;
    for (uint64_t g = 0; g < v.cgroup_cnt; g++) {
      uint64_t end = g + 1 < v.cgroup_cnt ? v.cg_off[g + 1] : v.appendix_off;
      CHECK_EQ(I.cgroups[g].off, v.cg_off[g] + delta);
      CHECK_EQ(I.cgroups[g].end - I.cgroups[g].off, end - v.cg_off[g]);
      CHECK(!memcmp(a + v.cg_off[g], b + I.cgroups[g].off, end - v.cg_off[g]));
    }
    ckpt_ftr_t fa, fb;
    ckpt_ftr_decode(&fa, a + asz - CKPT_FTR_SZ);
    ckpt_ftr_decode(&fb, b + bsz - CKPT_FTR_SZ);
    if (!v.cgroup_cnt) delta = bsz - asz;
    CHECK_EQ(bsz, asz + delta);
    CHECK_EQ(fb.frame_off, fa.frame_off + delta);
    CHECK_EQ(fb.checkpt_sz, fa.checkpt_sz + delta);
    fb.frame_off = fa.frame_off;
    fb.checkpt_sz = fa.checkpt_sz;
    uint8_t ea[CKPT_FTR_SZ], eb[CKPT_FTR_SZ];
    ckpt_ftr_encode(ea, &fa);
    ckpt_ftr_encode(eb, &fb);
    CHECK(!memcmp(ea, eb, CKPT_FTR_SZ));
    wksp_checkpt_info_free(&I);
    free(a);
    free(b);
    unlink(path);
    ws_free(w);
  }
}

/* ---- publication ------------------------------------------------------------------------------ */

static void test_publish_exist_overwrite_mode(void) {
  wksp_t *w = ws_new("pub", 1, 64, 1 << 20);
  CHECK(w);
  uint64_t rng = 5;
  ws_fill(w, 10, 1000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/pub.ckpt", dir);
  mode_t old = umask(077);
  wksp_checkpt_opts_t o = {.mode = 0644};
  CHECK_OK(wksp_checkpt(w, path, &o));
  CHECK_EQ(umask(077), 077); /* umask untouched */
  struct stat st;
  CHECK(!stat(path, &st));
  CHECK_EQ(st.st_mode & 07777, 0644);
  ino_t ino = st.st_ino;
  CHECK_ERR(wksp_checkpt(w, path, &o), WKSP_ERR_EXIST);
  CHECK(!stat(path, &st) && st.st_ino == ino);
  o.overwrite = 1;
  o.mode = 0400;
  CHECK_OK(wksp_checkpt(w, path, &o));
  CHECK(!stat(path, &st) && st.st_ino != ino);
  CHECK_EQ(st.st_mode & 07777, 0400);
  CHECK_EQ(dir_count(), 1);
  o.mode = 010000;
  CHECK_ERR(wksp_checkpt(w, path, &o), WKSP_ERR_INVAL);
  o.mode = 0;
  o.style = 1;
  CHECK_ERR(wksp_checkpt(w, path, &o), WKSP_ERR_INVAL);
  char bad[600];
  snprintf(bad, sizeof bad, "%s/nodir/x.ckpt", dir);
  CHECK_ERR(wksp_checkpt(w, bad, NULL), WKSP_ERR_FAIL);
  umask(old);
  unlink(path);
  CHECK_EQ(dir_count(), 0);
  ws_free(w);
}

/* An injected failure in the middle of writing leaves nothing behind. */
static int fail_at_2(uint64_t g) { return g == 2; }

static void test_publish_failure_leaves_nothing(void) {
  wksp_t *w = ws_new("pub", 1, 1024, 4 << 20);
  CHECK(w);
  uint64_t rng = 6;
  ws_fill(w, 300, 5000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/fail.ckpt", dir);
  ckpt_test_fail_hook = fail_at_2;
  int rc = wksp_checkpt(w, path, NULL);
  ckpt_test_fail_hook = NULL;
  CHECK_ERR(rc, WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "injected"));
  CHECK_EQ(dir_count(), 0);
  CHECK_OK(wksp_verify(w));
  ws_free(w);
}

/* The source's metadata is inconsistent: CORRUPT, no file. */
static void test_writer_corrupt_source(void) {
  wksp_t *w = ws_new("bad", 1, 64, 1 << 20);
  CHECK(w);
  uint64_t rng = 7;
  ws_fill(w, 10, 1000, 1, &rng);
  memset((uint8_t *)w + WKSP_HDR_SZ, 0x5a, 64 * 64); /* scribble over every partition record */
  char path[512];
  snprintf(path, sizeof path, "%s/bad.ckpt", dir);
  CHECK_ERR(wksp_checkpt(w, path, NULL), WKSP_ERR_CORRUPT);
  CHECK_EQ(dir_count(), 0);
  free(w); /* not a valid workspace any more */
}

/* SIGKILL at random moments during a checkpoint: the path holds either
 * nothing or the complete file, and no temporary file is ever left. */
static void test_publish_sigkill(void) {
  wksp_t *w = ws_new("kill", 1, 4096, 48 << 20);
  CHECK(w);
  uint64_t rng = test_seed();
  ws_fill(w, 600, 160000, 0, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/kill.ckpt", dir);
  /* Time one checkpoint to aim the kills inside it. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_OK(wksp_checkpt(w, path, NULL));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  unlink(path);
  long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
  int complete = 0;
  for (int i = 0; i < 12; i++) {
    int go[2];
    CHECK(!pipe(go));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (!pid) {
      close(go[0]);
      if (write(go[1], "x", 1) != 1) _exit(3);
      _exit(wksp_checkpt(w, path, NULL) ? 1 : 0);
    }
    close(go[1]);
    char c;
    CHECK_EQ(read(go[0], &c, 1), 1);
    close(go[0]);
    usleep((useconds_t)(test_rng(&rng) % (uint64_t)(us * 5 / 4 + 1)));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    int n = dir_count();
    struct stat st;
    if (!stat(path, &st)) {
      CHECK_EQ(n, 1);
      wksp_checkpt_info_t I;
      CHECK_OK(wksp_checkpt_info(path, -1, &I)); /* complete and valid */
      wksp_checkpt_info_free(&I);
      complete++;
      unlink(path);
    } else {
      CHECK_EQ(n, 0);
    }
  }
  fprintf(stderr, "sigkill: %d of 12 checkpoints completed before the kill (one takes %ld us)\n",
          complete, us);
  ws_free(w);
}


/* ---- parallel checkpoint (issue 6) --------------------------------------------------------- */

static int thread_count(void) {
  DIR *h = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  while (h && (e = readdir(h))) n += e->d_name[0] != '.';
  if (h) closedir(h);
  return n;
}

/* What must not depend on the thread count: the bytes of all cgroup frames
 * (one region, frames back to back), each frame's allocation count, and
 * the footer apart from the offsets that move with the info frame's
 * length (its cpu name, for one, can change between runs). */
static uint8_t *frames_of(const char *p, uint64_t *sz) {
  wksp_checkpt_info_t I;
  if (wksp_checkpt_info(p, -1, &I)) return NULL;
  size_t n = 0;
  uint8_t *b = (uint8_t *)vec_slurp(p, &n);
  if (!b) return NULL;
  uint64_t lo = I.cgroup_cnt ? I.cgroups[0].off : 0, hi = I.cgroup_cnt ? I.cgroups[I.cgroup_cnt - 1].end : 0;
  ckpt_ftr_t f;
  ckpt_ftr_decode(&f, b + n - CKPT_FTR_SZ);
  f.frame_off = f.checkpt_sz = 0;
  uint8_t *out = malloc(hi - lo + CKPT_FTR_SZ + 8 * I.cgroup_cnt + 1);
  memcpy(out, b + lo, hi - lo);
  ckpt_ftr_encode(out + (hi - lo), &f);
  for (uint64_t g = 0; g < I.cgroup_cnt; g++) ckpt_st64(out + (hi - lo) + CKPT_FTR_SZ + 8 * g, I.cgroups[g].alloc_cnt);
  *sz = hi - lo + CKPT_FTR_SZ + 8 * I.cgroup_cnt;
  wksp_checkpt_info_free(&I);
  free(b);
  return out;
}

static void parallel_identity(uint64_t part_max, uint64_t data_max, uint64_t n, uint64_t max_sz) {
  uint64_t rng = test_seed() ^ n;
  wksp_t *w = ws_new("par", 1, part_max, data_max);
  CHECK(w);
  ws_fill(w, n, max_sz, 1, &rng);
  static const uint32_t th[] = {1, 2, 3, 4, 8};
  for (int style = 2; style <= 3; style++) {
    uint8_t *ref = NULL;
    uint64_t ref_sz = 0;
    for (size_t i = 0; i < 5; i++) {
      char p[512];
      snprintf(p, sizeof p, "%s/par-%d.ckpt", dir, style);
      unlink(p);
      wksp_checkpt_opts_t o = {.style = style, .threads = th[i], .uinfo = "par"};
      CHECK_OK(wksp_checkpt(w, p, &o));
      uint64_t sz;
      uint8_t *b = frames_of(p, &sz);
      CHECK(b);
      if (!ref) {
        ref = b;
        ref_sz = sz;
      } else {
        CHECK_EQ(sz, ref_sz);
        CHECK(!memcmp(b, ref, sz));
        free(b);
      }
      /* Restores with every thread count give the same workspace. */
      wksp_t *d = ws_new("dst", 1, part_max, data_max);
      CHECK_OK(wksp_restore(d, p, &(wksp_restore_opts_t){.seed = 5, .threads = th[i]}));
      uint8_t a[32], c[32];
      ws_digest(w, a);
      ws_digest(d, c);
      CHECK(!memcmp(a, c, 32));
      ws_free(d);
      unlink(p);
    }
    free(ref);
  }
  ws_free(w);
}

static void test_parallel_identity_small(void) {
  parallel_identity(64, 1 << 20, 0, 1);
  parallel_identity(64, 1 << 20, 1, 300000);
  parallel_identity(2048, 8 << 20, 500, 40000);
}
static void test_parallel_identity_cap(void) { parallel_identity(131072, 8 << 20, 62000, 48); }

/* Frames larger than the per-thread buffer (lowered from 16 MiB to 64 KiB
 * here): workers that wait for their turn block instead of growing memory,
 * and the file is still identical. */
static void test_parallel_identity_big_frames(void) {
  uint64_t old = ckpt_par_buf_max;
  ckpt_par_buf_max = 65536;
  parallel_identity(256, 12 << 20, 90, 250000);
  ckpt_par_buf_max = old;
}

/* Pipes: a checkpoint written to a pipe by 3 threads restores identically. */
static void test_parallel_pipe(void) {
  uint64_t rng = 3;
  wksp_t *w = ws_new("par", 1, 2048, 8 << 20);
  CHECK(w);
  ws_fill(w, 500, 40000, 1, &rng);
  wksp_t *d = ws_new("dst", 1, 2048, 8 << 20);
  int pfd[2];
  CHECK(!pipe(pfd));
  writer_t x = {.w = w, .fd = pfd[1], .o = {.style = 3, .threads = 3}};
  pthread_t t;
  CHECK(!pthread_create(&t, NULL, writer_main, &x));
  int rc = wksp_restore_fd(d, pfd[0], "pipe", NULL);
  close(pfd[0]);
  pthread_join(t, NULL);
  CHECK_OK(x.rc);
  CHECK_OK(rc);
  uint8_t a[32], c[32];
  ws_digest(w, a);
  ws_digest(d, c);
  CHECK(!memcmp(a, c, 32));
  ws_free(d);
  ws_free(w);
}

static int fail_at_5(uint64_t g) { return g == 5; }

/* A failing worker ends the checkpoint: no file, no thread left behind. */
static void test_parallel_failure(void) {
  wksp_t *w = ws_new("pub", 1, 2048, 8 << 20);
  CHECK(w);
  uint64_t rng = 8;
  ws_fill(w, 600, 20000, 1, &rng);
  char p[512];
  snprintf(p, sizeof p, "%s/pfail.ckpt", dir);
  int before = thread_count();
  for (uint32_t t = 1; t <= 4; t++) {
    ckpt_test_fail_hook = fail_at_5;
    int rc = wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.threads = t});
    ckpt_test_fail_hook = NULL;
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK(strstr(wksp_errmsg(), "injected failure at cgroup 5"));
    CHECK_EQ(dir_count(), 0);
    CHECK_EQ(thread_count(), before);
  }
  ws_free(w);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* readers that stop early close their pipe */
  mkdir_tmp();
  TEST_RUN(test_roundtrip_empty);
  TEST_RUN(test_roundtrip_one);
  TEST_RUN(test_roundtrip_hundreds);
  TEST_RUN(test_roundtrip_cap);
  TEST_RUN(test_vectors_restore);
  TEST_RUN(test_vectors_target_too_small);
  TEST_RUN(test_v1_first_alloc_not_fitting);
  TEST_RUN(test_byte_identity);
  TEST_RUN(test_publish_exist_overwrite_mode);
  TEST_RUN(test_publish_failure_leaves_nothing);
  TEST_RUN(test_writer_corrupt_source);
  TEST_RUN(test_publish_sigkill);
  TEST_RUN(test_parallel_identity_small);
  TEST_RUN(test_parallel_identity_cap);
  TEST_RUN(test_parallel_identity_big_frames);
  TEST_RUN(test_parallel_pipe);
  TEST_RUN(test_parallel_failure);
  rm_dir(dir);
  rmdir(dir);
  return test_done();
}
