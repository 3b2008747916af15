/* Checkpoint / restore: round trips, reference vectors, byte identity,
 * publication (EXIST, overwrite, mode, SIGKILL), writer validation. */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../../src/checkpt/checkpt_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* The layer's test seam (checkpt_private.h): one hook for the program,
 * steered by these (its points come from several threads). */
static uint64_t g_fail_cgroup = UINT64_MAX; /* this cgroup frame fails */
static int g_no_tmpfile;                    /* publish as without O_TMPFILE */
static uint64_t g_write_fail_pos;
static int g_write_fail_errno;
static int g_write_armed;
static _Atomic uint64_t g_splits[2]; /* splits made, undone */
static _Atomic uint64_t g_out_peak;  /* the last parallel checkpoint's peak output */

static int test_hook(int point, const checkpt_hook_t *h) {
  switch (point) {
  case CHECKPT_HOOK_CGROUP: return h->a == g_fail_cgroup;
  case CHECKPT_HOOK_TMPFILE: return g_no_tmpfile;
  case CHECKPT_HOOK_WRITE: /* the write reaching that offset */
    return g_write_armed && h->a + h->b > g_write_fail_pos ? g_write_fail_errno : 0;
  case CHECKPT_HOOK_SPLIT: atomic_fetch_add(&g_splits[h->a ? 0 : 1], 1); return 0;
  case CHECKPT_HOOK_PEAK: atomic_store(&g_out_peak, h->a); return 0;
  default: return 0;
  }
}

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
  uint64_t cnt = 0;
  for (int k = 0; k < 8 && (!k || (n && !cnt)); k++) { /* a refused one (bad tag) leaves none */
    ws_fill(src, n, max_sz, (int)(n & 1), &rng);
    free(ws_allocs(src, &cnt));
  }
  if (n) CHECK(cnt > 0);
  uint8_t want[32], got[32];
  ws_digest(src, want);
  for (int style = 2; style <= 3; style++) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt-%d.ckpt", dir, style);
    wksp_checkpt_opts_t o = {.style = style, .uinfo = "round trip"};
    CHECK_OK(wksp_checkpt(src, path, &o));
    wksp_checkpt_info_t I;
    CHECK_OK(wksp_checkpt_info(path, &I));
    CHECK_EQ(I.alloc_cnt, cnt);
    CHECK_EQ(I.cgroup_cnt, checkpt_cgroup_cnt(cnt));
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
    /* Through a pipe: the sequential and the pipelined (3 threads) stream
     * paths for v2, spooled for v1. */
    size_t sz;
    uint8_t *b = (uint8_t *)vec_slurp(v.ckpt, &sz);
    CHECK(b);
    for (uint32_t t = 1; t <= 3; t += 2) {
      wksp_t *w = ws_new("target", 5, v.part_max, v.data_max);
      CHECK_OK(restore_piped(w, b, sz, v.name, &(wksp_restore_opts_t){.seed = 3, .threads = t}));
      CHECK(check_manifest(w, &v));
      ws_free(w);
    }
    free(b);
  }
}

/* A pipe spooled to a temporary file (verify_first) with several MiB of
 * incompressible data: the spool buffer grows from 64 KiB to 1 MiB on the
 * way, and every byte must still come out right. */
static void test_spool_large_pipe(void) {
  uint64_t rng = test_seed() + 5;
  wksp_t *src = ws_new("src", 1, 256, 8 << 20);
  CHECK(src);
  ws_fill(src, 40, 300000, 0, &rng);
  uint8_t want[32], got[32];
  ws_digest(src, want);
  wksp_t *dst = ws_new("dst", 9, 256, 8 << 20);
  CHECK(dst);
  int pfd[2];
  CHECK(!pipe(pfd));
  writer_t x = {.w = src, .fd = pfd[1], .o = {.style = 2}};
  pthread_t th;
  CHECK(!pthread_create(&th, NULL, writer_main, &x));
  wksp_restore_opts_t ro = {.seed = 5, .verify_first = 1};
  int rc = wksp_restore_fd(dst, pfd[0], "pipe", &ro);
  close(pfd[0]);
  pthread_join(th, NULL);
  CHECK_OK(x.rc);
  CHECK_OK(rc);
  CHECK_OK(wksp_verify(dst));
  ws_digest(dst, got);
  CHECK(!memcmp(want, got, 32));
  ws_free(dst);
  ws_free(src);
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
  CHECK(b);
  CHECK_ERR(restore_piped(w, b, sz, "pipe", NULL), WKSP_ERR_FULL);
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

/* v1 fix of docs/FORMAT.md 5.3: a first allocation that does not fit is an
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
    CHECK(!memcmp(a, b, CHECKPT_HDR_SZ));
    wksp_checkpt_info_t I;
    CHECK_OK(wksp_checkpt_info(path, &I));
    CHECK_EQ(I.cgroup_cnt, v.cgroup_cnt);
    uint64_t delta = I.cgroup_cnt ? I.cgroups[0].off - v.cg_off[0] : 0;
    for (uint64_t g = 0; g < v.cgroup_cnt; g++) {
      uint64_t end = g + 1 < v.cgroup_cnt ? v.cg_off[g + 1] : v.appendix_off;
      CHECK_EQ(I.cgroups[g].off, v.cg_off[g] + delta);
      CHECK_EQ(I.cgroups[g].end - I.cgroups[g].off, end - v.cg_off[g]);
      CHECK(!memcmp(a + v.cg_off[g], b + I.cgroups[g].off, end - v.cg_off[g]));
    }
    checkpt_ftr_t fa, fb;
    wksp_private_checkpt_ftr_decode(&fa, a + asz - CHECKPT_FTR_SZ);
    wksp_private_checkpt_ftr_decode(&fb, b + bsz - CHECKPT_FTR_SZ);
    if (!v.cgroup_cnt) delta = bsz - asz;
    CHECK_EQ(bsz, asz + delta);
    CHECK_EQ(fb.frame_off, fa.frame_off + delta);
    CHECK_EQ(fb.checkpt_sz, fa.checkpt_sz + delta);
    fb.frame_off = fa.frame_off;
    fb.checkpt_sz = fa.checkpt_sz;
    uint8_t ea[CHECKPT_FTR_SZ], eb[CHECKPT_FTR_SZ];
    wksp_private_checkpt_ftr_encode(ea, &fa);
    wksp_private_checkpt_ftr_encode(eb, &fb);
    CHECK(!memcmp(ea, eb, CHECKPT_FTR_SZ));
    wksp_checkpt_info_free(&I);
    free(a);
    free(b);
    unlink(path);
    ws_free(w);
  }
}

/* ---- publication ------------------------------------------------------------------------------
 */

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

/* Without O_TMPFILE (forced): a named temporary file, gone after success,
 * after an injected failure and after EXIST; overwrite works. */
static void test_publish_fallback_named_temp(void) {
  wksp_t *w = ws_new("pub", 1, 1024, 4 << 20);
  CHECK(w);
  uint64_t rng = 9;
  ws_fill(w, 200, 5000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/named.ckpt", dir);
  g_no_tmpfile = 1;
  g_fail_cgroup = 1;
  int rc1 = wksp_checkpt(w, path, NULL);
  int n1 = dir_count();
  g_fail_cgroup = UINT64_MAX;
  int rc2 = wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.mode = 0640});
  int n2 = dir_count();
  int rc3 = wksp_checkpt(w, path, NULL);
  int rc4 = wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.overwrite = 1});
  int n4 = dir_count();
  g_no_tmpfile = 0;
  CHECK_EQ(rc1, WKSP_ERR_FAIL);
  CHECK_EQ(n1, 0);
  CHECK_OK(rc2);
  CHECK_EQ(n2, 1);
  CHECK_EQ(rc3, WKSP_ERR_EXIST);
  CHECK_OK(rc4);
  CHECK_EQ(n4, 1);
  struct stat st;
  CHECK(!stat(path, &st));
  CHECK_EQ(st.st_mode & 07777, 0600);
  wksp_checkpt_info_t I;
  CHECK_OK(wksp_checkpt_info(path, &I));
  wksp_checkpt_info_free(&I);
  unlink(path);
  ws_free(w);
}

/* fd variants on a regular file at a non-zero position: offsets are
 * relative to the checkpoint's first byte; restore maps from there. */
/* A checkpoint written at a nonzero file offset restores from an fd
 * positioned there (v2 reads its data with pread relative to it). */
static void fd_at_offset(int style) {
  wksp_t *w = ws_new("fdoff", 1, 1024, 4 << 20), *d = ws_new("dst", 1, 1024, 4 << 20);
  CHECK(w && d);
  uint64_t rng = 10;
  ws_fill(w, 100, 5000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/fdoff.bin", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK_EQ(write(fd, "0123456789", 10), 10);
  CHECK_OK(wksp_checkpt_fd(w, fd, "fdoff", &(wksp_checkpt_opts_t){.style = style, .threads = 2}));
  CHECK_EQ(lseek(fd, 10, SEEK_SET), 10);
  wksp_preview_t pv;
  CHECK_OK(wksp_preview_fd(fd, NULL, &pv));
  CHECK(!strcmp(pv.name, "fdoff"));
  CHECK_EQ(lseek(fd, 10, SEEK_SET), 10);
  CHECK_OK(wksp_restore_fd(d, fd, "fdoff", &(wksp_restore_opts_t){.threads = 2}));
  close(fd);
  uint8_t a[32], b[32];
  ws_digest(w, a);
  ws_digest(d, b);
  CHECK(!memcmp(a, b, 32));
  unlink(path);
  ws_free(w);
  ws_free(d);
}

static void test_fd_at_offset(void) {
  fd_at_offset(2);
  fd_at_offset(3);
}

/* Two volumes (docs/FORMAT.md 3.1: readers accept `volume*`; our writer, like
 * the reference, writes one): a RAW checkpoint re-cut into two volumes, its
 * cgroup frames copied verbatim, restores identically through the mapped,
 * the sequential and the pipelined readers. */
static uint8_t *two_volumes(const uint8_t *b, uint64_t sz, uint64_t *out_sz) {
  checkpt_input_t in = checkpt_input_mem(b, sz, "x");
  checkpt_scan_t s;
  if (wksp_private_checkpt_scan(&s, &in) || s.info.cgroup_cnt < 2) return NULL;
  uint64_t C = s.info.cgroup_cnt, C1 = C / 2;
  uint8_t *o = malloc(sz + 200);
  uint64_t at = s.info.cgroups[0].off, app1 = 0, app2 = 0;
  memcpy(o, b, at); /* header and info */
  uint64_t off[2][64], cnt[2][64];
  for (int v = 0; v < 2; v++) {
    uint64_t g0 = v ? C1 : 0, g1 = v ? C : C1;
    for (uint64_t g = g0; g < g1; g++) {
      const wksp_checkpt_cgroup_t *c = &s.info.cgroups[g];
      off[v][g - g0] = at;
      cnt[v][g - g0] = c->alloc_cnt;
      memcpy(o + at, b + c->off, c->end - c->off);
      at += c->end - c->off;
    }
    if (v) app2 = at;
    else app1 = at;
    wksp_private_checkpt_cmd_encode(o + at, 0, g1 - g0, v ? app1 : 0);
    at += CHECKPT_CMD_SZ;
    for (uint64_t g = 0; g < g1 - g0; g++, at += 8) checkpt_st64(o + at, off[v][g]);
    for (uint64_t g = 0; g < g1 - g0; g++, at += 8) checkpt_st64(o + at, cnt[v][g]);
  }
  uint64_t vol = at;
  wksp_private_checkpt_cmd_encode(o + at, 0, UINT64_MAX, app2);
  at += CHECKPT_CMD_SZ;
  checkpt_ftr_t f = s.ftr;
  f.volume_cnt = 2;
  f.frame_off = vol;
  f.checkpt_sz = at + CHECKPT_FTR_SZ;
  wksp_private_checkpt_ftr_encode(o + at, &f);
  *out_sz = at + CHECKPT_FTR_SZ;
  wksp_private_checkpt_scan_fini(&s);
  return o;
}

static void test_two_volumes(void) {
  wksp_t *w = ws_new("vols", 1, 2048, 8 << 20);
  CHECK(w);
  uint64_t rng = 11;
  ws_fill(w, 400, 30000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/vols.ckpt", dir);
  CHECK_OK(wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = 2}));
  size_t sz;
  uint8_t *b = (uint8_t *)vec_slurp(path, &sz);
  uint64_t sz2 = 0;
  uint8_t *b2 = b ? two_volumes(b, sz, &sz2) : NULL;
  CHECK(b2);
  unlink(path);
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(b2, 1, sz2, f) == sz2);
  fclose(f);
  wksp_checkpt_info_t I;
  CHECK_OK(wksp_checkpt_info(path, &I));
  CHECK_EQ(I.volume_cnt, 2);
  wksp_checkpt_info_free(&I);
  uint8_t want[32], got[32];
  ws_digest(w, want);
  for (int mode = 0; mode < 3; mode++) {
    wksp_t *d = ws_new("dst", 1, 2048, 8 << 20);
    int rc;
    if (!mode) {
      rc = wksp_restore(d, path, NULL);
    } else {
      rc = restore_piped(d, b2, sz2, "pipe", &(wksp_restore_opts_t){.threads = (uint32_t)mode * 2 - 1});
    }
    CHECK_OK(rc);
    ws_digest(d, got);
    CHECK(!memcmp(want, got, 32));
    ws_free(d);
  }
  unlink(path);
  free(b);
  free(b2);
  ws_free(w);
}

/* Progress: monotonic, from the calling thread, ending at done == total
 * (also with 2 threads, where the other thread finishes some cgroups). */
typedef struct {
  uint64_t calls, last_done, last_total;
  int bad;
  pthread_t caller;
} prog_t;

static void prog_fn(uint64_t done, uint64_t total, void *ctx) {
  prog_t *p = ctx;
  if (done < p->last_done || !pthread_equal(pthread_self(), p->caller)) p->bad = 1;
  p->calls++;
  p->last_done = done;
  p->last_total = total;
}

static void test_progress(void) {
  wksp_t *w = ws_new("prog", 1, 2048, 8 << 20), *d = ws_new("dst", 1, 2048, 8 << 20);
  CHECK(w && d);
  uint64_t rng = 12;
  ws_fill(w, 400, 30000, 1, &rng);
  wksp_usage_t u;
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  char path[512];
  snprintf(path, sizeof path, "%s/prog.ckpt", dir);
  for (uint32_t t = 1; t <= 2; t++) {
    prog_t c = {.caller = pthread_self()}, r = {.caller = pthread_self()};
    wksp_checkpt_opts_t co = {.threads = t, .progress = prog_fn, .progress_ctx = &c};
    CHECK_OK(wksp_checkpt(w, path, &co));
    CHECK(c.calls > 0 && !c.bad);
    CHECK_EQ(c.last_total, u.used_sz);
    CHECK_EQ(c.last_done, u.used_sz);
    wksp_restore_opts_t ro = {.threads = t, .progress = prog_fn, .progress_ctx = &r};
    CHECK_OK(wksp_restore(d, path, &ro));
    CHECK(r.calls > 0 && !r.bad);
    CHECK_EQ(r.last_done, u.used_sz);
    unlink(path);
  }
  ws_free(w);
  ws_free(d);
}

/* An injected failure in the middle of writing leaves nothing behind. */
static void test_publish_failure_leaves_nothing(void) {
  wksp_t *w = ws_new("pub", 1, 1024, 4 << 20);
  CHECK(w);
  uint64_t rng = 6;
  ws_fill(w, 300, 5000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/fail.ckpt", dir);
  g_fail_cgroup = 2;
  int rc = wksp_checkpt(w, path, NULL);
  g_fail_cgroup = UINT64_MAX;
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
      CHECK_OK(wksp_checkpt_info(path, &I)); /* complete and valid */
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

/* What must not depend on the thread count: the bytes of all cgroup frames
 * (one region, frames back to back), each frame's allocation count, and
 * the footer apart from the offsets that move with the info frame's
 * length (its cpu name, for one, can change between runs). */
static uint8_t *frames_of(const char *p, uint64_t *sz) {
  wksp_checkpt_info_t I;
  if (wksp_checkpt_info(p, &I)) return NULL;
  size_t n = 0;
  uint8_t *b = (uint8_t *)vec_slurp(p, &n);
  if (!b) return NULL;
  uint64_t lo = I.cgroup_cnt ? I.cgroups[0].off : 0,
           hi = I.cgroup_cnt ? I.cgroups[I.cgroup_cnt - 1].end : 0;
  checkpt_ftr_t f;
  wksp_private_checkpt_ftr_decode(&f, b + n - CHECKPT_FTR_SZ);
  f.frame_off = f.checkpt_sz = 0;
  uint8_t *out = malloc(hi - lo + CHECKPT_FTR_SZ + 8 * I.cgroup_cnt + 1);
  memcpy(out, b + lo, hi - lo);
  wksp_private_checkpt_ftr_encode(out + (hi - lo), &f);
  for (uint64_t g = 0; g < I.cgroup_cnt; g++)
    checkpt_st64(out + (hi - lo) + CHECKPT_FTR_SZ + 8 * g, I.cgroups[g].alloc_cnt);
  *sz = hi - lo + CHECKPT_FTR_SZ + 8 * I.cgroup_cnt;
  wksp_checkpt_info_free(&I);
  free(b);
  return out;
}

/* Contents of the workspaces below: text, random bytes, or text with runs
 * of zeros (every third allocation zeroed from a random offset on: long
 * matches, few LZ4 hash insertions). */
enum { FILL_TEXT, FILL_RANDOM, FILL_ZERO_RUNS };

static void parallel_identity_of(uint64_t part_max, uint64_t data_max, uint64_t n, uint64_t max_sz,
                                 int fill) {
  uint64_t rng = test_seed() ^ n;
  wksp_t *w = ws_new("par", 1, part_max, data_max);
  CHECK(w);
  ws_fill(w, n, max_sz, fill != FILL_RANDOM, &rng);
  if (fill == FILL_ZERO_RUNS) {
    uint64_t cnt = 0;
    wksp_part_t *a = ws_allocs(w, &cnt);
    CHECK(a);
    for (uint64_t k = 0; k < cnt; k += 3) {
      uint64_t sz = a[k].gaddr_hi - a[k].gaddr_lo, from = test_rng(&rng) % sz;
      memset((uint8_t *)wksp_laddr(w, a[k].gaddr_lo) + from, 0, sz - from);
    }
    free(a);
  }
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

static void parallel_identity(uint64_t part_max, uint64_t data_max, uint64_t n, uint64_t max_sz) {
  parallel_identity_of(part_max, data_max, n, max_sz, FILL_TEXT);
}

static void test_parallel_identity_small(void) {
  parallel_identity(64, 1 << 20, 0, 1);
  parallel_identity(64, 1 << 20, 1, 300000);
  parallel_identity(2048, 8 << 20, 500, 40000);
}
static void test_parallel_identity_cap(void) { parallel_identity(131072, 8 << 20, 62000, 48); }
/* Allocations of several MiB: a v2 file restore reads them in 1 MiB
 * pieces shared by the threads, so one allocation spans several pieces. */
static void test_parallel_identity_large_allocs(void) {
  parallel_identity(256, 24 << 20, 9, 3 << 20);
}

/* Frames larger than the per-thread buffer (lowered from 64 MiB to 64 KiB
 * here): workers that wait for their turn block instead of growing memory,
 * and the file is still identical. */
static void test_parallel_identity_big_frames(void) {
  uint64_t old = wksp_private_checkpt_tuning.par_buf_max;
  wksp_private_checkpt_tuning.par_buf_max = 65536;
  parallel_identity(256, 12 << 20, 90, 250000);
  wksp_private_checkpt_tuning.par_buf_max = old;
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

/* Pipes with frames larger than the pipelined reader's buffer limit
 * (lowered from 64 MiB to 64 KiB, and to 1 byte): those frames are decoded
 * as they are read; the result is the same for 1-3 threads, v2 and v3.  A
 * stream cut inside such a frame is CORRUPT with the target reset. */
static void test_parallel_pipe_big_frames(void) {
  uint64_t rng = 4;
  wksp_t *w = ws_new("par", 1, 2048, 16 << 20);
  CHECK(w);
  ws_fill(w, 400, 120000, 1, &rng);
  wksp_t *d = ws_new("dst", 1, 2048, 16 << 20);
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
  ws_free(d);
  ws_free(w);
}

/* Frames of many output blocks (random bytes: ~20 MiB per frame) with the
 * per-thread budget lowered to 16 MiB: the output blocks held at once stay
 * within the bound of checkpt.c, (threads - 1) x budget (at least one 2 MiB
 * block) + 8 MiB, also when a frame that filled the budget while waiting
 * becomes the head; the file is the same for 1-4 threads. */
static void test_parallel_memory_bound(void) {
  uint64_t rng = 5;
  wksp_t *w = ws_new("mem", 1, 1024, 128 << 20);
  CHECK(w);
  ws_fill(w, 100, 2 << 20, 0, &rng);
  uint64_t old = wksp_private_checkpt_tuning.par_buf_max;
  wksp_private_checkpt_tuning.par_buf_max = 16 << 20;
  char p[512];
  snprintf(p, sizeof p, "%s/mem.ckpt", dir);
  uint8_t *ref = NULL;
  uint64_t ref_sz = 0;
  for (uint32_t t = 1; t <= 4; t++) {
    unlink(p);
    CHECK_OK(wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = 3, .threads = t, .uinfo = "m"}));
    uint64_t budget = (t - 1) * (16ull << 20);
    if (budget < (2u << 20)) budget = 2u << 20;
    if (g_out_peak > budget + (8u << 20))
      fprintf(stderr, "%u threads: %llu bytes of output blocks at once\n", t,
              (unsigned long long)g_out_peak);
    CHECK(g_out_peak <= budget + (8u << 20));
    CHECK(g_out_peak >= (4u << 20)); /* frames of several blocks */
    uint64_t sz;
    uint8_t *b = frames_of(p, &sz);
    CHECK(b);
    if (!ref) {
      ref = b;
      ref_sz = sz;
    } else {
      CHECK(sz == ref_sz && !memcmp(b, ref, sz));
      free(b);
    }
  }
  free(ref);
  unlink(p);
  wksp_private_checkpt_tuning.par_buf_max = old;
  ws_free(w);
}

/* A failing worker ends the checkpoint: no file, no thread left behind. */
static void test_parallel_failure(void) {
  wksp_t *w = ws_new("pub", 1, 2048, 8 << 20);
  CHECK(w);
  uint64_t rng = 8;
  ws_fill(w, 600, 20000, 1, &rng);
  char p[512];
  snprintf(p, sizeof p, "%s/pfail.ckpt", dir);
  int before = test_thread_count(-1);
  for (uint32_t t = 1; t <= 4; t++) {
    g_fail_cgroup = 5;
    int rc = wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.threads = t});
    g_fail_cgroup = UINT64_MAX;
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK(strstr(wksp_errmsg(), "injected failure at cgroup 5"));
    CHECK_EQ(dir_count(), 0);
    CHECK_EQ(test_thread_count(before), before);
  }
  ws_free(w);
}

/* The output thread's write fails (EIO, ENOSPC injected at the first and
 * at a later write; EPIPE from a real pipe whose reader is gone): FAIL with
 * that errno, nothing at the path, no thread left behind, for 1-4 workers
 * and with the per-worker buffer lowered so that workers are waiting for
 * their turn when the failure comes. */

static void *read_some_main(void *arg) {
  int fd = *(int *)arg;
  static uint8_t buf[65536];
  for (size_t got = 0; got < (1u << 20);) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  return NULL;
}

static void test_parallel_output_failure(void) {
  wksp_t *w = ws_new("out", 1, 2048, 16 << 20);
  CHECK(w);
  uint64_t rng = 9;
  ws_fill(w, 700, 40000, 1, &rng);
  char p[512];
  snprintf(p, sizeof p, "%s/ofail.ckpt", dir);
  int before = test_thread_count(-1);
  uint64_t old = wksp_private_checkpt_tuning.par_buf_max;
  for (int k = 0; k < 4; k++) {
    g_write_fail_errno = k % 2 ? ENOSPC : EIO;
    g_write_fail_pos = k < 2 ? 0 : 1u << 20;
    wksp_private_checkpt_tuning.par_buf_max = k == 3 ? 65536 : old;
    for (uint32_t t = 1; t <= 4; t++) {
      g_write_armed = 1;
      int rc = wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = 3, .threads = t});
      g_write_armed = 0;
      CHECK_ERR(rc, WKSP_ERR_FAIL);
      CHECK_EQ(wksp_errno(), g_write_fail_errno);
      CHECK(strstr(wksp_errmsg(), "cgroup frames") && strstr(wksp_errmsg(), p));
      CHECK_EQ(dir_count(), 0);
      CHECK_EQ(test_thread_count(before), before);
    }
  }
  wksp_private_checkpt_tuning.par_buf_max = old;
  for (uint32_t t = 1; t <= 2; t++) { /* SIGPIPE is ignored (main) */
    int pfd[2];
    CHECK(!pipe(pfd));
    pthread_t th; /* the reader goes away after the header and some frames */
    CHECK(!pthread_create(&th, NULL, read_some_main, &pfd[0]));
    int rc = wksp_checkpt_fd(w, pfd[1], "gone", &(wksp_checkpt_opts_t){.style = 3, .threads = t});
    pthread_join(th, NULL);
    close(pfd[1]);
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK_EQ(wksp_errno(), EPIPE);
    CHECK_EQ(test_thread_count(before), before);
  }
  CHECK_OK(wksp_verify(w));
  ws_free(w);
}

/* Frames split between workers (a worker with no frame left takes the
 * second half of a running one; split_min lowered from 8 MiB to 128 KiB so
 * that these small workspaces split many times, down to 2-chunk halves):
 * files stay byte-identical to the 1-thread file for every thread count and
 * restore identically, one frame (9 allocations; text, random bytes, runs
 * of zeros) or many.  With no warm-up
 * the second half's history never matches, every split is undone (the
 * first worker compresses the half itself, the other's output is dropped),
 * and the file is still the same.  An output failure while frames are split
 * leaves no file and no thread. */
static void test_parallel_split(void) {
  uint64_t old_min = wksp_private_checkpt_tuning.split_min, old_warm = wksp_private_checkpt_tuning.warm_sz;
  wksp_private_checkpt_tuning.split_min = 128 << 10;
  for (int warm = 1; warm >= 0; warm--) {
    wksp_private_checkpt_tuning.warm_sz = warm ? old_warm : 0;
    uint64_t made = g_splits[0], undone = g_splits[1];
    for (int fill = FILL_TEXT; fill <= FILL_ZERO_RUNS; fill++)
      parallel_identity_of(256, 24 << 20, 9, 3 << 20, fill);
    parallel_identity(2048, 16 << 20, 300, 200000);
    made = g_splits[0] - made;
    undone = g_splits[1] - undone;
    fprintf(stderr, "warm-up %llu bytes: %llu splits, %llu undone\n",
            (unsigned long long)wksp_private_checkpt_tuning.warm_sz, (unsigned long long)made,
            (unsigned long long)undone);
    CHECK(made >= 8);
    if (warm) CHECK(undone * 4 <= made);
    else CHECK_EQ(undone, made);
  }
  wksp_private_checkpt_tuning.warm_sz = old_warm;
  wksp_t *w = ws_new("split", 1, 256, 24 << 20);
  CHECK(w);
  uint64_t rng = 11;
  ws_fill(w, 9, 3 << 20, 1, &rng);
  char p[512];
  snprintf(p, sizeof p, "%s/sfail.ckpt", dir);
  int before = test_thread_count(-1);
  for (int k = 0; k < 3; k++) {
    g_write_fail_errno = EIO;
    g_write_fail_pos = (uint64_t)k << 20;
    g_write_armed = 1;
    int rc = wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = 3, .threads = 2 + (uint32_t)k});
    g_write_armed = 0;
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK_EQ(wksp_errno(), EIO);
    CHECK_EQ(dir_count(), 0);
    CHECK_EQ(test_thread_count(before), before);
  }
  wksp_private_checkpt_tuning.split_min = old_min;
  ws_free(w);
}

int main(void) {
  wksp_private_checkpt_test_hook = test_hook;
  signal(SIGPIPE, SIG_IGN); /* readers that stop early close their pipe */
  mkdir_tmp();
  TEST_RUN(test_roundtrip_empty);
  TEST_RUN(test_roundtrip_one);
  TEST_RUN(test_roundtrip_hundreds);
  TEST_RUN(test_roundtrip_cap);
  TEST_RUN(test_vectors_restore);
  TEST_RUN(test_vectors_target_too_small);
  TEST_RUN(test_spool_large_pipe);
  TEST_RUN(test_v1_first_alloc_not_fitting);
  TEST_RUN(test_byte_identity);
  TEST_RUN(test_publish_exist_overwrite_mode);
  TEST_RUN(test_publish_failure_leaves_nothing);
  TEST_RUN(test_publish_fallback_named_temp);
  TEST_RUN(test_fd_at_offset);
  TEST_RUN(test_two_volumes);
  TEST_RUN(test_progress);
  TEST_RUN(test_writer_corrupt_source);
  TEST_RUN(test_publish_sigkill);
  TEST_RUN(test_parallel_identity_small);
  TEST_RUN(test_parallel_identity_cap);
  TEST_RUN(test_parallel_identity_large_allocs);
  TEST_RUN(test_parallel_identity_big_frames);
  TEST_RUN(test_parallel_pipe);
  TEST_RUN(test_parallel_pipe_big_frames);
  TEST_RUN(test_parallel_failure);
  TEST_RUN(test_parallel_output_failure);
  TEST_RUN(test_parallel_split);
  TEST_RUN(test_parallel_memory_bound);
  rm_dir(dir);
  rmdir(dir);
  return test_done();
}
