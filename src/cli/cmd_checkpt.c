/* Checkpoint commands: checkpt, fold, restore, styles, index; and the
 * progress display.  info and diff: cmd_inspect.c. */
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
  if ((rc = cli_threads(c, threads_s, &o.threads)) != CLI_GO) return rc;
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
  if ((rc = cli_threads(c, threads_s, &o.threads)) != CLI_GO) return rc;
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
  if ((rc = cli_threads(c, threads_s, &o.threads)) != CLI_GO) return rc;
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
  if ((rc = cli_threads(c, threads_s, &threads)) != CLI_GO) return rc;
  if (wksp_checkpt_index(c->pos[0], threads)) return cli_lib_err(c, "writing the index of \"%s\"", c->pos[0]);
  return CLI_OK;
}
