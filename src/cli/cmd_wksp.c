/* Workspace commands: new, delete, list, check, verify, rebuild, reset. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int cli_attach(cli_t *c, const char *name, int flags, wksp_t **out) {
  int rc = cli_name(c, "workspace name", name);
  if (rc != CLI_GO) return rc;
  if (wksp_attach(name, flags, out)) return cli_lib_err(c, "attaching workspace \"%s\"", name);
  return CLI_GO;
}

/* Sizes of a workspace that can hold checkpoint `path` (its part_max and
 * data_max, so that every restored address fits). */
static int size_from_checkpt(cli_t *c, const char *path, uint64_t *sz, uint64_t *part_max,
                             uint32_t *seed) {
  if (!strcmp(path, "-"))
    return cli_usage_err(c, "bad --from \"-\": needs a file (reading standard input would consume it)");
  wksp_preview_t pv;
  if (wksp_preview(path, &pv)) return cli_lib_err(c, "reading checkpoint \"%s\"", path);
  *sz = wksp_footprint(pv.part_max, pv.data_max);
  if (!*sz)
    return cli_fail(c, "sizing from checkpoint \"%s\": part_max %llu and data_max %llu give no valid workspace",
                    path, (unsigned long long)pv.part_max, (unsigned long long)pv.data_max);
  *part_max = pv.part_max;
  *seed = pv.seed;
  return CLI_GO;
}

int cmd_new(cli_t *c) {
  const char *part_max_s = NULL, *page_s = NULL, *mode_s = NULL, *seed_s = NULL, *from = NULL;
  const cli_opt_t opts[] = {{"part-max", 0, CLI_OPT_ARG, &part_max_s},
                            {"page-size", 0, CLI_OPT_ARG, &page_s},
                            {"mode", 0, CLI_OPT_ARG, &mode_s},
                            {"seed", 0, CLI_OPT_ARG, &seed_s},
                            {"from", 0, CLI_OPT_ARG, &from},
                            {NULL, 0, 0, NULL}};
  int rc = cli_parse(c, opts, 1, 2);
  if (rc != CLI_GO) return rc;
  const char *name = c->pos[0];
  uint64_t sz = 0, part_max = 0;
  uint32_t mode = 0600, seed = 0;
  wksp_page_t page = WKSP_PAGE_NORMAL;
  if ((rc = cli_name(c, "NAME", name)) != CLI_GO) return rc;
  if (page_s && (rc = cli_page(c, "--page-size", page_s, &page)) != CLI_GO) return rc;
  if (mode_s && (rc = cli_mode(c, "--mode", mode_s, &mode)) != CLI_GO) return rc;
  if (from) {
    if (c->npos > 1) return cli_usage_err(c, "SIZE \"%s\" and --from exclude each other", c->pos[1]);
    if (part_max_s || seed_s)
      return cli_usage_err(c, "%s comes from the checkpoint with --from", part_max_s ? "--part-max" : "--seed");
    if ((rc = size_from_checkpt(c, from, &sz, &part_max, &seed)) != CLI_GO) return rc;
  } else {
    if (c->npos < 2) return cli_usage_err(c, "missing argument SIZE (usage: wksp new NAME SIZE ...)");
    if ((rc = cli_size(c, "SIZE", c->pos[1], &sz)) != CLI_GO) return rc;
    if (part_max_s && (rc = cli_size(c, "--part-max", part_max_s, &part_max)) != CLI_GO) return rc;
    if (part_max_s && !part_max) return cli_usage_err(c, "bad --part-max \"%s\": must be at least 1", part_max_s);
    if (seed_s && (rc = cli_u32(c, "--seed", seed_s, &seed)) != CLI_GO) return rc;
  }
  if (wksp_new_named(name, sz, page, mode, seed, part_max))
    return cli_lib_err(c, "creating workspace \"%s\"", name);
  return CLI_OK;
}

int cmd_delete(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, 1);
  if (rc != CLI_GO) return rc;
  const char *name = c->pos[0];
  if ((rc = cli_name(c, "NAME", name)) != CLI_GO) return rc;
  char note[WKSP_NOTE_MAX];
  if (wksp_delete_region(name, note, sizeof note)) return cli_lib_err(c, "deleting workspace \"%s\"", name);
  /* A region without a workspace (left by a creator of an older version
   * killed mid-way, or damaged) is removed too, but not silently. */
  if (note[0]) cli_note(c, "\"%s\" %s; removed the region", name, note);
  return CLI_OK;
}

/* Regions collected by the walk, printed once it has succeeded (so that a
 * failed walk prints no partial listing or partial JSON). */
typedef struct {
  wksp_shmem_info_t *v;
  size_t n, cap;
  int oom; /* the walk was stopped for lack of memory */
} list_ctx_t;

static int list_one(const wksp_shmem_info_t *info, void *arg) {
  list_ctx_t *l = arg;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    wksp_shmem_info_t *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->oom = 1;
      return 1; /* stops the walk */
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = *info;
  return 0;
}

static void list_print_json(const list_ctx_t *l) {
  printf("{\"schema\":1,\"regions\":[");
  for (size_t i = 0; i < l->n; i++) {
    const wksp_shmem_info_t *r = &l->v[i];
    printf("%s{\"name\":", i ? "," : "");
    cli_json_str(stdout, r->name);
    printf(",\"size\":%llu,\"page\":\"%s\",\"mode\":\"%04o\"}", (unsigned long long)r->sz, cli_page_name(r->page),
           (unsigned)r->mode);
  }
  printf("]}\n");
}

static void list_print_text(const list_ctx_t *l, int bytes) {
  int w = 4; /* strlen("NAME") */
  for (size_t i = 0; i < l->n; i++)
    if ((int)strlen(l->v[i].name) > w) w = (int)strlen(l->v[i].name);
  if (l->n) printf("%-*s %12s %-8s %s\n", w, "NAME", "SIZE", "PAGE", "MODE");
  for (size_t i = 0; i < l->n; i++) {
    char h[CLI_HUMAN_MAX];
    const wksp_shmem_info_t *r = &l->v[i];
    printf("%-*s %12s %-8s %04o\n", w, r->name, cli_human(r->sz, bytes, h), cli_page_name(r->page), (unsigned)r->mode);
  }
}

int cmd_list(cli_t *c) {
  int json = 0, bytes = 0;
  const cli_opt_t opts[] = {{"json", 0, CLI_OPT_FLAG, &json}, {"bytes", 0, CLI_OPT_FLAG, &bytes}, {NULL, 0, 0, NULL}};
  int rc = cli_parse(c, opts, 0, 0);
  if (rc != CLI_GO) return rc;
  list_ctx_t l = {NULL, 0, 0, 0};
  int err = wksp_shmem_list(list_one, &l);
  if (l.oom) rc = cli_fail(c, "listing regions: out of memory");
  else if (err) rc = cli_lib_err(c, "listing regions");
  else if (json) list_print_json(&l);
  else list_print_text(&l, bytes);
  free(l.v);
  return cli_flush(c, err ? rc : CLI_OK);
}

int cmd_check(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, 1);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  const char *name = c->pos[0];
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  /* A workspace whose derived state had to be rebuilt is not called ok:
   * the note says what was wrong. */
  char note[WKSP_NOTE_MAX];
  if (wksp_check(w, note, sizeof note)) rc = cli_lib_err(c, "checking workspace \"%s\"", name);
  else if (note[0]) rc = printf("%s: repaired: %s\n", name, note) < 0 ? CLI_FAIL : CLI_OK;
  else rc = printf("%s: ok\n", name) < 0 ? CLI_FAIL : CLI_OK;
  wksp_detach(w);
  return cli_flush(c, rc);
}

int cmd_verify(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, 1);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  const char *name = c->pos[0];
  /* Read-only: verify needs only read access and must change nothing, so
   * it reads under the header's sequence counter instead of taking the
   * lock (which would also repair a change a dead process left half done;
   * check does that). */
  if ((rc = cli_attach(c, name, WKSP_RDONLY, &w)) != CLI_GO) return rc;
  int err = wksp_verify(w);
  if (err == WKSP_ERR_CORRUPT)
    rc = cli_lib_err(c, "verifying workspace \"%s\" (read-only; if a process died changing it, 'wksp check %s' "
                        "repairs that)", name, name);
  else if (err) rc = cli_lib_err(c, "verifying workspace \"%s\"", name);
  else rc = printf("%s: ok\n", name) < 0 ? CLI_FAIL : CLI_OK;
  wksp_detach(w);
  return cli_flush(c, rc);
}

int cmd_rebuild(cli_t *c) {
  const char *seed_s = NULL;
  const cli_opt_t opts[] = {{"seed", 0, CLI_OPT_ARG, &seed_s}, {NULL, 0, 0, NULL}};
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
