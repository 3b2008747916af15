/* Checkpoint commands: checkpt, restore, info, styles; and the progress
 * display. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- progress ------------------------------------------------------------ */

/* Progress is drawn on stderr only when it is a terminal and not --quiet;
 * the callback always runs, to learn the total for the summary. */
typedef struct {
  cli_t *c;
  int draw, bytes;
  double t0, last;
  uint64_t done, total;
  int drawn;
} progress_t;

static void progress_init(progress_t *p, cli_t *c, int quiet, int bytes) {
  memset(p, 0, sizeof *p);
  p->c = c;
  p->draw = !quiet && isatty(2);
  p->bytes = bytes;
  p->t0 = p->last = cli_now();
}

static void progress_cb(uint64_t done, uint64_t total, void *ctx) {
  progress_t *p = ctx;
  p->done = done;
  p->total = total;
  if (!p->draw) return;
  double now = cli_now(), dt = now - p->t0;
  /* Ten redraws a second are plenty; the last one is always drawn. */
  if ((!total || done < total) && p->drawn && now - p->last < 0.1) return;
  p->last = now;
  p->drawn = 1;
  char a[CLI_HUMAN_MAX], b[CLI_HUMAN_MAX], r[CLI_HUMAN_MAX], eta[32] = "";
  double rate = dt > 0 ? (double)done / dt : 0;
  if (!total) {
    /* A checkpoint read from a pipe does not say how much is coming. */
    fprintf(stderr, "\r%s: %s, %s/s\033[K", p->c->cmd->name, cli_human(done, 0, a), cli_human((uint64_t)rate, 0, r));
  } else {
    if (rate > 0 && done < total) snprintf(eta, sizeof eta, ", %.0f s left", (double)(total - done) / rate + 0.5);
    unsigned pct = (unsigned)((double)done * 100.0 / (double)total);
    fprintf(stderr, "\r%s: %s of %s (%u%%), %s/s%s\033[K", p->c->cmd->name, cli_human(done, 0, a),
            cli_human(total, 0, b), pct, cli_human((uint64_t)rate, 0, r), eta);
  }
  fflush(stderr);
}

static void progress_end(progress_t *p) {
  if (p->drawn) fputc('\n', stderr);
}

/* "1.23 GiB/s" from bytes and seconds. */
static char *rate_str(uint64_t bytes, double dt, char buf[CLI_HUMAN_MAX]) {
  char h[CLI_HUMAN_MAX];
  snprintf(buf, CLI_HUMAN_MAX, "%s/s", cli_human(dt > 0 ? (uint64_t)((double)bytes / dt) : 0, 0, h));
  return buf;
}

/* ---- waiting for the workspace lock -------------------------------------- */

/* A checkpoint or restore blocked behind another holder of the lock says
 * so once (the library calls after WKSP_LOCK_NOTICE_NS), even with
 * --quiet: a silent wait looks like a hang.  The wait's length is kept for
 * the -v summary, apart from the transfer. */
typedef struct {
  cli_t *c;
  const char *name;
  double waited; /* seconds */
} lock_wait_t;

/* The process's name from /proc/<pid>/comm ("" if unreadable), printable. */
static void proc_name(int64_t pid, char *buf, size_t sz) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%" PRId64 "/comm", pid);
  FILE *f = fopen(path, "re");
  buf[0] = 0;
  if (f && !fgets(buf, (int)sz, f)) buf[0] = 0;
  if (f) fclose(f);
  buf[strcspn(buf, "\n")] = 0;
  for (char *p = buf; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) *p = '?';
}

static void lock_wait_cb(const wksp_lock_wait_t *ev, void *ctx) {
  lock_wait_t *l = ctx;
  if (ev->done) {
    l->waited = (double)ev->waited_ns * 1e-9;
    return;
  }
  char comm[64] = "";
  if (ev->pid) proc_name(ev->pid, comm, sizeof comm);
  fflush(stdout);
  if (!ev->pid)
    fprintf(stderr, "wksp: %s: waiting for the lock of \"%s\" (its holder is not known)\n", l->c->cmd->name,
            l->name);
  else
    fprintf(stderr, "wksp: %s: waiting for the lock of \"%s\", held by pid %" PRId64 "%s%s%s\n",
            l->c->cmd->name, l->name, ev->pid, *comm ? " (" : "", comm, *comm ? ")" : "");
  fflush(stderr);
}

/* " (and 1.234 s waiting for the lock)" after a summary when there was a
 * wait; the transfer time is then the rest. */
static const char *lock_note(const lock_wait_t *l, char *buf, size_t sz) {
  buf[0] = 0;
  if (l->waited > 0) snprintf(buf, sz, " (after %.3f s waiting for the lock)", l->waited);
  return buf;
}

/* ---- checkpt ------------------------------------------------------------- */

static int parse_style(cli_t *c, const char *s, int *style) {
  if (!strcmp(s, "v3")) *style = WKSP_CHECKPT_STYLE_V3;
  else if (!strcmp(s, "v2")) *style = WKSP_CHECKPT_STYLE_V2;
  else if (!strcmp(s, "v1")) return cli_usage_err(c, "bad --style \"v1\": v1 checkpoints can be read, not written");
  else return cli_usage_err(c, "bad --style \"%s\": want v2 or v3 (see 'wksp styles')", s);
  return CLI_GO;
}

static int parse_threads(cli_t *c, const char *s, uint32_t *out) {
  if (!s) {
    *out = cli_ncpu();
    return CLI_GO;
  }
  int rc = cli_u32(c, "--threads", s, out);
  if (rc == CLI_GO && !*out) return cli_usage_err(c, "bad --threads \"%s\": must be at least 1", s);
  return rc;
}

/* The size of the file written (-1: not a regular file: a FIFO or device). */
static int64_t written_sz(const char *path, int to_stdout) {
  struct stat st;
  if (to_stdout || stat(path, &st) || !S_ISREG(st.st_mode)) return -1;
  return (int64_t)st.st_size;
}

static void checkpt_summary(const progress_t *p, const lock_wait_t *l, const char *name, const char *path,
                            int to_stdout) {
  char a[CLI_HUMAN_MAX], b[CLI_HUMAN_MAX], r[CLI_HUMAN_MAX], ratio[64] = "", note[64];
  double dt = cli_now() - p->t0 - l->waited;
  int64_t fsz = written_sz(path, to_stdout);
  if (fsz >= 0) {
    snprintf(ratio, sizeof ratio, " -> %s%s file", cli_human((uint64_t)fsz, p->bytes, b), p->bytes ? " bytes" : "");
    if (fsz > 0)
      snprintf(ratio + strlen(ratio), sizeof ratio - strlen(ratio), " (%.2f:1)", (double)p->done / (double)fsz);
  }
  fprintf(stderr, "%s: %s: %s%s of allocations%s in %.3f s, %s%s\n", p->c->cmd->name, name, cli_human(p->done, p->bytes, a),
          p->bytes ? " bytes" : "", ratio, dt, rate_str(p->done, dt, r), lock_note(l, note, sizeof note));
}

/* "--json": the summary as one object on standard output ("seconds"
 * without the wait for the lock, which is "lock_wait_seconds"). */
static void summary_json(const progress_t *p, const lock_wait_t *l, const char *name, const char *path) {
  printf("{\"schema\":1,\"name\":\"%s\",\"path\":", name); /* a valid name needs no JSON escape */
  cli_json_str(stdout, path);
  printf(",\"alloc_sz\":%" PRIu64 ",\"seconds\":%.6f,\"lock_wait_seconds\":%.6f", p->done,
         cli_now() - p->t0 - l->waited, l->waited);
}

/* The options every command with a summary (checkpt, restore) takes and
 * checks the same way. */
typedef struct {
  int quiet, verbose, json, bytes;
} summary_opts_t;

static int summary_opts_check(cli_t *c, const summary_opts_t *s) {
  int rc = cli_exclusive(c, s->quiet, "--quiet", s->verbose, "--verbose");
  if (rc == CLI_GO) rc = cli_exclusive(c, s->quiet, "--quiet", s->json, "--json");
  return rc;
}

/* A delta: the base note (the sidecar could not be used) unless quiet, and
 * with -v its summary. */
static void delta_summary(cli_t *c, const wksp_delta_stats_t *s, const progress_t *p, const char *name,
                          const char *since, int quiet, int verbose) {
  if (!quiet && s->base_note[0])
    cli_note(c, "note: %s: read %s whole; `wksp index %s` writes the index", s->base_note, since, since);
  if (!verbose) return;
  char a[CLI_HUMAN_MAX], b[CLI_HUMAN_MAX];
  fprintf(stderr,
          "delta of \"%s\" since %s: %" PRIu64 " of %" PRIu64 " pieces changed (%s), file %s, %.3f s\n", name,
          since, s->changed_cnt, s->piece_cnt, cli_human(s->changed_sz, p->bytes, a),
          cli_human(s->file_sz, p->bytes, b), cli_now() - p->t0);
}

int cmd_checkpt(cli_t *c) {
  const char *style_s = NULL, *threads_s = NULL, *info = NULL, *mode_s = NULL, *since = NULL;
  int force = 0, verify = 0, index = 0;
  summary_opts_t so = {0};
  const cli_opt_t opts[] = {
      {"style", 0, CLI_OPT_ARG, &style_s, "v2|v3", "v3 (default): LZ4-compressed frames; v2: raw frames"},
      cli_opt_threads(&threads_s),
      {"info", 0, CLI_OPT_ARG, &info, "TEXT", "user info text stored in the checkpoint"},
      {"mode", 0, CLI_OPT_ARG, &mode_s, "OCTAL", "permission bits of the file (default 0600)"},
      {"force", 0, CLI_OPT_FLAG, &force, NULL, "replace an existing file at PATH"},
      {"verify", 0, CLI_OPT_FLAG, &verify, NULL,
       "read the file back and compare it with the workspace\nbefore publishing it; if the application wrote into an\n"
       "allocation meanwhile, fail and publish nothing; else\nseal it with a content digest that restore, info --check\n"
       "and diff check"},
      {"index", 0, CLI_OPT_FLAG, &index, NULL,
       "--verify, and write the index PATH.wkspidx beside it,\nwhich later deltas since PATH read instead of PATH"},
      {"since", 0, CLI_OPT_ARG, &since, "BASE",
       "write a delta (incremental checkpoint): the allocation\ntable and the 64 KiB pieces that differ from BASE, a\n"
       "sealed checkpoint or another delta; restore it with\n'wksp restore NAME BASE DELTA...'"},
      cli_opt_quiet(&so.quiet),
      cli_opt_verbose(&so.verbose, "print a summary line on standard error"),
      cli_opt_json(&so.json),
      cli_opt_bytes(&so.bytes),
      cli_opt_end()};
  int rc = cli_parse(c, opts, 2, 2);
  if (rc != CLI_GO) return rc;
  const char *name = c->pos[0], *path = c->pos[1];
  int to_stdout = !strcmp(path, "-");
  if ((rc = summary_opts_check(c, &so)) != CLI_GO) return rc;
  if (so.json && to_stdout)
    return cli_usage_err(c, "--json needs a PATH: standard output carries the checkpoint");
  wksp_checkpt_opts_t o = {.style = WKSP_CHECKPT_STYLE_V3, .mode = 0600, .overwrite = force, .uinfo = info,
                           .verify = verify};
  if (index && since) return cli_usage_err(c, "--index and --since exclude each other (a delta carries its index)");
  verify |= index; /* the index is of the verified file */
  o.verify = verify;
  o.index = index;
  if (verify && to_stdout)
    return cli_usage_err(c, "--verify needs a PATH: a checkpoint written to standard output cannot be read back");
  if (style_s && (rc = parse_style(c, style_s, &o.style)) != CLI_GO) return rc;
  if (mode_s && (rc = cli_mode(c, "--mode", mode_s, &o.mode)) != CLI_GO) return rc;
  if ((rc = parse_threads(c, threads_s, &o.threads)) != CLI_GO) return rc;
  if ((rc = cli_name(c, "NAME", name)) != CLI_GO) return rc;
  if (to_stdout && isatty(1))
    return cli_fail(c, "writing checkpoint of \"%s\" to standard output: refusing to write to a terminal "
                       "(redirect it to a file or pipe)", name);
  wksp_t *w;
  /* Checkpointing takes the workspace lock, so it needs a writable join. */
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  progress_t p;
  progress_init(&p, c, so.quiet, so.bytes);
  o.progress = progress_cb;
  o.progress_ctx = &p;
  lock_wait_t l = {c, name, 0};
  o.lock_wait = lock_wait_cb;
  o.lock_wait_ctx = &l;
  int err;
  /* A reader that goes away (of standard output, or of a FIFO named as
   * PATH) must surface as a write error (and the lock be released), not
   * kill us in the middle. */
  signal(SIGPIPE, SIG_IGN);
  wksp_delta_stats_t ds;
  if (since) err = to_stdout ? wksp_checkpt_delta_fd(w, 1, "-", since, &o, &ds) : wksp_checkpt_delta(w, path, since, &o, &ds);
  else if (to_stdout) err = wksp_checkpt_fd(w, 1, "-", &o);
  else err = wksp_checkpt(w, path, &o);
  progress_end(&p);
  if (err == WKSP_ERR_EXIST)
    rc = cli_fail(c, "writing checkpoint of \"%s\" to \"%s\": %s (use --force to replace it)", name, path,
                  wksp_errcause());
  else if (err && to_stdout && wksp_errno() == EPIPE)
    rc = cli_fail(c, "writing checkpoint of \"%s\" to \"standard output\": the reader closed the pipe before the "
                     "end (broken pipe); what it got is incomplete", name);
  else if (err)
    rc = cli_lib_err(c, "writing checkpoint of \"%s\" to \"%s\"", name, to_stdout ? "standard output" : path);
  else
    rc = CLI_OK;
  if (!err && since) delta_summary(c, &ds, &p, name, since, so.quiet, so.verbose);
  else if (!err && so.verbose) checkpt_summary(&p, &l, name, path, to_stdout);
  if (!err && so.json) {
    int64_t fsz = written_sz(path, to_stdout);
    summary_json(&p, &l, name, path);
    printf(",\"style\":\"%s\",\"file_sz\":", o.style == WKSP_CHECKPT_STYLE_V2 ? "v2" : "v3");
    if (fsz >= 0)
      printf("%" PRId64, fsz);
    else printf("null");
    printf(",\"sealed\":%s}\n", verify ? "true" : "false");
    rc = cli_flush(c, rc);
  }
  wksp_detach(w);
  return rc;
}

/* ---- fold --------------------------------------------------------------- */

int cmd_fold(cli_t *c) {
  const char *out = NULL, *style_s = NULL, *threads_s = NULL, *info = NULL, *mode_s = NULL;
  int force = 0, index = 0;
  summary_opts_t so = {0};
  const cli_opt_t opts[] = {
      {"output", 'o', CLI_OPT_ARG, &out, "PATH", "the checkpoint to write (required); - for standard output"},
      {"style", 0, CLI_OPT_ARG, &style_s, "v2|v3", "default: the style of BASE"},
      cli_opt_threads(&threads_s),
      {"info", 0, CLI_OPT_ARG, &info, "TEXT", "user info text stored in the checkpoint"},
      {"mode", 0, CLI_OPT_ARG, &mode_s, "OCTAL", "permission bits of the file (default 0600)"},
      {"force", 0, CLI_OPT_FLAG, &force, NULL, "replace an existing file at PATH"},
      {"index", 0, CLI_OPT_FLAG, &index, NULL, "also write the index PATH.wkspidx (see checkpt --index)"},
      cli_opt_quiet(&so.quiet),
      cli_opt_verbose(&so.verbose, "print a summary line on standard error"),
      cli_opt_bytes(&so.bytes),
      cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1 << 20);
  if (rc != CLI_GO) return rc;
  if (!out) return cli_usage_err(c, "-o PATH is required: where the folded checkpoint goes (- for standard output)");
  for (int k = 0; k < c->npos; k++)
    if (!strcmp(c->pos[k], "-")) return cli_usage_err(c, "\"-\" in a chain: every member must be a file");
  int to_stdout = !strcmp(out, "-");
  if ((rc = summary_opts_check(c, &so)) != CLI_GO) return rc;
  wksp_checkpt_opts_t o = {.mode = 0600, .overwrite = force, .uinfo = info, .index = index};
  if (index && to_stdout)
    return cli_usage_err(c, "--index needs a PATH: it is written beside the checkpoint");
  if (style_s && (rc = parse_style(c, style_s, &o.style)) != CLI_GO) return rc;
  if (mode_s && (rc = cli_mode(c, "--mode", mode_s, &o.mode)) != CLI_GO) return rc;
  if ((rc = parse_threads(c, threads_s, &o.threads)) != CLI_GO) return rc;
  /* The chain in messages: "BASE ... LAST", or BASE alone. */
  const char *first = c->pos[0], *last = c->npos > 1 ? c->pos[c->npos - 1] : "", *dots = c->npos > 1 ? " ... " : "";
  if (to_stdout && isatty(1))
    return cli_fail(c, "writing the fold of %s%s%s to standard output: refusing to write to a terminal "
                       "(redirect it to a file or pipe)", first, dots, last);
  progress_t p;
  progress_init(&p, c, so.quiet, so.bytes);
  o.progress = progress_cb;
  o.progress_ctx = &p;
  signal(SIGPIPE, SIG_IGN); /* a reader that goes away: a write error, as for checkpt */
  const char *const *chain = (const char *const *)c->pos;
  size_t cnt = (size_t)c->npos;
  int err = to_stdout ? wksp_checkpt_fold_fd(chain, cnt, 1, "-", &o) : wksp_checkpt_fold(chain, cnt, out, &o);
  progress_end(&p);
  const char *where = to_stdout ? "standard output" : out;
  if (err == WKSP_ERR_EXIST)
    rc = cli_fail(c, "folding %s%s%s into \"%s\": %s (use --force to replace it)", first, dots, last, out,
                  wksp_errcause());
  else if (err && to_stdout && wksp_errno() == EPIPE)
    rc = cli_fail(c, "folding %s%s%s into standard output: the reader closed the pipe before the end (broken "
                     "pipe); what it got is incomplete", first, dots, last);
  else if (err)
    rc = cli_lib_err(c, "folding %s%s%s into \"%s\"", first, dots, last, where);
  else
    rc = CLI_OK;
  lock_wait_t l = {c, out, 0};
  if (!err && so.verbose) checkpt_summary(&p, &l, where, out, to_stdout);
  return rc;
}

/* ---- restore ------------------------------------------------------------- */

/* A checkpoint that does not fit the workspace (FULL): the library's cause,
 * and how to make a workspace that fits, in the tool's terms.  The
 * checkpoint's own geometry always fits (same data region, same record
 * count): that is what `wksp new --from` creates. */
static int restore_no_fit(cli_t *c, const char *name, const char *path, int from_stdin) {
  char cause[1024];
  wksp_preview_t pv;
  snprintf(cause, sizeof cause, "%s", wksp_errcause());
  if (from_stdin || wksp_preview(path, &pv))
    return cli_fail(c, "checkpoint \"%s\" does not fit workspace \"%s\": %s; a workspace made by `wksp new NAME "
                       "--from FILE` from a copy of it in a file fits",
                    from_stdin ? "standard input" : path, name, cause);
  uint64_t sz = wksp_footprint(pv.part_max, pv.data_max);
  return cli_fail(c,
                  "checkpoint \"%s\" does not fit workspace \"%s\": %s; `wksp new NAME --from %s` makes one "
                  "that fits (or `wksp new NAME %" PRIu64 "K --part-max %" PRIu64 "`)",
                  path, name, cause, path, ((sz + 1023) / 1024), pv.part_max);
}

int cmd_restore(cli_t *c) {
  const char *seed_s = NULL, *threads_s = NULL;
  int verify_first = 0, require_seal = 0;
  summary_opts_t so = {0};
  const cli_opt_t opts[] = {
      {"seed", 0, CLI_OPT_ARG, &seed_s, "N", "seed the workspace is rebuilt with (default: keep)"},
      cli_opt_threads(&threads_s),
      {"verify-first", 0, CLI_OPT_FLAG, &verify_first, NULL,
       "read and check the whole checkpoint (and a sealed one's\ncontent digest) before changing the workspace"},
      {"require-seal", 0, CLI_OPT_FLAG, &require_seal, NULL,
       "refuse a checkpoint that is not sealed (see checkpt\n--verify), before changing the workspace"},
      cli_opt_quiet(&so.quiet),
      cli_opt_verbose(&so.verbose, "print a summary line on standard error"),
      cli_opt_json(&so.json),
      cli_opt_bytes(&so.bytes),
      cli_opt_end()};
  int rc = cli_parse(c, opts, 2, 1 << 20);
  if (rc != CLI_GO) return rc;
  const char *name = c->pos[0], *path = c->pos[1];
  int from_stdin = !strcmp(path, "-"), chain = c->npos > 2;
  if (chain && (rc = cli_chain_stdin(c, 1)) != CLI_GO) return rc;
  if ((rc = summary_opts_check(c, &so)) != CLI_GO) return rc;
  wksp_restore_opts_t o = {.verify_first = verify_first, .require_seal = require_seal};
  if (seed_s && (rc = cli_u32(c, "--seed", seed_s, &o.seed)) != CLI_GO) return rc;
  if ((rc = parse_threads(c, threads_s, &o.threads)) != CLI_GO) return rc;
  if ((rc = cli_name(c, "NAME", name)) != CLI_GO) return rc;
  if (from_stdin && isatty(0))
    return cli_fail(c, "restoring \"%s\" from standard input: refusing to read a checkpoint from a terminal", name);
  wksp_t *w;
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  if (!seed_s) o.seed = wksp_seed(w);
  progress_t p;
  progress_init(&p, c, so.quiet, so.bytes);
  o.progress = progress_cb;
  o.progress_ctx = &p;
  lock_wait_t l = {c, name, 0};
  o.lock_wait = lock_wait_cb;
  o.lock_wait_ctx = &l;
  int err = chain ? wksp_restore_chain(w, (const char *const *)c->pos + 1, (size_t)c->npos - 1, &o)
            : from_stdin ? wksp_restore_fd(w, 0, "-", &o) : wksp_restore(w, path, &o);
  progress_end(&p);
  if (err == WKSP_ERR_FULL) {
    rc = restore_no_fit(c, name, path, from_stdin);
  } else if (err) {
    rc = cli_lib_err(c, "restoring \"%s\" from \"%s\"", name, from_stdin ? "standard input" : path);
  } else {
    rc = CLI_OK;
    if (so.verbose) {
      char a[CLI_HUMAN_MAX], r[CLI_HUMAN_MAX], note[64];
      double dt = cli_now() - p.t0 - l.waited;
      fprintf(stderr, "restore: %s: %s%s of allocations in %.3f s, %s%s\n", name, cli_human(p.done, so.bytes, a),
              so.bytes ? " bytes" : "", dt, rate_str(p.done, dt, r), lock_note(&l, note, sizeof note));
    }
    if (so.json) {
      summary_json(&p, &l, name, path);
      printf("}\n");
      rc = cli_flush(c, rc);
    }
  }
  wksp_detach(w);
  return rc;
}

/* ---- info ---------------------------------------------------------------- */

static void json_u64(const char *key, uint64_t v) { printf(",\"%s\":%" PRIu64, key, v); }

static void json_str_field(const char *key, const char *v) {
  printf(",\"%s\":", key);
  cli_json_str(stdout, v ? v : "");
}

static void print_info_json(const char *path, const wksp_checkpt_info_t *in, int verbose) {
  const wksp_preview_t *pv = &in->pv;
  printf("{\"schema\":1,\"path\":");
  cli_json_str(stdout, path);
  json_u64("file_sz", in->file_sz);
  printf(",\"style\":%d,\"frame_style\":%d", pv->style, pv->frame_style);
  json_str_field("name", pv->name);
  json_u64("seed", pv->seed);
  json_u64("part_max", pv->part_max);
  json_u64("data_max", pv->data_max);
  /* mode as every JSON of the tool gives it: octal digits in a string, as --mode takes them */
  printf(",\"info\":{\"mode\":\"%04llo\",\"wallclock\":%" PRId64, (unsigned long long)in->mode,
         in->wallclock);
  json_u64("app_id", in->app_id);
  json_u64("thread_id", in->thread_id);
  json_u64("host_id", in->host_id);
  json_u64("cpu_id", in->cpu_id);
  json_u64("group_id", in->group_id);
  json_u64("tid", in->tid);
  json_u64("user_id", in->user_id);
  json_str_field("app", in->app);
  json_str_field("thread", in->thread);
  json_str_field("host", in->host);
  json_str_field("cpu", in->cpu);
  json_str_field("group", in->group);
  json_str_field("user", in->user);
  json_str_field("path", in->path);
  json_str_field("binfo", in->binfo);
  json_str_field("uinfo", in->uinfo);
  printf("}");
  json_u64("alloc_cnt", in->alloc_cnt);
  json_u64("alloc_sz", in->alloc_sz);
  json_u64("cgroup_cnt", in->cgroup_cnt);
  json_u64("volume_cnt", in->volume_cnt);
  if (verbose >= 3) {
    printf(",\"cgroups\":[");
    for (uint64_t i = 0; i < in->cgroup_cnt; i++)
      printf("%s{\"off\":%" PRIu64 ",\"end\":%" PRIu64 ",\"alloc_cnt\":%" PRIu64 ",\"data_sz\":%" PRIu64 "}",
             i ? "," : "", in->cgroups[i].off, in->cgroups[i].end, in->cgroups[i].alloc_cnt,
             in->cgroups[i].data_sz);
    printf("]");
  }
  if (verbose >= 4) {
    printf(",\"allocations\":[");
    for (uint64_t i = 0; i < in->alloc_cnt; i++)
      printf("%s{\"gaddr_lo\":%" PRIu64 ",\"gaddr_hi\":%" PRIu64 ",\"tag\":%" PRIu64 "}", i ? "," : "",
             in->parts[i].gaddr_lo, in->parts[i].gaddr_hi, in->parts[i].tag);
    printf("]");
  }
  printf("}\n");
}

static const char *seal_name(int seal) {
  return seal == WKSP_SEAL_OK ? "ok" : seal == WKSP_SEAL_BROKEN ? "broken" : "none";
}

/* ---- info of deltas and chains (wksp_chain_info) ---- */

static const char *file_kind(int kind) {
  return kind == WKSP_FILE_DELTA ? "delta" : kind == WKSP_FILE_INDEX ? "index" : "checkpoint";
}

static void json_hex(const char *key, uint64_t v) { printf(",\"%s\":\"%016llx\"", key, (unsigned long long)v); }

/* One file's fields, as info --json of a checkpoint names them where they
 * are the same; without the braces. */
static void print_link_json(const wksp_chain_link_t *l, int verbose) {
  printf("\"path\":");
  cli_json_str(stdout, l->path);
  printf(",\"kind\":\"%s\"", file_kind(l->kind));
  json_u64("file_sz", l->file_sz);
  json_u64("version", l->version);
  json_u64("piece_style", l->piece_style);
  json_u64("flags", l->flags);
  json_str_field("name", l->name);
  json_u64("seed", l->seed);
  json_u64("part_max", l->part_max);
  json_u64("data_max", l->data_max);
  printf(",\"wallclock\":%" PRId64 ",\"seal\":\"%s\"", l->wallclock, seal_name(l->seal));
  json_hex("base_digest", l->base_digest);
  json_hex("digest", l->digest);
  json_str_field("hint", l->hint);
  json_str_field("uinfo", l->uinfo);
  json_u64("alloc_cnt", l->alloc_cnt);
  json_u64("alloc_sz", l->alloc_sz);
  json_u64("piece_cnt", l->piece_cnt);
  json_u64("changed_cnt", l->changed_cnt);
  json_u64("changed_sz", l->changed_sz);
  if (verbose < 4) return;
  printf(",\"allocations\":[");
  for (uint64_t i = 0; i < l->alloc_cnt; i++)
    printf("%s{\"gaddr_lo\":%" PRIu64 ",\"gaddr_hi\":%" PRIu64 ",\"tag\":%" PRIu64 ",\"changed\":%" PRIu64
           "}",
           i ? "," : "", l->parts[i].gaddr_lo, l->parts[i].gaddr_hi, l->parts[i].tag, l->changed[i]);
  printf("]");
}

static void print_chain_json(const wksp_chain_info_t *ci, int verbose) {
  printf("{\"schema\":1");
  if (ci->cnt == 1) {
    putchar(',');
    print_link_json(&ci->links[0], verbose);
    printf("}\n");
    return;
  }
  printf(",\"linked\":%s", ci->linked ? "true" : "false");
  if (!ci->linked) json_u64("first_unlinked", ci->first_unlinked);
  printf(",\"links\":[");
  for (size_t k = 0; k < ci->cnt; k++) {
    printf("%s{", k ? "," : "");
    print_link_json(&ci->links[k], verbose);
    printf(",\"linked\":%s}", ci->links[k].linked ? "true" : "false");
  }
  const wksp_chain_link_t *f = &ci->links[ci->cnt - 1];
  if (!ci->linked) {
    printf("]}\n");
    return;
  }
  printf("],\"final\":{\"alloc_cnt\":%" PRIu64 ",\"alloc_sz\":%" PRIu64 ",\"piece_cnt\":%" PRIu64
         ",\"digest\":\"%016" PRIx64 "\"}}\n",
         f->alloc_cnt, f->alloc_sz, f->piece_cnt, f->digest);
}

/* Why link k does (not) apply after the one before it. */
static void print_link_text(const wksp_chain_info_t *ci, size_t k) {
  const wksp_chain_link_t *l = &ci->links[k];
  printf("%zu ", k + 1);
  cli_text_str(stdout, l->path);
  printf(": %s", file_kind(l->kind));
  if (l->kind == WKSP_FILE_CHECKPT)
    printf(" (v%u, %s)", l->version + (l->version == 2 && l->piece_style == 2), seal_name(l->seal));
  if (l->kind == WKSP_FILE_DELTA) {
    printf(", base digest %016llx", (unsigned long long)l->base_digest);
    if (k) printf(" %s digest of %zu", l->linked ? "=" : "!=", k);
  }
  printf(", digest %016" PRIx64 ", %" PRIu64 " allocation%s (%" PRIu64 " bytes), %" PRIu64 " of %" PRIu64
         " pieces held (%" PRIu64 " bytes), file %" PRIu64 " bytes",
         l->digest, l->alloc_cnt, l->alloc_cnt == 1 ? "" : "s", l->alloc_sz, l->changed_cnt, l->piece_cnt,
         l->changed_sz, l->file_sz);
  if (!l->linked)
    printf(k ? "; does not apply here" : "; cannot start a chain (a sealed v2/v3 checkpoint can)");
  putchar('\n');
}

static void print_chain_text(const wksp_chain_info_t *ci, int verbose) {
  printf("chain of %zu files: ", ci->cnt);
  if (ci->linked) printf("every link holds\n");
  else printf("does not link at file %zu\n", ci->first_unlinked + 1);
  for (size_t k = 0; k < ci->cnt; k++) print_link_text(ci, k);
  const wksp_chain_link_t *f = &ci->links[ci->cnt - 1];
  if (!ci->linked) return; /* no final state */
  printf("final state: %" PRIu64 " allocation%s, %" PRIu64 " bytes, %" PRIu64
         " pieces, content digest %016" PRIx64 "\n",
         f->alloc_cnt, f->alloc_cnt == 1 ? "" : "s", f->alloc_sz, f->piece_cnt, f->digest);
  for (uint64_t i = 0; verbose >= 4 && i < f->alloc_cnt; i++)
    printf("\t[%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 "\n", f->parts[i].gaddr_lo, f->parts[i].gaddr_hi,
           f->parts[i].tag);
}

/* info of several files, or --json of one that may be a delta; *done 0:
 * a single full checkpoint, left to the checkpoint listing. */
static int info_chain(cli_t *c, int json, int level, int *done) {
  wksp_chain_info_t ci;
  *done = 1;
  if (wksp_chain_info((const char *const *)c->pos, (size_t)c->npos, &ci))
    return cli_lib_err(c, "reading %s \"%s\"", c->npos > 1 ? "the chain starting at" : "checkpoint", c->pos[0]);
  if (c->npos == 1 && ci.links[0].kind == WKSP_FILE_CHECKPT) *done = 0;
  else if (json) print_chain_json(&ci, level);
  else print_chain_text(&ci, level);
  wksp_chain_info_free(&ci);
  return *done ? cli_flush(c, CLI_OK) : CLI_OK;
}

static int chain_check(cli_t *c, uint32_t threads, int json) {
  const wksp_check_opts_t o = {.threads = threads};
  if (wksp_chain_check((const char *const *)c->pos, (size_t)c->npos, &o, NULL))
    return cli_lib_err(c, "checking the chain starting at \"%s\"", c->pos[0]);
  if (json) {
    printf("{\"schema\":1,\"paths\":[");
    for (int k = 0; k < c->npos; k++) {
      if (k) putchar(',');
      cli_json_str(stdout, c->pos[k]);
    }
    printf("],\"check\":\"ok\",\"seal\":\"ok\"}\n");
  } else {
    printf("chain of %d files: ok: the base decoded and matching its seal, every delta's pieces decoded and "
           "checked, every link holds\n", c->npos);
  }
  return cli_flush(c, CLI_OK);
}

/* info --check: everything a file alone can tell, one line. */
static int info_check(cli_t *c, const char *path, int from_stdin, uint32_t threads, int require_seal,
                      int json) {
  int seal = WKSP_SEAL_NONE;
  const wksp_check_opts_t o = {.threads = threads, .require_seal = require_seal};
  if (from_stdin ? wksp_checkpt_check_fd(0, "-", &o, &seal) : wksp_checkpt_check(path, &o, &seal))
    return cli_lib_err(c, "checking checkpoint \"%s\"", path);
  if (json) {
    printf("{\"schema\":1,\"path\":");
    cli_json_str(stdout, path);
    printf(",\"check\":\"ok\",\"seal\":\"%s\"}\n", seal_name(seal));
  } else {
    cli_text_str(stdout, path);
    printf(": ok: structure valid, every allocation decoded; %s\n",
           seal == WKSP_SEAL_OK ? "sealed, its content matches the digest it recorded"
                                : "not sealed (written without --verify: flipped bits in its data would not show)");
  }
  return cli_flush(c, CLI_OK);
}

/* An unnamed temporary file in $TMPDIR (else /tmp), where the library
 * spools too; -1 with errno on failure. */
static int tmp_fd(void) {
  const char *dir = getenv("TMPDIR");
  int fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
  FILE *f = tmpfile(); /* a file system without O_TMPFILE */
  if (!f) return -1;
  fd = dup(fileno(f));
  fclose(f);
  return fd;
}

/* Copies all of fd (from its start) to standard output. */
static int copy_out(int fd) {
  static char buf[1 << 16];
  fflush(stdout);
  for (off_t at = 0;;) {
    ssize_t n = pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : 0;
    for (ssize_t done = 0; done < n;) {
      ssize_t k = write(1, buf + done, (size_t)(n - done));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return errno;
      done += k;
    }
    at += n;
  }
}

/* The text listing (wksp_checkpt_print).  It is written to a temporary
 * file first and printed once the checkpoint has been read to its end: a
 * damaged checkpoint prints its error and nothing on standard output. */
static int info_text(cli_t *c, const char *path, int from_stdin, int level) {
  int fd = tmp_fd();
  if (fd < 0) return cli_os_err(c, errno, "reading checkpoint \"%s\": creating a temporary file", path);
  int err = from_stdin ? wksp_checkpt_print_fd(fd, 0, "-", level) : wksp_checkpt_print(fd, path, level);
  int rc = CLI_OK, e;
  if (err) rc = cli_lib_err(c, "reading checkpoint \"%s\"", path);
  else if ((e = copy_out(fd))) rc = cli_os_err(c, e, "writing to standard output");
  close(fd);
  return rc;
}

int cmd_info(cli_t *c) {
  const char *level_s = NULL, *threads_s = NULL;
  int level = -1, json = 0, check = 0, require_seal = 0;
  const cli_opt_t opts[] = {
      {"verbose", 'v', CLI_OPT_LEVEL, &level, "LEVEL", "detail level 0..5 (default 1; -vv is 2, -vvv 3, ...)"},
      {"level", 0, CLI_OPT_ARG, &level_s, "LEVEL", "the same as -v LEVEL"},
      cli_opt_json(&json),
      {"check", 0, CLI_OPT_FLAG, &check, NULL,
       "instead, check the checkpoint as far as a file alone\ncan be: structure, every allocation decoded, and a\n"
       "sealed one's content digest (see checkpt --verify)"},
      {"threads", 0, CLI_OPT_ARG, &threads_s, "N", "threads decoding for --check (default: online CPUs)"},
      {"require-seal", 0, CLI_OPT_FLAG, &require_seal, NULL, "with --check: fail unless the checkpoint is sealed"},
      cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1 << 20);
  if (rc != CLI_GO) return rc;
  const char *path = c->pos[0];
  int from_stdin = !strcmp(path, "-"), chain = c->npos > 1;
  if (chain && (rc = cli_chain_stdin(c, 0)) != CLI_GO) return rc;
  uint32_t threads, level_u;
  if ((rc = cli_exclusive(c, level >= 0, "--verbose", level_s != NULL, "--level")) != CLI_GO) return rc;
  if (level_s && (rc = cli_u32(c, "--level", level_s, &level_u)) != CLI_GO) return rc;
  if (level_s) level = level_u > 5 ? 6 : (int)level_u;
  if (level > 5 && level_s) return cli_usage_err(c, "bad --level \"%s\": LEVEL is 0..5", level_s);
  if (level > 5) return cli_usage_err(c, "bad -v \"%d\": LEVEL is 0..5", level);
  if (level < 0) level = 1;
  if ((rc = parse_threads(c, threads_s, &threads)) != CLI_GO) return rc;
  if (from_stdin && isatty(0))
    return cli_fail(c, "reading a checkpoint from standard input: refusing to read from a terminal");
  if (require_seal && !check) return cli_usage_err(c, "--require-seal goes with --check");
  if (require_seal && chain) return cli_usage_err(c, "--require-seal is for one file (a chain's base is always sealed)");
  if (check && chain) return chain_check(c, threads, json);
  if (check) return info_check(c, path, from_stdin, threads, require_seal, json);
  struct stat st; /* one file: a delta's JSON; read twice if a checkpoint, so a file, not a stream */
  if (chain || (json && !from_stdin && !stat(path, &st) && S_ISREG(st.st_mode))) {
    int done;
    rc = info_chain(c, json, level, &done);
    if (done) return rc;
  }
  if (json) {
    wksp_checkpt_info_t in;
    if (from_stdin ? wksp_checkpt_info_fd(0, "-", &in) : wksp_checkpt_info(path, &in))
      return cli_lib_err(c, "reading checkpoint \"%s\"", path);
    print_info_json(path, &in, level);
    wksp_checkpt_info_free(&in);
    return cli_flush(c, CLI_OK);
  }
  return info_text(c, path, from_stdin, level);
}

/* ---- diff ---------------------------------------------------------------- */

static const char *diff_kind(int kind) {
  switch (kind) {
  case WKSP_DIFF_BYTES: return "bytes";
  case WKSP_DIFF_TAG: return "tag";
  case WKSP_DIFF_ONLY_CKPT: return "only_ckpt";
  case WKSP_DIFF_ONLY_WKSP: return "only_wksp";
  default: return "none";
  }
}

/* One difference as the library reports it. */
typedef struct {
  int kind;
  wksp_part_t c, w;
  uint64_t off;
} diff_item_t;

typedef struct {
  diff_item_t *v;
  size_t n, cap;
  int nomem;
} diff_list_t;

static void diff_collect(int kind, const wksp_part_t *c, const wksp_part_t *w, uint64_t off, void *ctx) {
  diff_list_t *l = ctx;
  if (l->nomem) return;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    diff_item_t *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->nomem = 1;
      return;
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = (diff_item_t){.kind = kind, .c = *c, .w = *w, .off = off};
}

/* The range of a difference: the checkpoint's, or the workspace's when the
 * checkpoint has none. */
static const wksp_part_t *diff_range(const diff_item_t *d) {
  return d->kind == WKSP_DIFF_ONLY_WKSP ? &d->w : &d->c;
}

static void print_diff_item_json(const diff_item_t *d) {
  const wksp_part_t *p = diff_range(d);
  printf("{\"kind\":\"%s\",\"gaddr_lo\":%" PRIu64 ",\"gaddr_hi\":%" PRIu64 ",\"tag_ckpt\":%" PRIu64
         ",\"tag_wksp\":%" PRIu64 ","
         "\"off\":%" PRIu64 "}",
         diff_kind(d->kind), p->gaddr_lo, p->gaddr_hi, d->c.tag, d->w.tag, d->off);
}

static void print_diff_json(const wksp_checkpt_diff_t *d, const diff_list_t *all) {
  printf("{\"schema\":1,\"same\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"tag\":%" PRIu64 ",\"only_ckpt\":%" PRIu64
         ",\"only_wksp\":%" PRIu64,
         d->same, d->bytes, d->tag, d->only_ckpt, d->only_wksp);
  printf(",\"seal\":\"%s\",\"digest\":\"%016llx\"", seal_name(d->seal), (unsigned long long)d->digest);
  if (d->first_kind != WKSP_DIFF_NONE) {
    diff_item_t first = {.kind = d->first_kind, .c = d->first_ckpt, .w = d->first_wksp, .off = d->first_off};
    printf(",\"first\":");
    print_diff_item_json(&first);
  }
  if (all) {
    printf(",\"differences\":[");
    for (size_t i = 0; i < all->n; i++) {
      if (i) putchar(',');
      print_diff_item_json(&all->v[i]);
    }
    printf("]");
  }
  printf("}\n");
}

static void print_diff_item_text(const char *lead, const diff_item_t *d) {
  const wksp_part_t *c = &d->c, *w = &d->w;
  switch (d->kind) {
  case WKSP_DIFF_BYTES:
    printf("%s[%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 ": bytes differ from offset %" PRIu64 "\n", lead,
           c->gaddr_lo, c->gaddr_hi, c->tag, d->off);
    break;
  case WKSP_DIFF_TAG:
    printf("%s[%" PRIu64 ",%" PRIu64 "): tag %" PRIu64 " in the checkpoint, %" PRIu64 " in the workspace\n",
           lead, c->gaddr_lo, c->gaddr_hi, c->tag, w->tag);
    break;
  case WKSP_DIFF_ONLY_CKPT:
    printf("%s[%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 ": only in the checkpoint\n", lead, c->gaddr_lo,
           c->gaddr_hi, c->tag);
    break;
  case WKSP_DIFF_ONLY_WKSP:
    printf("%s[%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 ": only in the workspace\n", lead, w->gaddr_lo,
           w->gaddr_hi, w->tag);
    break;
  }
}

static void print_diff_text(const wksp_checkpt_diff_t *d, const diff_list_t *all) {
  printf("%" PRIu64 " allocation%s the same, %" PRIu64 " with other bytes, %" PRIu64
         " with another tag, %" PRIu64 " only in the "
         "checkpoint, %" PRIu64 " only in the workspace\n",
         d->same, d->same == 1 ? "" : "s", d->bytes, d->tag, d->only_ckpt, d->only_wksp);
  if (d->seal == WKSP_SEAL_OK)
    printf("seal: the checkpoint's content digest %016llx matches what it holds\n", (unsigned long long)d->digest);
  if (all) {
    for (size_t i = 0; i < all->n; i++) print_diff_item_text("", &all->v[i]);
  } else if (d->first_kind != WKSP_DIFF_NONE) {
    diff_item_t first = {.kind = d->first_kind, .c = d->first_ckpt, .w = d->first_wksp, .off = d->first_off};
    print_diff_item_text("first difference: ", &first);
  }
}

/* The comparison itself; returns CLI_OK (*differ says whether they
 * differ), or CLI_FAIL / CLI_USAGE after printing why.  A checkpoint whose
 * seal is broken (or not sealed, with require_seal) is a failure: nothing
 * is reported on standard output then. */
static int diff_run(cli_t *c, int quiet, int verbose, int json, int require_seal, uint32_t threads, int *differ) {
  const char *name = c->pos[0], *path = c->pos[1];
  int from_stdin = !strcmp(path, "-"), rc, chain = c->npos > 2;
  const char *src = from_stdin ? "standard input" : path;
  if (chain && (rc = cli_chain_stdin(c, 1)) != CLI_GO) return rc;
  if ((rc = cli_name(c, "NAME", name)) != CLI_GO) return rc;
  if (from_stdin && isatty(0))
    return cli_fail(c, "reading a checkpoint from standard input: refusing to read from a terminal");
  wksp_t *w;
  /* The comparison takes the workspace lock, so it needs a writable join. */
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  wksp_checkpt_diff_t d;
  diff_list_t all = {0};
  const wksp_diff_opts_t o = {.threads = threads, .each = verbose ? diff_collect : NULL, .each_ctx = &all};
  int err = chain ? wksp_checkpt_diff_chain(w, (const char *const *)c->pos + 1, (size_t)c->npos - 1, &o, &d)
            : from_stdin ? wksp_checkpt_diff_fd(w, 0, "-", &o, &d) : wksp_checkpt_diff(w, path, &o, &d);
  wksp_detach(w);
  if (err)
    rc = cli_lib_err(c, "comparing \"%s\" with %s \"%s\"", name, chain ? "the chain starting at" : "checkpoint", src);
  else if (all.nomem)
    rc = cli_fail(c, "listing the differences: out of memory");
  else if (d.seal == WKSP_SEAL_BROKEN && chain) /* every delta piece was checked against its hash */
    rc = cli_fail(c, "the chain's base \"%s\" is damaged: the chain's final state holds content with digest "
                     "%016llx, not the last delta's", src, (unsigned long long)d.digest);
  else if (d.seal == WKSP_SEAL_BROKEN)
    rc = cli_fail(c, "checkpoint \"%s\" is damaged: its seal does not hold (it holds content with digest %016llx, "
                     "not what was recorded when it was written)", src, (unsigned long long)d.digest);
  else if (require_seal && d.seal == WKSP_SEAL_NONE)
    rc = cli_fail(c, "checkpoint \"%s\" is not sealed (written without --verify), and --require-seal was given", src);
  else
    rc = CLI_OK;
  *differ = rc == CLI_OK && d.first_kind != WKSP_DIFF_NONE;
  if (rc == CLI_OK && !quiet) {
    if (json) print_diff_json(&d, verbose ? &all : NULL);
    else print_diff_text(&d, verbose ? &all : NULL);
    rc = cli_flush(c, CLI_OK);
  }
  free(all.v);
  return rc;
}

int cmd_diff(cli_t *c) {
  const char *threads_s = NULL;
  int quiet = 0, verbose = 0, json = 0, require_seal = 0;
  const cli_opt_t opts[] = {
      cli_opt_threads(&threads_s),
      cli_opt_quiet(&quiet),
      cli_opt_verbose(&verbose, "list every difference"),
      cli_opt_json(&json),
      {"require-seal", 0, CLI_OPT_FLAG, &require_seal, NULL, "fail (exit status 3) unless the checkpoint is sealed"},
      cli_opt_end()};
  int rc = cli_parse(c, opts, 2, 1 << 20), differ = 0;
  uint32_t threads = 0;
  if (rc == CLI_GO) rc = cli_exclusive(c, quiet, "--quiet", verbose, "--verbose");
  if (rc == CLI_GO) rc = cli_exclusive(c, quiet, "--quiet", json, "--json");
  if (rc == CLI_GO) rc = parse_threads(c, threads_s, &threads);
  if (rc == CLI_GO) rc = diff_run(c, quiet, verbose, json, require_seal, threads, &differ);
  /* As cmp(1): 0 the same, 1 they differ, 2 (ours: 3) trouble; 2 is ours
   * for usage errors, as everywhere. */
  if (rc == CLI_FAIL) return CLI_TROUBLE;
  return rc == CLI_OK && differ ? 1 : rc;
}

/* ---- styles -------------------------------------------------------------- */

int cmd_styles(cli_t *c) {
  static const struct {
    const char *name;
    int write, dflt;
    const char *what;
  } styles[] = {{"v1", 0, 0, "legacy stream, no frames, no compression"},
                {"v2", 1, 0, "framed, raw (uncompressed) frames"},
                {"v3", 1, 1, "framed, LZ4 frames (the file header says style 2)"}};
  int json = 0;
  const cli_opt_t opts[] = {cli_opt_json(&json), cli_opt_end()};
  int rc = cli_parse(c, opts, 0, 0);
  if (rc != CLI_GO) return rc;
  if (!json) printf("STYLE  WRITE  READ  DESCRIPTION\n");
  else printf("{\"schema\":1,\"styles\":[");
  for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++) {
    if (json)
      printf("%s{\"name\":\"%s\",\"write\":%s,\"read\":true,\"default\":%s,\"description\":\"%s\"}", i ? "," : "",
             styles[i].name, styles[i].write ? "true" : "false", styles[i].dflt ? "true" : "false", styles[i].what);
    else
      printf("%-6s %-6s yes   %s%s\n", styles[i].name, styles[i].write ? "yes" : "no", styles[i].what,
             styles[i].dflt ? "; the default" : "");
  }
  if (json) printf("]}\n");
  return cli_flush(c, CLI_OK);
}

/* ---- index --------------------------------------------------------------- */

int cmd_index(cli_t *c) {
  const char *threads_s = NULL;
  const cli_opt_t opts[] = {cli_opt_threads(&threads_s), cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1);
  if (rc != CLI_GO) return rc;
  uint32_t threads;
  if ((rc = parse_threads(c, threads_s, &threads)) != CLI_GO) return rc;
  if (wksp_checkpt_index(c->pos[0], threads)) return cli_lib_err(c, "writing the index of \"%s\"", c->pos[0]);
  return CLI_OK;
}
