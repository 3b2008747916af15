/* Promise 1: a process SIGKILLed while holding the workspace lock never
 * blocks the others, and no completed allocation is lost.
 *
 * Hook kills: on a named workspace in random states (random allocations,
 * sizes, alignments, tags; about a third freed), a child runs alloc, free,
 * tag_free, reset, rebuild or replace (the restore primitive) and stops
 * itself at one of the allocator's crash points (wksp_private_test_hook);
 * it is SIGKILLed there.  Every (operation, point) pair is visited
 * WKSP_REL_KILL_REPS times (quick 2, long 12).
 *
 * Random-time kills: a child runs a random mix of alloc / free / tag_free
 * and logs every completed operation in shared memory; it is SIGKILLed
 * after a random delay (WKSP_REL_RANDOM_KILLS: quick 20, long 400).
 *
 * Restore kills: a child restores a checkpoint of other allocations (v2,
 * v3, sealed v3: from the file and through a pipe; a chain of a sealed v3
 * base and a delta; 1 and 2 threads) into
 * the workspace in a random state and is SIGKILLed at a random instant
 * (WKSP_REL_RESTORE_KILLS: quick 48, long 800).  The workspace must then
 * be as it was (records and bytes), empty, or the whole checkpoint.
 *
 * After every kill the parent allocates at once (timed: the recovery
 * time), wksp_verify must pass, and every allocation that was complete
 * before the kill (or logged as completed) is still there with its tag,
 * range and bytes, unless the interrupted operation removed it, all or
 * nothing.  Printed: kills, recovery time (median, max), allocations lost. */
#include "../lib/rel.h"
#include "../lib/crash_points.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum { PART_MAX = 512, LIST_MAX = PART_MAX, NEW_TAG = 77, MINE_TAG = 99 };

static char shm_dir[256];
static wksp_t *w;

/* ---- allocation lists ------------------------------------------------------ */

typedef struct {
  wksp_part_t p[LIST_MAX];
  size_t n;
} alist_t;

static int alist_get(alist_t *a, int with_free) {
  size_t n = 0;
  static wksp_part_t all[LIST_MAX];
  int r = wksp_part_list(w, all, LIST_MAX, &n);
  a->n = 0;
  for (size_t i = 0; !r && i < n && i < LIST_MAX; i++)
    if (with_free || all[i].tag) a->p[a->n++] = all[i];
  return r;
}

static int alist_has(const alist_t *a, wksp_part_t p) {
  for (size_t i = 0; i < a->n; i++)
    if (a->p[i].gaddr_lo == p.gaddr_lo && a->p[i].gaddr_hi == p.gaddr_hi && a->p[i].tag == p.tag) return 1;
  return 0;
}

static uint8_t pattern(uint64_t g) { return (uint8_t)(g * 131 + (g >> 8) + 7); }

static void fill(wksp_part_t p) {
  uint8_t *b = (uint8_t *)w;
  for (uint64_t g = p.gaddr_lo; g < p.gaddr_hi; g++) b[g] = pattern(g);
}

static int intact(wksp_part_t p) {
  const uint8_t *b = (const uint8_t *)w;
  for (uint64_t g = p.gaddr_lo; g < p.gaddr_hi; g++)
    if (b[g] != pattern(g)) return 0;
  return 1;
}

/* A random state: allocations with tags 1..4, about a third freed; every
 * allocation's bytes hold the pattern. */
static int random_state(uint64_t *rng) {
  if (wksp_reset(w, (uint32_t)test_rng(rng))) return -1;
  uint64_t n = 10 + test_rng(rng) % 150, g[160];
  for (uint64_t i = 0; i < n; i++) {
    uint64_t sz = 1 + test_rng(rng) % (test_rng(rng) % 4 ? 3000 : 20000);
    uint64_t align = 1ull << (test_rng(rng) % 13);
    if (wksp_alloc(w, align, sz, 1 + test_rng(rng) % 4, &g[i])) g[i] = 0;
  }
  for (uint64_t i = 0; i < n; i++)
    if (g[i] && test_rng(rng) % 3 == 0 && wksp_free(w, g[i])) return -1;
  alist_t l;
  if (alist_get(&l, 0)) return -1;
  for (size_t i = 0; i < l.n; i++) fill(l.p[i]);
  return 0;
}

/* An allocation to free for `point`: with free neighbours when the point
 * needs a merge. */
static uint64_t pick_free_target(int point, uint64_t *rng) {
  alist_t l;
  if (alist_get(&l, 1)) return 0;
  size_t start = l.n ? test_rng(rng) % l.n : 0;
  for (size_t k = 0; k < l.n; k++) {
    size_t i = (start + k) % l.n;
    if (!l.p[i].tag) continue;
    int prev_free = i > 0 && !l.p[i - 1].tag, next_free = i + 1 < l.n && !l.p[i + 1].tag;
    if (point == WKSP_HOOK_FREE_MERGE_NEXT && !next_free) continue;
    if (point == WKSP_HOOK_FREE_MERGE_PREV && !prev_free) continue;
    return l.p[i].gaddr_lo + (l.p[i].gaddr_hi - l.p[i].gaddr_lo) / 2; /* any byte inside */
  }
  return 0;
}

/* ---- hook kills -------------------------------------------------------------- */

static int stop_point;
static void stop_hook(int point) {
  if (point == stop_point) raise(SIGSTOP);
}

static wksp_part_t replacement[3];

static int child_op(int op, uint64_t arg) {
  uint64_t g, tag = arg;
  int r;
  switch (op) {
  case OP_ALLOC: return wksp_alloc(w, 1ull << (arg % 8), 100 + arg % 5000, NEW_TAG, &g);
  case OP_FREE: return wksp_free(w, arg);
  case OP_TAG_FREE: return wksp_tag_free(w, &tag, 1);
  case OP_RESET: return wksp_reset(w, (uint32_t)arg);
  case OP_REBUILD: return wksp_rebuild(w, (uint32_t)arg);
  case OP_REPLACE:
    if ((r = wksp_private_lock(w))) return r;
    r = wksp_private_replace(w, replacement, 3, (uint32_t)arg);
    wksp_private_unlock(w);
    return r;
  }
  return -1;
}

/* Forks a child that runs op and stops at point; kills it there.
 * Returns 1 if it stopped there, 0 if it finished without reaching it. */
static int kill_at(int op, int point, uint64_t arg) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (!pid) {
    stop_point = point;
    wksp_private_test_hook = stop_hook;
    child_op(op, arg);
    _exit(3);
  }
  int st;
  if (waitpid(pid, &st, WUNTRACED) != pid) return -1;
  int stopped = WIFSTOPPED(st);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return stopped;
}

typedef struct {
  uint64_t kills, not_reached, lost, damaged, partial, verify_fail, alloc_fail;
  double *rec; /* recovery times */
  uint64_t nrec, caprec;
} stats_t;

static void stats_time(stats_t *s, double t) {
  if (s->nrec == s->caprec) {
    s->caprec = s->caprec ? 2 * s->caprec : 1024;
    s->rec = realloc(s->rec, s->caprec * sizeof *s->rec);
  }
  s->rec[s->nrec++] = t;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The parent's recovery: one allocation right away, timed; then verify. */
static int recover(stats_t *s) {
  uint64_t g;
  double t0 = rel_now();
  int r = wksp_alloc(w, 0, 64, MINE_TAG, &g);
  stats_time(s, rel_now() - t0);
  if (r) {
    s->alloc_fail++;
    fprintf(stderr, "allocation after the kill failed: %s\n", wksp_errmsg());
    return -1;
  }
  if (wksp_free(w, g)) return -1;
  if (wksp_verify(w)) {
    s->verify_fail++;
    fprintf(stderr, "verify after the kill: %s\n", wksp_errmsg());
    return -1;
  }
  return 0;
}

/* Checks the all-or-nothing outcome of op; counts lost allocations. */
static int check_outcome(int op, uint64_t arg, const alist_t *before, const alist_t *after, stats_t *s) {
  size_t kept = 0, extra = 0, removable = 0, removed = 0;
  for (size_t i = 0; i < before->n; i++) {
    wksp_part_t p = before->p[i];
    int may_go = op == OP_RESET || op == OP_REPLACE || (op == OP_TAG_FREE && p.tag == arg) ||
                 (op == OP_FREE && arg >= p.gaddr_lo && arg < p.gaddr_hi);
    int has = alist_has(after, p);
    if (has && !intact(p)) s->damaged++;
    kept += has;
    removable += may_go;
    removed += may_go && !has;
    if (!has && !may_go) s->lost++;
  }
  for (size_t i = 0; i < after->n; i++) extra += !alist_has(before, after->p[i]);
  int ok = !s->damaged;
  switch (op) {
  case OP_ALLOC:
    ok = ok && extra <= 1;
    for (size_t i = 0; ok && i < after->n; i++)
      if (!alist_has(before, after->p[i])) ok = after->p[i].tag == NEW_TAG;
    break;
  case OP_REPLACE:
    ok = ok && ((kept == before->n && !extra) ||
                (after->n == 3 && !memcmp(after->p, replacement, sizeof replacement)));
    break;
  default: ok = ok && !extra && (removed == 0 || removed == removable); break;
  }
  if (!ok) {
    s->partial++;
    fprintf(stderr, "%s: before %zu, kept %zu, %zu new, %zu of %zu removable removed\n", op_name[op], before->n,
            kept, extra, removed, removable);
  }
  return ok && !s->lost ? 0 : -1;
}


static void print_stats(const char *key, const char *what, stats_t *s) {
  qsort(s->rec, s->nrec, sizeof *s->rec, cmp_d);
  double med = s->nrec ? s->rec[s->nrec / 2] : 0, max = s->nrec ? s->rec[s->nrec - 1] : 0;
  rel_figure("1", key,
             "%" PRIu64 " %s: recovery (first allocation after the kill) median %.1f us, max %.1f us; %" PRIu64
             " allocations lost, %" PRIu64 " damaged, %" PRIu64 " not all-or-nothing, %" PRIu64
             " verify failures, %" PRIu64 " failed allocations",
             s->kills, what, med * 1e6, max * 1e6, s->lost, s->damaged, s->partial, s->verify_fail, s->alloc_fail);
}

static void test_hook_kills(void) {
  uint64_t reps = rel_param("KILL_REPS", 2, 12), rng = test_seed();
  stats_t s = {0};
  int covered[WKSP_HOOK_CNT] = {0};
  for (size_t sc = 0; sc < SCEN_CNT; sc++) {
    int op = scenarios[sc].op, point = scenarios[sc].point;
    uint64_t done = 0;
    for (uint64_t attempt = 0; done < reps && attempt < 20 * reps; attempt++) {
      CHECK_OK(random_state(&rng));
      uint64_t arg = test_rng(&rng);
      if (op == OP_FREE && !(arg = pick_free_target(point, &rng))) continue;
      if (op == OP_TAG_FREE) arg = 1 + arg % 4;
      if (op == OP_REPLACE) {
        uint64_t lo = wksp_gaddr_lo(w) + 64 * (arg % 64);
        replacement[0] = (wksp_part_t){lo, lo + 1000, 40};
        replacement[1] = (wksp_part_t){lo + 1000, lo + 5000, 41};
        replacement[2] = (wksp_part_t){lo + 9000, lo + 9001, 42};
      }
      alist_t before, after;
      CHECK_OK(alist_get(&before, 0));
      int k = kill_at(op, point, arg);
      CHECK(k >= 0);
      if (!k) {
        s.not_reached++;
        continue;
      }
      s.kills++;
      done++;
      covered[point] = 1;
      int bad = recover(&s);
      if (!bad) {
        CHECK_OK(alist_get(&after, 0));
        bad = check_outcome(op, arg, &before, &after, &s);
      }
      if (bad) fprintf(stderr, "  after a kill in %s at point %d\n", op_name[op], point);
      CHECK(!bad);
    }
    if (done < reps) fprintf(stderr, "%s point %d reached %" PRIu64 " of %" PRIu64 " times\n", op_name[op], point,
                             done, reps);
    CHECK(done == reps);
  }
  for (int p = 1; p < WKSP_HOOK_CNT; p++) CHECK(covered[p]);
  char what[128];
  snprintf(what, sizeof what, "kills at all %d crash points of 6 operations (%" PRIu64 " each)", WKSP_HOOK_CNT - 1,
           reps);
  print_stats("hook-kills", what, &s);
  CHECK(s.nrec && s.rec[s.nrec - 1] < 1.0);
  free(s.rec);
}

/* ---- random-time kills ------------------------------------------------------- */

/* Shared log of the child's completed operations. */
typedef struct {
  uint64_t kind; /* 1 alloc done, 2 free about to start, 3 tag_free about to start */
  wksp_part_t p;
} entry_t;

enum { LOG_MAX = 1 << 20 };
typedef struct {
  volatile uint64_t n;
  entry_t e[LOG_MAX];
} log_t;

static void child_loop(log_t *log, uint64_t seed) {
  uint64_t rng = seed, live[256];
  size_t nlive = 0;
  for (uint64_t i = 0; log->n < LOG_MAX - 2; i++) {
    uint64_t r = test_rng(&rng) % 16;
    if (r < 8 || !nlive) {
      uint64_t g, lo, hi, tag = 10 + test_rng(&rng) % 3;
      if (wksp_alloc_at_least(w, 1ull << (test_rng(&rng) % 10), 1 + test_rng(&rng) % 4000, tag, &g, &lo, &hi))
        continue;
      fill((wksp_part_t){lo, hi, tag});
      log->e[log->n] = (entry_t){1, {lo, hi, tag}};
      __atomic_store_n(&log->n, log->n + 1, __ATOMIC_RELEASE);
      if (nlive < 256) live[nlive++] = lo;
    } else if (r < 15) {
      size_t k = test_rng(&rng) % nlive;
      log->e[log->n] = (entry_t){2, {live[k], 0, 0}};
      __atomic_store_n(&log->n, log->n + 1, __ATOMIC_RELEASE);
      wksp_free(w, live[k]);
      live[k] = live[--nlive];
    } else {
      uint64_t tag = 10 + test_rng(&rng) % 3;
      log->e[log->n] = (entry_t){3, {0, 0, tag}};
      __atomic_store_n(&log->n, log->n + 1, __ATOMIC_RELEASE);
      wksp_tag_free(w, &tag, 1);
      nlive = 0; /* which ones went is checked by the parent */
      alist_t l;
      alist_get(&l, 0);
      for (size_t j = 0; j < l.n && nlive < 256; j++)
        if (l.p[j].tag >= 10 && l.p[j].tag <= 12) live[nlive++] = l.p[j].gaddr_lo;
    }
  }
  _exit(0);
}

static void test_random_kills(void) {
  uint64_t trials = rel_param("RANDOM_KILLS", 20, 400), rng = test_seed() ^ 0xabcdef;
  log_t *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(log != MAP_FAILED);
  stats_t s = {0};
  uint64_t orphans = 0, logged = 0, in_change = 0;
  for (uint64_t t = 0; t < trials; t++) {
    CHECK_OK(random_state(&rng));
    alist_t before, after;
    CHECK_OK(alist_get(&before, 0));
    log->n = 0;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (!pid) child_loop(log, test_rng(&rng));
    uint64_t us = 100 + test_rng(&rng) % 5000;
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st)); /* killed, not finished */
    s.kills++;
    /* A kill inside a metadata change leaves gen odd. */
    in_change += __atomic_load_n(&((struct wksp *)w)->gen, __ATOMIC_ACQUIRE) & WKSP_GEN_WRITING;
    CHECK(!recover(&s));
    CHECK_OK(alist_get(&after, 0));
    uint64_t n = __atomic_load_n(&log->n, __ATOMIC_ACQUIRE);
    logged += n;
    /* Expected: the parent's allocations minus those of freed tags (the
     * child only frees its own tags 10..12), plus every logged allocation
     * not freed afterwards (an operation logged as starting may or may not
     * have happened). */
    for (size_t i = 0; i < before.n; i++) {
      if (!alist_has(&after, before.p[i])) s.lost++;
      else if (!intact(before.p[i])) s.damaged++;
    }
    for (uint64_t i = 0; i < n; i++) {
      if (log->e[i].kind != 1) continue;
      wksp_part_t p = log->e[i].p;
      int freed_later = 0;
      for (uint64_t j = i + 1; j < n && !freed_later; j++)
        freed_later = (log->e[j].kind == 2 && log->e[j].p.gaddr_lo == p.gaddr_lo) ||
                      (log->e[j].kind == 3 && log->e[j].p.tag == p.tag);
      int has = alist_has(&after, p);
      if (!freed_later && !has) s.lost++;
      if (has && !intact(p)) s.damaged++;
    }
    /* Allocations nobody logged: the child died between its alloc and its
     * log entry (an alloc that completed: kept, not lost). */
    for (size_t i = 0; i < after.n; i++) {
      int known = alist_has(&before, after.p[i]);
      for (uint64_t j = 0; j < n && !known; j++) known = log->e[j].kind == 1 && log->e[j].p.gaddr_lo == after.p[i].gaddr_lo;
      orphans += !known;
    }
    if (s.lost || s.damaged) fprintf(stderr, "trial %" PRIu64 ": %" PRIu64 " lost, %" PRIu64 " damaged\n", t,
                                     s.lost, s.damaged);
    CHECK(!s.lost && !s.damaged);
  }
  char what[256];
  snprintf(what, sizeof what, "SIGKILLs at random times of a process doing alloc/free/tag_free (%" PRIu64 " inside a "
           "metadata change; %" PRIu64 " operations logged, %" PRIu64 " completed allocations not yet logged)",
           in_change, logged, orphans);
  print_stats("random-kills", what, &s);
  CHECK(s.nrec && s.rec[s.nrec - 1] < 1.0);
  free(s.rec);
  munmap(log, sizeof *log);
}

/* ---- restores killed at random instants ---------------------------------- */

/* The checkpoint's allocations: tags 20..23 (never a random state's 1..4),
 * bytes of another pattern, so that an outcome is recognized by its
 * records and checked byte by byte. */
static uint8_t pattern_ckpt(uint64_t g) { return (uint8_t)(g * 37 + (g >> 9) + 11); }

static int ckpt_source(wksp_t *src, uint64_t *rng, alist_t *out) {
  uint64_t n = 20 + test_rng(rng) % 100;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t g, sz = 1 + test_rng(rng) % (test_rng(rng) % 4 ? 4000 : 40000);
    if (wksp_alloc(src, 1ull << (test_rng(rng) % 13), sz, 20 + test_rng(rng) % 4, &g)) continue;
  }
  size_t np = 0;
  static wksp_part_t all[LIST_MAX];
  if (wksp_part_list(src, all, LIST_MAX, &np)) return -1;
  out->n = 0;
  for (size_t i = 0; i < np && i < LIST_MAX; i++) {
    if (!all[i].tag) continue;
    uint8_t *b = wksp_laddr(src, all[i].gaddr_lo);
    for (uint64_t g = all[i].gaddr_lo; g < all[i].gaddr_hi; g++) b[g - all[i].gaddr_lo] = pattern_ckpt(g);
    out->p[out->n++] = all[i];
  }
  return 0;
}

/* The target holds exactly the checkpoint's allocations and bytes. */
static int is_restored(const alist_t *after, const alist_t *ck) {
  if (after->n != ck->n || memcmp(after->p, ck->p, ck->n * sizeof *ck->p)) return 0;
  const uint8_t *b = (const uint8_t *)w;
  for (size_t i = 0; i < ck->n; i++)
    for (uint64_t g = ck->p[i].gaddr_lo; g < ck->p[i].gaddr_hi; g++)
      if (b[g] != pattern_ckpt(g)) return 0;
  return 1;
}

/* The child: one restore of file f (or of its bytes through a pipe), or of
 * the chain f + delta when delta is not NULL. */
static const char *chain_delta;

static void restore_child(const char *f, const uint8_t *bytes, uint64_t sz, int piped, uint32_t threads) {
  wksp_restore_opts_t o = {.threads = threads, .seed = 5};
  const char *chain[2] = {f, chain_delta};
  int rc = chain_delta ? wksp_restore_chain(w, chain, 2, &o)
           : piped     ? restore_piped(w, bytes, sz, "pipe", &o)
                       : wksp_restore(w, f, &o);
  _exit(rc ? 1 : 0);
}

/* Runs one restore in a child and SIGKILLs it after delay_us (0: lets it
 * finish).  The child's wall time goes to *took; 1 if it was killed. */
static int restore_killed(const char *f, const uint8_t *bytes, uint64_t sz, int piped, uint32_t threads,
                          uint64_t delay_us, double *took) {
  fflush(NULL);
  double t0 = rel_now();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (!pid) restore_child(f, bytes, sz, piped, threads);
  if (delay_us) {
    struct timespec ts = {(time_t)(delay_us / 1000000), (long)(delay_us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  *took = rel_now() - t0;
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) return 1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* A restore killed at any instant leaves the target as it was (killed
 * before the reset), empty (after it: the bytes partly overwritten), or
 * holding the whole checkpoint (the records' replacement committed): never
 * old records over new bytes, never new records over missing bytes.  The
 * next process to lock it recovers at once and it verifies. */
static void test_restore_kills(void) {
  uint64_t trials = rel_param("RESTORE_KILLS", 48, 800), rng = test_seed() ^ 0x5e5707e;
  wksp_t *src = ws_new("relsrc", 9, PART_MAX, 2 << 20);
  CHECK(src != NULL);
  if (!src) return;
  static alist_t ck;
  CHECK_OK(ckpt_source(src, &rng, &ck));
  /* The chain's base: the same allocations, every third one's first byte
   * different (the delta puts it back). */
  enum { FILES = 4, CHAIN = 3 };
  static const struct { int style, verify; const char *name; } kinds[FILES] = {
      {WKSP_CHECKPT_STYLE_V2, 0, "v2"}, {WKSP_CHECKPT_STYLE_V3, 0, "v3"}, {WKSP_CHECKPT_STYLE_V3, 1, "v3 sealed"},
      {WKSP_CHECKPT_STYLE_V3, 1, "v3 base + delta"}};
  char path[FILES][300], delta[300];
  snprintf(delta, sizeof delta, "%s/ckpt-delta", shm_dir);
  uint8_t *bytes[FILES] = {0};
  uint64_t sz[FILES] = {0};
  double full[FILES][2][2] = {{{0}}}; /* a whole restore's time, per file, path, threads */
  for (int k = 0; k < FILES; k++) {
    snprintf(path[k], sizeof path[k], "%s/ckpt-%d", shm_dir, k);
    wksp_checkpt_opts_t o = {.style = kinds[k].style, .verify = kinds[k].verify, .index = k == CHAIN};
    for (size_t j = 0; k == CHAIN && j < ck.n; j += 3) *(uint8_t *)wksp_laddr(src, ck.p[j].gaddr_lo) ^= 0x5a;
    CHECK_OK(wksp_checkpt(src, path[k], &o));
    for (size_t j = 0; k == CHAIN && j < ck.n; j += 3) *(uint8_t *)wksp_laddr(src, ck.p[j].gaddr_lo) ^= 0x5a;
    if (k == CHAIN) CHECK_OK(wksp_checkpt_delta(src, delta, path[k], &(wksp_checkpt_opts_t){0}, NULL));
    size_t n = 0;
    bytes[k] = (uint8_t *)vec_slurp(path[k], &n);
    sz[k] = n;
    CHECK(bytes[k] != NULL);
    if (!bytes[k]) goto done;
    for (int piped = 0; piped < 2; piped++)
      for (int t = 0; t < 2; t++)
        for (int rep = 0; rep < 3; rep++) { /* the fastest of 3 whole restores */
          double took;
          CHECK_OK(random_state(&rng));
          chain_delta = k == CHAIN ? delta : NULL;
          CHECK(restore_killed(path[k], bytes[k], sz[k], piped, 1 + (uint32_t)t, 0, &took) == 0);
          if (!rep || took < full[k][piped][t]) full[k][piped][t] = took;
          alist_t after;
          CHECK_OK(alist_get(&after, 0));
          CHECK(is_restored(&after, &ck));
        }
  }
  stats_t s = {0};
  uint64_t outcome[3] = {0}, completed = 0; /* untouched, empty, restored */
  for (uint64_t i = 0; i < trials; i++) {
    int k = (int)(i % FILES), piped = (int)(i / FILES % 2), t = (int)(i / (2 * FILES) % 2);
    CHECK_OK(random_state(&rng));
    alist_t before, after;
    CHECK_OK(alist_get(&before, 0));
    /* Anywhere from the fork to a little past the end of a whole restore. */
    uint64_t span = (uint64_t)(full[k][piped][t] * 1.1e6) + 1;
    double took;
    chain_delta = k == CHAIN ? delta : NULL;
    int r = restore_killed(path[k], bytes[k], sz[k], piped, 1 + (uint32_t)t, 1 + test_rng(&rng) % span, &took);
    CHECK(r >= 0);
    if (r < 0) break;
    completed += !r;
    s.kills += r == 1;
    int bad = recover(&s);
    if (!bad) {
      CHECK_OK(alist_get(&after, 0));
      int untouched = after.n == before.n && !memcmp(after.p, before.p, before.n * sizeof *before.p);
      for (size_t j = 0; untouched && j < before.n; j++) untouched = intact(before.p[j]);
      int o = untouched ? 0 : !after.n ? 1 : is_restored(&after, &ck) ? 2 : -1;
      if (o < 0) {
        s.partial++;
        fprintf(stderr, "%s %s %d threads: %zu allocations before, %zu after, neither untouched, empty nor "
                "the checkpoint's\n", kinds[k].name, k == CHAIN ? "files" : piped ? "pipe" : "file", t + 1, before.n, after.n);
        bad = 1;
      } else {
        outcome[o]++;
      }
    }
    CHECK(!bad);
    if (bad) break;
  }
  char what[320];
  snprintf(what, sizeof what, "restores SIGKILLed at random times (v2, v3, sealed v3: file and pipe; a sealed v3 "
           "base + a delta; 1 and 2 threads; %" PRIu64 " finished first): %" PRIu64 " left the target untouched, %" PRIu64 " empty, %" PRIu64
           " restored", completed, outcome[0], outcome[1], outcome[2]);
  print_stats("restore-kills", what, &s);
  CHECK(s.nrec && s.rec[s.nrec - 1] < 1.0);
  free(s.rec);
done: /* the files go with shm_dir (main) */
  for (int k = 0; k < FILES; k++) free(bytes[k]);
  chain_delta = NULL;
  ws_free(src);
}

int main(void) {
  snprintf(shm_dir, sizeof shm_dir, "/tmp/wksp-rel-kill-%d-XXXXXX", (int)getpid());
  if (!mkdtemp(shm_dir)) return 1;
  setenv("WKSP_SHMEM_DIR", shm_dir, 1);
  int rc = wksp_new_named("relkill", wksp_footprint(PART_MAX, 2 << 20) + 4096, WKSP_PAGE_NORMAL, 0600, 1,
                          PART_MAX);
  if (rc || wksp_attach("relkill", 0, &w)) {
    printf("FAIL %s/setup (%s)\n", test_prog_name(), wksp_errmsg());
    return 1;
  }
  TEST_RUN(test_hook_kills);
  TEST_RUN(test_random_kills);
  TEST_RUN(test_restore_kills);
  wksp_detach(w);
  wksp_delete_named("relkill");
  test_rmdir(shm_dir); /* with what a failed test left there */
  return test_done();
}
