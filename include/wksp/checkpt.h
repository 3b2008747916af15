/* wksp/checkpt.h: checkpoint a workspace to a file or pipe, preview, list
 * and restore checkpoints (FORMAT.md sections 3-5 and 7).
 *
 * DRAFT CONTRACT: the checkpoint issue fills in every failure reason and the
 * state left behind after each. */
#ifndef WKSP_CHECKPT_H
#define WKSP_CHECKPT_H

#include <stddef.h>
#include <stdint.h>

#include "wksp/error.h"
#include "wksp/wksp.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  WKSP_CHECKPT_STYLE_DEFAULT = 0, /* = V3 */
  WKSP_CHECKPT_STYLE_V1 = 1,      /* legacy stream (read only) */
  WKSP_CHECKPT_STYLE_V2 = 2,      /* framed, RAW frames */
  WKSP_CHECKPT_STYLE_V3 = 3       /* framed, LZ4 frames (header says style 2) */
};

/* Progress callback: done / total bytes of allocation contents so far;
 * called from the calling thread only. */
typedef void (*wksp_progress_fn_t)(uint64_t done, uint64_t total, void *ctx);

typedef struct {
  int style;             /* WKSP_CHECKPT_STYLE_*: 0 = V3 */
  uint32_t mode;         /* permission bits of the new file, exactly; 0 = 0600 */
  uint32_t threads;      /* worker threads; 0 = 1 */
  int overwrite;         /* replace an existing file at the path */
  const char *uinfo;     /* user info text, NULL = ""; truncated to 16383 bytes */
  wksp_progress_fn_t progress;
  void *progress_ctx;
} wksp_checkpt_opts_t;

/* Writes a checkpoint of w to `path`, published atomically and durably.
 * opts NULL = defaults. */
WKSP_API int wksp_checkpt(wksp_t *w, const char *path, const wksp_checkpt_opts_t *opts);

/* Writes a checkpoint of w to fd (file, pipe, socket) from its current
 * position; `path_label` is what the info frame records as the path. */
WKSP_API int wksp_checkpt_fd(wksp_t *w, int fd, const char *path_label,
                             const wksp_checkpt_opts_t *opts);

typedef struct {
  int style;          /* 1 or 2 (as in the file header) */
  int frame_style;    /* v2: WKSP_FRAME_RAW or WKSP_FRAME_LZ4; v1: 0 */
  char name[WKSP_NAME_MAX];
  uint32_t seed;
  uint64_t part_max;
  uint64_t data_max;
} wksp_preview_t;

/* Reads the first bytes of a checkpoint (v1 or v2) only. */
WKSP_API int wksp_preview(const char *path, wksp_preview_t *out);
WKSP_API int wksp_preview_mem(const void *buf, size_t sz, wksp_preview_t *out);

typedef struct {
  uint32_t seed;     /* seed the target is rebuilt with */
  uint32_t threads;  /* worker threads; 0 = 1 */
  int verify_first;  /* read and check all data before touching the target (pipes too) */
  wksp_progress_fn_t progress;
  void *progress_ctx;
} wksp_restore_opts_t;

/* Replaces every allocation of w by the checkpoint's. */
WKSP_API int wksp_restore(wksp_t *w, const char *path, const wksp_restore_opts_t *opts);
WKSP_API int wksp_restore_fd(wksp_t *w, int fd, const wksp_restore_opts_t *opts);

/* Human-readable listing to out_fd at the given verbosity (FORMAT.md 7). */
WKSP_API int wksp_checkpt_print(int out_fd, const char *path, int verbose);

#ifdef __cplusplus
}
#endif

#endif
