/* Promise 2: a checkpoint that fails or is interrupted leaves nothing at
 * the target path and no temporary file, and the call reports the fault.
 *
 * Injected faults (libfaultshim.so, preloaded by re-executing this
 * program): every counted I/O call of a checkpoint (open, openat, write,
 * writev, fchmod, fsync, linkat, renameat, ...) fails in turn with
 *   ENOSPC (sticky: the disk stays full), EIO (once),
 *   a short transfer followed by ENOSPC (sticky), a short transfer alone
 *   (must be absorbed: success), EINTR (retried or reported, both clean)
 * for v2/v3, 1 and 2 threads (2 threads to a path: with verify), with and
 * without overwrite, on a filesystem with and without O_TMPFILE (emulated),
 * and to a pipe.  After each case:
 * the code is FAIL with the injected errno (or success with a file that
 * restores identically), the directory holds nothing new (or the old file,
 * unchanged), and no descriptor or thread is left behind.
 *
 * SIGKILL: a child checkpoints (one in three with verify) and is killed at
 * a random moment (uniform over 0.9x the measured duration; a quarter
 * overwrite an existing file and are killed over 0.6-1.2x of the time an
 * overwriting child takes, around the publication); the directory then
 * holds nothing, the old file, or
 * the complete checkpoint (if the kill came after the link), which must
 * restore identically; a temporary name left by an overwrite killed
 * between its link and the rename must be gone after the next checkpoint
 * into the directory.
 *
 * Deltas (docs/FORMAT.md 13) and index sidecars get the same two tests:
 * wksp_checkpt_delta (to a path, over an old file, to a pipe) from three
 * bases (a sealed checkpoint with its sidecar, one without, a delta), and
 * wksp_checkpt with index (the sidecar is published before the
 * checkpoint).  Besides the above: the base's directory is unchanged; a
 * delta written restores, after its base's chain, identical to the
 * workspace; a fault at the sidecar's open may be absorbed by decoding the
 * base instead; the sidecar path holds nothing, the old sidecar, or a
 * complete index file (stale when its checkpoint was not published).
 *
 * Counts: WKSP_REL_KILLS (quick 24, long 400), WKSP_REL_DELTA_KILLS and
 * WKSP_REL_INDEX_KILLS (quick 16, long 400 each), WKSP_REL_FAULT_ALLOCS. */
#include "../lib/rel.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

static faultshim_t shim;
static char dir[256], path[300];

/* Deltas: the bases live in basedir (never written by a case), scratch
 * takes the files the checks make. */
enum { KIND_FULL, KIND_DELTA, KIND_INDEX };
enum { BASE_INDEXED, BASE_PLAIN, BASE_DELTA, BASE_CNT };
static char basedir[256], scratch[256], base_ckpt[300], plain_ckpt[300], base_delta[300], side[320];
static const char *chains[BASE_CNT][2]; /* the chain up to each base */
static const size_t chain_len[BASE_CNT] = {1, 1, 2};
static char base_sum[65];

static const char *const write_calls =
    "write,writev,pwrite,pwritev,fsync,fdatasync,fchmod,ftruncate,link,linkat,rename,renameat,renameat2,"
    "open,openat,sendfile";
static const char *const write_calls_src =
    "write,writev,pwrite,pwritev,fsync,fdatasync,fchmod,ftruncate,link,linkat,rename,renameat,renameat2,"
    "open,openat,sendfile,pread";

typedef struct {
  const char *name;
  int kind, err, sticky;
  int must_fail; /* 1 always; -1 unless the call moves data; 0 either */
} fault_t;

static const fault_t faults[] = {
    {"ENOSPC", FAULTSHIM_ERRNO, ENOSPC, 1, 1},
    {"EIO", FAULTSHIM_ERRNO, EIO, 0, 1},
    {"short+ENOSPC", FAULTSHIM_SHORT, ENOSPC, 1, 1},
    {"short", FAULTSHIM_SHORT, EIO, 0, -1},
    {"EINTR", FAULTSHIM_ERRNO, EINTR, 0, 0},
};
enum { FAULT_CNT = sizeof faults / sizeof faults[0] };

enum { TGT_PATH, TGT_OVERWRITE, TGT_PIPE };

typedef struct {
  int style, threads, target, no_tmpfile, kind, base;
  int region_file; /* v2 data copied from a named source's region file (what the CLI does) */
} config_t;

typedef struct {
  uint64_t cases, failed_clean, ok_identical, not_reached, replaced_at_dir_fsync;
  uint64_t sidecar_fallback; /* delta: the sidecar's open failed, the base decoded instead */
  uint64_t stale_index;      /* index: a complete sidecar left beside no checkpoint of it */
  uint64_t by_fault[FAULT_CNT];
} tally_t;

static const char old_bytes[] = "the previous checkpoint, which must survive";
/* An older sidecar (only its magic matters to the writer, which replaces it). */
static const char old_index[] = "WKSPINDX an older index, which may survive or go";

static int write_bytes(const char *p, const void *b, size_t n) {
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  int r = write(fd, b, n) == (ssize_t)n ? 0 : -1;
  close(fd);
  return r;
}

static int file_holds(const char *p, const void *want, size_t n) {
  size_t sz = 0;
  char *b = vec_slurp(p, &sz);
  int same = b && sz == n && !memcmp(b, want, sz);
  free(b);
  return same;
}

static int is_data_call(const char *name) {
  return name && (!strcmp(name, "write") || !strcmp(name, "writev") || !strcmp(name, "pwrite") ||
                  !strcmp(name, "pwritev") || !strcmp(name, "sendfile") || !strcmp(name, "pread"));
}

/* The old file at path (and, for a checkpoint with index, an old sidecar). */
static int write_old_kind(int kind) {
  if (write_bytes(path, old_bytes, sizeof old_bytes)) return -1;
  return kind == KIND_INDEX ? write_bytes(side, old_index, sizeof old_index) : 0;
}

static int path_holds_old(void) { return file_holds(path, old_bytes, sizeof old_bytes); }

/* The file at path is what a successful call of this kind writes: a
 * checkpoint, or a delta that restores after the chain of its base. */
static int restores_same(wksp_t *src, const config_t *c) {
  if (c->kind != KIND_DELTA) return rel_restores_same(src, path);
  const char *ch[3] = {chains[c->base][0], chains[c->base][1], path};
  ch[chain_len[c->base]] = path;
  return rel_chain_restores_same(src, ch, chain_len[c->base] + 1);
}

/* The sidecar beside path is valid for the checkpoint there: a delta
 * written from it uses it (and finds nothing changed). */
static int sidecar_fresh(wksp_t *src) {
  char d[300];
  snprintf(d, sizeof d, "%s/fresh.delta", scratch);
  unlink(d);
  wksp_delta_stats_t st;
  int ok = !wksp_checkpt_delta(src, d, path, NULL, &st) && st.base_from == WKSP_BASE_FROM_INDEX &&
           st.changed_cnt == 0;
  unlink(d);
  return ok;
}

/* A complete index file (every rule of docs/FORMAT.md 13.2 holds). */
static int sidecar_complete(void) {
  int fd = open("/dev/null", O_WRONLY);
  int ok = fd >= 0 && !wksp_checkpt_print(fd, side, 3);
  if (fd >= 0) close(fd);
  return ok;
}

/* Drains a pipe into memory (the pipe target's reader). */
typedef struct {
  int fd;
  uint8_t *b;
  size_t sz, cap;
} drain_t;

static void *drain_main(void *arg) {
  drain_t *d = arg;
  for (;;) {
    if (d->cap - d->sz < 65536) {
      d->cap = d->cap ? 2 * d->cap : 1 << 20;
      d->b = realloc(d->b, d->cap);
      if (!d->b) abort();
    }
    ssize_t n = read(d->fd, d->b + d->sz, d->cap - d->sz);
    if (n <= 0) break;
    d->sz += (size_t)n;
  }
  return NULL;
}

/* The call under test: to path, or to fd (>= 0). */
static int ckpt_call(wksp_t *src, const config_t *c, int fd, const wksp_checkpt_opts_t *o, wksp_delta_stats_t *st) {
  const char *base = c->kind == KIND_DELTA ? chains[c->base][chain_len[c->base] - 1] : NULL;
  if (base) return fd >= 0 ? wksp_checkpt_delta_fd(src, fd, "pipe", base, o, st) : wksp_checkpt_delta(src, path, base, o, st);
  return fd >= 0 ? wksp_checkpt_fd(src, fd, "pipe", o) : wksp_checkpt(src, path, o);
}

extern int wksp_private_bytes_route_force;

/* Runs one checkpoint with fault f at counted call k (0 = none).
 * Returns the code; *fired, *call say whether and where the fault hit. */
static int run_ckpt(wksp_t *src, const config_t *c, const fault_t *f, long k, long *ncalls, long *fired,
                    const char **call, drain_t *d, wksp_delta_stats_t *st) {
  /* verify on for the 2-thread path targets: a fault the writer absorbed
   * (EINTR, short write) must still leave a file that reads back equal;
   * an index needs it */
  wksp_checkpt_opts_t o = {.style = c->style, .threads = (uint32_t)c->threads,
                           .overwrite = c->target == TGT_OVERWRITE,
                           .verify = c->kind == KIND_INDEX || (c->target != TGT_PIPE && c->threads == 2),
                           .index = c->kind == KIND_INDEX};
  int rc, p[2] = {-1, -1};
  pthread_t th;
  if (c->target == TGT_PIPE) {
    if (pipe(p)) return -100;
    memset(d, 0, sizeof *d);
    d->fd = p[0];
    pthread_create(&th, NULL, drain_main, d);
  }
  shim.no_tmpfile(c->no_tmpfile);
  wksp_private_bytes_route_force = c->region_file ? 1 : -1;
  /* from the region file: its reads too (pread; 1-thread path targets only, so that no read-back counts) */
  const char *calls = c->target == TGT_PIPE ? (c->region_file ? "write,writev,pread" : "write,writev")
                      : c->region_file      ? write_calls_src
                                            : write_calls;
  shim.arm(calls, k, f ? f->kind : 0, f ? f->err : 0, f ? f->sticky : 0);
  memset(st, 0, sizeof *st);
  rc = ckpt_call(src, c, c->target == TGT_PIPE ? p[1] : -1, &o, st);
  *ncalls = shim.disarm();
  wksp_private_bytes_route_force = 0;
  shim.no_tmpfile(0);
  *fired = shim.fired();
  *call = k ? shim.call_name(k) : NULL;
  if (c->target == TGT_PIPE) {
    close(p[1]);
    pthread_join(th, NULL);
    close(p[0]);
  }
  return rc;
}

/* The sidecar after a failed checkpoint with index: nothing, the old one
 * (overwrite), or a complete index file, which is stale (its checkpoint
 * was not published).  0 if so. */
static int sidecar_after_failure(const config_t *c, tally_t *t) {
  if (access(side, F_OK)) return 0;
  if (c->target == TGT_OVERWRITE && file_holds(side, old_index, sizeof old_index)) return 0;
  if (!sidecar_complete()) return fprintf(stderr, "a partial sidecar at %s\n", side);
  t->stale_index++;
  return 0;
}

/* Every entry of the listing ls is c.ckpt (when allowed: the old file) or
 * c.ckpt.wkspidx (when allowed: checked by sidecar_after_failure). */
static int only_allowed(const char *ls, int ckpt, int idx) {
  char b[1024], *save = NULL;
  snprintf(b, sizeof b, "%s", ls);
  for (char *e = strtok_r(b, ",", &save); e; e = strtok_r(NULL, ",", &save))
    if (!(ckpt && !strcmp(e, "c.ckpt")) && !(idx && !strcmp(e, "c.ckpt.wkspidx"))) return 0;
  return 1;
}

/* The promise for one case; 0 if it holds (else says why on stderr). */
static int check_case(wksp_t *src, const config_t *c, int fi, long k, tally_t *t) {
  const fault_t *f = &faults[fi];
  int fds = rel_proc_count("fd"), tasks = rel_proc_count("task");
  if (c->target == TGT_OVERWRITE && write_old_kind(c->kind)) return -1;
  long ncalls, fired;
  const char *call;
  drain_t d;
  wksp_delta_stats_t st;
  int rc = run_ckpt(src, c, f, k, &ncalls, &fired, &call, &d, &st);
  char err_copy[512];
  snprintf(err_copy, sizeof err_copy, "%s", rc ? wksp_errmsg() : "");
  int bad = 0;
  /* what the directory holds after a success (an overwritten old sidecar is replaced) */
  const char *done_ls = c->kind == KIND_INDEX ? "c.ckpt,c.ckpt.wkspidx" : "c.ckpt";
  if (!fired) {
    t->not_reached++;
  } else {
    t->cases++;
    t->by_fault[fi]++;
    int must_fail = f->must_fail == 1 || (f->must_fail == -1 && !is_data_call(call));
    int may_fail = must_fail || f->must_fail == 0;
    /* A delta whose base's sidecar cannot be opened decodes the base
     * instead (docs/FORMAT.md 13.3: never an error). */
    int fallback = !rc && c->kind == KIND_DELTA && c->base == BASE_INDEXED && st.base_from == WKSP_BASE_FROM_DECODE &&
                   call && (!strcmp(call, "open") || !strcmp(call, "openat"));
    char ls[1024];
    rel_dir_list(dir, ls, sizeof ls);
    if (!rc) {
      if (must_fail && !fallback) bad = fprintf(stderr, "success despite the fault\n");
      if (c->target == TGT_PIPE) {
        FILE *o = fopen(path, "wb");
        if (!o || fwrite(d.b, 1, d.sz, o) != d.sz) bad = 1;
        if (o) fclose(o);
      } else if (strcmp(ls, done_ls)) {
        bad = fprintf(stderr, "directory holds \"%s\" after success\n", ls);
      }
      if (!bad && !restores_same(src, c))
        bad = fprintf(stderr, "the checkpoint written does not restore identically\n");
      if (!bad && c->kind == KIND_INDEX && !sidecar_fresh(src))
        bad = fprintf(stderr, "the sidecar written is not the checkpoint's\n");
      if (!bad) t->ok_identical++;
      if (!bad && fallback) t->sidecar_fallback++;
    } else {
      if (!may_fail) bad = fprintf(stderr, "failed where the fault must be absorbed\n");
      /* The errno must be reported, in wksp_errno() and in the message. */
      int in_msg = strstr(err_copy, strerror(f->err)) != NULL;
      if (rc != WKSP_ERR_FAIL || wksp_errno() != f->err || !in_msg)
        bad = fprintf(stderr, "code %d errno %d, want FAIL errno %d (%s)\n", rc, wksp_errno(),
                      f->err, err_copy);
      if (c->kind == KIND_INDEX && sidecar_after_failure(c, t)) bad = 1;
      if (c->target != TGT_PIPE && !only_allowed(ls, c->target == TGT_OVERWRITE, c->kind == KIND_INDEX))
        bad = fprintf(stderr, "failed checkpoint left \"%s\"\n", ls);
      if (c->target == TGT_OVERWRITE) {
        if (access(path, F_OK)) {
          bad = fprintf(stderr, "failed overwrite left \"%s\"\n", ls);
        } else if (!path_holds_old()) {
          /* Documented: the directory fsync fails after the rename; the
           * new file is complete. */
          if (strcmp(call ? call : "", "fsync") || k != ncalls || !restores_same(src, c))
            bad = fprintf(stderr, "failed overwrite changed the old file\n");
          else
            t->replaced_at_dir_fsync++;
        }
      }
      if (!bad) t->failed_clean++;
    }
  }
  if (c->target == TGT_PIPE) free(d.b);
  if (rel_proc_count("fd") != fds) bad = fprintf(stderr, "descriptor leak: %d -> %d\n", fds, rel_proc_count("fd"));
  int tasks_now = test_thread_count(tasks);
  if (tasks_now != tasks) bad = fprintf(stderr, "thread left: %d -> %d\n", tasks, tasks_now);
  if (c->kind != KIND_FULL) {
    char sum[65];
    rel_dir_digest(basedir, sum);
    if (strcmp(sum, base_sum)) bad = fprintf(stderr, "the base's directory changed\n");
  }
  if (bad)
    fprintf(stderr, "  case: kind %d base %d style %d threads %d target %d no_tmpfile %d, fault %s at call %ld (%s) of %ld: rc %d %s\n",
            c->kind, c->base, c->style, c->threads, c->target, c->no_tmpfile, f->name, k, call ? call : "?", ncalls, rc, err_copy);
  unlink(path);
  unlink(side);
  return bad;
}

static wksp_t *make_src(uint64_t allocs, uint64_t max_sz, uint64_t data_max) {
  wksp_t *w = ws_new("src", 1, 4 * allocs + 64, data_max);
  uint64_t rng = 77;
  if (w) ws_fill(w, allocs, max_sz, 1, &rng);
  return w;
}

/* The same content in a named workspace (a region file under a private
 * WKSP_SHMEM_DIR), for the region-file configurations. */
static char named_dir[128], named_name[64];

static wksp_t *make_named(uint64_t allocs) {
  snprintf(named_dir, sizeof named_dir, "/tmp/wksp-rel-named-%d-XXXXXX", (int)getpid());
  if (!mkdtemp(named_dir)) return NULL;
  setenv("WKSP_SHMEM_DIR", named_dir, 1);
  snprintf(named_name, sizeof named_name, "relsrc%d", (int)getpid());
  wksp_t *w = NULL;
  if (wksp_new_named_exact(named_name, 4 * allocs + 64, 64 << 20, WKSP_PAGE_NORMAL, 0600, 1) ||
      wksp_attach(named_name, 0, &w))
    return NULL;
  uint64_t rng = 77;
  ws_fill(w, allocs, 40000, 1, &rng);
  return w;
}

/* A named workspace holding src's state (its geometry, allocations and
 * bytes, restored from a checkpoint of it), for the deltas from a region
 * file: the bases were written from src. */
static wksp_t *make_named_like(wksp_t *src) {
  snprintf(named_dir, sizeof named_dir, "/tmp/wksp-rel-named-%d-XXXXXX", (int)getpid());
  if (!mkdtemp(named_dir)) return NULL;
  setenv("WKSP_SHMEM_DIR", named_dir, 1);
  snprintf(named_name, sizeof named_name, "relsrc%d", (int)getpid());
  char copy[300];
  snprintf(copy, sizeof copy, "%s/state.ckpt", named_dir);
  wksp_t *w = NULL;
  int rc = wksp_checkpt(src, copy, &(wksp_checkpt_opts_t){.style = WKSP_CHECKPT_STYLE_V2});
  if (!rc) rc = wksp_new_named_exact(named_name, wksp_part_max(src), wksp_data_max(src), WKSP_PAGE_NORMAL, 0600, 1);
  if (!rc) rc = wksp_attach(named_name, 0, &w);
  if (!rc) rc = wksp_restore(w, copy, &(wksp_restore_opts_t){.seed = wksp_seed(src)});
  unlink(copy);
  return rc ? NULL : w;
}

static void named_free(wksp_t *w) {
  if (w) wksp_detach(w);
  if (named_name[0]) wksp_delete_named(named_name);
  unsetenv("WKSP_SHMEM_DIR");
  if (named_dir[0]) test_rmdir(named_dir);
  named_dir[0] = named_name[0] = 0;
}

static int make_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/wksp-rel-ckpt-%d-XXXXXX", (int)getpid());
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/c.ckpt", dir);
  snprintf(side, sizeof side, "%s.wkspidx", path);
  return 0;
}

/* The bases of the delta cases, from src's state then: a sealed checkpoint
 * with its sidecar, one without, and (src changed) a delta of the first;
 * then src changed again: the state the deltas under test write. */
static int make_bases(wksp_t *src) {
  snprintf(basedir, sizeof basedir, "/tmp/wksp-rel-base-%d-XXXXXX", (int)getpid());
  snprintf(scratch, sizeof scratch, "/tmp/wksp-rel-scratch-%d-XXXXXX", (int)getpid());
  if (!mkdtemp(basedir) || !mkdtemp(scratch)) return -1;
  snprintf(base_ckpt, sizeof base_ckpt, "%s/base.ckpt", basedir);
  snprintf(plain_ckpt, sizeof plain_ckpt, "%s/plain.ckpt", basedir);
  snprintf(base_delta, sizeof base_delta, "%s/d1.delta", basedir);
  chains[BASE_INDEXED][0] = chains[BASE_DELTA][0] = base_ckpt;
  chains[BASE_PLAIN][0] = plain_ckpt;
  chains[BASE_DELTA][1] = base_delta;
  uint64_t rng = 5;
  if (wksp_checkpt(src, base_ckpt, &(wksp_checkpt_opts_t){.verify = 1, .index = 1}) ||
      wksp_checkpt(src, plain_ckpt, &(wksp_checkpt_opts_t){.verify = 1}))
    return -1;
  rel_mutate(src, &rng, 70000);
  if (wksp_checkpt_delta(src, base_delta, base_ckpt, NULL, NULL)) return -1;
  rel_mutate(src, &rng, 70000);
  rel_dir_digest(basedir, base_sum);
  return 0;
}

static void rm_bases(void) {
  test_rmdir(basedir);
  test_rmdir(scratch);
}

/* The configurations of one kind; the quick run keeps a few. */
static int io_configs(int kind, config_t *cfg) {
  int n = 0, j = 0;
  for (int style = 2; style <= 3; style++)
    for (int th = 1; th <= 2; th++)
      for (int tgt = TGT_PATH; tgt <= (kind == KIND_INDEX ? TGT_OVERWRITE : TGT_PIPE); tgt++)
        for (int nt = 0; nt <= (tgt != TGT_PIPE); nt++, j++) {
          int keep = rel_long();
          if (kind == KIND_FULL) /* one of each dimension */
            keep |= (style == 3 && th == 1) || (style == 2 && th == 2 && tgt != TGT_PIPE && !nt);
          else /* deltas: each target once, each from another base; index: over an old one, and not */
            keep |= kind == KIND_DELTA ? !nt && style == 3 - tgt % 2 && th == 1 + (tgt == TGT_OVERWRITE)
                                       : !nt && style == th + 1 && tgt == style - 2;
          if (keep) cfg[n++] = (config_t){style, th, tgt, nt, kind, rel_long() ? j % BASE_CNT : tgt, 0};
        }
  /* v2 from a named workspace's region file, as the CLI writes it */
  if (kind == KIND_FULL) {
    cfg[n++] = (config_t){2, 1, TGT_PATH, 0, kind, 0, 1};
    cfg[n++] = (config_t){2, 1, TGT_OVERWRITE, 1, kind, 0, 1};
    cfg[n++] = (config_t){2, 1, TGT_PIPE, 0, kind, 0, 1};
    cfg[n++] = (config_t){3, 1, TGT_PATH, 0, kind, 0, 1};
    cfg[n++] = (config_t){3, 2, TGT_PIPE, 0, kind, 0, 1};
  }
  /* deltas whose pieces are read from the region file (checkpt --since) */
  if (kind == KIND_DELTA) {
    cfg[n++] = (config_t){3, 1, TGT_PATH, 0, kind, BASE_DELTA, 1};
    cfg[n++] = (config_t){2, 2, TGT_PIPE, 0, kind, BASE_PLAIN, 1};
  }
  return n;
}

static void io_faults(int kind) {
  static const char *const names[] = {"io-faults", "io-faults-delta", "io-faults-index"};
  CHECK_OK(make_dir());
  uint64_t allocs = rel_param("FAULT_ALLOCS", 120, 600);
  /* deltas: as many calls from fewer bytes (every case reads the bases) */
  wksp_t *src = make_src(kind == KIND_FULL ? allocs : allocs / 2, 40000, 64 << 20);
  CHECK(src);
  if (kind != KIND_FULL) CHECK_OK(make_bases(src));
  config_t cfg[45];
  int n = io_configs(kind, cfg);
  tally_t t = {0};
  int failures = 0;
  wksp_t *named = kind == KIND_FULL ? make_named(allocs) : kind == KIND_DELTA ? make_named_like(src) : NULL;
  CHECK(kind == KIND_INDEX || named);
  long sendfiles = 0, v3_preads = 0;
  for (int i = 0; i < n && failures < 5; i++) {
    long ncalls, fired;
    const char *call;
    drain_t d;
    wksp_delta_stats_t st;
    wksp_t *s = cfg[i].region_file ? named : src;
    if (cfg[i].target == TGT_OVERWRITE) CHECK_OK(write_old_kind(kind));
    CHECK_OK(run_ckpt(s, &cfg[i], NULL, 0, &ncalls, &fired, &call, &d, &st));
    for (long k = 1; k <= ncalls; k++) {
      const char *nm = shim.call_name(k);
      sendfiles += nm && !strcmp(nm, "sendfile");
      v3_preads += nm && cfg[i].style == 3 && cfg[i].region_file && !strcmp(nm, "pread");
    }
    if (cfg[i].target == TGT_PIPE) free(d.b);
    unlink(path);
    unlink(side);
    CHECK(ncalls > 0);
    for (long k = 1; k <= ncalls + 1; k++)
      for (int fi = 0; fi < FAULT_CNT; fi++) failures += check_case(s, &cfg[i], fi, k, &t) != 0;
  }
  /* the region-file configurations copied with sendfile, the others never */
  CHECK(kind != KIND_FULL || (sendfiles > 0 && v3_preads > 0));
  CHECK(kind == KIND_FULL || sendfiles == 0);
  named_free(named);
  char extra[256] = "";
  if (kind == KIND_DELTA)
    snprintf(
        extra, sizeof extra,
        "; %" PRIu64
        " of the absorbed: the base's sidecar could not be opened, the base decoded instead (documented)",
        t.sidecar_fallback);
  if (kind == KIND_INDEX)
    snprintf(extra, sizeof extra,
             "; %" PRIu64 " left a complete sidecar of the unpublished checkpoint (stale, documented)",
             t.stale_index);
  rel_figure("2", names[kind],
             "%" PRIu64 " injected faults over %d configurations (ENOSPC %" PRIu64 ", EIO %" PRIu64
             ", short+ENOSPC %" PRIu64 ", "
             "short %" PRIu64 ", EINTR %" PRIu64 "): %" PRIu64
             " failed cleanly (FAIL, injected errno, nothing left), %" PRIu64 " absorbed "
             "(identical checkpoint), %" PRIu64
             " overwrites replaced at the final directory fsync (documented), "
             "%d violations%s",
             t.cases, n, t.by_fault[0], t.by_fault[1], t.by_fault[2], t.by_fault[3], t.by_fault[4],
             t.failed_clean, t.ok_identical, t.replaced_at_dir_fsync, failures, extra);
  CHECK_EQ(failures, 0);
  CHECK(t.cases > 0 && t.failed_clean > 0 && t.ok_identical > 0);
  ws_free(src);
  test_rmdir(dir);
  if (kind != KIND_FULL) rm_bases();
}

static void test_io_faults(void) { io_faults(KIND_FULL); }

/* wksp_checkpt_delta from each kind of base. */
static void test_delta_io_faults(void) { io_faults(KIND_DELTA); }

/* wksp_checkpt with index: the sidecar's publication and the checkpoint's. */
static void test_index_io_faults(void) { io_faults(KIND_INDEX); }

/* Trial i's call (deltas alternate their base; a third verify; an index
 * always does). */
static int kill_call(wksp_t *src, int kind, uint64_t i, int overwrite) {
  config_t c = {.style = 2 + (int)(i & 1), .threads = 1 + (int)(i & 2) / 2, .kind = kind, .base = (int)(i / 4 % BASE_CNT)};
  wksp_checkpt_opts_t o = {.style = c.style, .threads = (uint32_t)c.threads, .overwrite = overwrite,
                           .verify = kind == KIND_INDEX || i % 3 == 1, .index = kind == KIND_INDEX};
  wksp_delta_stats_t st;
  return ckpt_call(src, &c, -1, &o, &st);
}

/* How long an overwriting call of trial i takes in a child, fork and the
 * current load included (the median of 3): where the publication happens. */
static double child_overwrite_time(wksp_t *src, int kind, uint64_t i) {
  double t[3];
  for (int k = 0; k < 3; k++) {
    if (write_old_kind(kind)) return 0;
    double t0 = rel_now();
    pid_t pid = fork();
    if (!pid) _exit(kill_call(src, kind, i, 1) ? 1 : 0);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) return 0;
    t[k] = rel_now() - t0;
  }
  double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
  return t[2] < lo ? lo : t[2] > hi ? hi : t[2];
}

typedef struct {
  uint64_t nothing, complete_killed, complete_exited, overwrite_tmp_left, tmp_after_next, stale_index, bad;
} kill_tally_t;

/* What a killed (or finished) trial left in dir; the tally says. */
static void kill_check(wksp_t *src, int kind, uint64_t i, int overwrite, int exited, kill_tally_t *t) {
  config_t c = {.kind = kind, .base = (int)(i / 4 % BASE_CNT)};
  char ls[1024], b[1024], *save = NULL;
  rel_dir_list(dir, ls, sizeof ls);
  snprintf(b, sizeof b, "%s", ls);
  int has_path = 0, has_side = 0, tmps = 0, others = 0;
  for (char *e = strtok_r(b, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
    if (!strcmp(e, "c.ckpt")) has_path = 1;
    else if (kind == KIND_INDEX && !strcmp(e, "c.ckpt.wkspidx")) has_side = 1;
    else if (strstr(e, ".wksp-tmp.")) tmps++;
    else others++;
  }
  uint64_t bad = 0;
  int complete = 0;
  if (others || (tmps && !overwrite)) {
    bad +=
        fprintf(stderr, "trial %" PRIu64 " (overwrite %d): directory holds \"%s\"\n", i, overwrite, ls) > 0;
  } else if (!has_path || (overwrite && path_holds_old())) {
    if (!has_path && overwrite)
      bad += fprintf(stderr, "trial %" PRIu64 ": the old file is gone\n", i) > 0;
    t->nothing += !exited;
    bad += exited;
  } else if (restores_same(src, &c)) {
    complete = 1;
    t->complete_killed += !exited;
    t->complete_exited += exited;
  } else {
    bad += fprintf(stderr, "trial %" PRIu64 ": a partial file at the path\n", i) > 0;
  }
  /* Documented window between the link of a temporary name and the
   * rename; the target itself is old or complete. */
  t->overwrite_tmp_left += tmps && overwrite;
  if (has_side && !(overwrite && file_holds(side, old_index, sizeof old_index))) {
    if (!sidecar_complete())
      bad += fprintf(stderr, "trial %" PRIu64 ": a partial sidecar\n", i) > 0;
    else if (complete && !sidecar_fresh(src)) t->stale_index++; /* killed between the two publications */
    else if (!complete) t->stale_index++;
  }
  if (kind == KIND_INDEX && exited && !bad && !(has_side && sidecar_fresh(src)))
    bad += fprintf(stderr, "trial %" PRIu64 ": finished without its sidecar\n", i) > 0;
  if (strstr(ls, ".wksp-tmp.")) {
    /* The next checkpoint into the directory (from another process than
     * the killed writer) removes what it left: its lock died with it. */
    char next[320];
    snprintf(next, sizeof next, "%s/next.ckpt", dir);
    if (wksp_checkpt(src, next, NULL)) bad++;
    rel_dir_list(dir, ls, sizeof ls);
    if (strstr(ls, ".wksp-tmp.")) {
      t->tmp_after_next++;
      bad += fprintf(stderr, "trial %" PRIu64 ": the next checkpoint left \"%s\"\n", i, ls) > 0;
    }
  }
  if (kind == KIND_DELTA) {
    char sum[65];
    rel_dir_digest(basedir, sum);
    if (strcmp(sum, base_sum))
      bad += fprintf(stderr, "trial %" PRIu64 ": the base's directory changed\n", i) > 0;
  }
  t->bad += bad;
}

/* SIGKILL at random moments. */
static void sigkill(int kind) {
  static const char *const names[] = {"sigkill", "sigkill-delta", "sigkill-index"};
  static const char *const what[] = {"checkpoints", "deltas (from 3 kinds of base)", "checkpoints with index"};
  CHECK_OK(make_dir());
  uint64_t trials = kind == KIND_FULL ? rel_param("KILLS", 24, 400)
                                      : rel_param(kind == KIND_DELTA ? "DELTA_KILLS" : "INDEX_KILLS", 16, 400);
  wksp_t *src = make_src(400, 60000, 64 << 20);
  CHECK(src);
  if (kind != KIND_FULL) CHECK_OK(make_bases(src));
  /* The time one call takes, to spread the kills over it. */
  double t0 = rel_now();
  for (uint64_t i = 0; i < 3; i++) {
    CHECK_OK(kill_call(src, kind, kind == KIND_FULL ? 3 : i, 0)); /* v3, 2 threads */
    unlink(path);
    unlink(side);
  }
  double dur = (rel_now() - t0) / 3;
  uint64_t rng = test_seed();
  kill_tally_t t = {0};
  double ow_dur = 0;
  for (uint64_t i = 0; i < trials && t.bad < 3; i++) {
    int overwrite = i % 4 == 3;
    /* Overwrites are aimed at their end, where the temporary name lives
     * between the link and the rename: uniform over 0.6-1.2x of one
     * overwriting call in a child, re-measured every 40 of them. */
    if (overwrite && i % 160 == 3) CHECK((ow_dur = child_overwrite_time(src, kind, i)) > 0);
    if (overwrite) CHECK_OK(write_old_kind(kind));
    double u = (double)(test_rng(&rng) % 10000) / 10000.0;
    double delay = overwrite ? ow_dur * (0.6 + 0.6 * u) : dur * 0.9 * u;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (!pid) _exit(kill_call(src, kind, i, overwrite) ? 1 : 0);
    struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    int exited = WIFEXITED(st);
    if (exited && WEXITSTATUS(st))
      t.bad += fprintf(stderr, "trial %" PRIu64 ": checkpoint failed\n", i) > 0;
    kill_check(src, kind, i, overwrite, exited, &t);
    test_rmdir(dir);
    CHECK(mkdir(dir, 0700) == 0);
  }
  char extra[160] = "";
  if (kind == KIND_INDEX)
    snprintf(extra, sizeof extra,
             ", %" PRIu64 " left a complete sidecar beside no checkpoint of it (stale, documented)",
             t.stale_index);
  rel_figure("2", names[kind],
             "%" PRIu64 " %s SIGKILLed at random times (one takes %.1f ms; overwrites, a quarter, near their "
             "end): %" PRIu64 " left nothing (or the old "
             "file), %" PRIu64 " were killed after publishing a complete file, %" PRIu64
             " completed, %" PRIu64 " left a temporary "
             "name (overwrite window, documented), %" PRIu64
             " temporaries still there after the next checkpoint "
             "into the directory%s, %" PRIu64 " violations",
             trials, what[kind], dur * 1e3, t.nothing, t.complete_killed, t.complete_exited,
             t.overwrite_tmp_left, t.tmp_after_next, extra, t.bad);
  CHECK_EQ(t.bad, 0);
  CHECK(t.nothing > 0);
  ws_free(src);
  test_rmdir(dir);
  if (kind != KIND_FULL) rm_bases();
}

static void test_sigkill(void) { sigkill(KIND_FULL); }

/* SIGKILL during wksp_checkpt_delta. */
static void test_delta_sigkill(void) { sigkill(KIND_DELTA); }

/* SIGKILL during wksp_checkpt with index (two publications). */
static void test_index_sigkill(void) { sigkill(KIND_INDEX); }

int main(int argc, char **argv) {
  (void)argc;
  if (rel_shim(argv, &shim)) {
    printf("FAIL %s/faultshim (not loadable)\n", test_prog_name());
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  TEST_RUN(test_io_faults);
  TEST_RUN(test_delta_io_faults);
  TEST_RUN(test_index_io_faults);
  TEST_RUN(test_sigkill);
  TEST_RUN(test_delta_sigkill);
  TEST_RUN(test_index_sigkill);
  return test_done();
}
