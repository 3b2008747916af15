/* Folding a chain BASE DELTA... into one full checkpoint (wksp_checkpt_fold,
 * docs/FORMAT.md 13.4.1).  No writer of its own: the chain is checked whole
 * (chain.c), its final state restored into a private workspace of BASE's
 * geometry named and seeded as the chain's last member records, and that
 * workspace checkpointed by the ordinary writer (write.c, which also
 * publishes and seals).  So the file is, outside the info frame, the one a
 * checkpoint of a workspace holding that state writes.
 *
 * The private workspace is an anonymous private mapping made without
 * reserving memory (MAP_NORESERVE): only the pages the restore writes, the
 * records and the allocated bytes, cost memory, and they go at munmap. */
#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>

#include "delta_private.h"
#include "util/err.h"

typedef struct {
  delta_chain_t chain;
  int opened;
  chain_final_t fin;
  void *mem;
  uint64_t sz;
} fold_t;

/* checkpt_make_fn_t: the private workspace holding the chain's final state. */
static int fold_make(void *ctx, wksp_t **out) {
  fold_t *f = ctx;
  const chain_final_t *fin = &f->fin;
  f->sz = wksp_footprint(fin->part_max, fin->data_max);
  if (!f->sz) /* the scan checked the geometry: not reached */
    return wksp_err(WKSP_ERR_CORRUPT, 0, "part_max %" PRIu64 " data_max %" PRIu64 ": no valid workspace",
                    fin->part_max, fin->data_max);
  void *m = mmap(NULL, (size_t)f->sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return wksp_err(WKSP_ERR_FAIL, errno,
                    "mapping a private workspace of %" PRIu64 " bytes (part_max %" PRIu64
                    ", data_max %" PRIu64 ")",
                    f->sz, fin->part_max, fin->data_max);
  f->mem = m;
  wksp_t *w;
  int rc = wksp_new(m, fin->name, fin->seed, fin->part_max, fin->data_max, &w);
  if (!rc) rc = wksp_private_chain_apply(&f->chain, w, &(wksp_restore_opts_t){.threads = f->chain.threads, .seed = fin->seed});
  if (!rc) *out = w;
  return rc;
}

static void fold_fini(fold_t *f) {
  if (f->mem) munmap(f->mem, (size_t)f->sz);
  if (f->opened) wksp_private_chain_fini(&f->chain);
}

/* The chain checked, and the options as the writer takes them: style 0
 * is BASE's, a file target is sealed. */
static int fold_open(fold_t *f, const char *const *paths, size_t cnt, const wksp_checkpt_opts_t *opts,
                     wksp_checkpt_opts_t *o) {
  *o = opts ? *opts : (wksp_checkpt_opts_t){0};
  if (!paths || !cnt) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fold: NULL paths, or no file");
  for (size_t k = 0; k < cnt; k++)
    if (!paths[k]) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fold: path %zu is NULL", k);
  int rc = wksp_private_chain_open(&f->chain, paths, cnt, checkpt_threads(o->threads), 0);
  if (rc) return rc;
  f->opened = 1;
  wksp_private_chain_final(&f->chain, &f->fin);
  if (o->style == WKSP_CHECKPT_STYLE_DEFAULT)
    o->style = f->fin.frame_style == WKSP_FRAME_RAW ? WKSP_CHECKPT_STYLE_V2 : WKSP_CHECKPT_STYLE_V3;
  o->verify = 1;
  return WKSP_SUCCESS;
}

int wksp_checkpt_fold(const char *const *paths, size_t cnt, const char *path, const wksp_checkpt_opts_t *opts) {
  fold_t f = {0};
  wksp_checkpt_opts_t o;
  int rc = path ? fold_open(&f, paths, cnt, opts, &o) : wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fold: NULL path");
  if (!rc) rc = wksp_private_checkpt_made(path, &o, fold_make, &f);
  fold_fini(&f);
  return rc ? wksp_err_wrap(rc, "fold") : rc;
}

int wksp_checkpt_fold_fd(const char *const *paths, size_t cnt, int fd, const char *label,
                         const wksp_checkpt_opts_t *opts) {
  if (fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fold_fd: bad fd %d", fd);
  if (opts && opts->index)
    return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fold_fd: the index needs a path target");
  fold_t f = {0};
  wksp_checkpt_opts_t o;
  wksp_t *w = NULL;
  int rc = fold_open(&f, paths, cnt, opts, &o);
  o.verify = 0; /* an fd cannot be read back */
  if (!rc) rc = fold_make(&f, &w);
  if (!rc) rc = wksp_checkpt_fd(w, fd, label, &o);
  fold_fini(&f);
  return rc ? wksp_err_wrap(rc, "fold") : rc;
}
