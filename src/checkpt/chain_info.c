/* Describing and checking files of a chain without a workspace:
 * wksp_chain_info (each file's metadata, and whether the files link) and
 * wksp_chain_check (everything files alone can tell, first problem
 * first).  A chain that does not link is a result of info (what info is
 * for: finding out which file is missing or out of order) but an error of
 * check. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "delta_private.h"
#include "util/err.h"

typedef struct {
  checkpt_input_t in;
  checkpt_scan_t s;
  delta_file_t df;
  int in_open, s_open, df_open;
  uint64_t *pstart, *changed;
} held_t;

static void held_fini(held_t *h) {
  if (h->df_open) wksp_private_delta_fini(&h->df);
  if (h->s_open) wksp_private_checkpt_scan_fini(&h->s);
  if (h->in_open) wksp_private_checkpt_input_fini(&h->in);
  free(h->pstart);
  free(h->changed);
}

void wksp_chain_info_free(wksp_chain_info_t *info) {
  if (!info) return;
  held_t *h = info->priv_;
  for (size_t k = 0; h && k < info->cnt; k++) held_fini(&h[k]);
  free(h);
  free(info->links);
  memset(info, 0, sizeof *info);
}

/* A delta or index file. */
static int link_delta(held_t *h, wksp_chain_link_t *l) {
  int rc = wksp_private_delta_open(&h->df, &h->in);
  if (rc) return rc;
  h->df_open = 1;
  const delta_file_t *df = &h->df;
  if (!(h->changed = calloc(df->h.alloc_cnt + 1, sizeof *h->changed)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: table of %" PRIu64 " allocations", h->in.label, df->h.alloc_cnt);
  for (uint64_t k = 0; k < df->h.alloc_cnt; k++)
    for (uint64_t i = df->pstart[k]; i < df->pstart[k + 1]; i++) h->changed[k] += df->bits[i / 64] >> (i % 64) & 1;
  l->kind = df->kind;
  l->seal = WKSP_SEAL_OK;
  memcpy(l->name, df->h.name, sizeof l->name - 1);
  l->seed = df->h.seed, l->version = df->h.version, l->piece_style = df->h.piece_style, l->flags = df->h.flags;
  l->part_max = df->h.part_max, l->data_max = df->h.data_max, l->wallclock = df->h.wallclock;
  l->base_digest = df->kind == WKSP_FILE_DELTA ? df->h.base_digest : 0;
  l->digest = df->f.digest;
  l->alloc_cnt = df->h.alloc_cnt, l->alloc_sz = df->data_sz, l->piece_cnt = df->h.piece_cnt;
  l->changed_cnt = df->f.changed_cnt, l->changed_sz = df->f.changed_sz, l->file_sz = df->f.file_sz;
  l->hint = df->hint, l->uinfo = df->uinfo, l->parts = df->parts, l->changed = h->changed;
  return WKSP_SUCCESS;
}

/* A full checkpoint: its structure, as wksp_checkpt_info. */
static int link_checkpt(held_t *h, wksp_chain_link_t *l) {
  int rc = wksp_private_checkpt_scan(&h->s, &h->in);
  if (rc) return rc;
  h->s_open = 1;
  const wksp_checkpt_info_t *i = &h->s.info;
  if ((rc = wksp_private_delta_pstart(i->parts, i->alloc_cnt, &h->pstart))) return rc;
  if (!(h->changed = malloc((i->alloc_cnt + 1) * sizeof *h->changed)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: table of %" PRIu64 " allocations", h->in.label, i->alloc_cnt);
  for (uint64_t k = 0; k < i->alloc_cnt; k++) h->changed[k] = h->pstart[k + 1] - h->pstart[k];
  l->kind = WKSP_FILE_CHECKPT;
  l->seal = h->s.seal.state;
  memcpy(l->name, i->pv.name, sizeof l->name - 1);
  l->seed = i->pv.seed, l->version = (uint32_t)i->pv.style, l->piece_style = (uint32_t)i->pv.frame_style;
  l->part_max = i->pv.part_max, l->data_max = i->pv.data_max, l->wallclock = i->wallclock;
  l->digest = l->seal == WKSP_SEAL_NONE ? 0 : h->s.seal.digest;
  l->alloc_cnt = i->alloc_cnt, l->alloc_sz = i->alloc_sz, l->piece_cnt = h->pstart[i->alloc_cnt];
  l->changed_cnt = l->piece_cnt, l->changed_sz = i->alloc_sz, l->file_sz = i->file_sz;
  l->hint = "", l->uinfo = "", l->parts = i->parts, l->changed = h->changed;
  return WKSP_SUCCESS;
}

static int link_open(held_t *h, wksp_chain_link_t *l, const char *path) {
  l->path = path;
  int rc = wksp_private_checkpt_input_open(&h->in, path, -1, path, CHECKPT_IN_NEED_MEM);
  if (rc) return rc;
  h->in_open = 1;
  uint64_t m;
  if (!(rc = wksp_private_delta_magic_read(&h->in, &m))) rc = delta_magic_any(m) ? link_delta(h, l) : link_checkpt(h, l);
  return rc;
}

int wksp_chain_info(const char *const *paths, size_t cnt, wksp_chain_info_t *out) {
  if (out) memset(out, 0, sizeof *out);
  int rc = wksp_private_chain_args("wksp_chain_info", out, paths, cnt);
  if (rc) return rc;
  held_t *h = calloc(cnt, sizeof *h);
  out->links = calloc(cnt, sizeof *out->links);
  out->priv_ = h;
  out->cnt = cnt;
  if (!h || !out->links) rc = wksp_err(WKSP_ERR_NOMEM, 0, "chain of %zu files", cnt);
  for (size_t k = 0; !rc && k < cnt; k++) rc = link_open(&h[k], &out->links[k], paths[k]);
  out->first_unlinked = cnt;
  for (size_t k = 0; !rc && k < cnt; k++) {
    wksp_chain_link_t *l = &out->links[k], *p = k ? &out->links[k - 1] : NULL;
    l->linked = !k ? l->kind == WKSP_FILE_CHECKPT && l->version == 2 && l->seal == WKSP_SEAL_OK
                   : l->kind == WKSP_FILE_DELTA && p->digest && l->base_digest == p->digest &&
                         l->part_max == p->part_max && l->data_max == p->data_max;
    if (!l->linked && out->first_unlinked == cnt) out->first_unlinked = k;
  }
  out->linked = out->first_unlinked == cnt;
  if (rc) wksp_chain_info_free(out);
  return rc;
}

int wksp_chain_check(const char *const *paths, size_t cnt, const wksp_check_opts_t *opts, int *seal) {
  if (seal) *seal = WKSP_SEAL_NONE;
  int rc = wksp_private_chain_args("wksp_chain_check", paths, paths, cnt);
  if (rc) return rc;
  wksp_check_opts_t o = opts ? *opts : (wksp_check_opts_t){0};
  uint32_t threads = checkpt_threads(o.threads);
  if (cnt == 1) return wksp_checkpt_check(paths[0], opts, seal);
  delta_chain_t ch;
  if (!(rc = wksp_private_chain_open(&ch, paths, cnt, threads, 1))) wksp_private_chain_fini(&ch);
  if (!rc && seal) *seal = WKSP_SEAL_OK;
  return rc;
}
