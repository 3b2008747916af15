/* Inspection commands: info (checkpoints, deltas, index files and
 * chains) and diff (a workspace against a checkpoint or a chain). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
  printf(",\"info\":{\"mode\":\"%04" PRIo64 "\",\"wallclock\":%" PRId64, in->mode,
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

static void json_hex(const char *key, uint64_t v) { printf(",\"%s\":\"%016" PRIx64 "\"", key, v); }

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
    printf(", base digest %016" PRIx64, l->base_digest);
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
  if ((rc = cli_threads(c, threads_s, &threads)) != CLI_GO) return rc;
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
  printf(",\"seal\":\"%s\",\"digest\":\"%016" PRIx64 "\"", seal_name(d->seal), d->digest);
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
    printf("seal: the checkpoint's content digest %016" PRIx64 " matches what it holds\n", d->digest);
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
                     "%016" PRIx64 ", not the last delta's", src, d.digest);
  else if (d.seal == WKSP_SEAL_BROKEN)
    rc = cli_fail(c, "checkpoint \"%s\" is damaged: its seal does not hold (it holds content with digest %016" PRIx64 ", "
                     "not what was recorded when it was written)", src, d.digest);
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
  if (rc == CLI_GO) rc = cli_threads(c, threads_s, &threads);
  if (rc == CLI_GO) rc = diff_run(c, quiet, verbose, json, require_seal, threads, &differ);
  /* As cmp(1): 0 the same, 1 they differ, 2 (ours: 3) trouble; 2 is ours
   * for usage errors, as everywhere. */
  if (rc == CLI_FAIL) return CLI_TROUBLE;
  return rc == CLI_OK && differ ? 1 : rc;
}
