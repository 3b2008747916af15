/* libFuzzer target: preview, info, print, restore (file and stream
 * paths, each with 1 or 2 threads as fuzz_hash picks), diff and check on arbitrary bytes.  Whatever the bytes, nothing may crash, hang
 * or leak, and the target workspace must verify afterwards (restored, left
 * untouched, or reset to empty). */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checkpt/format_private.h"
#include "wksp/checkpt.h"
#include "wksp/wksp.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { PART_MAX = 64, DATA_MAX = 2 << 20 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wksp_t *w = fuzz_target("fuzz", PART_MAX, DATA_MAX);
  uint64_t h = fuzz_hash(data, size);
  wksp_preview_t pv;
  wksp_preview_mem(data, size, &pv);

  int fd = fuzz_mem_fd(NULL, 0, data, size);
  wksp_checkpt_info_t info;
  int small = 0;
  if (!wksp_checkpt_info_fd(fd, NULL, &info)) {
    small = info.alloc_sz <= (1u << 22);
    wksp_checkpt_info_free(&info);
  }
  lseek(fd, 0, SEEK_SET);
  wksp_checkpt_print_fd(fuzz_null_fd(), fd, "fuzz", small ? 5 : 4);

  /* File path (a memfd is a regular file, read with pread): 2 threads for one input in 8
   * (thread start-up costs more than a small restore), else 1. */
  lseek(fd, 0, SEEK_SET);
  uint32_t threads = (h & 7) == 0 ? 2 : 1;
  int rc = wksp_restore_fd(w, fd, "fuzz", &(wksp_restore_opts_t){.seed = 2, .threads = threads});
  if (wksp_verify(w)) abort();
  /* Comparison: a checkpoint that restored compares equal to the workspace
   * it made (and any other input gets a clean answer or error). */
  lseek(fd, 0, SEEK_SET);
  wksp_checkpt_diff_t d;
  int drc = wksp_checkpt_diff_fd(w, fd, NULL, &(wksp_diff_opts_t){.threads = threads}, &d);
  if (!rc && (drc || d.first_kind != WKSP_DIFF_NONE || d.seal == WKSP_SEAL_BROKEN)) abort();
  /* A checkpoint that restored passes the file check too (requiring a
   * seal, for one input in 2: unless it is not sealed). */
  lseek(fd, 0, SEEK_SET);
  int seal;
  int require = h >> 9 & 1;
  int crc = wksp_checkpt_check_fd(fd, NULL, &(wksp_check_opts_t){.threads = threads, .require_seal = require}, &seal);
  if (!rc && crc && !(require && crc == WKSP_ERR_UNSUP && seal == WKSP_SEAL_NONE)) abort();
  if (!crc && require && seal != WKSP_SEAL_OK) abort();

  /* Stream path: small inputs fit in a pipe's buffer.  Pipelined (2
   * threads) for one input in 8, else sequential.  An input without the
   * v2 header's magic is refused at its first bytes or, v1, spooled to a
   * temporary file and restored by the very code of the file path just run
   * (only the seed and the starting state differ): that is done for one
   * such input in 4 only. */
  uint64_t magic = 0;
  for (size_t i = 0; i < 8 && i < size; i++) magic |= (uint64_t)data[i] << 8 * i;
  int spooled = size < CHECKPT_HDR_SZ || magic != CHECKPT_MAGIC;
  int p[2];
  if ((!spooled || (h >> 6 & 3) == 0) && size <= 60000 && !pipe(p)) {
    if (write(p[1], data, size) != (ssize_t)size) abort();
    close(p[1]);
    threads = (h >> 3 & 7) == 0 ? 2 : 1;
    wksp_restore_fd(w, p[0], "fuzz-pipe", &(wksp_restore_opts_t){.seed = 3, .threads = threads});
    close(p[0]);
    if (wksp_verify(w)) abort();
  }
  return 0;
}
