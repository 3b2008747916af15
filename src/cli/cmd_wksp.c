/* Workspace commands: new, delete, check, verify, rebuild, reset (list: cmd_list.c). */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_attach(cli_t *c, const char *name, int flags, wksp_t **out) {
  int rc = cli_name(c, "workspace name", name);
  if (rc != CLI_GO) return rc;
  if (wksp_attach(name, flags, out)) return cli_lib_err(c, "attaching workspace \"%s\"", name);
  return CLI_GO;
}

/* Sizes of a workspace that can hold checkpoint `path`: exactly its
 * part_max and data_max, so that every restored address fits and a
 * checkpoint of the restored workspace records the same sizes. */
static int size_from_checkpt(cli_t *c, const char *path, uint64_t *data_max, uint64_t *part_max,
                             uint32_t *seed) {
  if (!strcmp(path, "-"))
    return cli_usage_err(c, "bad --from \"-\": needs a file (reading standard input would consume it)");
  wksp_preview_t pv;
  if (wksp_preview(path, &pv)) return cli_lib_err(c, "reading checkpoint \"%s\"", path);
  if (!wksp_footprint(pv.part_max, pv.data_max))
    return cli_fail(c,
                    "sizing from checkpoint \"%s\": part_max %" PRIu64 " and data_max %" PRIu64
                    " give no valid workspace",
                    path, pv.part_max, pv.data_max);
  *part_max = pv.part_max;
  *data_max = pv.data_max;
  *seed = pv.seed;
  return CLI_GO;
}

/* `new NAME --from BASE DELTA...`: the workspace just made from BASE's
 * geometry (a chain has one geometry) gets the chain's final state.  On
 * any failure the workspace is deleted again, so a refused chain leaves
 * nothing behind, as a refused restore leaves its target untouched. */
static int new_restore_chain(cli_t *c, const char *name, const char *base, uint32_t seed) {
  size_t cnt = (size_t)c->npos;
  const char **paths = malloc(cnt * sizeof *paths);
  if (!paths) return cli_fail(c, "out of memory for a chain of %zu files", cnt);
  paths[0] = base;
  for (size_t k = 1; k < cnt; k++) paths[k] = c->pos[k];
  wksp_t *w;
  int rc = cli_attach(c, name, 0, &w);
  if (rc == CLI_GO) {
    /* No verify_first: the workspace is new and deleted again on any
     * failure, so reading BASE whole before the restore reads it again
     * would protect nothing. */
    wksp_restore_opts_t o = {.seed = seed};
    rc = wksp_restore_chain(w, paths, cnt, &o)
             ? cli_lib_err(c, "restoring \"%s\" from the chain %s ... %s", name, paths[0], paths[cnt - 1])
             : CLI_OK;
    wksp_detach(w);
  }
  if (rc != CLI_OK) wksp_delete_named(name);
  free(paths);
  return rc;
}

int cmd_new(cli_t *c) {
  const char *part_max_s = NULL, *page_s = NULL, *mode_s = NULL, *seed_s = NULL, *from = NULL;
  const cli_opt_t opts[] = {
      {"part-max", 0, CLI_OPT_ARG, &part_max_s, "N",
       "partition records (most allocations + free gaps);\ndefault: suited to 64 KiB allocations"},
      {"page-size", 0, CLI_OPT_ARG, &page_s, "P", "normal (4 KiB, default), huge (2 MiB), gigantic (1 GiB)"},
      {"mode", 0, CLI_OPT_ARG, &mode_s, "OCTAL", "permission bits of the region (default 0600)"},
      {"seed", 0, CLI_OPT_ARG, &seed_s, "N", "heap-priority seed (default 0)"},
      {"from", 0, CLI_OPT_ARG, &from, "CKPT",
       "size the workspace for checkpoint file CKPT; with\nDELTA... after NAME, restore the chain CKPT DELTA..."},
      cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1 << 20);
  if (rc != CLI_GO) return rc;
  const char *name = c->pos[0];
  uint64_t sz = 0, part_max = 0, data_max = 0;
  uint32_t mode = 0600, seed = 0;
  wksp_page_t page = WKSP_PAGE_NORMAL;
  if ((rc = cli_name(c, "NAME", name)) != CLI_GO) return rc;
  if (page_s && (rc = cli_page(c, "--page-size", page_s, &page)) != CLI_GO) return rc;
  if (mode_s && (rc = cli_mode(c, "--mode", mode_s, &mode)) != CLI_GO) return rc;
  if (!from && c->npos > 2)
    return cli_usage_err(c, "unexpected argument \"%s\" (usage: wksp new NAME SIZE ...)", c->pos[2]);
  if (from && (rc = cli_chain_stdin(c, 1)) != CLI_GO) return rc;
  if (from) {
    /* A number that names no file is a SIZE, not a delta. */
    if (c->npos == 2 && c->pos[1][0] >= '0' && c->pos[1][0] <= '9' && access(c->pos[1], F_OK))
      return cli_usage_err(c, "SIZE \"%s\" and --from exclude each other", c->pos[1]);
    if (part_max_s || seed_s)
      return cli_usage_err(c, "%s comes from the checkpoint with --from", part_max_s ? "--part-max" : "--seed");
    if ((rc = size_from_checkpt(c, from, &data_max, &part_max, &seed)) != CLI_GO) return rc;
  } else {
    if (c->npos < 2) return cli_usage_err(c, "missing argument SIZE (usage: wksp new NAME SIZE ...)");
    if ((rc = cli_size(c, "SIZE", c->pos[1], &sz)) != CLI_GO) return rc;
    if (part_max_s && (rc = cli_size(c, "--part-max", part_max_s, &part_max)) != CLI_GO) return rc;
    if (part_max_s && !part_max) return cli_usage_err(c, "bad --part-max \"%s\": must be at least 1", part_max_s);
    if (seed_s && (rc = cli_u32(c, "--seed", seed_s, &seed)) != CLI_GO) return rc;
  }
  if (from ? wksp_new_named_exact(name, part_max, data_max, page, mode, seed)
           : wksp_new_named(name, sz, page, mode, seed, part_max))
    return cli_lib_err(c, "creating workspace \"%s\"", name);
  return from && c->npos > 1 ? new_restore_chain(c, name, from, seed) : CLI_OK;
}

/* Every name is checked before the first deletion (a usage error deletes
 * nothing); then each is deleted, a failure reported and the rest still
 * deleted. */
int cmd_delete(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, c->argc);
  if (rc != CLI_GO) return rc;
  for (int i = 0; i < c->npos; i++)
    if ((rc = cli_name(c, "NAME", c->pos[i])) != CLI_GO) return rc;
  rc = CLI_OK;
  for (int i = 0; i < c->npos; i++) {
    char note[WKSP_NOTE_MAX];
    if (wksp_delete_region(c->pos[i], note, sizeof note)) {
      rc = cli_lib_err(c, "deleting workspace \"%s\"", c->pos[i]);
      continue;
    }
    /* A region without a workspace (left by a creator of an older version
     * killed mid-way, or damaged) is removed too, but not silently. */
    if (note[0]) cli_note(c, "\"%s\" %s; removed the region", c->pos[i], note);
  }
  return rc;
}

/* The options of check and verify, and their report: "NAME: ok" or
 * "NAME: repaired: WHAT" (repaired NULL: ok). */
typedef struct {
  int quiet, json;
} report_opts_t;

static int parse_report(cli_t *c, report_opts_t *r) {
  *r = (report_opts_t){0};
  const cli_opt_t opts[] = {cli_opt_quiet(&r->quiet), cli_opt_json(&r->json), cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1);
  if (rc != CLI_GO) return rc;
  return cli_exclusive(c, r->quiet, "--quiet", r->json, "--json");
}

static void print_report(const report_opts_t *r, const char *name, const char *repaired) {
  if (r->quiet) return;
  if (r->json) {
    printf("{\"schema\":1,\"name\":");
    cli_json_str(stdout, name);
    printf(",\"result\":\"%s\"", repaired ? "repaired" : "ok");
    if (repaired) {
      printf(",\"repaired\":");
      cli_json_str(stdout, repaired);
    }
    printf("}\n");
  } else if (repaired) {
    printf("%s: repaired: ", name);
    cli_text_str(stdout, repaired);
    printf("\n");
  } else {
    printf("%s: ok\n", name);
  }
}

int cmd_check(cli_t *c) {
  report_opts_t r;
  int rc = parse_report(c, &r);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  const char *name = c->pos[0];
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  /* A workspace whose derived state had to be rebuilt is not called ok:
   * the note says what was wrong. */
  char note[WKSP_NOTE_MAX];
  if (wksp_check(w, note, sizeof note)) {
    rc = cli_lib_err(c, "checking workspace \"%s\"", name);
  } else {
    print_report(&r, name, note[0] ? note : NULL);
    rc = CLI_OK;
  }
  wksp_detach(w);
  return cli_flush(c, rc);
}

int cmd_verify(cli_t *c) {
  report_opts_t r;
  int rc = parse_report(c, &r);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  const char *name = c->pos[0];
  /* Read-only: verify needs only read access and must change nothing, so
   * it reads under the header's sequence counter instead of taking the
   * lock (which would also repair a change a dead process left half done;
   * check does that). */
  if ((rc = cli_attach(c, name, WKSP_RDONLY, &w)) != CLI_GO) return rc;
  int err = wksp_verify(w);
  rc = CLI_OK;
  if (err == WKSP_ERR_CORRUPT)
    rc = cli_lib_err(c, "verifying workspace \"%s\" (read-only; if a process died changing it, 'wksp check %s' "
                        "repairs that)", name, name);
  else if (err) rc = cli_lib_err(c, "verifying workspace \"%s\"", name);
  else print_report(&r, name, NULL);
  wksp_detach(w);
  return cli_flush(c, rc);
}

int cmd_rebuild(cli_t *c) {
  const char *seed_s = NULL;
  const cli_opt_t opts[] = {
      {"seed", 0, CLI_OPT_ARG, &seed_s, "N", "new heap-priority seed (default: keep the current one)"}, cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1);
  if (rc != CLI_GO) return rc;
  uint32_t seed = 0;
  if (seed_s && (rc = cli_u32(c, "--seed", seed_s, &seed)) != CLI_GO) return rc;
  wksp_t *w;
  const char *name = c->pos[0];
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  if (!seed_s) seed = wksp_seed(w);
  rc = wksp_rebuild(w, seed) ? cli_lib_err(c, "rebuilding workspace \"%s\"", name) : CLI_OK;
  wksp_detach(w);
  return rc;
}

int cmd_reset(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, 1);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  const char *name = c->pos[0];
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  rc = wksp_reset(w, wksp_seed(w)) ? cli_lib_err(c, "resetting workspace \"%s\"", name) : CLI_OK;
  wksp_detach(w);
  return rc;
}
