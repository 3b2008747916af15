/* Byte layouts, hash, SVW, cgroup assignment, preview, info and print,
 * checked against docs/FORMAT.md's examples and the reference vectors (no
 * workspace needed). */
#include "../lib/test.h"
#include "../../src/checkpt/checkpt_private.h"
#include "../lib/vec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_hash64(void) {
  CHECK_EQ(checkpt_hash64(0), 0);
  CHECK_EQ(checkpt_hash64(1), 0xb456bcfc34c2cb2cull);
  CHECK_EQ(checkpt_hash64(0x10080), 0x541c881dfbdf965cull);
  CHECK_EQ(checkpt_hash64(0xdeadbeef), 0xd24bd59f862a1dacull);
}

static void test_svw_examples(void) {
  uint8_t b[CHECKPT_SVW_MAX];
  static const uint8_t magic[9] = {0x1f, 0x59, 0x1c, 0x73, 0xc3, 0xa2, 0xed, 0x17, 0xff};
  CHECK_EQ(wksp_private_checkpt_svw_encode(b, CHECKPT_MAGIC), 9);
  CHECK(!memcmp(b, magic, 9));
  static const uint8_t v1234[3] = {0x95, 0x26, 0xa0};
  CHECK_EQ(wksp_private_checkpt_svw_encode(b, 1234), 3);
  CHECK(!memcmp(b, v1234, 3));
  uint64_t x;
  CHECK_EQ(wksp_private_checkpt_svw_decode(magic, 9, &x), 9);
  CHECK_EQ(x, CHECKPT_MAGIC);
  CHECK_EQ(wksp_private_checkpt_svw_decode(magic, 8, &x), 0); /* truncated */
  CHECK_EQ(wksp_private_checkpt_svw_decode(magic, 0, &x), 0);
}

static void test_svw_roundtrip(void) {
  /* Every width boundary, both sides, plus random values of each width. */
  static const int bits[] = {6, 10, 18, 24, 32, 56, 64};
  static const size_t width[] = {1, 2, 3, 4, 5, 8, 9};
  uint64_t s = test_seed();
  for (size_t i = 0; i < 7; i++) {
    uint64_t top = bits[i] == 64 ? UINT64_MAX : (1ull << bits[i]) - 1;
    uint64_t bot = i ? (1ull << bits[i - 1]) : 0;
    uint64_t vals[4] = {bot, top, bot + (test_rng(&s) % (top - bot)), top - 1};
    for (int k = 0; k < 4; k++) {
      uint8_t b[CHECKPT_SVW_MAX];
      uint64_t x = 0;
      size_t n = wksp_private_checkpt_svw_encode(b, vals[k]);
      CHECK_EQ(n, width[i]);
      CHECK_EQ(wksp_private_checkpt_svw_width(b[0]), n);
      CHECK_EQ(wksp_private_checkpt_svw_decode(b, n, &x), n);
      CHECK_EQ(x, vals[k]);
    }
  }
}

static void test_records_roundtrip(void) {
  vec_t v;
  CHECK(!vec_load(&v, 5)); /* v3-text */
  size_t sz;
  uint8_t *f = (uint8_t *)vec_slurp(v.ckpt, &sz);
  CHECK(f && sz == v.file_size);
  checkpt_hdr_t h;
  wksp_private_checkpt_hdr_decode(&h, f);
  CHECK_OK(wksp_private_checkpt_hdr_check(&h, "v3-text"));
  CHECK_EQ(h.part_max, v.part_max);
  CHECK_EQ(h.frame_style, 2);
  uint8_t b[CHECKPT_FTR_SZ];
  wksp_private_checkpt_hdr_encode(b, &h);
  CHECK(!memcmp(b, f, CHECKPT_HDR_SZ));
  checkpt_ftr_t t;
  wksp_private_checkpt_ftr_decode(&t, f + sz - CHECKPT_FTR_SZ);
  CHECK_OK(wksp_private_checkpt_ftr_check(&t, &h, sz, "v3-text"));
  CHECK_EQ(t.frame_off, v.volumes_off);
  wksp_private_checkpt_ftr_encode(b, &t);
  CHECK(!memcmp(b, f + sz - CHECKPT_FTR_SZ, CHECKPT_FTR_SZ));
  t.seed ^= 1;
  CHECK_ERR(wksp_private_checkpt_ftr_check(&t, &h, sz, "x"), WKSP_ERR_CORRUPT);
  h.reserved = 1;
  CHECK_ERR(wksp_private_checkpt_hdr_check(&h, "x"), WKSP_ERR_CORRUPT);
  free(f);
}

static void test_name_rule(void) {
  char n[40] = "a.b-c_9";
  CHECK_EQ(wksp_private_name_len(n), 7);
  n[0] = '.';
  CHECK_EQ(wksp_private_name_len(n), 0);
  memset(n, 'x', 40);
  CHECK_EQ(wksp_private_name_len(n), 0); /* no NUL */
  n[39] = 0;
  CHECK_EQ(wksp_private_name_len(n), 39);
  CHECK(!wksp_private_checkpt_sizes_valid(0, 1));
  CHECK(!wksp_private_checkpt_sizes_valid(1ull << 32, 1));
  CHECK(wksp_private_checkpt_sizes_valid(1, 1));
  CHECK(!wksp_private_checkpt_sizes_valid(1, UINT64_MAX - 128 - 192 + 1));
}

/* The assignment of docs/FORMAT.md 3.9 reproduces each vector's cgroup frames:
 * the per-frame counts of the manifest and, frame by frame, the exact
 * allocation lists found in the file. */
static void test_cgroup_assign_vectors(void) {
  for (size_t i = 1; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    wksp_part_t *parts = calloc(v.alloc_cnt + 1, sizeof *parts);
    for (uint64_t k = 0; k < v.alloc_cnt; k++)
      parts[k] = (wksp_part_t){v.part[k].lo, v.part[k].hi, v.part[k].tag};
    uint64_t C = checkpt_cgroup_cnt(v.alloc_cnt), cnt[VEC_CG_MAX], start[VEC_CG_MAX + 1];
    uint64_t *order = calloc(v.alloc_cnt + 1, sizeof *order);
    CHECK_EQ(C, v.cgroup_cnt);
    wksp_private_checkpt_cgroup_assign(parts, v.alloc_cnt, cnt, start, order);
    for (uint64_t g = 0; g < C; g++) CHECK_EQ(cnt[g], v.cg_cnt[g]);
    checkpt_input_t in;
    CHECK_OK(wksp_private_checkpt_input_open(&in, v.ckpt, -1, NULL, 1));
    checkpt_scan_t s;
    CHECK_OK(wksp_private_checkpt_scan(&s, &in));
    for (uint64_t k = 0; k < v.alloc_cnt; k++) {
      CHECK_EQ(s.file_parts[k].gaddr_lo, parts[order[k]].gaddr_lo);
      CHECK_EQ(s.file_parts[k].tag, parts[order[k]].tag);
    }
    wksp_private_checkpt_scan_fini(&s);
    wksp_private_checkpt_input_fini(&in);
    free(order);
    free(parts);
  }
}

static void test_cgroup_assign_cap(void) {
  /* 40000 allocations: the cap of 1024 frames, every allocation placed once. */
  uint64_t n = 40000;
  wksp_part_t *p = calloc(n, sizeof *p);
  uint64_t *order = calloc(n, sizeof *order), *cnt = calloc(1025, 8), *start = calloc(1025, 8);
  for (uint64_t k = 0; k < n; k++) p[k] = (wksp_part_t){1000 + 10 * k, 1005 + 10 * k, 1};
  CHECK_EQ(checkpt_cgroup_cnt(n), 1024);
  wksp_private_checkpt_cgroup_assign(p, n, cnt, start, order);
  uint8_t *seen = calloc(n, 1);
  for (uint64_t g = 0; g < 1024; g++)
    for (uint64_t k = start[g]; k < start[g + 1]; k++) {
      CHECK(!seen[order[k]]);
      seen[order[k]] = 1;
      if (k > start[g]) CHECK(order[k] > order[k - 1]); /* ascending inside a group */
    }
  CHECK_EQ(start[1024], n);
  free(seen);
  free(p);
  free(order);
  free(cnt);
  free(start);
}

static void test_preview_vectors(void) {
  for (size_t i = 0; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    wksp_preview_t pv;
    CHECK_OK(wksp_preview(v.ckpt, &pv));
    CHECK_EQ(pv.style, v.style == 1 ? 1 : 2);
    CHECK_EQ(pv.frame_style, v.fsc);
    CHECK(!strcmp(pv.name, v.wname));
    CHECK_EQ(pv.seed, v.seed);
    CHECK_EQ(pv.part_max, v.part_max);
    CHECK_EQ(pv.data_max, v.data_max);
  }
  wksp_preview_t pv;
  CHECK_ERR(wksp_preview("/nonexistent/x.ckpt", &pv), WKSP_ERR_FAIL);
  CHECK_ERR(wksp_preview_mem("garbage garbage garbage", 23, &pv), WKSP_ERR_CORRUPT);
  CHECK_ERR(wksp_preview(NULL, &pv), WKSP_ERR_INVAL);
}

static void test_info_vectors(void) {
  for (size_t i = 0; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    wksp_checkpt_info_t I;
    CHECK_OK(wksp_checkpt_info(v.ckpt, &I));
    CHECK_EQ(I.alloc_cnt, v.alloc_cnt);
    if (v.style != 1) CHECK_EQ(I.file_sz, v.file_size);
    for (uint64_t k = 0; k < v.alloc_cnt; k++) {
      CHECK_EQ(I.parts[k].gaddr_lo, v.part[k].lo);
      CHECK_EQ(I.parts[k].gaddr_hi, v.part[k].hi);
      CHECK_EQ(I.parts[k].tag, v.part[k].tag);
    }
    CHECK_EQ(I.cgroup_cnt, v.cgroup_cnt);
    for (uint64_t g = 0; g < v.cgroup_cnt; g++) {
      CHECK_EQ(I.cgroups[g].off, v.cg_off[g]);
      CHECK_EQ(I.cgroups[g].alloc_cnt, v.cg_cnt[g]);
      CHECK_EQ(I.cgroups[g].end, g + 1 < v.cgroup_cnt ? v.cg_off[g + 1] : v.appendix_off);
    }
    char want[64];
    snprintf(want, sizeof want, "vector %s", v.wname);
    CHECK(!strcmp(I.uinfo, want));
    wksp_checkpt_info_free(&I);
  }
}

/* Lines of the listing that start with `prefix` after tabs. */
static int count_lines(const char *text, const char *prefix) {
  int n = 0;
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    while (*p == '\t') p++;
    if (!strncmp(p, prefix, strlen(prefix))) n++;
  }
  return n;
}

static void test_print_vectors(void) {
  for (size_t i = 0; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    uint64_t bytes = 0;
    for (uint64_t k = 0; k < v.alloc_cnt; k++) bytes += v.part[k].hi - v.part[k].lo;
    for (int lvl = -1; lvl <= (bytes < (1 << 20) ? 5 : 4); lvl++) { /* dumps of small ones */
      FILE *f = tmpfile();
      CHECK(f);
      CHECK_OK(wksp_checkpt_print(fileno(f), v.ckpt, lvl));
      long n = ftell(f);
      fseek(f, 0, SEEK_END);
      n = ftell(f);
      char *text = calloc(1, (size_t)n + 1);
      rewind(f);
      CHECK_EQ(fread(text, 1, (size_t)n, f), (size_t)n);
      fclose(f);
      if (lvl < 0) CHECK_EQ(n, 0);
      if (lvl >= 0) CHECK(strstr(text, v.wname));
      if (lvl >= 2) CHECK(strstr(text, "vector "));
      if (lvl == 3 && v.style != 1) CHECK_EQ(count_lines(text, "cgroup "), v.cgroup_cnt);
      if (lvl == 4) CHECK_EQ(count_lines(text, "partition ["), v.alloc_cnt);
      if (lvl == 5 && v.alloc_cnt) {
        /* The first allocation's first 16 bytes, as dumped, match the file's
         * restore-independent manifest only through its hash; check the
         * dump's line count instead: one per 16 bytes. */
        uint64_t lines = 0;
        for (uint64_t k = 0; k < v.alloc_cnt; k++) lines += (v.part[k].hi - v.part[k].lo + 15) / 16;
        CHECK_EQ((uint64_t)count_lines(text, "0000"), lines);
      }
      free(text);
    }
  }
  int fd = open("/dev/null", O_WRONLY);
  CHECK_ERR(wksp_checkpt_print(fd, "/nonexistent", 1), WKSP_ERR_FAIL);
  close(fd);
}

/* The listing is buffered: a line longer than the buffer (a 12000-byte
 * uinfo line), a hex dump of known bytes spanning many buffers, and write
 * failures (EBADF, EPIPE) reported as FAIL. */
static void test_print_buffered(void) {
  char dir[] = "/tmp/wksp-test-print.XXXXXX", path[64];
  CHECK(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/p.ckpt", dir);
  static uint8_t mem[1 << 20] __attribute__((aligned(4096)));
  wksp_t *w;
  CHECK_OK(wksp_new(mem, "print", 1, 16, 256 << 10, &w));
  uint64_t g = 0, lo = 0, hi = 0;
  CHECK_OK(wksp_alloc_at_least(w, 1, 100000, 7, &g, &lo, &hi));
  uint8_t *b = wksp_laddr(w, lo);
  for (uint64_t i = 0; i < hi - lo; i++) b[i] = (uint8_t)(i * 7 + 3);
  char *uinfo = malloc(12001);
  CHECK(uinfo);
  for (int i = 0; i < 12000; i++) uinfo[i] = (char)('a' + i % 26);
  uinfo[12000] = 0;
  CHECK_OK(wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = 3, .uinfo = uinfo}));
  FILE *f = tmpfile();
  CHECK(f);
  CHECK_OK(wksp_checkpt_print(fileno(f), path, 5));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  char *text = calloc(1, (size_t)n + 1);
  rewind(f);
  CHECK_EQ(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  CHECK(strstr(text, uinfo)); /* the long line, whole */
  CHECK_EQ((uint64_t)count_lines(text, "0000"), (hi - lo + 15) / 16);
  char line[128]; /* the last full 16 bytes, as dumped */
  uint64_t at = (hi - lo - 16) & ~15ull;
  int k = snprintf(line, sizeof line, "%016" PRIx64 ": ", (lo + at));
  for (int i = 0; i < 16; i++) k += snprintf(line + k, sizeof line - (size_t)k, "%02x ", b[at + (uint64_t)i]);
  CHECK(strstr(text, line));
  free(text);
  int rd = open("/dev/null", O_RDONLY); /* writes fail with EBADF */
  CHECK(rd >= 0);
  CHECK_ERR(wksp_checkpt_print(rd, path, 5), WKSP_ERR_FAIL);
  CHECK_EQ(wksp_errno(), EBADF);
  close(rd);
  int p[2];
  CHECK(!pipe(p));
  close(p[0]);
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  CHECK_ERR(wksp_checkpt_print(p[1], path, 4), WKSP_ERR_FAIL);
  CHECK_EQ(wksp_errno(), EPIPE);
  signal(SIGPIPE, old);
  close(p[1]);
  free(uinfo);
  unlink(path);
  rmdir(dir);
}

/* Inputs from pipes: preview consumes the first bytes; info and print
 * spool the stream. */
static void test_pipes(void) {
  for (size_t i = 0; i < VEC_CNT; i += 5) { /* v1-text, v3-text */
    vec_t v;
    CHECK(!vec_load(&v, i));
    size_t sz;
    char *b = vec_slurp(v.ckpt, &sz);
    CHECK(b);
    for (int what = 0; what < 3; what++) {
      int p[2];
      CHECK(!pipe(p));
      pid_t pid = fork();
      CHECK(pid >= 0);
      if (!pid) {
        close(p[0]);
        size_t done = 0;
        while (done < sz) {
          ssize_t n = write(p[1], b + done, sz - done);
          if (n <= 0) _exit(0);
          done += (size_t)n;
        }
        _exit(0);
      }
      close(p[1]);
      if (what == 0) {
        wksp_preview_t pv;
        CHECK_OK(wksp_preview_fd(p[0], NULL, &pv));
        CHECK(!strcmp(pv.name, v.wname));
      } else if (what == 1) {
        wksp_checkpt_info_t I;
        CHECK_OK(wksp_checkpt_info_fd(p[0], NULL, &I));
        CHECK_EQ(I.alloc_cnt, v.alloc_cnt);
        wksp_checkpt_info_free(&I);
      } else {
        int null_fd = open("/dev/null", O_WRONLY);
        CHECK_OK(wksp_checkpt_print_fd(null_fd, p[0], "pipe", 4));
        close(null_fd);
      }
      close(p[0]);
      waitpid(pid, NULL, 0);
    }
    free(b);
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  TEST_RUN(test_hash64);
  TEST_RUN(test_svw_examples);
  TEST_RUN(test_svw_roundtrip);
  TEST_RUN(test_records_roundtrip);
  TEST_RUN(test_name_rule);
  TEST_RUN(test_cgroup_assign_vectors);
  TEST_RUN(test_cgroup_assign_cap);
  TEST_RUN(test_preview_vectors);
  TEST_RUN(test_info_vectors);
  TEST_RUN(test_print_vectors);
  TEST_RUN(test_print_buffered);
  TEST_RUN(test_pipes);
  return test_done();
}
