/* libFuzzer target: preview, info, print and restore (mapped and stream
 * paths) on arbitrary bytes.  Whatever the bytes, nothing may crash, hang
 * or leak, and the target workspace must verify afterwards (restored, left
 * untouched, or reset to empty). */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wksp/checkpt.h"
#include "wksp/wksp.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { PART_MAX = 64, DATA_MAX = 2 << 20 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wksp_t *w = fuzz_target("fuzz", PART_MAX, DATA_MAX);
  wksp_preview_t pv;
  wksp_preview_mem(data, size, &pv);

  int fd = fuzz_mem_fd(NULL, 0, data, size);
  wksp_checkpt_info_t info;
  int small = 0;
  if (!wksp_checkpt_info(NULL, fd, &info)) {
    small = info.alloc_sz <= (1u << 22);
    wksp_checkpt_info_free(&info);
  }
  int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  lseek(fd, 0, SEEK_SET);
  wksp_checkpt_print_fd(null_fd, fd, "fuzz", small ? 5 : 4);
  close(null_fd);

  /* Mapped path (a memfd is a regular file), 2 threads. */
  lseek(fd, 0, SEEK_SET);
  wksp_restore_fd(w, fd, "fuzz", &(wksp_restore_opts_t){.seed = 2, .threads = 2});
  if (wksp_verify(w)) abort();
  close(fd);

  /* Stream path: small inputs fit in a pipe's buffer. */
  int p[2];
  if (size <= 60000 && !pipe(p)) {
    if (write(p[1], data, size) != (ssize_t)size) abort();
    close(p[1]);
    /* Sequential or pipelined reader, by the input's parity. */
    uint32_t threads = 1 + (uint32_t)(size & 1);
    wksp_restore_fd(w, p[0], "fuzz-pipe", &(wksp_restore_opts_t){.seed = 3, .threads = threads});
    close(p[0]);
    if (wksp_verify(w)) abort();
  }
  return 0;
}
