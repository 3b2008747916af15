/* Sealed checkpoints (digest.c): the content digest line, sealing by
 * checkpoints with verify (v2 and v3, literal info frame patched in place),
 * and damage that the format alone cannot see being caught on restore, on
 * every path (file, verify_first, pipe sequential and pipelined). */
#include "ws.h"
#include "vec.h"
#include "../../src/checkpt/ckpt.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static char dir[256], path[512];

static void mkdir_tmp(void) {
  snprintf(dir, sizeof dir, "/tmp/wksp-test-digest.XXXXXX");
  if (!mkdtemp(dir)) abort();
  snprintf(path, sizeof path, "%s/s.ckpt", dir);
}

static void test_digest_line(void) {
  char line[64];
  size_t n = wksp_private_ckpt_digest_line(line, sizeof line, 0x0123456789abcdefull);
  CHECK_EQ(n, strlen(line));
  CHECK(!strcmp(line, "content digest xxh3-sum64 0123456789abcdef\n"));
  CHECK(!memcmp(line + wksp_private_ckpt_digest_hex_at(), "0123456789abcdef", 16));
  uint64_t d = 0;
  char b[256];
  snprintf(b, sizeof b, "wksp library x\ncompiler y\n%s", line);
  CHECK(wksp_private_ckpt_digest_parse(b, strlen(b), &d));
  CHECK_EQ(d, 0x0123456789abcdefull);
  CHECK(wksp_private_ckpt_digest_parse(line, n, &d)); /* the whole text */
  /* not a seal: not the last line, no newline, not at a line start, bad digits */
  snprintf(b, sizeof b, "%sextra\n", line);
  CHECK(!wksp_private_ckpt_digest_parse(b, strlen(b), &d));
  CHECK(!wksp_private_ckpt_digest_parse(line, n - 1, &d));
  snprintf(b, sizeof b, "x%s", line);
  CHECK(!wksp_private_ckpt_digest_parse(b, strlen(b), &d));
  snprintf(b, sizeof b, "content digest xxh3-sum64 0123456789abcdeF\n");
  CHECK(!wksp_private_ckpt_digest_parse(b, strlen(b), &d));
  CHECK(!wksp_private_ckpt_digest_parse("", 0, &d));
}

static wksp_t *filled(uint64_t seed) {
  wksp_t *w = ws_new("dig", 1, 1024, 8 << 20);
  uint64_t rng = seed;
  if (w) ws_fill(w, 300, 60000, 1, &rng);
  return w;
}

static int sealed_checkpt(wksp_t *w, int style, uint32_t threads) {
  unlink(path);
  return wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = style, .threads = threads, .verify = 1});
}

static void test_seal_round_trip(void) {
  wksp_t *w = filled(3);
  CHECK(w);
  uint64_t cnt = 0;
  wksp_part_t *a = ws_allocs(w, &cnt);
  CHECK(a && cnt > 100);
  uint64_t want = 0;
  CHECK_OK(wksp_private_ckpt_digest_of(w, a, cnt, 2, &want));
  for (int style = 2; style <= 3; style++)
    for (uint32_t t = 1; t <= 2; t++) {
      CHECK_OK(sealed_checkpt(w, style, t));
      /* the line is in the info frame, verbatim (v3: literal blocks) */
      wksp_checkpt_info_t in;
      CHECK_OK(wksp_checkpt_info(path, -1, &in));
      uint64_t d = 0;
      CHECK(wksp_private_ckpt_sealed(in.binfo, &d));
      CHECK_EQ(d, want); /* content only: the same for v2 and v3, any thread count */
      wksp_checkpt_info_free(&in);
      /* restores (file, verify_first) and compares */
      for (int vf = 0; vf <= 1; vf++) {
        wksp_t *c = ws_new("copy", 1, 1024, 8 << 20);
        CHECK(c);
        CHECK_OK(wksp_restore(c, path, &(wksp_restore_opts_t){.seed = 2, .threads = t, .verify_first = vf}));
        uint8_t x[32], y[32];
        ws_digest(w, x);
        ws_digest(c, y);
        CHECK(!memcmp(x, y, 32));
        wksp_checkpt_diff_t df;
        CHECK_OK(wksp_checkpt_diff(c, path, -1, t, NULL, NULL, &df));
        CHECK_EQ(df.seal, WKSP_SEAL_OK);
        CHECK_EQ(df.digest, want);
        CHECK_EQ(df.first_kind, WKSP_DIFF_NONE);
        ws_free(c);
      }
    }
  /* without verify: no seal */
  unlink(path);
  CHECK_OK(wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = 3}));
  wksp_checkpt_diff_t df;
  CHECK_OK(wksp_checkpt_diff(w, path, -1, 1, NULL, NULL, &df));
  CHECK_EQ(df.seal, WKSP_SEAL_NONE);
  CHECK_EQ(df.digest, want);
  free(a);
  ws_free(w);
}

static int put(const char *p, const uint8_t *b, size_t sz) {
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  int ok = write(fd, b, sz) == (ssize_t)sz;
  close(fd);
  return ok ? 0 : -1;
}

/* Bit flips in the cgroup frames of sealed files: every restore either
 * fails (CORRUPT; the target untouched or reset to empty) or gives the
 * original workspace back; none succeeds with other bytes. */
static void test_seal_catches_damage(void) {
  wksp_t *w = filled(9);
  CHECK(w);
  uint8_t orig[32];
  ws_digest(w, orig);
  char bad[600];
  snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
  uint64_t rng = 77, by_seal = 0, other = 0, same = 0;
  for (int style = 2; style <= 3; style++) {
    CHECK_OK(sealed_checkpt(w, style, 2));
    size_t sz;
    uint8_t *b = (uint8_t *)vec_slurp(path, &sz);
    CHECK(b);
    wksp_checkpt_info_t in;
    CHECK_OK(wksp_checkpt_info(path, -1, &in));
    uint64_t lo = in.cgroups[0].off, hi = in.cgroups[in.cgroup_cnt - 1].end;
    wksp_checkpt_info_free(&in);
    for (int k = 0; k < 150; k++) {
      uint64_t at = lo + test_rng(&rng) % (hi - lo);
      uint8_t bit = (uint8_t)(1u << (test_rng(&rng) % 8));
      b[at] ^= bit;
      CHECK(!put(bad, b, sz));
      b[at] ^= bit;
      wksp_t *c = ws_new("copy", 1, 1024, 8 << 20);
      CHECK(c);
      /* paths in turn: file, file + verify_first, pipe; 1 and 2 threads for each
       * (k % 4 == 3 is a pipe, k / 4 alternates the thread count) */
      wksp_restore_opts_t o = {.seed = 2, .threads = 1 + (uint32_t)((k >> 2) & 1), .verify_first = k % 3 == 0};
      int rc;
      if (k % 4 == 3) {
        size_t n;
        uint8_t *x = (uint8_t *)vec_slurp(bad, &n);
        CHECK(x);
        rc = restore_piped(c, x, n, "bad", &o);
        free(x);
      } else {
        rc = wksp_restore(c, bad, &o);
      }
      uint8_t got[32];
      ws_digest(c, got);
      if (!rc) {
        CHECK(!memcmp(got, orig, 32)); /* success only with the original bytes */
        same++;
      } else {
        CHECK_EQ(rc, WKSP_ERR_CORRUPT);
        CHECK_OK(wksp_verify(c));
        if (strstr(wksp_errmsg(), "content digest")) by_seal++;
        else other++;
      }
      ws_free(c);
    }
    free(b);
  }
  fprintf(stderr, "300 bit flips in sealed files: %llu caught by the digest, %llu by the format, "
                  "%llu harmless\n",
          (unsigned long long)by_seal, (unsigned long long)other, (unsigned long long)same);
  CHECK(by_seal > 100); /* RAW data has no other check */
  unlink(bad);
  ws_free(w);
}

/* wksp_checkpt_check: what a file alone can tell. */
static void test_check(void) {
  wksp_t *w = filled(5);
  CHECK(w);
  int seal = 99;
  CHECK_OK(sealed_checkpt(w, 3, 2));
  CHECK_OK(wksp_checkpt_check(path, -1, 2, &seal));
  CHECK_EQ(seal, WKSP_SEAL_OK);
  /* damage in the data: only the seal sees it (v2: RAW bytes) */
  CHECK_OK(sealed_checkpt(w, 2, 1));
  size_t sz;
  uint8_t *b = (uint8_t *)vec_slurp(path, &sz);
  CHECK(b);
  b[sz / 2] ^= 0x10;
  CHECK(!put(path, b, sz));
  CHECK_ERR(wksp_checkpt_check(path, -1, 1, &seal), WKSP_ERR_CORRUPT);
  CHECK_EQ(seal, WKSP_SEAL_BROKEN);
  CHECK(strstr(wksp_errmsg(), "content digest"));
  /* unsealed: the same damage passes (docs/FORMAT.md 9.1), the seal says none */
  unlink(path);
  CHECK_OK(wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = 2}));
  free(b);
  b = (uint8_t *)vec_slurp(path, &sz);
  CHECK(b);
  b[sz / 2] ^= 0x10;
  CHECK(!put(path, b, sz));
  CHECK_OK(wksp_checkpt_check(path, -1, 1, &seal));
  CHECK_EQ(seal, WKSP_SEAL_NONE);
  /* truncated; missing; no input */
  CHECK(!put(path, b, sz - 7));
  CHECK_ERR(wksp_checkpt_check(path, -1, 1, &seal), WKSP_ERR_CORRUPT);
  unlink(path);
  CHECK_ERR(wksp_checkpt_check(path, -1, 1, NULL), WKSP_ERR_FAIL);
  CHECK_ERR(wksp_checkpt_check(NULL, -1, 1, NULL), WKSP_ERR_INVAL);
  free(b);
  ws_free(w);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* restores that stop early close their pipe */
  mkdir_tmp();
  TEST_RUN(test_digest_line);
  TEST_RUN(test_seal_round_trip);
  TEST_RUN(test_seal_catches_damage);
  TEST_RUN(test_check);
  unlink(path);
  rmdir(dir);
  return test_done();
}
