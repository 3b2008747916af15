/* Frame layer against the reference vectors (tests/vectors, or
 * $WKSP_VECTORS):
 *  - every frame of every v2/v3 file decodes with the known buffer sequence
 *    (docs/FORMAT.md 3.1), at the offsets of the manifest's layout, through the
 *    memory, file and pipe readers; partition contents match the manifest's
 *    SHA-256;
 *  - re-encoding the same buffers with the writer gives every frame
 *    byte-identical to the reference file;
 *  - every truncation of v3-single and many random corruptions of v3 files
 *    fail cleanly (or succeed with exactly-sized output), never crash or
 *    hang. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "../lib/test.h"
#include "../lib/frame_testlib.h"
#include "frame/frame_private.h"
#include <wksp/frame.h>

/* ---- locating and loading the vectors ----------------------------------- */

static char g_vec_dir[PATH_MAX + 32];

static int is_repo_root(const char *dir) {
  char p[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/include/wksp/frame.h", dir);
  return access(p, R_OK) == 0;
}

/* The repo root: the working directory (tests/run.sh runs from it), else the
 * nearest ancestor of the test binary that looks like the repo. */
static int find_repo_root(char *out, size_t cap) {
  if (getcwd(out, cap) && is_repo_root(out)) return 0;
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  if (n <= 0) return -1;
  out[n] = 0;
  for (char *s; (s = strrchr(out, '/')) && s != out;) {
    *s = 0;
    if (is_repo_root(out)) return 0;
  }
  return -1;
}

static int find_vectors(void) {
  const char *env = getenv("WKSP_VECTORS");
  if (env) {
    snprintf(g_vec_dir, sizeof g_vec_dir, "%s", env);
    return 0;
  }
  char root[PATH_MAX];
  if (find_repo_root(root, sizeof root)) return -1;
  snprintf(g_vec_dir, sizeof g_vec_dir, "%s/tests/vectors", root);
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/README.md", g_vec_dir);
  return access(p, R_OK) == 0 ? 0 : -1;
}

static uint8_t *load(const char *name, size_t *sz) {
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/%s", g_vec_dir, name);
  int fd = open(p, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st)) return NULL;
  uint8_t *b = malloc((size_t)st.st_size + 1);
  if (b && pread(fd, b, (size_t)st.st_size, 0) != st.st_size) {
    free(b);
    b = NULL;
  }
  if (b) b[st.st_size] = 0;
  close(fd);
  *sz = (size_t)st.st_size;
  return b;
}

/* ---- a tiny extractor for the manifest's numbers ------------------------ */

/* The number after "key": (searching from `from`); ULLONG_MAX if absent. */
static uint64_t json_u64(const char *from, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(from, k);
  if (!p) return ULLONG_MAX;
  return strtoull(p + strlen(k), NULL, 10);
}

/* The numbers of the array "key": [a, b, ...]; returns the count. */
static int json_u64_list(const char *from, const char *key, uint64_t *out, int max) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(from, k);
  if (!p || !(p = strchr(p, '['))) return -1;
  int n = 0;
  for (p++; *p && *p != ']';) {
    char *e;
    uint64_t v = strtoull(p, &e, 10);
    if (e == p) {
      p++;
      continue;
    }
    if (n < max) out[n] = v;
    n++;
    p = e;
  }
  return n;
}

/* ---- walking a checkpoint ------------------------------------------------ */

enum { MAXBUF = 4096, MAXFRAME = 1100 };

typedef struct {
  int style;
  uint64_t off, end;
  int nbuf;
  int first_buf;
} vframe_t;

typedef struct {
  int nframe;
  vframe_t frames[MAXFRAME];
  int nbuf;
  uint8_t *bufs[MAXBUF];
  size_t szs[MAXBUF];
  int is_meta[MAXBUF];
  int fsc;
  int rc; /* code of the failing buffer read */
  int cgroup_cnt, appendix, volumes; /* frame indices */
  uint64_t part_lo[MAXBUF]; /* gaddr_lo per partition buffer (index = buffer), 0 if not one */
  uint8_t *arena;            /* buffers (not cleared by walk) */
  size_t arena_used;
  size_t arena_dirty;        /* end of the poisoned part */
} walk_t;


static int w_open(wksp_frame_reader_t *r, walk_t *wk, int style) {
  if (wk->nframe == MAXFRAME) return -1;
  vframe_t *f = &wk->frames[wk->nframe];
  f->style = style;
  f->first_buf = wk->nbuf;
  f->nbuf = 0;
  return wksp_frame_reader_open(r, style, &f->off);
}

/* Buffers come from one arena reused by every walk (the truncation test walks
 * 100000 times); red zones between them are poisoned under ASan so that a
 * reader writing past a buffer is still caught. */
enum { ARENA_SZ = 24 << 20, REDZONE = 64 };

static void arena_poison(void *p, size_t n, int on) {
#if defined(__SANITIZE_ADDRESS__)
  if (on) __asan_poison_memory_region(p, n);
  else __asan_unpoison_memory_region(p, n);
#else
  (void)p, (void)n, (void)on;
#endif
}

static uint8_t *w_read(wksp_frame_reader_t *r, walk_t *wk, size_t sz, int is_meta) {
  if (wk->nbuf == MAXBUF || sz > ARENA_SZ - wk->arena_used - REDZONE) {
    wk->rc = -100;
    return NULL;
  }
  uint8_t *b = wk->arena + wk->arena_used;
  arena_poison(b + sz, REDZONE, 1);
  if (wk->arena_dirty < wk->arena_used + sz + REDZONE) wk->arena_dirty = wk->arena_used + sz + REDZONE;
  int rc = is_meta ? wksp_frame_reader_meta(r, b, sz) : wksp_frame_reader_data(r, b, sz);
  if (rc) {
    wk->rc = rc;
    return NULL;
  }
  wk->arena_used += (sz + REDZONE + 15) & ~(size_t)15;
  wk->bufs[wk->nbuf] = b;
  wk->szs[wk->nbuf] = sz;
  wk->is_meta[wk->nbuf] = is_meta;
  wk->part_lo[wk->nbuf] = 0;
  wk->nbuf++;
  wk->frames[wk->nframe].nbuf++;
  return b;
}

static int w_close(wksp_frame_reader_t *r, walk_t *wk) {
  int rc = wksp_frame_reader_close(r, &wk->frames[wk->nframe].end);
  if (!rc) wk->nframe++;
  return rc;
}

static uint64_t u64_at(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Reads a whole v2 checkpoint with the reader, in the reference's buffer
 * sequence; returns 0 or the first failing call's code (-100 for a logic
 * failure such as an impossible size). */
static int walk(wksp_frame_reader_t *r, walk_t *wk) {
  uint8_t *b;
  int rc;
  memset(wk, 0, offsetof(walk_t, bufs));
  arena_poison(wk->arena, wk->arena_dirty, 0);
  wk->arena_dirty = 0;
  wk->arena_used = 0;
  if ((rc = w_open(r, wk, WKSP_FRAME_RAW))) return rc;
  if (!(b = w_read(r, wk, 80, 0))) return wk->rc;
  wk->fsc = (int)(b[12] | b[13] << 8);
  if (wk->fsc != 1 && wk->fsc != 2) return -100;
  if ((rc = w_close(r, wk))) return rc;

  if ((rc = w_open(r, wk, wk->fsc))) return rc;
  if (!(b = w_read(r, wk, 144, 1))) return wk->rc;
  uint64_t blob = 0;
  for (int i = 0; i < 9; i++) blob += u64_at(b + 72 + 8 * i);
  if (blob > 65536) return -100;
  if (!w_read(r, wk, (size_t)blob, 0)) return wk->rc;
  if ((rc = w_close(r, wk))) return rc;

  for (;;) { /* cgroup frames until the appendix command */
    if ((rc = w_open(r, wk, wk->fsc))) return rc;
    if (!(b = w_read(r, wk, 24, 1))) return wk->rc;
    uint64_t tag = u64_at(b), a = u64_at(b + 8), bb = u64_at(b + 16);
    if (!tag && a != UINT64_MAX) { /* appendix */
      if (a > 1024) return -100;
      wk->appendix = wk->nframe;
      wk->cgroup_cnt = (int)a;
      if (!w_read(r, wk, 8 * a, 0) || !w_read(r, wk, 8 * a, 0)) return wk->rc;
      if ((rc = w_close(r, wk))) return rc;
      break;
    }
    int first_meta = wk->nbuf - 1;
    while (tag) { /* meta commands until the data command */
      if (bb <= a || bb - a > (64u << 20)) return -100;
      if (!(b = w_read(r, wk, 24, 1))) return wk->rc;
      tag = u64_at(b);
      a = u64_at(b + 8);
      bb = u64_at(b + 16);
    }
    int last_meta = wk->nbuf - 2;
    for (int i = first_meta; i <= last_meta; i++) {
      const uint8_t *c = wk->bufs[i];
      uint64_t lo = u64_at(c + 8), hi = u64_at(c + 16);
      uint8_t *p = w_read(r, wk, (size_t)(hi - lo), 0);
      if (!p) return wk->rc;
      wk->part_lo[wk->nbuf - 1] = lo;
    }
    if ((rc = w_close(r, wk))) return rc;
  }
  wk->volumes = wk->nframe;
  if ((rc = w_open(r, wk, wk->fsc))) return rc;
  if (!w_read(r, wk, 24, 1)) return wk->rc;
  if ((rc = w_close(r, wk))) return rc;
  if ((rc = w_open(r, wk, WKSP_FRAME_RAW))) return rc;
  if (!w_read(r, wk, 120, 0)) return wk->rc;
  return w_close(r, wk);
}

static int walk_mem(const uint8_t *p, size_t n, walk_t *wk) {
  wksp_frame_reader_t *r;
  if (wksp_frame_reader_init_mem(&r, p, n)) return -1;
  int rc = walk(r, wk);
  wksp_frame_reader_fini(r);
  return rc;
}

/* Re-encodes frame f of the walk with a memory writer and compares with the
 * file's bytes. */
static int reencode_frame_mode(const walk_t *wk, int f, const uint8_t *file, int exact) {
  const vframe_t *fr = &wk->frames[f];
  size_t n = (size_t)(fr->end - fr->off);
  uint8_t *out = malloc(n + 1);
  wksp_frame_writer_t *w;
  uint64_t off, end, sz;
  int bad = wksp_frame_writer_init_mem(&w, out, n);
  if (!bad) wksp_private_frame_writer_exact(w, exact);
  bad = bad || wksp_frame_writer_open(w, fr->style, &off);
  for (int i = 0; !bad && i < fr->nbuf; i++) {
    int b = fr->first_buf + i;
    bad = wk->is_meta[b] ? wksp_frame_writer_meta(w, wk->bufs[b], wk->szs[b])
                         : wksp_frame_writer_data(w, wk->bufs[b], wk->szs[b]);
  }
  bad = bad || wksp_frame_writer_close(w, &end) || end != n;
  bad = wksp_frame_writer_fini(w, &sz) || bad;
  bad = bad || memcmp(out, file + fr->off, n);
  if (bad) fprintf(stderr, "frame %d at offset %" PRIu64 " (%zu bytes) re-encodes differently (exact %d): %s\n",
                   f, fr->off, n, exact, wksp_errmsg());
  free(out);
  return bad;
}

/* Both LZ4 paths of the writer (in place and plain ring) must reproduce the
 * reference's bytes. */
static int reencode_frame(const walk_t *wk, int f, const uint8_t *file) {
  return reencode_frame_mode(wk, f, file, 0) | reencode_frame_mode(wk, f, file, 1);
}

/* ---- the tests ---------------------------------------------------------- */

static const char *const g_files[] = { "v2-empty", "v2-random", "v3-mixed", "v3-single", "v3-text",
                                       "v3-zeros" };

static walk_t g_wk, g_wk2;

static void hex(const uint8_t *d, char *out) {
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

/* Manifest cross-checks: layout offsets and partition hashes. */
static int check_manifest(const walk_t *wk, const char *json, size_t file_sz) {
  const char *lay = strstr(json, "\"layout\"");
  if (!lay) return -1;
  uint64_t cg[1100];
  int ncg = json_u64_list(lay, "cgroup_frame_off", cg, 1100);
  if (ncg != wk->cgroup_cnt || json_u64(lay, "cgroup_cnt") != (uint64_t)ncg) return -2;
  if (wk->frames[1].off != 80 || wk->frames[1].end != json_u64(lay, "info_end")) return -3;
  for (int i = 0; i < ncg; i++)
    if (wk->frames[2 + i].off != cg[i]) return -4;
  if (wk->frames[wk->appendix].off != json_u64(lay, "appendix_off")) return -5;
  if (wk->frames[wk->volumes].off != json_u64(lay, "volumes_off")) return -6;
  if (wk->frames[wk->nframe - 1].off != json_u64(lay, "footer_off")) return -7;
  if (wk->frames[wk->nframe - 1].end != file_sz) return -8;
  /* each partition's SHA-256 */
  const char *parts = strstr(json, "\"partitions\"");
  int nparts = 0;
  for (int b = 0; b < wk->nbuf; b++) {
    if (!wk->part_lo[b]) continue;
    nparts++;
    char key[64];
    snprintf(key, sizeof key, "\"gaddr_lo\": %" PRIu64 ",", wk->part_lo[b]);
    const char *p = parts ? strstr(parts, key) : NULL;
    const char *h = p ? strstr(p, "\"sha256\": \"") : NULL;
    if (!h) return -9;
    uint8_t d[32];
    char got[65];
    SHA256(wk->bufs[b], wk->szs[b], d);
    hex(d, got);
    if (strncmp(h + 11, got, 64)) {
      fprintf(stderr, "partition at gaddr %" PRIu64 ": sha256 %s differs\n", wk->part_lo[b], got);
      return -10;
    }
  }
  if ((uint64_t)nparts != json_u64(json, "alloc_cnt")) return -11;
  return 0;
}

static void test_vectors_decode_and_reencode(void) {
  for (size_t v = 0; v < sizeof g_files / sizeof g_files[0]; v++) {
    char name[64];
    size_t n, jn;
    snprintf(name, sizeof name, "%s.ckpt", g_files[v]);
    uint8_t *file = load(name, &n);
    snprintf(name, sizeof name, "%s.json", g_files[v]);
    char *json = (char *)load(name, &jn);
    CHECK(file && json);
    int rc = walk_mem(file, n, &g_wk);
    if (rc) fprintf(stderr, "%s: walk failed (%d): %s\n", g_files[v], rc, wksp_errmsg());
    CHECK(!rc);
    CHECK_EQ(g_wk.fsc, json_u64(json, "frame_style_compressed"));
    rc = check_manifest(&g_wk, json, n);
    if (rc) fprintf(stderr, "%s: manifest check %d failed\n", g_files[v], rc);
    CHECK(!rc);
    int bad = 0;
    for (int f = 0; f < g_wk.nframe; f++) bad |= reencode_frame(&g_wk, f, file);
    CHECK(!bad);
    fprintf(stderr, "%s: %d frames (%d cgroups) decoded and re-encoded byte-identically\n",
            g_files[v], g_wk.nframe, g_wk.cgroup_cnt);
    free(file);
    free(json);
  }
}

/* The same walk through an fd on the file and through a pipe gives the same
 * buffers. */
static int same_walk(const walk_t *a, const walk_t *b) {
  if (a->nframe != b->nframe || a->nbuf != b->nbuf) return 0;
  for (int i = 0; i < a->nbuf; i++)
    if (a->szs[i] != b->szs[i] || memcmp(a->bufs[i], b->bufs[i], a->szs[i])) return 0;
  for (int f = 0; f < a->nframe; f++)
    if (a->frames[f].off != b->frames[f].off || a->frames[f].end != b->frames[f].end) return 0;
  return 1;
}

static void test_vectors_fd_and_pipe(void) {
  for (size_t v = 0; v < sizeof g_files / sizeof g_files[0]; v++) {
    char name[PATH_MAX + 64];
    size_t n;
    snprintf(name, sizeof name, "%s.ckpt", g_files[v]);
    uint8_t *file = load(name, &n);
    CHECK(file);
    CHECK(!walk_mem(file, n, &g_wk));
    snprintf(name, sizeof name, "%s/%s.ckpt", g_vec_dir, g_files[v]);
    int fd = open(name, O_RDONLY);
    CHECK(fd >= 0);
    wksp_frame_reader_t *r;
    CHECK_OK(wksp_frame_reader_init_fd(&r, fd));
    CHECK(!walk(r, &g_wk2));
    CHECK(same_walk(&g_wk, &g_wk2));
    /* seek back to each cgroup frame and re-read its first command */
    for (int f = 2; f < g_wk.appendix; f++) {
      uint8_t cmd[24];
      CHECK_OK(wksp_frame_reader_seek(r, g_wk.frames[f].off));
      CHECK_OK(wksp_frame_reader_open(r, g_wk.fsc, NULL));
      CHECK_OK(wksp_frame_reader_meta(r, cmd, 24));
      CHECK(!memcmp(cmd, g_wk.bufs[g_wk.frames[f].first_buf], 24));
      CHECK_OK(wksp_frame_reader_close(r, NULL));
    }
    wksp_frame_reader_fini(r);
    close(fd);

    int p[2];
    pthread_t t;
    CHECK(!pipe(p));
    ftl_feed_t fa = { .fd = p[1], .p = file, .n = n, .piece = 9000, .seed = 3 };
    CHECK(!pthread_create(&t, NULL, ftl_feed_main, &fa));
    CHECK_OK(wksp_frame_reader_init_fd(&r, p[0]));
    int rc = walk(r, &g_wk2);
    wksp_frame_reader_fini(r);
    close(p[0]);
    pthread_join(t, NULL);
    CHECK(!rc);
    CHECK(same_walk(&g_wk, &g_wk2));
    free(file);
  }
}

/* Every truncation length of v3-single, through the memory reader; a sample
 * of lengths (and all near frame and chunk boundaries) through a pipe. */
static void test_truncation_every_length(void) {
  size_t n;
  uint8_t *file = load("v3-single.ckpt", &n);
  CHECK(file);
  int nfail = 0, nok = 0;
  for (size_t len = 0; len <= n; len++) {
    /* an exact-size copy lets ASan see any overread; every 8th length (the
     * bounds checks do not depend on the length's value) */
    uint8_t *copy = len % 8 ? NULL : malloc(len ? len : 1);
    if (copy) memcpy(copy, file, len);
    int rc = walk_mem(copy ? copy : file, len, &g_wk);
    free(copy);
    if (len == n) {
      CHECK_EQ(rc, 0);
    } else if (rc != WKSP_ERR_FAIL || !strstr(wksp_errmsg(), "truncated at offset")) {
      fprintf(stderr, "length %zu: rc %d (%s)\n", len, rc, wksp_errmsg());
      nfail++;
    } else {
      char want[64];
      snprintf(want, sizeof want, "truncated at offset %zu", len);
      if (!strstr(wksp_errmsg(), want)) {
        fprintf(stderr, "length %zu: %s\n", len, wksp_errmsg());
        nfail++;
      }
      nok++;
    }
    if (nfail > 5) break;
  }
  CHECK_EQ(nfail, 0);
  CHECK_EQ(nok, n);
  /* through a pipe closed early: clean FAIL, no hang */
  uint64_t s = 11;
  for (int i = 0; i < 300; i++) {
    size_t len = i < 200 ? (size_t)(ftl_rng(&s) % n) : 388 + (size_t)(ftl_rng(&s) % 64);
    int p[2];
    pthread_t t;
    CHECK(!pipe(p));
    ftl_feed_t fa = { .fd = p[1], .p = file, .n = len, .piece = 9000, .seed = 3 };
    CHECK(!pthread_create(&t, NULL, ftl_feed_main, &fa));
    wksp_frame_reader_t *r;
    CHECK_OK(wksp_frame_reader_init_fd(&r, p[0]));
    int rc = walk(r, &g_wk);
    wksp_frame_reader_fini(r);
    close(p[0]);
    pthread_join(t, NULL);
    CHECK_EQ(rc, WKSP_ERR_FAIL);
    CHECK(strstr(wksp_errmsg(), "truncated at offset"));
  }
  free(file);
}

/* Random byte corruptions: every outcome is a clean code (with a message
 * naming an offset) or success with exactly the walk's sizes. */
static void test_random_corruption(void) {
  const char *files[] = { "v3-single.ckpt", "v3-mixed.ckpt", "v3-text.ckpt" };
  uint64_t s = test_seed();
  int counts[4] = { 0 };
  for (size_t v = 0; v < 3; v++) {
    size_t n;
    uint8_t *file = load(files[v], &n);
    CHECK(file);
    int iters = v == 0 ? 1500 : 300;
    for (int it = 0; it < iters; it++) {
      uint8_t *copy = malloc(n);
      memcpy(copy, file, n);
      int nflip = 1 + (int)(ftl_rng(&s) % 4);
      for (int k = 0; k < nflip; k++) {
        size_t at = (size_t)(ftl_rng(&s) % n);
        if (it & 1) at = 388 + (size_t)(ftl_rng(&s) % 2048); /* near a cgroup frame start */
        if (at >= n) at = n - 1;
        copy[at] ^= (uint8_t)(1 + ftl_rng(&s) % 255);
      }
      int rc = walk_mem(copy, n, &g_wk);
      free(copy);
      if (rc == 0) counts[0]++;
      else if (rc == WKSP_ERR_CORRUPT && strstr(wksp_errmsg(), "at offset")) counts[1]++;
      else if (rc == WKSP_ERR_FAIL && strstr(wksp_errmsg(), "truncated at offset")) counts[2]++;
      else if (rc == -100) counts[3]++; /* decoded fine, but nonsense sizes for the walk */
      else {
        fprintf(stderr, "%s iteration %d: rc %d (%s)\n", files[v], it, rc, wksp_errmsg());
        CHECK(0);
      }
    }
    free(file);
  }
  fprintf(stderr, "corruptions: %d decoded, %d corrupt, %d truncated, %d bad sizes\n", counts[0],
          counts[1], counts[2], counts[3]);
  CHECK(counts[1] > 0);
}

/* ---- seed corpus for fuzz/fuzz_frame.c ----------------------------------
 * WKSP_FRAME_SEED_DIR=fuzz/corpus/frame build/tests/frame/test_frame_vectors
 * writes, instead of testing, one seed per small vector frame and one per
 * whole small checkpoint, in the fuzz target's input layout. */

typedef struct {
  uint8_t ops[1 + 4 * 63];
  int nops;
} seedops_t;

static int seed_op(seedops_t *o, int op, uint64_t arg) {
  if (o->nops == 63) return -1;
  uint8_t *p = o->ops + 1 + 4 * o->nops++;
  p[0] = (uint8_t)op;
  p[1] = (uint8_t)arg;
  p[2] = (uint8_t)(arg >> 8);
  p[3] = (uint8_t)(arg >> 16);
  return 0;
}

static int seed_frame_ops(seedops_t *o, const walk_t *wk, int f) {
  const vframe_t *fr = &wk->frames[f];
  for (int i = 0; i < fr->nbuf; i++) {
    int b = fr->first_buf + i;
    if (wk->szs[b] > 0x3fffff || seed_op(o, wk->is_meta[b] ? 0 : 1, wk->szs[b])) return -1;
  }
  return 0;
}

static void seed_write(const char *dir, const char *name, const seedops_t *o, int first_style,
                       const uint8_t *bytes, size_t n) {
  char path[PATH_MAX + 128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return;
  uint8_t b0 = (uint8_t)(o->nops | (first_style == WKSP_FRAME_LZ4 ? 64 : 0));
  fwrite(&b0, 1, 1, f);
  fwrite(o->ops + 1, 4, (size_t)o->nops, f);
  fwrite(bytes, 1, n, f);
  fclose(f);
}

static int write_seeds(const char *dir) {
  int cnt = 0;
  for (size_t v = 0; v < sizeof g_files / sizeof g_files[0]; v++) {
    char name[128];
    size_t n;
    snprintf(name, sizeof name, "%s.ckpt", g_files[v]);
    uint8_t *file = load(name, &n);
    if (!file || walk_mem(file, n, &g_wk)) return -1;
    for (int f = 0; f < g_wk.nframe; f++) {
      const vframe_t *fr = &g_wk.frames[f];
      seedops_t o = { 0 };
      if (fr->end - fr->off > 256 * 1024 || seed_frame_ops(&o, &g_wk, f)) continue;
      snprintf(name, sizeof name, "%s-frame%d", g_files[v], f);
      seed_write(dir, name, &o, fr->style, file + fr->off, (size_t)(fr->end - fr->off));
      cnt++;
    }
    if (n <= 256 * 1024) { /* the whole checkpoint, then again entering at frame 2 by a seek */
      seedops_t o = { 0 };
      int bad = 0;
      for (int f = 0; f < g_wk.nframe && !bad; f++) {
        if (f) bad = seed_op(&o, 2 | (g_wk.frames[f].style == WKSP_FRAME_LZ4 ? 4 : 0), 0);
        bad = bad || seed_frame_ops(&o, &g_wk, f);
      }
      snprintf(name, sizeof name, "%s-all", g_files[v]);
      if (!bad) seed_write(dir, name, &o, WKSP_FRAME_RAW, file, n), cnt++;
      seedops_t o2 = { 0 };
      bad = seed_op(&o2, 3 | (g_wk.frames[2].style == WKSP_FRAME_LZ4 ? 4 : 0), g_wk.frames[2].off) ||
            seed_frame_ops(&o2, &g_wk, 2);
      snprintf(name, sizeof name, "%s-seek", g_files[v]);
      if (!bad) seed_write(dir, name, &o2, WKSP_FRAME_RAW, file, n), cnt++;
    }
    free(file);
  }
  fprintf(stderr, "wrote %d seeds to %s\n", cnt, dir);
  return 0;
}

int main(void) {
  if (find_vectors()) {
    fprintf(stderr, "test_frame_vectors: reference vectors not found in "
                    "<repo>/tests/vectors or $WKSP_VECTORS\n");
    printf("FAIL test_frame_vectors/find_vectors\n");
    return 1;
  }
  fprintf(stderr, "test_frame_vectors: vectors in %s\n", g_vec_dir);
  g_wk.arena = malloc(ARENA_SZ);
  g_wk2.arena = malloc(ARENA_SZ);
  const char *seed_dir = getenv("WKSP_FRAME_SEED_DIR");
  if (seed_dir) return write_seeds(seed_dir) ? 1 : 0;
  TEST_RUN(test_vectors_decode_and_reencode);
  TEST_RUN(test_vectors_fd_and_pipe);
  TEST_RUN(test_truncation_every_length);
  TEST_RUN(test_random_corruption);
  return test_done();
}
