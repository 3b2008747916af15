/* Sealed checkpoints (digest.c): the content digest line, sealing by
 * checkpoints with verify (v2 and v3, literal info frame patched in place),
 * and damage that the format alone cannot see being caught on restore, on
 * every path (file, verify_first, pipe sequential and pipelined). */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../../src/checkpt/checkpt_private.h"
#include "../lib/seal_places.h"

/* The reference for the piece hash: xxhash.h's scalar code, independent of
 * the vector code the library runs (SSE2, AVX2, NEON). */
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_SCALAR
#include <xxhash.h>

#include <fcntl.h>
#include <inttypes.h>
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
  size_t n = wksp_private_checkpt_digest_line(line, sizeof line, 0x0123456789abcdefull);
  CHECK_EQ(n, strlen(line));
  CHECK(!strcmp(line, "content digest xxh3-sum64 0123456789abcdef\n"));
  CHECK(!memcmp(line + wksp_private_checkpt_digest_hex_at(), "0123456789abcdef", 16));
  uint64_t d = 0;
  char b[256];
  snprintf(b, sizeof b, "wksp library x\ncompiler y\n%s", line);
  CHECK(wksp_private_checkpt_digest_parse(b, strlen(b), &d));
  CHECK_EQ(d, 0x0123456789abcdefull);
  CHECK(wksp_private_checkpt_digest_parse(line, n, &d)); /* the whole text */
  /* not a seal: not the last line, no newline, not at a line start, bad digits */
  snprintf(b, sizeof b, "%sextra\n", line);
  CHECK(!wksp_private_checkpt_digest_parse(b, strlen(b), &d));
  CHECK(!wksp_private_checkpt_digest_parse(line, n - 1, &d));
  snprintf(b, sizeof b, "x%s", line);
  CHECK(!wksp_private_checkpt_digest_parse(b, strlen(b), &d));
  snprintf(b, sizeof b, "content digest xxh3-sum64 0123456789abcdeF\n");
  CHECK(!wksp_private_checkpt_digest_parse(b, strlen(b), &d));
  CHECK(!wksp_private_checkpt_digest_parse("", 0, &d));
}

/* seal_read on the info of a file: app id and build info. */
static int seal_of(uint64_t app_id, const char *binfo, uint64_t *d) {
  checkpt_seal_t sl;
  wksp_private_checkpt_seal_read(&sl, app_id, binfo, strlen(binfo));
  if (d) *d = sl.digest;
  if (sl.state == WKSP_SEAL_BROKEN && !sl.why[0]) return 99; /* a broken seal always says why */
  return sl.state;
}

/* The three places (the mark, the first and the last digest line), their
 * tolerance to flipped bits, and the line-only seal of older files. */
static void test_seal_read(void) {
  char line[64], other[64], b[512];
  wksp_private_checkpt_digest_line(line, sizeof line, 0x0123456789abcdefull);
  wksp_private_checkpt_digest_line(other, sizeof other, 0x0123456789abcdeeull);
  const char *body = "wksp library x\ncompiler y\n";
  const uint64_t mark = CHECKPT_SEAL_MARK;
  uint64_t d = 0;
  /* unsealed: nothing of a seal; app ids as other writers set them */
  static const uint64_t ids[] = {0, 1, 2, 1000, UINT64_MAX, 0xffffffffull};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) CHECK_EQ(seal_of(ids[i], body, NULL), WKSP_SEAL_NONE);
  CHECK_EQ(seal_of(0, "", NULL), WKSP_SEAL_NONE);
  /* sealed: all three places */
  snprintf(b, sizeof b, "%s%s%s", line, body, line);
  CHECK_EQ(seal_of(mark, b, &d), WKSP_SEAL_OK);
  CHECK_EQ(d, 0x0123456789abcdefull);
  /* the line-only seal (before the mark): the last line alone */
  snprintf(b, sizeof b, "%s%s", body, line);
  CHECK_EQ(seal_of(0, b, &d), WKSP_SEAL_OK);
  CHECK_EQ(d, 0x0123456789abcdefull);
  /* one place damaged, or missing: broken */
  snprintf(b, sizeof b, "%s%s%s", line, body, line);
  for (int bit = 0; bit < 64; bit++) CHECK_EQ(seal_of(mark ^ 1ull << bit, b, NULL), WKSP_SEAL_BROKEN);
  CHECK_EQ(seal_of(0, b, NULL), WKSP_SEAL_BROKEN);          /* no mark, both lines */
  CHECK_EQ(seal_of(mark, body, NULL), WKSP_SEAL_BROKEN);    /* the mark alone */
  snprintf(b, sizeof b, "%s%s", line, body);
  CHECK_EQ(seal_of(mark, b, NULL), WKSP_SEAL_BROKEN);       /* no last line */
  CHECK_EQ(seal_of(0, b, NULL), WKSP_SEAL_BROKEN);          /* the first line alone */
  snprintf(b, sizeof b, "%s%s", body, line);
  CHECK_EQ(seal_of(mark, b, NULL), WKSP_SEAL_BROKEN);       /* no first line */
  snprintf(b, sizeof b, "%s%s%s", line, body, other);
  CHECK_EQ(seal_of(mark, b, NULL), WKSP_SEAL_BROKEN);       /* two digests */
  snprintf(b, sizeof b, "%s%s", line, line);
  CHECK_EQ(seal_of(mark, b, &d), WKSP_SEAL_OK);             /* no body: still two places */
  CHECK_EQ(seal_of(mark, line, NULL), WKSP_SEAL_BROKEN);    /* one line cannot be both */
  /* every bit of either line flipped (but to NUL: a structure error) */
  for (int which = 0; which < 2; which++)
    for (size_t i = 0; i < strlen(line); i++)
      for (int bit = 0; bit < 8; bit++) {
        snprintf(b, sizeof b, "%s%s%s", line, body, line);
        char *at = which ? b + strlen(b) - strlen(line) + i : b + i;
        if (!(*at ^ (char)(1 << bit))) continue;
        *at ^= (char)(1 << bit);
        CHECK_EQ(seal_of(mark, b, NULL), WKSP_SEAL_BROKEN);
        CHECK_EQ(seal_of(0, b, NULL), WKSP_SEAL_BROKEN); /* and the mark gone too */
      }
  /* CHECKPT_SEAL_NEAR bits off the tag still show a line; more do not */
  snprintf(b, sizeof b, "%s%s", line, body);
  for (int k = 0; k < CHECKPT_SEAL_NEAR; k++) b[k] ^= 0x04;
  CHECK_EQ(seal_of(0, b, NULL), WKSP_SEAL_BROKEN);
  b[CHECKPT_SEAL_NEAR] ^= 0x04;
  CHECK_EQ(seal_of(0, b, NULL), WKSP_SEAL_NONE);
  uint64_t near = mark ^ ((1ull << CHECKPT_SEAL_NEAR) - 1);
  CHECK_EQ(seal_of(near, body, NULL), WKSP_SEAL_BROKEN);
  CHECK_EQ(seal_of(near ^ 1ull << 63, body, NULL), WKSP_SEAL_NONE);
}

static wksp_t *filled(uint64_t seed) {
  wksp_t *w = ws_new("dig", 1, 1024, 8 << 20);
  uint64_t rng = seed;
  if (w) ws_fill(w, 300, 60000, 1, &rng);
  return w;
}

/* A small workspace: the flip tests restore it once per flipped bit. */
static wksp_t *small_filled(const char *name) {
  wksp_t *w = ws_new(name, 1, 64, 1 << 20);
  uint64_t rng = 11;
  if (w) ws_fill(w, 12, 3000, 1, &rng);
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
  CHECK_OK(wksp_private_checkpt_digest_of(w, a, cnt, 2, -1, 0, &want));
  for (int style = 2; style <= 3; style++)
    for (uint32_t t = 1; t <= 2; t++) {
      CHECK_OK(sealed_checkpt(w, style, t));
      /* the line is in the info frame, verbatim (v3: literal blocks) */
      wksp_checkpt_info_t in;
      CHECK_OK(wksp_checkpt_info(path, &in));
      checkpt_seal_t sl;
      wksp_private_checkpt_seal_read(&sl, in.app_id, in.binfo, strlen(in.binfo));
      CHECK_EQ(sl.state, WKSP_SEAL_OK);
      CHECK_EQ(sl.digest, want); /* content only: the same for v2 and v3, any thread count */
      CHECK_EQ(in.app_id, CHECKPT_SEAL_MARK);
      wksp_checkpt_info_free(&in);
      /* restores (file, verify_first) and compares */
      for (int vf = 0; vf <= 1; vf++) {
        wksp_t *c = ws_new("copy", 1, 1024, 8 << 20);
        CHECK(c);
        CHECK_OK(wksp_restore(c, path, &(wksp_restore_opts_t){.seed = 2, .threads = t, .verify_first = vf}));
        CHECK(ws_same(w, c));
        wksp_checkpt_diff_t df;
        CHECK_OK(wksp_checkpt_diff(c, path, &(wksp_diff_opts_t){.threads = t}, &df));
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
  CHECK_OK(wksp_checkpt_diff(w, path, &(wksp_diff_opts_t){.threads = 1}, &df));
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
    CHECK_OK(wksp_checkpt_info(path, &in));
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
  fprintf(stderr,
          "300 bit flips in sealed files: %" PRIu64 " caught by the digest, %" PRIu64 " by the format, "
          "%" PRIu64 " harmless\n",
          by_seal, other, same);
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
  CHECK_OK(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 2}, &seal));
  CHECK_EQ(seal, WKSP_SEAL_OK);
  /* damage in the data: only the seal sees it (v2: RAW bytes) */
  CHECK_OK(sealed_checkpt(w, 2, 1));
  size_t sz;
  uint8_t *b = (uint8_t *)vec_slurp(path, &sz);
  CHECK(b);
  b[sz / 2] ^= 0x10;
  CHECK(!put(path, b, sz));
  CHECK_ERR(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1}, &seal), WKSP_ERR_CORRUPT);
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
  CHECK_OK(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1}, &seal));
  CHECK_EQ(seal, WKSP_SEAL_NONE);
  /* truncated; missing; no input */
  CHECK(!put(path, b, sz - 7));
  CHECK_ERR(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1}, &seal), WKSP_ERR_CORRUPT);
  unlink(path);
  CHECK_ERR(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1}, NULL), WKSP_ERR_FAIL);
  CHECK_ERR(wksp_checkpt_check(NULL, NULL, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_check_fd(-1, NULL, NULL, NULL), WKSP_ERR_INVAL);
  free(b);
  ws_free(w);
}


/* ---- damage to the seal itself, and require_seal ------------------------------ */

/* Restores the checkpoint b (sz bytes, also at file `p`) into c, filled with
 * allocations of its own first: through the file, or the pipe when `pipe`.
 * Returns the code; *untouched says whether c kept its allocations. */
static int restore_into(wksp_t *c, const char *p, const uint8_t *b, size_t sz, int pipe,
                        const wksp_restore_opts_t *o, int *untouched) {
  wksp_reset(c, 1);
  uint64_t rng = 5;
  ws_fill(c, 6, 2000, 0, &rng);
  uint8_t before[32], after[32];
  ws_digest(c, before);
  int rc = pipe ? restore_piped(c, b, sz, "piped", o) : wksp_restore(c, p, o);
  ws_digest(c, after);
  *untouched = !memcmp(before, after, 32);
  return rc;
}

/* A sealed checkpoint of w at `path`, its bytes (malloc'd, *sz) and its
 * seal places (NULL on failure). */
static uint8_t *sealed_file(wksp_t *w, int style, size_t *sz, seal_places_t *p) {
  uint8_t *b = sealed_checkpt(w, style, 1) ? NULL : (uint8_t *)vec_slurp(path, sz);
  p->n = 0;
  if (b) seal_places(b, *sz, p);
  return b;
}

/* require_seal (restore) and WKSP_CHECK_REQUIRE_SEAL: an unsealed file is
 * refused before anything changes, on every path; a sealed one passes. */
static void test_require_seal(void) {
  wksp_t *w = small_filled("dig"), *c = ws_new("copy", 1, 64, 1 << 20);
  CHECK(w && c);
  for (int style = 2; style <= 3; style++)
    for (int sealed = 0; sealed <= 1; sealed++) {
      unlink(path);
      seal_places_t pl;
      size_t sz = 0;
      uint8_t *b = sealed ? sealed_file(w, style, &sz, &pl) : NULL;
      if (!sealed && !wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = style}))
        b = (uint8_t *)vec_slurp(path, &sz);
      CHECK(b);
      int seal = 99;
      CHECK_ERR(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1, .require_seal = 1}, &seal),
                sealed ? WKSP_SUCCESS : WKSP_ERR_UNSUP);
      CHECK_EQ(seal, sealed ? WKSP_SEAL_OK : WKSP_SEAL_NONE);
      CHECK(sealed || strstr(wksp_errmsg(), "not sealed"));
      for (int via = 0; via < 4; via++) { /* file, file + verify_first, pipe 1 and 2 threads */
        wksp_restore_opts_t o = {.seed = 2, .threads = via == 3 ? 2 : 1, .verify_first = via == 1,
                                 .require_seal = 1};
        int untouched = 0;
        int rc = restore_into(c, path, b, sz, via >= 2, &o, &untouched);
        if (sealed) {
          CHECK_OK(rc);
          CHECK(ws_same(w, c));
        } else {
          CHECK_EQ(rc, WKSP_ERR_UNSUP);
          CHECK(strstr(wksp_errmsg(), "not sealed"));
          CHECK(untouched);
          o.require_seal = 0;
          CHECK_OK(restore_into(c, path, b, sz, via >= 2, &o, &untouched));
        }
      }
      free(b);
    }
  ws_free(c);
  ws_free(w);
}

/* Every bit of every seal place flipped, one at a time: the file is never
 * taken for unsealed; check says the seal is broken, and a restore fails
 * before changing the target (file and pipe). */
static void test_seal_place_flips(void) {
  wksp_t *w = small_filled("dig"), *c = ws_new("copy", 1, 64, 1 << 20);
  CHECK(w && c);
  uint64_t flips = 0;
  for (int style = 2; style <= 3; style++) {
    size_t sz;
    seal_places_t pl;
    uint8_t *b = sealed_file(w, style, &sz, &pl);
    CHECK(b && pl.n >= 1);
    for (uint64_t k = 0; k < pl.n; k++)
      for (uint64_t at = pl.off[k]; at < pl.off[k] + pl.len[k]; at++)
        for (int bit = 0; bit < 8; bit++) {
          b[at] ^= (uint8_t)(1u << bit);
          CHECK(!put(path, b, sz));
          int seal = 99;
          int rc = wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1}, &seal);
          /* a NUL inside a string is a structure error, found before the seal */
          int nul = b[at] == 0;
          if (rc != WKSP_ERR_CORRUPT || (seal != WKSP_SEAL_BROKEN && !nul))
            fprintf(stderr, "v%d: bit %d of byte %" PRIu64 ": check %d, seal %d (%s)\n", style, bit, at, rc,
                    seal, wksp_errmsg());
          CHECK_EQ(rc, WKSP_ERR_CORRUPT);
          CHECK(seal == WKSP_SEAL_BROKEN || nul);
          int untouched = 0, pipe = flips % 5 == 0;
          wksp_restore_opts_t o = {.seed = 2, .threads = 1 + (uint32_t)(flips / 5 % 2)};
          CHECK_ERR(restore_into(c, path, b, sz, pipe, &o, &untouched), WKSP_ERR_CORRUPT);
          CHECK(untouched);
          b[at] ^= (uint8_t)(1u << bit);
          flips++;
        }
    free(b);
  }
  fprintf(stderr, "%" PRIu64 " flipped bits in seal places: every one a broken seal\n", flips);
  ws_free(c);
  ws_free(w);
}

/* Two flipped bits: one in a seal place, one in the allocations' bytes
 * (cgroup frames).  No restore succeeds. */
static void test_seal_double_flips(void) {
  wksp_t *w = small_filled("dig"), *c = ws_new("copy", 1, 64, 1 << 20);
  CHECK(w && c);
  uint64_t rng = 99, cases = 0;
  for (int style = 2; style <= 3; style++) {
    size_t sz;
    seal_places_t pl;
    uint8_t *b = sealed_file(w, style, &sz, &pl);
    CHECK(b && pl.n >= 1);
    wksp_checkpt_info_t in;
    CHECK_OK(wksp_checkpt_info(path, &in));
    uint64_t lo = in.cgroups[0].off, hi = in.cgroups[in.cgroup_cnt - 1].end;
    wksp_checkpt_info_free(&in);
    for (int k = 0; k < 200; k++) {
      uint64_t p = test_rng(&rng) % pl.n;
      uint64_t a1 = pl.off[p] + test_rng(&rng) % pl.len[p], a2 = lo + test_rng(&rng) % (hi - lo);
      uint8_t m1 = (uint8_t)(1u << (test_rng(&rng) % 8)), m2 = (uint8_t)(1u << (test_rng(&rng) % 8));
      b[a1] ^= m1;
      b[a2] ^= m2;
      CHECK(!put(path, b, sz));
      wksp_restore_opts_t o = {.seed = 2, .threads = 1};
      int untouched = 0, rc = restore_into(c, path, b, sz, k % 4 == 3, &o, &untouched);
      b[a1] ^= m1;
      b[a2] ^= m2;
      if (!rc)
        fprintf(stderr, "v%d: bytes %" PRIu64 " and %" PRIu64 " flipped: restored with success\n", style, a1,
                a2);
      CHECK(rc != WKSP_SUCCESS);
      CHECK_OK(wksp_verify(c));
      cases++;
    }
    free(b);
  }
  fprintf(stderr, "%" PRIu64 " double flips (seal place + data): none restored\n", cases);
  ws_free(c);
  ws_free(w);
}

/* A file sealed the way wksp did before the mark and the first line (the
 * last line alone): still sealed, and its digest still checked. */
static void test_line_only_seal(void) {
  wksp_t *w = small_filled("dig"), *c = ws_new("copy", 1, 64, 1 << 20);
  CHECK(w && c);
  size_t sz;
  seal_places_t pl;
  uint8_t *b = sealed_file(w, 2, &sz, &pl); /* v2: the info frame is raw */
  CHECK(b && pl.n == 3 && pl.len[0] == 8);
  /* app id 0 and another first line of the same length: the older form */
  memset(b + pl.off[0], 0, 8);
  static const char line[] = "wksp library (before the seal mark) 0.0.00\n";
  CHECK_EQ(sizeof line - 1, pl.len[1]);
  memcpy(b + pl.off[1], line, pl.len[1]);
  CHECK(!put(path, b, sz));
  int seal = 99;
  CHECK_OK(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1, .require_seal = 1}, &seal));
  CHECK_EQ(seal, WKSP_SEAL_OK);
  int untouched = 0;
  wksp_restore_opts_t o = {.seed = 2, .require_seal = 1};
  CHECK_OK(restore_into(c, path, b, sz, 0, &o, &untouched));
  CHECK(ws_same(w, c));
  /* a flipped data bit: the digest sees it */
  wksp_checkpt_info_t in;
  CHECK_OK(wksp_checkpt_info(path, &in));
  b[in.cgroups[0].end - 1] ^= 1; /* the last byte of the first frame's allocation bytes */
  wksp_checkpt_info_free(&in);
  CHECK(!put(path, b, sz));
  CHECK_ERR(wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1}, &seal), WKSP_ERR_CORRUPT);
  CHECK_EQ(seal, WKSP_SEAL_BROKEN);
  CHECK(strstr(wksp_errmsg(), "content digest"));
  free(b);
  ws_free(c);
  ws_free(w);
}

/* The piece hash is XXH3-64 whatever code computes it: the dispatching
 * digest_piece and (x86-64 with AVX2) the AVX2 build against the scalar
 * code, over every length class of XXH3 (0-16, 17-128, 129-240, long with
 * and without a partial stripe) and seeds that are piece addresses. */
static void test_piece_hash_impls(void) {
  enum { N = 65536 + 97 };
  static uint8_t b[N];
  uint64_t rng = 99;
  for (size_t i = 0; i < N; i++) b[i] = (uint8_t)(test_rng(&rng) >> 24);
  CHECK_EQ(XXH3_64bits_withSeed("", 0, 0), UINT64_C(0x2D06800538D394C2)); /* XXH3's published empty hash */
  static const uint64_t lens[] = {0, 1, 3, 4, 8, 9, 16, 17, 64, 128, 129, 200, 240, 241, 255, 256, 1000,
                                  1024, 4096, 65535, 65536, N};
  for (size_t k = 0; k < sizeof lens / sizeof *lens; k++)
    for (uint64_t seed = 0; seed < (UINT64_C(1) << 40); seed = seed * 3 + 65536) {
      const uint8_t *p = b + (lens[k] < N ? seed % (N - lens[k] + 1) : 0);
      uint64_t want = XXH3_64bits_withSeed(p, lens[k], seed);
      CHECK_EQ(wksp_private_checkpt_digest_piece(seed, p, lens[k]), want);
#if defined(WKSP_DIGEST_AVX2)
      if (__builtin_cpu_supports("avx2")) CHECK_EQ(wksp_private_checkpt_xxh3_avx2(p, lens[k], seed), want);
#endif
    }
  const char *impl = wksp_private_checkpt_digest_impl();
  CHECK(!strncmp(impl, "XXH3, ", 6));
#if defined(WKSP_DIGEST_AVX2)
  if (__builtin_cpu_supports("avx2")) CHECK(!strcmp(impl, "XXH3, AVX2"));
  else fprintf(stderr, "test_piece_hash_impls: this CPU has no AVX2: only %s was checked\n", impl);
#endif
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* restores that stop early close their pipe */
  mkdir_tmp();
  TEST_RUN(test_digest_line);
  TEST_RUN(test_piece_hash_impls);
  TEST_RUN(test_seal_read);
  TEST_RUN(test_seal_round_trip);
  TEST_RUN(test_seal_catches_damage);
  TEST_RUN(test_check);
  TEST_RUN(test_require_seal);
  TEST_RUN(test_seal_place_flips);
  TEST_RUN(test_seal_double_flips);
  TEST_RUN(test_line_only_seal);
  unlink(path);
  rmdir(dir);
  return test_done();
}
