/* Promise 3: restore never crashes and never hides damage it could see.
 *
 *  - Read faults (libfaultshim.so): every counted open / pread / read /
 *    write (spool) call of a restore from a file, from a pipe and from a
 *    pipe with verify_first fails in turn with EIO, returns a short count,
 *    or fails with EINTR.
 *  - Every truncation offset of a small v2 and v3 file, through the file
 *    and the pipe path; and files truncated while a restore or a level-5
 *    listing reads them (at spread offsets, after validation).
 *  - Single-bit flips: every byte of small v2 / v3 files (quick run: one
 *    bit per byte, rotating; long run: all 8 bits) and of the v1 vector,
 *    and sampled offsets of a large v3 file.  The small files again sealed
 *    (written with verify), plus sampled pairs of flipped bits in them
 *    (seal places included); every damaged sealed file is also checked
 *    with wksp_checkpt_check, which must never take it for unsealed.
 *
 * Each case ends in one of these ways, counted and printed:
 *   untouched   error, target unchanged
 *   reset       error CORRUPT (or FAIL for a read error on a pipe), target
 *               empty, message says "(target reset to empty)"
 *   identical   success, target equals the source
 *   undetectable success, same allocation ranges, but tags or bytes differ:
 *               the format has no checksums (docs/FORMAT.md 9.1); for RAW (v2)
 *               files the difference must be exactly the flipped bit; none
 *               in sealed files (written with verify: a content digest)
 * Violations: a crash (the test dies; for truncations while reading, a
 * child killed by a signal), a target that does not verify, an
 * error that leaves a modified but not reset target, a reset on the mapped
 * path caused by bytes outside the cgroup frames (a structure error found
 * late), a success whose allocation ranges differ from the source's, a read
 * fault reported as success, a damaged sealed file that checks as unsealed
 * ("lost").
 *
 * Counts: WKSP_REL_FLIP_BITS (1 quick, 8 long), WKSP_REL_DOUBLE_FLIPS,
 * WKSP_REL_LARGE_FLIPS. */
#include "../lib/rel.h"
#include "../lib/v1enc.h"
#include "../lib/seal_places.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

static faultshim_t shim;
static char path[256];
static wksp_t *src_small, *src_medium, *src_large;

enum { OUT_UNTOUCHED, OUT_RESET, OUT_IDENTICAL, OUT_UNDETECTABLE, OUT_CNT };

typedef struct {
  uint64_t n[OUT_CNT];
  uint64_t cases, bad;
} tally_t;

static void tally_text(const tally_t *t, char *out, size_t sz) {
  snprintf(out, sz,
           "%" PRIu64 " cases: untouched %" PRIu64 ", reset %" PRIu64 ", identical %" PRIu64 ", undetectable %" PRIu64
           ", violations %" PRIu64,
           t->cases, t->n[0], t->n[1], t->n[2], t->n[3], t->bad);
}

/* ---- inputs ---------------------------------------------------------------- */

static int write_file(const uint8_t *b, uint64_t sz) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  uint64_t done = 0;
  while (done < sz) {
    ssize_t n = write(fd, b + done, sz - done);
    if (n <= 0) break;
    done += (uint64_t)n;
  }
  close(fd);
  return done == sz ? 0 : -1;
}

static int g_sealed; /* make_ckpt writes sealed files (with verify) */

static uint8_t *make_ckpt(wksp_t *src, int style, uint64_t *sz) {
  unlink(path);
  uint8_t *b = NULL;
  if (!wksp_checkpt(src, path,
                    &(wksp_checkpt_opts_t){.style = style, .uinfo = "reliability", .verify = g_sealed}))
    b = (uint8_t *)vec_slurp(path, (size_t *)sz);
  unlink(path);
  return b;
}

/* The cgroup frames' byte ranges, from the structure scan. */
typedef struct {
  uint64_t n, off[1100], end[1100];
} frames_t;

static int write_file(const uint8_t *b, uint64_t sz);

/* From the public listing (wksp_checkpt_info) of the file b. */
static void frames_get(const uint8_t *b, uint64_t sz, frames_t *f) {
  f->n = 0;
  wksp_checkpt_info_t info;
  if (write_file(b, sz) || wksp_checkpt_info(path, &info)) return;
  for (uint64_t g = 0; g < info.cgroup_cnt && g < 1100; g++) {
    f->off[f->n] = info.cgroups[g].off;
    f->end[f->n++] = info.cgroups[g].end;
  }
  wksp_checkpt_info_free(&info);
}

static int in_frames(const frames_t *f, uint64_t at) {
  for (uint64_t i = 0; i < f->n; i++)
    if (at >= f->off[i] && at < f->end[i]) return 1;
  return 0;
}

/* ---- one restore and its classification -------------------------------- */

/* Target contents before each case: a few allocations of its own. */
static void refill(wksp_t *w) {
  wksp_reset(w, 1);
  uint64_t rng = 4242;
  ws_fill(w, 8, 3000, 0, &rng);
}

enum { VIA_FILE, VIA_PIPE, VIA_PIPE_VERIFY };

typedef struct {
  int via;
  const uint8_t *b;
  uint64_t sz;
  /* shim fault (calls NULL: none) */
  const char *calls;
  long nth;
  int kind, err;
  uint32_t threads; /* restore threads, 0 = 1 */
  /* a chain (VIA_FILE only): restored with wksp_restore_chain; b (if not
   * NULL) is written to `path`, which is one of its members */
  const char *const *chain;
  size_t chain_n;
  int verify_first;
} rcase_t;

static int restore_run(wksp_t *w, const rcase_t *c, long *fired) {
  int rc;
  wksp_restore_opts_t o = {.seed = 9, .threads = c->threads ? c->threads : 1,
                           .verify_first = c->via == VIA_PIPE_VERIFY || c->verify_first};
  *fired = 0;
  if (c->via == VIA_FILE) {
    if (c->b && write_file(c->b, c->sz)) return -100;
    if (c->calls) shim.arm(c->calls, c->nth, c->kind, c->err, 0);
    rc = c->chain ? wksp_restore_chain(w, c->chain, c->chain_n, &o) : wksp_restore(w, path, &o);
  } else {
    int p[2];
    if (pipe(p)) return -100;
    pthread_t th;
    pump_t pm = {.fd = p[1], .b = c->b, .sz = c->sz};
    /* The pump's raw writes are invisible to the shim. */
    pthread_create(&th, NULL, pump_main, &pm);
    if (c->calls) shim.arm(c->calls, c->nth, c->kind, c->err, 0);
    rc = wksp_restore_fd(w, p[0], "pipe", &o);
    if (c->calls) shim.disarm();
    close(p[0]);
    pthread_join(th, NULL);
  }
  if (c->calls) {
    shim.disarm();
    *fired = shim.fired();
  }
  return rc;
}

/* Same ranges as src; *bytes_diff / *tags_diff count differences. */
static int same_ranges(wksp_t *src, wksp_t *w, uint64_t *bytes_diff, uint64_t *tags_diff) {
  uint64_t na = 0, nb = 0;
  wksp_part_t *a = ws_allocs(src, &na), *b = ws_allocs(w, &nb);
  int same = a && b && na == nb;
  *bytes_diff = *tags_diff = 0;
  for (uint64_t i = 0; same && i < na; i++) {
    if (a[i].gaddr_lo != b[i].gaddr_lo || a[i].gaddr_hi != b[i].gaddr_hi) {
      same = 0;
      break;
    }
    *tags_diff += a[i].tag != b[i].tag;
    const uint8_t *pa = wksp_laddr(src, a[i].gaddr_lo), *pb = wksp_laddr(w, b[i].gaddr_lo);
    for (uint64_t k = 0; k < a[i].gaddr_hi - a[i].gaddr_lo; k++) *bytes_diff += pa[k] != pb[k];
  }
  free(a);
  free(b);
  return same;
}

typedef struct {
  int raw_single_flip;  /* v2 file with one flipped bit: at most one byte or tag may differ */
  int ranges_may_change; /* v1: no redundancy protects addresses */
  int must_fail;         /* e.g. truncations */
  int reset_needs_frame; /* mapped path: a reset must come from cgroup-frame bytes */
  int at_in_frame;
  int refusal_any;       /* deltas: any error code may refuse (UNSUP for a version, INVAL for a link) */
} expect_t;

/* Allocation count of w. */
static uint64_t alloc_cnt(wksp_t *w) {
  uint64_t n = 1;
  free(ws_allocs(w, &n));
  return n;
}

/* Classifies one restore into t (before: w's digest before it); returns 0
 * if the promise holds. */
static int classify(wksp_t *src, wksp_t *w, const uint8_t before[32], int rc, const char *msg, const expect_t *e,
                    tally_t *t, const char *what) {
  t->cases++;
  uint8_t after[32];
  ws_digest(w, after);
  int bad = 0, out = -1;
  if (wksp_verify(w)) {
    bad = fprintf(stderr, "%s: target does not verify (rc %d)\n", what, rc);
  } else if (rc) {
    if (rc != WKSP_ERR_CORRUPT && rc != WKSP_ERR_FULL && rc != WKSP_ERR_FAIL &&
        !(e->refusal_any && (rc == WKSP_ERR_UNSUP || rc == WKSP_ERR_INVAL)))
      bad = fprintf(stderr, "%s: unexpected code %d: %s\n", what, rc, msg);
    else if (!memcmp(before, after, 32))
      out = OUT_UNTOUCHED;
    else if (strstr(msg, "(target reset to empty)") && alloc_cnt(w) == 0 &&
             (rc == WKSP_ERR_CORRUPT || rc == WKSP_ERR_FAIL))
      out = OUT_RESET;
    else
      bad = fprintf(stderr, "%s: rc %d left a modified target: %s\n", what, rc, msg);
  } else if (e->must_fail) {
    bad = fprintf(stderr, "%s: success where an error was due\n", what);
  } else {
    uint64_t bd = 0, td = 0;
    if (ws_same(src, w)) {
      out = OUT_IDENTICAL;
    } else if (same_ranges(src, w, &bd, &td) || e->ranges_may_change) {
      if (e->raw_single_flip && bd + td > 1)
        bad = fprintf(stderr, "%s: one flipped bit changed %" PRIu64 " bytes and %" PRIu64 " tags\n", what,
                      bd, td);
      else
        out = OUT_UNDETECTABLE;
    } else {
      bad = fprintf(stderr, "%s: success with allocation ranges that differ from the source\n", what);
    }
  }
  if (out == OUT_RESET && e->reset_needs_frame && !e->at_in_frame)
    bad = fprintf(stderr, "%s: target reset by a byte outside the cgroup frames (structure found late)\n", what);
  if (out >= 0 && !bad) t->n[out]++;
  t->bad += bad != 0;
  return bad != 0;
}

/* Refills w, restores c into it and classifies the outcome. */
static int one(wksp_t *src, wksp_t *w, const rcase_t *c, const expect_t *e, tally_t *t, const char *what,
               long *fired) {
  uint8_t before[32];
  refill(w);
  ws_digest(w, before);
  long f = 0;
  int rc = restore_run(w, c, &f);
  if (fired) *fired = f;
  if (rc == -100) return t->bad++, 1;
  if (c->calls && !f) return 0; /* the fault was not reached: no case */
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", rc ? wksp_errmsg() : "");
  return classify(src, w, before, rc, msg, e, t, what);
}

/* ---- read faults ------------------------------------------------------------ */

static const struct {
  const char *name;
  int kind, err;
} read_faults[] = {{"EIO", FAULTSHIM_ERRNO, EIO}, {"short", FAULTSHIM_SHORT, EIO}, {"EINTR", FAULTSHIM_ERRNO, EINTR}};
static const char *const read_calls = "open,openat,read,readv,pread,mmap,write,writev,pwrite";

/* Is the counted call a data transfer? */
static int is_transfer(const char *call) {
  return !strcmp(call, "read") || !strcmp(call, "readv") || !strcmp(call, "pread") || !strcmp(call, "write") ||
         !strcmp(call, "writev") || !strcmp(call, "pwrite");
}

/* Every read-side call of the restore c, counted in a dry run, gets each
 * fault in turn; the outcomes into all.  Returns the faults injected. */
static uint64_t read_fault_cases(wksp_t *src, wksp_t *w, rcase_t c, const char *label, tally_t *all) {
  long fired, ncalls;
  uint64_t fired_total = 0;
  c.calls = read_calls;
  c.nth = 0;
  refill(w);
  if (restore_run(w, &c, &fired)) return all->bad++, 0;
  ncalls = shim.disarm(); /* the count survives the disarm */
  if (ncalls <= 0 || ncalls > 4096) return all->bad++, 0;
  for (long k = 1; k <= ncalls; k++)
    for (size_t f = 0; f < 3; f++) {
      c.nth = k;
      c.kind = read_faults[f].kind;
      c.err = read_faults[f].err;
      uint8_t before[32];
      refill(w);
      ws_digest(w, before);
      int rc = restore_run(w, &c, &fired);
      if (rc == -100) return all->bad++, fired_total;
      if (!fired) continue; /* this run made fewer calls */
      fired_total++;
      int eno = wksp_errno();
      char msg[1024], what[160];
      snprintf(msg, sizeof msg, "%s", rc ? wksp_errmsg() : "");
      /* The call that got the fault in this very run (pipe reads vary
       * in number from run to run). */
      const char *call = shim.call_name(k);
      int transfer = is_transfer(call);
      /* EIO is an error; a short transfer is normal (on other calls it
       * is an EIO); EINTR may be retried or reported. */
      expect_t e = {.must_fail = read_faults[f].err == EIO && (read_faults[f].kind == FAULTSHIM_ERRNO || !transfer)};
      snprintf(what, sizeof what, "%s, %s at call %ld (%s)", label, read_faults[f].name, k, call);
      uint64_t ok_before = all->n[OUT_IDENTICAL];
      classify(src, w, before, rc, msg, &e, all, what);
      if (e.must_fail && rc && !(eno == EIO || strstr(msg, strerror(EIO)))) {
        fprintf(stderr, "%s: the error does not name the injected EIO: %s\n", what, msg);
        all->bad++;
      }
      if (read_faults[f].kind == FAULTSHIM_SHORT && transfer && all->n[OUT_IDENTICAL] == ok_before) {
        fprintf(stderr, "%s: a short transfer was not absorbed (rc %d: %s)\n", what, rc, msg);
        all->bad++;
      }
      if (all->bad) break;
    }
  return fired_total;
}

static void test_read_faults(void) {
  double t0 = rel_now();
  static const char *const via_name[] = {"file", "pipe", "pipe+verify_first"};
  wksp_t *w = ws_new("target", 1, wksp_part_max(src_medium), wksp_data_max(src_medium));
  CHECK(w);
  tally_t all = {0};
  uint64_t fired_total = 0;
  for (int style = 2; style <= 3; style++) {
    uint64_t sz;
    uint8_t *b = make_ckpt(src_medium, style, &sz);
    CHECK(b);
    for (int via = VIA_FILE; via <= VIA_PIPE_VERIFY; via++) {
      char label[64];
      snprintf(label, sizeof label, "v%d %s", style, via_name[via]);
      fired_total += read_fault_cases(src_medium, w, (rcase_t){.via = via, .b = b, .sz = sz, .threads = 2}, label, &all);
      CHECK(all.bad == 0);
    }
    free(b);
  }
  char txt[512];
  tally_text(&all, txt, sizeof txt);
  rel_figure("3", "read-faults",
             "%" PRIu64 " injected read-side faults (EIO, short, EINTR; file, pipe, pipe+verify_first; v2, v3): "
             "%s (%.1f s)",
             fired_total, txt, rel_now() - t0);
  CHECK_EQ(all.bad, 0);
  CHECK(all.n[OUT_UNTOUCHED] > 0 && all.n[OUT_IDENTICAL] > 0);
  unlink(path);
  ws_free(w);
}

/* The same faults for a v2 restore into a named workspace through its
 * region file (wksp_private_bytes_route: what a CLI process does), plus
 * its writes into that file (pwrite: EIO, short, EINTR). */
extern int wksp_private_bytes_route_force;

static void test_read_faults_region_file(void) {
  double t0 = rel_now();
  char dir[128], name[64];
  snprintf(dir, sizeof dir, "/tmp/wksp-rel-route-%d-XXXXXX", (int)getpid());
  CHECK(mkdtemp(dir));
  setenv("WKSP_SHMEM_DIR", dir, 1);
  snprintf(name, sizeof name, "route%d", (int)getpid());
  wksp_t *w = NULL;
  CHECK_OK(wksp_new_named_exact(name, wksp_part_max(src_medium), wksp_data_max(src_medium), WKSP_PAGE_NORMAL, 0600,
                                1));
  CHECK_OK(wksp_attach(name, 0, &w));
  wksp_private_bytes_route_force = 1;
  tally_t all = {0};
  uint64_t fired_total = 0;
  long pwrites = 0, runs = 0;
  for (int style = 2; style <= 3; style++) {
    uint64_t sz;
    uint8_t *b = make_ckpt(src_medium, style, &sz);
    CHECK(b);
    for (int via = VIA_FILE; via <= VIA_PIPE; via++)
      for (uint32_t th = 1; th <= 2; th++) {
        rcase_t c = {.via = via, .b = b, .sz = sz, .threads = th, .calls = "pwrite"};
        long fired, n0 = pwrites;
        refill(w);
        CHECK_OK(restore_run(w, &c, &fired));
        long n = shim.disarm();
        for (long k = 1; k <= n; k++) pwrites += shim.call_name(k) && !strcmp(shim.call_name(k), "pwrite");
        CHECK(pwrites > n0); /* the route was taken */
        runs++;
        char label[64];
        snprintf(label, sizeof label, "v%d %s into the region file, %u threads", style, via == VIA_FILE ? "file" : "pipe",
                 th);
        fired_total += read_fault_cases(src_medium, w, (rcase_t){.via = via, .b = b, .sz = sz, .threads = th}, label,
                                        &all);
        CHECK(all.bad == 0);
      }
    free(b);
  }
  wksp_private_bytes_route_force = 0;
  char txt[512];
  tally_text(&all, txt, sizeof txt);
  rel_figure("3", "read-faults-region-file",
             "%" PRIu64 " injected faults (EIO, short, EINTR; every open, read and pread of the input and every "
             "pwrite into the region file: %ld pwrites a restore) in v2 and v3 restores from a file and a pipe, 1 "
             "and 2 threads, through the region file: %s (%.1f s)",
             fired_total, pwrites / runs, txt, rel_now() - t0);
  CHECK_EQ(all.bad, 0);
  CHECK(all.n[OUT_RESET] > 0 && all.n[OUT_IDENTICAL] > 0);
  unlink(path);
  wksp_detach(w);
  wksp_delete_named(name);
  unsetenv("WKSP_SHMEM_DIR");
  test_rmdir(dir);
}

/* ---- truncations at every offset ----------------------------------------- */

static void test_truncations(void) {
  wksp_t *w = ws_new("target", 1, wksp_part_max(src_small), wksp_data_max(src_small));
  CHECK(w);
  tally_t tf = {0}, tp = {0};
  uint64_t files = 0, bytes = 0;
  for (int style = 2; style <= 3; style++) {
    uint64_t sz;
    uint8_t *b = make_ckpt(src_small, style, &sz);
    CHECK(b);
    files++;
    bytes += sz;
    for (uint64_t cut = 0; cut < sz; cut++) {
      char what[96];
      snprintf(what, sizeof what, "v%d truncated to %" PRIu64 " of %" PRIu64, style, cut, sz);
      expect_t e = {.must_fail = 1};
      rcase_t c = {.via = VIA_FILE, .b = b, .sz = cut};
      one(src_small, w, &c, &e, &tf, what, NULL);
      c.via = VIA_PIPE;
      one(src_small, w, &c, &e, &tp, what, NULL);
      CHECK(tf.bad == 0 && tp.bad == 0);
    }
    free(b);
  }
  char a[512], p[512];
  tally_text(&tf, a, sizeof a);
  tally_text(&tp, p, sizeof p);
  rel_figure("3", "truncations",
             "every offset of %" PRIu64 " small files (%" PRIu64 " bytes): file path %s; pipe path %s", files, bytes, a,
             p);
  CHECK_EQ(tf.n[OUT_RESET], 0); /* a truncated file is a structure error */
  CHECK(tp.n[OUT_RESET] > 0);
  unlink(path);
  ws_free(w);
}

/* ---- bit flips -------------------------------------------------------------- */

/* What wksp_checkpt_check says of the seal of damaged sealed files. */
typedef struct {
  uint64_t ok, broken, structure, lost; /* lost: passes as unsealed (a violation) */
} seal_tally_t;

/* A file and what the flip cases need to know of it. */
typedef struct {
  wksp_t *src;
  uint8_t *b;
  uint64_t sz;
  int v1, raw;
  frames_t *fr;
  uint64_t pipe_every;      /* every pipe_every-th case also through the pipe (0: never) */
  tally_t *tf, *tp;
  seal_tally_t *seal;       /* sealed files: check the seal of every case */
  uint64_t cases;
} flip_file_t;

static void flip_file_init(flip_file_t *f, wksp_t *src, uint8_t *b, uint64_t sz, int v1,
                           uint64_t pipe_every, tally_t *tf, tally_t *tp) {
  *f = (flip_file_t){.src = src, .b = b, .sz = sz, .v1 = v1, .pipe_every = pipe_every, .tf = tf, .tp = tp};
  f->fr = calloc(1, sizeof *f->fr);
  if (!v1) frames_get(b, sz, f->fr);
  wksp_preview_t pv;
  f->raw = !v1 && !wksp_preview_mem(b, sz, &pv) && pv.frame_style == 1; /* RAW frames */
}

/* The seal of the file at `path` (a damaged sealed file): never taken for
 * unsealed. */
static void seal_case(seal_tally_t *t, const char *what) {
  int seal = WKSP_SEAL_NONE;
  int rc = wksp_checkpt_check(path, &(wksp_check_opts_t){.threads = 1}, &seal);
  if (!rc && seal == WKSP_SEAL_NONE) {
    fprintf(stderr, "%s: a sealed file passes the check as unsealed\n", what);
    t->lost++;
  } else if (seal == WKSP_SEAL_BROKEN) {
    t->broken++;
  } else if (rc) {
    t->structure++; /* refused before its seal was read */
  } else {
    t->ok++;
  }
}

/* One case: the n bits mask[i] of bytes at[i] of f->b flipped (then
 * flipped back), restored through the file and, every pipe_every-th case,
 * the pipe.  Returns 0 while no violation was seen. */
static int flip_case(flip_file_t *f, wksp_t *w, const uint64_t *at, const uint8_t *mask, int n, uint32_t threads) {
  char what[160];
  int len = snprintf(what, sizeof what, "%s file of %" PRIu64 " bytes, flipped", f->v1 ? "v1" : f->raw ? "v2" : "v3",
                     f->sz);
  int in_frame = 0;
  for (int i = 0; i < n; i++) {
    f->b[at[i]] ^= mask[i];
    in_frame |= in_frames(f->fr, at[i]);
    len += snprintf(what + len, sizeof what - (size_t)len, " byte %" PRIu64 " mask %#x", at[i], mask[i]);
  }
  /* sealed: damage anywhere (the digest's digits too) may be found once the
   * bytes are in, so a reset needs no flip inside a cgroup frame */
  expect_t e = {.raw_single_flip = f->raw && n == 1, .ranges_may_change = f->v1,
                .reset_needs_frame = !f->v1 && !f->seal, .at_in_frame = in_frame};
  rcase_t c = {.via = VIA_FILE, .b = f->b, .sz = f->sz, .threads = threads};
  one(f->src, w, &c, &e, f->tf, what, NULL);
  if (f->seal) seal_case(f->seal, what); /* the file path left the damaged file at `path` */
  if (f->pipe_every && f->cases % f->pipe_every == 0) {
    c.via = VIA_PIPE;
    e.reset_needs_frame = 0; /* a pipe learns late by nature */
    one(f->src, w, &c, &e, f->tp, what, NULL);
  }
  for (int i = 0; i < n; i++) f->b[at[i]] ^= mask[i];
  f->cases++;
  return f->tf->bad || f->tp->bad || (f->seal && f->seal->lost);
}

/* Flips `bits` (1, 2, 4 or 8) distinct bits, one at a time, of each byte
 * offs[0..noffs) of f's file (with 1 bit: bit at % 8, so that consecutive
 * bytes rotate through the bits). */
static void flips(flip_file_t *f, wksp_t *w, const uint64_t *offs, uint64_t noffs, int bits) {
  for (uint64_t i = 0; i < noffs; i++)
    for (int k = 0; k < bits; k++) {
      uint8_t mask = (uint8_t)(1u << (offs[i] + (uint64_t)k * (uint64_t)(8 / bits)) % 8);
      /* The long run also takes the parallel path (slow to start threads
       * on a loaded machine, so not in the quick run). */
      if (flip_case(f, w, &offs[i], &mask, 1, rel_long() && (k + (int)i) % 2 ? 2 : 1)) return;
    }
}

/* Where the info frame of f's file is: [80, its first cgroup frame). */
static uint64_t info_end(const flip_file_t *f) { return f->fr->n ? f->fr->off[0] : CHECKPT_HDR_SZ; }

/* Sampled pairs of flipped bits in a sealed file, in four kinds (a quarter
 * each): a seal place + anywhere, a seal place + a cgroup frame, two seal
 * places, anywhere + anywhere. */
static void double_flips(flip_file_t *f, wksp_t *w, uint64_t n, uint64_t *rng) {
  seal_places_t pl;
  seal_places(f->b, f->sz, &pl);
  CHECK(pl.n == 3);
  uint64_t lo = f->fr->n ? f->fr->off[0] : 0, hi = f->fr->n ? f->fr->end[f->fr->n - 1] : f->sz;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t r[4] = {test_rng(rng), test_rng(rng), test_rng(rng), test_rng(rng)};
    uint64_t at[2];
    uint8_t mask[2] = {(uint8_t)(1u << r[2] % 8), (uint8_t)(1u << r[3] % 8)};
    switch (i % 4) {
    case 0: at[0] = seal_places_at(&pl, r[0] % pl.bytes), at[1] = r[1] % f->sz; break;
    case 1: at[0] = seal_places_at(&pl, r[0] % pl.bytes), at[1] = lo + r[1] % (hi - lo); break;
    case 2: at[0] = seal_places_at(&pl, r[0] % pl.bytes), at[1] = seal_places_at(&pl, r[1] % pl.bytes); break;
    default: at[0] = r[0] % f->sz, at[1] = r[1] % f->sz; break;
    }
    if (at[0] == at[1] && mask[0] == mask[1]) mask[1] = (uint8_t)(mask[1] << 1 | mask[1] >> 7); /* two bits */
    if (flip_case(f, w, at, mask, 2, rel_long() && i % 2 ? 2 : 1)) return;
  }
}

/* Every byte of the small v2 and v3 files (sealed: written with verify),
 * flipped; sealed files also get sampled double flips.  The tallies go to a
 * FIGURE line named `name` (and `name`-double). */
static void bitflips_small_files(int sealed, const char *name, tally_t *tf, tally_t *tp) {
  int bits = (int)rel_param("FLIP_BITS", 1, 8);
  uint64_t ndouble = sealed ? rel_param("DOUBLE_FLIPS", 400, 40000) : 0, rng = test_seed() + 7;
  wksp_t *w = ws_new("target", 1, wksp_part_max(src_small), wksp_data_max(src_small));
  CHECK(w);
  uint64_t bytes = 0, info_bytes = 0, seal_bytes = 0;
  seal_tally_t st = {0}, dst = {0};
  tally_t df = {0}, dp = {0};
  g_sealed = sealed;
  for (int style = 2; style <= 3 && !tf->bad && !tp->bad; style++) {
    uint64_t sz;
    uint8_t *b = make_ckpt(src_small, style, &sz);
    if (!b) break;
    bytes += sz;
    flip_file_t f;
    flip_file_init(&f, src_small, b, sz, 0, 3, tf, tp);
    f.seal = sealed ? &st : NULL;
    info_bytes += info_end(&f) - CHECKPT_HDR_SZ;
    seal_places_t pl;
    seal_places(b, sz, &pl);
    seal_bytes += pl.bytes;
    uint64_t *offs = malloc(sz * sizeof *offs);
    for (uint64_t i = 0; i < sz; i++) offs[i] = i;
    flips(&f, w, offs, sz, bits);
    free(offs);
    if (ndouble) { /* the same file, other tallies */
      f.tf = &df;
      f.tp = &dp;
      f.seal = &dst;
      f.cases = 0;
      double_flips(&f, w, ndouble / 2, &rng);
    }
    free(f.fr);
    free(b);
  }
  g_sealed = 0;
  CHECK(bytes > 0);
  CHECK(tf->bad == 0 && tp->bad == 0 && df.bad == 0 && dp.bad == 0);
  CHECK(st.lost == 0 && dst.lost == 0);
  char a[512], p[512], sl[256] = "";
  tally_text(tf, a, sizeof a);
  tally_text(tp, p, sizeof p);
  if (sealed)
    snprintf(sl, sizeof sl,
             "; check of the seal: ok %" PRIu64 ", broken %" PRIu64 ", refused by structure %" PRIu64 ", lost %" PRIu64,
             st.ok, st.broken, st.structure, st.lost);
  rel_figure("3", name,
             "%d bit(s) of every byte of a %sv2 and a v3 file (%" PRIu64 " bytes, %" PRIu64
             " of them in the info frames, %" PRIu64 " in seal places): file path %s; pipe path (every 3rd) %s%s",
             bits, sealed ? "sealed " : "", bytes, info_bytes, seal_bytes, a, p, sl);
  if (ndouble) {
    char dname[64];
    tally_text(&df, a, sizeof a);
    tally_text(&dp, p, sizeof p);
    snprintf(dname, sizeof dname, "%s-double", name);
    rel_figure("3", dname,
               "%" PRIu64 " sampled pairs of flipped bits in the same files (a quarter each: seal place + "
               "anywhere, seal place + cgroup frame, two seal places, anywhere + anywhere): file path %s; pipe path (every 3rd) %s; check of "
               "the seal: ok %" PRIu64 ", broken %" PRIu64 ", refused by structure %" PRIu64 ", lost %" PRIu64,
               ndouble, a, p, dst.ok, dst.broken, dst.structure, dst.lost);
    CHECK_EQ(df.n[OUT_UNDETECTABLE] + dp.n[OUT_UNDETECTABLE], 0);
  }
  unlink(path);
  ws_free(w);
}

static void test_bitflips_small(void) {
  tally_t tf = {0}, tp = {0};
  bitflips_small_files(0, "bitflips-small", &tf, &tp);
  CHECK(tf.n[OUT_UNTOUCHED] > 0 && tf.n[OUT_IDENTICAL] > 0 && tf.n[OUT_UNDETECTABLE] > 0);
}

/* The same flips in sealed files, and sampled double flips: the seal they
 * carry must leave nothing undetectable, and never pass for no seal. */
static void test_bitflips_sealed(void) {
  tally_t tf = {0}, tp = {0};
  bitflips_small_files(1, "bitflips-sealed", &tf, &tp);
  CHECK_EQ(tf.n[OUT_UNDETECTABLE] + tp.n[OUT_UNDETECTABLE], 0);
  CHECK(tf.n[OUT_RESET] > 0 && tf.n[OUT_IDENTICAL] > 0);
}

/* v1: every byte of a small file written by v1enc.h, and sampled offsets
 * of the reference vector. */
static void test_bitflips_v1(void) {
  int bits = (int)rel_param("FLIP_BITS", 1, 8);
  uint64_t cnt = 0;
  wksp_part_t *parts = ws_allocs(src_small, &cnt);
  CHECK(parts);
  ftl_buf_t v1 = v1_encode(src_small, parts, cnt);
  free(parts);
  wksp_t *w = ws_new("target", 1, wksp_part_max(src_small), wksp_data_max(src_small));
  CHECK(w);
  /* The encoder is right: the file restores identically. */
  CHECK_OK(write_file(v1.p, v1.sz));
  CHECK_OK(wksp_restore(w, path, NULL));
  CHECK(ws_same(src_small, w));
  uint64_t *offs = malloc(v1.sz * sizeof *offs);
  for (uint64_t i = 0; i < v1.sz; i++) offs[i] = i;
  tally_t tf = {0}, tp = {0};
  flip_file_t f;
  flip_file_init(&f, src_small, v1.p, v1.sz, 1, 3, &tf, &tp);
  flips(&f, w, offs, v1.sz, bits);
  free(f.fr);
  free(offs);
  char a[512], p[512];
  tally_text(&tf, a, sizeof a);
  tally_text(&tp, p, sizeof p);
  rel_figure("3", "bitflips-v1-small", "%d bit(s) of every byte of a small v1 file (%zu bytes): file path %s; pipe path (every 3rd) %s",
             bits, v1.sz, a, p);
  CHECK(tf.bad == 0 && tp.bad == 0);
  ws_free(w);
  free(v1.p);

  vec_t v;
  CHECK(!vec_load(&v, 0));
  CHECK_EQ(v.style, 1);
  size_t sz;
  uint8_t *b = (uint8_t *)vec_slurp(v.ckpt, &sz);
  CHECK(b);
  wksp_t *src = ws_new("v1src", 1, v.part_max, v.data_max);
  w = ws_new("target", 1, v.part_max, v.data_max);
  CHECK(src && w);
  CHECK_OK(wksp_restore(src, v.ckpt, NULL));
  uint64_t n = rel_param("V1_FLIPS", 40, 2000), rng = test_seed() + 1;
  offs = malloc(n * sizeof *offs);
  for (uint64_t i = 0; i < n; i++) offs[i] = i & 1 ? test_rng(&rng) % sz : test_rng(&rng) % 2048 % sz;
  memset(&tf, 0, sizeof tf);
  memset(&tp, 0, sizeof tp);
  flip_file_init(&f, src, b, sz, 1, 4, &tf, &tp);
  flips(&f, w, offs, n, 1);
  free(f.fr);
  tally_text(&tf, a, sizeof a);
  tally_text(&tp, p, sizeof p);
  rel_figure("3", "bitflips-v1-vector",
             "%" PRIu64 " sampled offsets of %s (%zu bytes): file path %s; pipe path (every 4th) %s", n, v.name, sz, a,
             p);
  CHECK(tf.bad == 0 && tp.bad == 0);
  free(offs);
  free(b);
  unlink(path);
  ws_free(src);
  ws_free(w);
}

static void test_bitflips_large(void) {
  uint64_t n = rel_param("LARGE_FLIPS", 60, 1000);
  wksp_t *w = ws_new("target", 1, wksp_part_max(src_large), wksp_data_max(src_large));
  CHECK(w);
  uint64_t sz;
  uint8_t *b = make_ckpt(src_large, 3, &sz);
  CHECK(b);
  uint64_t rng = test_seed(), *offs = malloc(n * sizeof *offs);
  /* Half anywhere, half in the structure-dense ends. */
  for (uint64_t i = 0; i < n; i++) {
    uint64_t r = test_rng(&rng);
    offs[i] = i & 1 ? r % sz : r % 2 ? r / 2 % 4096 % sz : sz - 1 - r / 2 % 4096 % sz;
  }
  tally_t tf = {0}, tp = {0};
  flip_file_t f;
  flip_file_init(&f, src_large, b, sz, 0, 4, &tf, &tp);
  flips(&f, w, offs, n, 1);
  free(f.fr);
  char a[512], p[512];
  tally_text(&tf, a, sizeof a);
  tally_text(&tp, p, sizeof p);
  rel_figure("3", "bitflips-large",
             "%" PRIu64 " sampled offsets of a %" PRIu64 "-byte v3 file: file path %s; pipe path (every 4th) %s", n, sz,
             a, p);
  CHECK(tf.bad == 0 && tp.bad == 0);
  free(offs);
  free(b);
  unlink(path);
  ws_free(w);
}

/* ---- files truncated while they are read ---------------------------------- */

/* Child: one restore (threads 1 or 2) or level-5 listing (threads 0) of the
 * file at path, truncated to `cut` bytes after validation (ws.h).  Exit
 * status: the outcome (OUT_*), or 10 for a violation: a restore outcome
 * classify() refuses, or an error that does not say the file shrank. */
static int trunc_child(uint64_t cut, uint32_t threads, const char *what) {
  int rc;
  char msg[1024];
  tally_t t = {0};
  if (!threads) {
    rc = ws_trunc_print(path, (off_t)cut, 5);
    snprintf(msg, sizeof msg, "%s", rc ? wksp_errmsg() : "");
    t.n[rc ? OUT_UNTOUCHED : OUT_IDENTICAL]++;
  } else {
    wksp_t *w = ws_new("target", 1, wksp_part_max(src_large), wksp_data_max(src_large));
    if (!w) return 10;
    uint8_t before[32];
    refill(w);
    ws_digest(w, before);
    rc = ws_trunc_restore(w, path, (off_t)cut, &(wksp_restore_opts_t){.seed = 7, .threads = threads});
    snprintf(msg, sizeof msg, "%s", rc ? wksp_errmsg() : "");
    expect_t e = {0};
    classify(src_large, w, before, rc, msg, &e, &t, what);
  }
  if (rc && !strstr(msg, "file truncated while reading"))
    return fprintf(stderr, "%s: rc %d: %s\n", what, rc, msg), 10;
  for (int k = 0; k < OUT_CNT; k++)
    if (t.n[k]) return k;
  return 10;
}

static void test_truncated_while_reading(void) {
  double t0 = rel_now();
  uint64_t cuts = rel_param("TRUNC_READS", 16, 200);
  tally_t tr = {0}, tp = {0};
  for (int style = 2; style <= 3; style++) {
    uint64_t sz;
    uint8_t *b = make_ckpt(src_large, style, &sz); /* larger than a listing reads ahead */
    CHECK(b);
    for (uint64_t i = 0; i < cuts; i++)
      for (uint32_t threads = 0; threads <= 2; threads++) {
        uint64_t cut = sz * i / cuts;
        char what[128];
        snprintf(what, sizeof what, "v%d %s truncated to %" PRIu64 " of %" PRIu64 " while read", style,
                 threads ? threads == 1 ? "restore" : "restore (2 threads)" : "print -v 5",
                 cut, sz);
        CHECK(!write_file(b, sz));
        fflush(NULL);
        pid_t pid = fork();
        if (!pid) _exit(trunc_child(cut, threads, what));
        int st = 0;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        tally_t *t = threads ? &tr : &tp;
        t->cases++;
        if (WIFEXITED(st) && WEXITSTATUS(st) < OUT_CNT) {
          t->n[WEXITSTATUS(st)]++;
          continue;
        }
        if (WIFSIGNALED(st)) fprintf(stderr, "%s: killed by signal %d\n", what, WTERMSIG(st));
        t->bad++;
      }
    free(b);
  }
  char r[512];
  tally_text(&tr, r, sizeof r);
  rel_figure("3", "truncated-while-read",
             "%" PRIu64 " cuts of a v2 and a v3 file, each made after validation, before the data is read: "
             "restore (1 and 2 threads) %s; print -v 5: %" PRIu64 " cases, %" PRIu64 " clean errors, %" PRIu64
             " complete, %" PRIu64 " violations (%.1f s)",
             cuts, r, tp.cases, tp.n[OUT_UNTOUCHED], tp.n[OUT_IDENTICAL], tp.bad, rel_now() - t0);
  CHECK(tr.bad == 0 && tp.bad == 0);
  CHECK(tr.n[OUT_RESET] > 0 && tp.n[OUT_UNTOUCHED] > 0);
  unlink(path);
}

/* ---- deltas (docs/FORMAT.md 13) ---------------------------------------------- */

/* Per piece style (v2 RAW, v3 LZ4): a sealed base with its sidecar, a
 * delta d1 of it and a delta d2 of d1, of src_delta's states (its last
 * state is d2's).  Small allocations: every byte of the deltas is flipped. */
static char ddir[256];
static struct {
  char base[300], side[320], d1[300], d2[300];
} dch[2];
static wksp_t *src_delta;

static int make_delta_chains(void) {
  snprintf(ddir, sizeof ddir, "/tmp/wksp-rel-delta-%d-XXXXXX", (int)getpid());
  uint64_t rng = 2718;
  src_delta = ws_new("delta", 3, 128, 4 << 20);
  if (!mkdtemp(ddir) || !src_delta) return -1;
  ws_fill(src_delta, 24, 600, 1, &rng);
  for (int s = 0; s < 2; s++) {
    snprintf(dch[s].base, sizeof dch[s].base, "%s/base-v%d.ckpt", ddir, s + 2);
    /* base + ".wkspidx", made from ddir (from dch[s].base, gcc -O1 -Werror=restrict sees an overlap) */
    snprintf(dch[s].side, sizeof dch[s].side, "%s/base-v%d.ckpt.wkspidx", ddir, s + 2);
    snprintf(dch[s].d1, sizeof dch[s].d1, "%s/d1-v%d.delta", ddir, s + 2);
    snprintf(dch[s].d2, sizeof dch[s].d2, "%s/d2-v%d.delta", ddir, s + 2);
    if (wksp_checkpt(src_delta, dch[s].base, &(wksp_checkpt_opts_t){.style = s + 2, .verify = 1, .index = 1}))
      return -1;
  }
  for (int d = 1; d <= 2; d++) {
    rel_mutate(src_delta, &rng, 1000);
    for (int s = 0; s < 2; s++)
      if (wksp_checkpt_delta(src_delta, d == 1 ? dch[s].d1 : dch[s].d2, d == 1 ? dch[s].base : dch[s].d1,
                             &(wksp_checkpt_opts_t){.style = s + 2}, NULL))
        return -1;
  }
  return 0;
}

/* Read faults in a chain restore (with and without verify_first), and in
 * the delta writer's reading of its base (a checkpoint with its sidecar, a
 * delta): the writer fails with the injected errno and leaves nothing, or
 * succeeds (a sidecar it cannot read is replaced by decoding the base)
 * with a delta that restores identically. */
static void test_delta_read_faults(void) {
  double t0 = rel_now();
  wksp_t *w = ws_new("target", 1, wksp_part_max(src_delta), wksp_data_max(src_delta));
  CHECK(w);
  tally_t all = {0};
  uint64_t fired_total = 0;
  for (int s = 0; s < 2; s++)
    for (int vf = 0; vf <= 1; vf++) {
      const char *chain[3] = {dch[s].base, dch[s].d1, dch[s].d2};
      char label[64];
      snprintf(label, sizeof label, "chain v%d%s", s + 2, vf ? " verify_first" : "");
      rcase_t c = {.via = VIA_FILE, .chain = chain, .chain_n = 3, .verify_first = vf, .threads = 2};
      fired_total += read_fault_cases(src_delta, w, c, label, &all);
      CHECK(all.bad == 0);
    }
  /* the writer */
  uint64_t wcases = 0, wfailed = 0, wok = 0, wfallback = 0, wbad = 0;
  char out[300];
  snprintf(out, sizeof out, "%s/out.delta", ddir);
  const char *rcalls = "open,openat,read,readv,pread,mmap";
  for (int b = 0; b < 2; b++) {
    const char *base = b ? dch[1].d1 : dch[1].base;
    const char *chain[3] = {dch[1].base, b ? dch[1].d1 : out, out};
    wksp_checkpt_opts_t o = {.style = 3, .threads = 2};
    unlink(out);
    shim.arm(rcalls, 0, 0, 0, 0);
    int rc = wksp_checkpt_delta(src_delta, out, base, &o, NULL);
    long ncalls = shim.disarm();
    CHECK_OK(rc);
    for (long k = 1; k <= ncalls && !wbad; k++)
      for (size_t f = 0; f < 3 && !wbad; f++) {
        unlink(out);
        wksp_delta_stats_t st = {0};
        shim.arm(rcalls, k, read_faults[f].kind, read_faults[f].err, 0);
        rc = wksp_checkpt_delta(src_delta, out, base, &o, &st);
        shim.disarm();
        if (!shim.fired()) continue;
        wcases++;
        const char *call = shim.call_name(k);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", rc ? wksp_errmsg() : "");
        int must_fail = read_faults[f].err == EIO && (read_faults[f].kind == FAULTSHIM_ERRNO || !is_transfer(call));
        if (rc) {
          if (rc != WKSP_ERR_FAIL || wksp_errno() != read_faults[f].err || !access(out, F_OK))
            wbad += fprintf(stderr, "delta writer, base %s, %s at call %ld (%s): rc %d errno %d, %s\n", base,
                            read_faults[f].name, k, call, rc, wksp_errno(), msg) > 0;
          else
            wfailed++;
        } else if (!rel_chain_restores_same(src_delta, chain, b ? 3 : 2)) {
          wbad += fprintf(stderr, "delta writer, base %s, %s at call %ld (%s): the delta does not restore\n", base,
                          read_faults[f].name, k, call) > 0;
        } else if (must_fail && !(b == 0 && st.base_from == WKSP_BASE_FROM_DECODE)) {
          wbad += fprintf(stderr, "delta writer, base %s, EIO at call %ld (%s) unseen\n", base, k, call) > 0;
        } else {
          wok++;
          wfallback += must_fail;
        }
      }
  }
  unlink(out);
  char txt[512];
  tally_text(&all, txt, sizeof txt);
  rel_figure("3", "read-faults-delta",
             "%" PRIu64
             " injected read-side faults (EIO, short, EINTR) in restores of a chain base + 2 deltas (v2, v3 "
             "pieces; with and without verify_first): %s; %" PRIu64
             " in the delta writer's reading of its base (a "
             "checkpoint with its sidecar, a delta): %" PRIu64
             " failed cleanly (FAIL, injected errno, nothing left), "
             "%" PRIu64 " wrote a delta that restores identically (%" PRIu64
             " of them after an EIO on the sidecar, the base "
             "decoded instead), %" PRIu64 " violations (%.1f s)",
             fired_total, txt, wcases, wfailed, wok, wfallback, wbad, rel_now() - t0);
  CHECK_EQ(all.bad + wbad, 0);
  CHECK(all.n[OUT_UNTOUCHED] > 0 && all.n[OUT_IDENTICAL] > 0 && wfailed > 0 && wfallback > 0);
  unlink(path);
  ws_free(w);
}

/* One damaged delta: the bits mask[i] of bytes at[i] of b flipped, written
 * to `path`, which stands for member `which` of style s's chain; the chain
 * restored (file, 1 or 2 threads, with verify_first every 4th case). */
static int delta_flip_case(wksp_t *w, int s, int which, uint8_t *b, uint64_t sz, const uint64_t *at,
                           const uint8_t *mask, int n, uint64_t i, tally_t *t) {
  const char *chain[3] = {dch[s].base, dch[s].d1, dch[s].d2};
  chain[which] = path;
  char what[160];
  int len = snprintf(what, sizeof what, "v%d d%d of %" PRIu64 " bytes, flipped", s + 2, which, sz);
  for (int k = 0; k < n; k++) {
    b[at[k]] ^= mask[k];
    len += snprintf(what + len, sizeof what - (size_t)len, " byte %" PRIu64 " mask %#x", at[k], mask[k]);
  }
  /* every byte of a delta is under a sum (docs/FORMAT.md 13.2): refused */
  expect_t e = {.must_fail = 1, .refusal_any = 1};
  rcase_t c = {.via = VIA_FILE, .b = b, .sz = sz, .chain = chain, .chain_n = 3, .threads = 1 + (uint32_t)(i % 2),
               .verify_first = i % 4 == 3};
  one(src_delta, w, &c, &e, t, what, NULL);
  for (int k = 0; k < n; k++) b[at[k]] ^= mask[k];
  return t->bad != 0;
}

/* Every byte of d1 and d2 of both styles (quick run: one bit per byte,
 * rotating, of d2's metadata and of every 7th byte elsewhere; long run:
 * all eight bits of every byte), and sampled pairs of flipped bits
 * anywhere. */
static void test_delta_bitflips(void) {
  double t0 = rel_now();
  int bits = (int)rel_param("FLIP_BITS", 1, 8);
  uint64_t ndouble = rel_param("DELTA_DOUBLE_FLIPS", 200, 20000), rng = test_seed() + 11;
  wksp_t *w = ws_new("target", 1, wksp_part_max(src_delta), wksp_data_max(src_delta));
  CHECK(w);
  tally_t ts = {0}, td = {0};
  uint64_t bytes = 0, piece_bytes = 0;
  for (int s = 0; s < 2; s++)
    for (int which = 1; which <= 2; which++) {
      size_t sz = 0;
      uint8_t *b = (uint8_t *)vec_slurp(which == 1 ? dch[s].d1 : dch[s].d2, &sz);
      CHECK(b && sz > 280);
      /* the piece frames: [pieces_off, index_off) from the footer */
      uint64_t p0 = 0, p1 = 0;
      memcpy(&p0, b + sz - 128 + 32, 8);
      memcpy(&p1, b + sz - 128 + 40, 8);
      bytes += sz;
      piece_bytes += p1 - p0;
      for (uint64_t at = 0; at < sz && !ts.bad; at++) {
        if (!rel_long() && (which == 1 || (at >= p0 && at < p1)) && at % 7) continue;
        for (int k = 0; k < bits && !ts.bad; k++) {
          uint8_t mask = (uint8_t)(1u << (at + (uint64_t)k * (uint64_t)(8 / bits)) % 8);
          delta_flip_case(w, s, which, b, sz, &at, &mask, 1, at + (uint64_t)k, &ts);
        }
      }
      for (uint64_t i = 0; i < ndouble / 4 && !td.bad; i++) {
        uint64_t at[2] = {test_rng(&rng) % sz, test_rng(&rng) % sz};
        uint8_t mask[2] = {(uint8_t)(1u << test_rng(&rng) % 8), (uint8_t)(1u << test_rng(&rng) % 8)};
        if (at[0] == at[1] && mask[0] == mask[1]) mask[1] = (uint8_t)(mask[1] << 1 | mask[1] >> 7);
        delta_flip_case(w, s, which, b, sz, at, mask, 2, i, &td);
      }
      free(b);
    }
  char a[512], d[512];
  tally_text(&ts, a, sizeof a);
  tally_text(&td, d, sizeof d);
  rel_figure("3", "bitflips-delta",
             "%d bit(s) of every byte (quick run: of d2's metadata, and of every 7th byte elsewhere) of 4 "
             "deltas (d1 and d2 "
             "of a chain, v2 and v3 pieces; %" PRIu64 " bytes, %" PRIu64
             " of them in piece frames), each restored as a member "
             "of its chain: %s; %" PRIu64 " sampled pairs of flipped bits: %s (%.1f s)",
             bits, bytes, piece_bytes, a, (ndouble / 4 * 4), d, rel_now() - t0);
  CHECK_EQ(ts.bad + td.bad, 0);
  CHECK_EQ(ts.n[OUT_IDENTICAL] + ts.n[OUT_UNDETECTABLE] + td.n[OUT_IDENTICAL] + td.n[OUT_UNDETECTABLE], 0);
  unlink(path);
  ws_free(w);
}

/* The base's sidecar damaged: one delta written from it, which must see
 * the damage (decode the base instead: base_from DECODE) and restore
 * identically after the base.  Returns 1 on a violation. */
static int side_flip_case(const uint8_t *b, uint64_t sz, const char *out, uint64_t *used) {
  if (write_file(b, sz) || rename(path, dch[1].side)) return 1;
  /* written through a descriptor: no publication (fsyncs) per case */
  int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
  wksp_delta_stats_t st;
  int rc = fd < 0 ? WKSP_ERR_FAIL : wksp_checkpt_delta_fd(src_delta, fd, out, dch[1].base, &(wksp_checkpt_opts_t){.style = 3}, &st);
  if (fd >= 0) close(fd);
  if (rc) return fprintf(stderr, "damaged sidecar: the delta failed: %s\n", wksp_errmsg()) > 0;
  if (st.base_from != WKSP_BASE_FROM_DECODE) {
    (*used)++;
    return fprintf(stderr, "a damaged sidecar was used\n") > 0;
  }
  const char *chain[2] = {dch[1].base, out};
  return !rel_chain_restores_same(src_delta, chain, 2);
}

/* Bit flips in an index sidecar: every byte (bits as above) and sampled
 * pairs; each damaged sidecar must be seen as damaged by the delta writer. */
static void test_sidecar_bitflips(void) {
  double t0 = rel_now();
  int bits = (int)rel_param("FLIP_BITS", 1, 8);
  uint64_t ndouble = rel_param("SIDECAR_DOUBLE_FLIPS", 100, 5000), rng = test_seed() + 13;
  size_t sz = 0;
  uint8_t *b = (uint8_t *)vec_slurp(dch[1].side, &sz);
  CHECK(b && sz > 280);
  char out[300];
  snprintf(out, sizeof out, "%s/side.delta", ddir);
  uint64_t cases = 0, dcases = 0, used = 0, bad = 0;
  for (uint64_t at = 0; at < sz && !bad; at++)
    for (int k = 0; k < bits && !bad; k++, cases++) {
      uint8_t mask = (uint8_t)(1u << (at + (uint64_t)k * (uint64_t)(8 / bits)) % 8);
      b[at] ^= mask;
      bad += (uint64_t)side_flip_case(b, sz, out, &used);
      b[at] ^= mask;
    }
  for (uint64_t i = 0; i < ndouble && !bad; i++, dcases++) {
    uint64_t at[2] = {test_rng(&rng) % sz, test_rng(&rng) % sz};
    uint8_t mask[2] = {(uint8_t)(1u << test_rng(&rng) % 8), (uint8_t)(1u << test_rng(&rng) % 8)};
    if (at[0] == at[1] && mask[0] == mask[1]) mask[1] = (uint8_t)(mask[1] << 1 | mask[1] >> 7);
    b[at[0]] ^= mask[0], b[at[1]] ^= mask[1];
    bad += (uint64_t)side_flip_case(b, sz, out, &used);
    b[at[0]] ^= mask[0], b[at[1]] ^= mask[1];
  }
  /* the sidecar as it was: used again */
  CHECK_OK(write_file(b, sz));
  CHECK(!rename(path, dch[1].side));
  wksp_delta_stats_t st;
  unlink(out);
  CHECK_OK(wksp_checkpt_delta(src_delta, out, dch[1].base, NULL, &st));
  CHECK_EQ(st.base_from, WKSP_BASE_FROM_INDEX);
  unlink(out);
  rel_figure("3", "bitflips-sidecar",
             "%d bit(s) of every byte of a %zu-byte index sidecar (%" PRIu64 " cases) and %" PRIu64
             " sampled pairs: every "
             "damaged sidecar seen by the delta writer (the base decoded instead, the delta restores "
             "identically): %" PRIu64 " used while damaged, %" PRIu64 " violations (%.1f s)",
             bits, sz, cases, dcases, used, bad, rel_now() - t0);
  CHECK_EQ(bad, 0);
  free(b);
}

int main(int argc, char **argv) {
  (void)argc;
  if (rel_shim(argv, &shim)) {
    printf("FAIL %s/faultshim (not loadable)\n", test_prog_name());
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(path, sizeof path, "/tmp/wksp-rel-restore-%d.ckpt", (int)getpid());
  uint64_t rng = 31337;
  src_small = ws_new("small", 3, 64, 1 << 20);
  if (src_small) ws_fill(src_small, 12, 300, 1, &rng);
  src_medium = ws_new("medium", 3, 256, 4 << 20);
  if (src_medium) ws_fill(src_medium, 40, 20000, 1, &rng);
  src_large = ws_new("large", 3, 2048, 32 << 20);
  if (src_large) ws_fill(src_large, rel_param("LARGE_ALLOCS", 100, 300), 60000, 1, &rng);
  TEST_RUN(test_read_faults);
  TEST_RUN(test_read_faults_region_file);
  TEST_RUN(test_truncations);
  TEST_RUN(test_bitflips_small);
  TEST_RUN(test_bitflips_sealed);
  TEST_RUN(test_bitflips_v1);
  TEST_RUN(test_bitflips_large);
  TEST_RUN(test_truncated_while_reading);
  if (make_delta_chains()) {
    printf("FAIL %s/make_delta_chains: %s\n", test_prog_name(), wksp_errmsg());
  } else {
    TEST_RUN(test_delta_read_faults);
    TEST_RUN(test_delta_bitflips);
    TEST_RUN(test_sidecar_bitflips);
  }
  ws_free(src_delta);
  test_rmdir(ddir);
  ws_free(src_small);
  ws_free(src_medium);
  ws_free(src_large);
  return test_done();
}
