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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { PART_MAX = 64, DATA_MAX = 2 << 20 };

static wksp_t *target(void) {
  static wksp_t *w;
  if (!w) {
    uint64_t fp = wksp_footprint(PART_MAX, DATA_MAX);
    void *mem = aligned_alloc(4096, (fp + 4095) & ~4095ull);
    if (!mem || wksp_new(mem, "fuzz", 1, PART_MAX, DATA_MAX, &w)) abort();
    signal(SIGPIPE, SIG_IGN);
  }
  return w;
}

static int mem_fd(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz-checkpt", MFD_CLOEXEC);
  if (fd < 0) abort();
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) abort();
    done += (size_t)n;
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wksp_t *w = target();
  wksp_preview_t pv;
  wksp_preview_mem(data, size, &pv);

  int fd = mem_fd(data, size);
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
