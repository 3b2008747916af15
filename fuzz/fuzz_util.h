/* fuzz/fuzz_util.h: set-up shared by the fuzz targets that restore into a
 * workspace.  Harness failures abort (the fuzzer reports them as crashes). */
#ifndef WKSP_FUZZ_UTIL_H
#define WKSP_FUZZ_UTIL_H

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wksp/wksp.h"

/* The target workspace, made once per process (anonymous, private). */
static inline wksp_t *fuzz_target(const char *name, uint64_t part_max, uint64_t data_max) {
  static wksp_t *w;
  if (!w) {
    uint64_t fp = wksp_footprint(part_max, data_max);
    void *mem = aligned_alloc(4096, (fp + 4095) & ~4095ull);
    if (!mem || wksp_new(mem, name, 1, part_max, data_max, &w)) abort();
    signal(SIGPIPE, SIG_IGN);
  }
  return w;
}

/* A memory file holding prefix[0..prefix_sz) then data[0..size), at offset
 * 0: a seekable, mmap-able input for the file paths. */
static inline int fuzz_mem_fd(const uint8_t *prefix, size_t prefix_sz, const uint8_t *data,
                              size_t size) {
  int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (fd < 0) abort();
  for (int part = 0; part < 2; part++) {
    const uint8_t *p = part ? data : prefix;
    size_t n = part ? size : prefix_sz, done = 0;
    while (done < n) {
      ssize_t k = write(fd, p + done, n - done);
      if (k <= 0) abort();
      done += (size_t)k;
    }
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

#endif
